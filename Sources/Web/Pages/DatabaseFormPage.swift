import HTTP
import Roster

/// GET /databases/new, POST /databases, GET /databases/:id/edit, POST /databases/:id: a database's settings.
enum DatabaseFormPage {
    static func new(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        return try render(app, ctx, database: nil, input: DatabaseInput(name: ""), errors: [:], status: 200)
    }

    static func create(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let input = readInput(ctx)
        do {
            let db = try app.services.databases.create(input)
            return Response.redirect(to: "/databases/\(db.id)?done=created")
        } catch let error as ValidationError {
            return try render(app, ctx, database: nil, input: input, errors: error.fieldErrors, status: 422)
        }
    }

    static func edit(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        let attached = try app.services.databases.attachedResources(db.id).map(\.id)
        var input = DatabaseInput(name: db.name, description: db.description, tags: db.tags.joined(separator: ", "),
                                  smTitle: db.smTitle, smLanguage: db.smLanguage, smEditFields: db.smEditFields,
                                  resourceIDs: attached)
        input.suppressionListIDs = try app.services.suppressions.attached(databaseID: db.id)
        return try render(app, ctx, database: db, input: input, errors: [:], status: 200)
    }

    static func update(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        let input = readInput(ctx)
        do {
            try app.services.databases.update(db.id, input)
            return Response.redirect(to: "/databases/\(db.id)?done=saved")
        } catch let error as ValidationError {
            return try render(app, ctx, database: db, input: input, errors: error.fieldErrors, status: 422)
        }
    }

    static func readInput(_ ctx: RequestContext) -> DatabaseInput {
        DatabaseInput(name: ctx.form["name"] ?? "", description: ctx.form["description"] ?? "", tags: ctx.form["tags"] ?? "",
                      smTitle: ctx.form["sm_title"] ?? "", smLanguage: ctx.form["sm_language"] ?? "en",
                      smEditFields: ctx.form["sm_edit_fields"] == "1",
                      resourceIDs: ctx.form.all("resources").compactMap { Int64($0) },
                      // From anyone else the form's lists are ignored: nil leaves the database's lists as they are.
                      suppressionListIDs: mayChangeLists(ctx)
                          ? ctx.form.all("suppression_lists").compactMap { Int64($0) } : nil)
    }

    static func mayChangeLists(_ ctx: RequestContext) -> Bool {
        ctx.user?.role.canManageSuppressionLists == true
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, database: ProfileDatabase?, input: DatabaseInput,
                       errors: [String: String], status: Int) throws -> Response {
        let resources = try app.services.resources.list()
        let checkedLists = try input.suppressionListIDs
            ?? database.map { try app.services.suppressions.attached(databaseID: $0.id) } ?? []
        return try app.page("databases/form.html", title: database == nil ? "New database" : "Edit \(database!.name)", context: ctx,
                            nav: .databases, status: status, [
            "database": database.map(View.database) ?? .null,
            "action": .string(database.map { "/databases/\($0.id)" } ?? "/databases"),
            "input": [
                "name": .string(input.name), "description": .string(input.description), "tags": .string(input.tags),
                "sm_title": .string(input.smTitle), "sm_edit_fields": .bool(input.smEditFields),
            ],
            "languages": .list(Databases.languages.map { ["code": .string($0.code), "label": .string($0.label), "selected": .bool($0.code == input.smLanguage)] }),
            "resources": .list(resources.map { r in
                ["id": .string(String(r.id)), "name": .string(r.name), "channels": .string(r.channels.map(\.label).joined(separator: ", ")),
                 "checked": .bool(input.resourceIDs.contains(r.id))]
            }),
            "suppression_lists": .list(try app.services.suppressions.lists().filter { !$0.global }.map { l in
                ["id": .string(String(l.id)), "name": .string(l.name), "checked": .bool(checkedLists.contains(l.id))]
            }),
            "lists_editable": .bool(mayChangeLists(ctx)),
            "errors": View.errors(errors),
        ])
    }
}
