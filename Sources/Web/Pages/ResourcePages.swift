import HTTP
import Roster

/// Resources: GET /resources, GET /resources/new, POST /resources, GET /resources/:id/edit, POST /resources/:id,
/// POST /resources/:id/delete.
enum ResourcePages {
    static let notices = ["created": "The resource was created.", "saved": "The resource was saved.", "deleted": "The resource was deleted."]

    static func list(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let resources = try app.services.resources.list()
        return try app.page("resources/list.html", title: "Resources", context: ctx, nav: .databases, [
            "resources": .list(try resources.map { r in
                guard case .dict(var d) = View.resource(r) else { return .null }
                d["databases"] = .string(try app.services.resources.databases(using: r.id).map(\.name).joined(separator: ", "))
                return .dict(d)
            }),
            "section": "resources",
            "notice": TemplateValue(ctx.request.query["done"].flatMap { notices[$0] }),
            "error": TemplateValue(ctx.request.query["error"] == "in-use" ? "That resource is attached to a database; detach it first." : nil),
        ])
    }

    static func new(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        return try render(app, ctx, resource: nil, input: ResourceInput(name: "", channels: ["email"]), errors: [:], status: 200)
    }

    static func create(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let input = readInput(ctx)
        do {
            try app.services.resources.create(input)
        } catch let error as ValidationError {
            return try render(app, ctx, resource: nil, input: input, errors: error.fieldErrors, status: 422)
        }
        return Response.redirect(to: "/resources?done=created")
    }

    static func load(_ app: WebApp, _ ctx: RequestContext) throws -> Resource {
        guard let r = try app.services.resources.get(try ctx.int64Param("id")) else { throw HTTPError.notFound }
        return r
    }

    static func edit(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let r = try load(app, ctx)
        let input = ResourceInput(name: r.name, description: r.description, channels: r.channels.map(\.rawValue), categories: r.categories.joined(separator: "\n"),
                                  fields: r.fields.map { "\($0.name):\($0.type.rawValue)" }.joined(separator: "\n"), increasePriority: r.increasePriority,
                                  doubleOptIn: r.doubleOptIn)
        return try render(app, ctx, resource: r, input: input, errors: [:], status: 200)
    }

    static func update(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let r = try load(app, ctx)
        let input = readInput(ctx)
        do {
            try app.services.resources.update(r.id, input)
        } catch let error as ValidationError {
            return try render(app, ctx, resource: r, input: input, errors: error.fieldErrors, status: 422)
        }
        return Response.redirect(to: "/resources?done=saved")
    }

    static func delete(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireDeleter()
        let r = try load(app, ctx)
        do {
            try app.services.resources.delete(r.id)
        } catch is ValidationError {
            return Response.redirect(to: "/resources?error=in-use")
        }
        return Response.redirect(to: "/resources?done=deleted")
    }

    static func readInput(_ ctx: RequestContext) -> ResourceInput {
        ResourceInput(name: ctx.form["name"] ?? "", description: ctx.form["description"] ?? "", channels: ctx.form.all("channels"),
                      categories: ctx.form["categories"] ?? "", fields: ctx.form["fields"] ?? "", increasePriority: ctx.checkbox("increase_priority"),
                      doubleOptIn: ctx.checkbox("double_opt_in"))
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, resource: Resource?, input: ResourceInput, errors: [String: String], status: Int) throws -> Response {
        try app.page("resources/form.html", title: resource == nil ? "New resource" : "Edit \(resource!.name)", context: ctx, nav: .databases, status: status, [
            "resource": resource.map(View.resource) ?? .null,
            "action": .string(resource.map { "/resources/\($0.id)" } ?? "/resources"),
            "input": ["name": .string(input.name), "description": .string(input.description), "categories": .string(input.categories),
                      "fields": .string(input.fields), "increase_priority": .bool(input.increasePriority),
                      "double_opt_in": .bool(input.doubleOptIn)],
            "channels": .list(Channel.allCases.map { ["value": .string($0.rawValue), "label": .string($0.label), "checked": .bool(input.channels.contains($0.rawValue))] }),
            "errors": View.errors(errors),
        ])
    }
}
