import HTTP
import Roster

/// Custom fields: GET /databases/:id/fields/new, POST /databases/:id/fields,
/// GET /databases/:id/fields/:field/edit, POST /databases/:id/fields/:field,
/// GET and POST /databases/:id/fields/:field/delete.
enum FieldPages {
    static func new(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        return try render(app, ctx, db, field: nil, input: FieldInput(name: "", type: "line"), errors: [:], status: 200)
    }

    static func create(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        let input = readInput(ctx)
        do {
            try app.services.databases.addField(to: db.id, input)
        } catch let error as ValidationError {
            return try render(app, ctx, db, field: nil, input: input, errors: error.fieldErrors, status: 422)
        }
        return Response.redirect(to: "/databases/\(db.id)?done=field-added#fields")
    }

    static func loadField(_ app: WebApp, _ ctx: RequestContext, _ db: ProfileDatabase) throws -> CustomField {
        guard let field = try app.services.databases.field(try ctx.int64Param("field")), field.databaseID == db.id else { throw HTTPError.notFound }
        return field
    }

    static func edit(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        let field = try loadField(app, ctx, db)
        let input = FieldInput(name: field.name, type: field.type.rawValue, options: field.options.joined(separator: ", "), description: field.description,
                               defaultValue: field.defaultValue ?? "", required: field.required, showInSM: field.showInSM, indexed: field.indexed)
        return try render(app, ctx, db, field: field, input: input, errors: [:], status: 200)
    }

    static func update(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        let field = try loadField(app, ctx, db)
        let input = readInput(ctx)
        do {
            try app.services.databases.updateField(field.id, input)
        } catch let error as ValidationError {
            return try render(app, ctx, db, field: field, input: input, errors: error.fieldErrors, status: 422)
        }
        return Response.redirect(to: "/databases/\(db.id)?done=field-saved#fields")
    }

    static func confirmDelete(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireDeleter()
        let db = try ctx.database(app)
        let field = try loadField(app, ctx, db)
        return try app.page("databases/field_delete.html", title: "Delete field \(field.name)", context: ctx, nav: .databases, [
            "database": View.database(db), "field": View.field(field),
            "values": .string(View.count(try app.services.databases.valueCount(field))),
        ])
    }

    static func delete(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireDeleter()
        let db = try ctx.database(app)
        let field = try loadField(app, ctx, db)
        try app.services.databases.deleteField(field.id)
        return Response.redirect(to: "/databases/\(db.id)?done=field-deleted#fields")
    }

    static func readInput(_ ctx: RequestContext) -> FieldInput {
        FieldInput(name: ctx.form["name"] ?? "", type: ctx.form["type"] ?? "", options: ctx.form["options"] ?? "",
                   description: ctx.form["description"] ?? "", defaultValue: ctx.form["default_value"] ?? "",
                   required: ctx.checkbox("required"), showInSM: ctx.checkbox("show_in_sm"), indexed: ctx.checkbox("indexed"))
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, _ db: ProfileDatabase, field: CustomField?, input: FieldInput,
                       errors: [String: String], status: Int) throws -> Response {
        try app.page("databases/field_form.html", title: field == nil ? "New field in \(db.name)" : "Field \(field!.name)", context: ctx,
                     nav: .databases, status: status, [
            "database": View.database(db),
            "field": field.map(View.field) ?? .null,
            "action": .string(field.map { "/databases/\(db.id)/fields/\($0.id)" } ?? "/databases/\(db.id)/fields"),
            "input": ["name": .string(input.name), "options": .string(input.options), "description": .string(input.description),
                      "default_value": .string(input.defaultValue), "required": .bool(input.required), "show_in_sm": .bool(input.showInSM),
                      "indexed": .bool(input.indexed)],
            "types": View.typeOptions(selected: input.type),
            "errors": View.errors(errors),
        ])
    }
}
