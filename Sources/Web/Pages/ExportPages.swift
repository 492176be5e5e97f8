import HTTP
import Roster

/// GET /databases/:id/export chooses fields; POST starts the export task; GET /tasks/:id/download sends the file.
enum ExportPages {
    static func form(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let db = try ctx.database(app)
        return try render(app, ctx, db, error: nil, status: 200)
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, _ db: ProfileDatabase, error: String?, status: Int) throws -> Response {
        let custom = try app.services.databases.fields(of: db.id)
        return try app.page("databases/export.html", title: "Export profiles of \(db.name)", context: ctx, nav: .databases, status: status, [
            "database": View.database(db),
            "profile_count": .string(View.count(try app.services.databases.profileCount(db.id))),
            "standard": .list(StandardField.all.map { ["key": .string($0.key), "label": .string($0.label)] }),
            "custom": .list(custom.map { ["key": .string($0.name), "label": .string($0.name), "type": .string($0.type.label)] }),
            "error": TemplateValue(error),
        ])
    }

    static func start(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireUser()
        let db = try ctx.database(app)
        let custom = Set(try app.services.databases.fields(of: db.id).map(\.name))
        // Each field once, in the order chosen (a repeated name would only repeat a column).
        var seen = Set<String>()
        let chosen = ctx.form.all("fields").filter { seen.insert($0).inserted }
        // Only names from this database's catalogue are accepted: a forged field name is refused, not ignored.
        if let unknown = chosen.first(where: { StandardField.named($0) == nil && !custom.contains($0) }) {
            return try render(app, ctx, db, error: "\(unknown) is not a field of this database.", status: 422)
        }
        if chosen.isEmpty {
            return try render(app, ctx, db, error: "Choose at least one field to export.", status: 422)
        }
        do { try app.services.files.requireFreeSpace(at: app.services.export.directory) } catch let error as ValidationError {
            return try render(app, ctx, db, error: error.fieldErrors.values.sorted().joined(separator: " "), status: 507)
        }
        let id = try app.services.tasks.enqueue(kind: ExportProfilesTask.kind, title: "Export profiles: \(db.name)", databaseID: db.id,
                                                userID: user.id, parameters: ["fields": .array(chosen.map { .string($0) })])
        return Response.redirect(to: "/tasks/\(id)")
    }

    /// POST /databases/:id/export-history: the database's action history as CSV.
    static func startHistory(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireUser()
        let db = try ctx.database(app)
        let id = try app.services.tasks.enqueue(kind: ExportHistoryTask.kind, title: "Export history: \(db.name)", databaseID: db.id,
                                                userID: user.id, parameters: [:])
        return Response.redirect(to: "/tasks/\(id)")
    }

    static func download(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let task = try TasksPage.loadDownload(app, ctx)
        guard task.kind == ExportProfilesTask.kind || task.kind == ExportHistoryTask.kind, task.state == .done else { throw HTTPError.notFound }
        let what = task.kind == ExportHistoryTask.kind ? "history" : "profiles"
        var response = Response(status: 200, headers: [("Content-Type", "text/csv; charset=utf-8"),
                                                       ("Content-Disposition", "attachment; filename=\"\(what)-\(task.databaseID ?? 0)-task-\(task.id).csv\"")])
        response.bodyFile = app.services.export.path(for: task.id)
        return response
    }
}
