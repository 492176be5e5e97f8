import HTTP
import Roster

/// The structure file (GET /databases/:id/structure.json, GET+POST /databases/import), a new empty database
/// with the same structure (POST /databases/:id/clone), and copying profiles (GET+POST /databases/:id/copy).
enum StructurePages {
    static func download(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let db = try ctx.database(app)
        guard let structure = try app.services.databases.structure(of: db.id) else { throw HTTPError.notFound }
        var response = Response(status: 200, headers: [("Content-Type", "application/json; charset=utf-8")], body: Array(structure.json().utf8))
        let safe = String(db.name.unicodeScalars.map { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) ? Character($0) : "-" })
        response.addHeader("Content-Disposition", "attachment; filename=\"structure-\(db.id)-\(safe.prefix(40)).json\"")
        return response
    }

    static func importForm(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        return try renderImport(app, ctx, text: "", error: nil, status: 200)
    }

    static func renderImport(_ app: WebApp, _ ctx: RequestContext, text: String, error: String?, status: Int) throws -> Response {
        try app.page("databases/import.html", title: "Create a database from a structure file", context: ctx, nav: .databases, status: status, [
            "text": .string(text), "error": TemplateValue(error),
        ])
    }

    static func importFile(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        var text = ctx.form["structure"] ?? ""
        if let file = ctx.files.first(where: { $0.fieldName == "file" && !$0.bytes.isEmpty }) {
            guard let decoded = String(validating: file.bytes, as: UTF8.self) else {
                return try renderImport(app, ctx, text: "", error: "The file is not UTF-8 text.", status: 422)
            }
            text = decoded
        }
        do {
            let structure = try DatabaseStructure.parse(text)
            let db = try app.services.databases.create(from: structure)
            return Response.redirect(to: "/databases/\(db.id)?done=created")
        } catch let error as ValidationError {
            return try renderImport(app, ctx, text: text, error: error.fieldErrors.sorted { $0.key < $1.key }.map(\.value).joined(separator: " "), status: 422)
        }
    }

    static func clone(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        let name = (ctx.form["name"] ?? "").trimmingCharacters(in: .whitespaces)
        do {
            let copy = try app.services.databases.createWithSameStructure(from: db.id, name: name.isEmpty ? "\(db.name) (copy)" : name)
            return Response.redirect(to: "/databases/\(copy.id)?done=cloned")
        } catch let error as ValidationError {
            throw HTTPError(422, "The database could not be created", error.fieldErrors.values.joined(separator: " "))
        }
    }

    static func copyForm(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        return try renderCopy(app, ctx, db, error: nil, status: 200)
    }

    static func renderCopy(_ app: WebApp, _ ctx: RequestContext, _ db: ProfileDatabase, error: String?, status: Int) throws -> Response {
        let others = try app.services.databases.list().filter { $0.database.id != db.id }
        let sourceFields = Set(try app.services.databases.fields(of: db.id).map { $0.name.lowercased() })
        return try app.page("databases/copy.html", title: "Copy profiles of \(db.name)", context: ctx, nav: .databases, status: status, [
            "database": View.database(db),
            "profile_count": .string(View.count(try app.services.databases.profileCount(db.id))),
            "targets": .list(try others.map { other in
                let shared = try app.services.databases.fields(of: other.database.id).filter { sourceFields.contains($0.name.lowercased()) }.map(\.name)
                return ["id": .string(String(other.database.id)), "name": .string(other.database.name),
                        "shared": .string(shared.isEmpty ? "standard fields only" : "standard fields and " + shared.joined(separator: ", "))]
            }),
            "error": TemplateValue(error),
        ])
    }

    static func copy(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        guard let targetID = Int64(ctx.form["target"] ?? ""), let target = try app.services.databases.get(targetID), target.id != db.id else {
            return try renderCopy(app, ctx, db, error: "Choose the database to copy into.", status: 422)
        }
        let id = try app.services.tasks.enqueue(kind: CopyProfilesTask.kind, title: "Copy profiles: \(db.name) → \(target.name)",
                                                databaseID: db.id, userID: user.id, parameters: ["target_database_id": .int(target.id)])
        return Response.redirect(to: "/tasks/\(id)")
    }
}
