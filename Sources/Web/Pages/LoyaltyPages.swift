import HTTP
import Roster

/// Loyalty programs and their promo codes: GET /loyalty, POST /loyalty, GET /loyalty/:id, POST /loyalty/:id/codes,
/// POST /loyalty/:id/delete.
enum LoyaltyPages {
    static func list(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try renderList(app, ctx, input: ["name": "", "description": ""], errors: [:], status: 200)
    }

    static func renderList(_ app: WebApp, _ ctx: RequestContext, input: [String: String], errors: [String: String], status: Int) throws -> Response {
        let notices = ["deleted": "The program was deleted."]
        return try app.page("loyalty/list.html", title: "Loyalty programs", context: ctx, nav: .databases, status: status, [
            "programs": .list(try app.services.loyalty.list().map(program)),
            "section": "loyalty", "error": .null,
            "input": .dict(TemplateDict(input.mapValues { TemplateValue.string($0) })),
            "errors": View.errors(errors),
            "notice": TemplateValue(ctx.request.query["done"].flatMap { notices[$0] }),
        ])
    }

    static func program(_ p: LoyaltyProgram) -> TemplateValue {
        ["id": .string(String(p.id)), "name": .string(p.name), "description": .string(p.description),
         "free": .string(View.count(p.free)), "attached": .string(View.count(p.attached)), "activated": .string(View.count(p.activated)),
         "total": .string(View.count(p.free + p.attached + p.activated)), "created": .string(View.day(p.createdAt))]
    }

    static func create(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let input = ["name": ctx.form["name"] ?? "", "description": ctx.form["description"] ?? ""]
        do {
            let p = try app.services.loyalty.create(name: input["name"] ?? "", description: input["description"] ?? "")
            return Response.redirect(to: "/loyalty/\(p.id)")
        } catch let error as ValidationError {
            return try renderList(app, ctx, input: input, errors: error.fieldErrors, status: 422)
        }
    }

    static func load(_ app: WebApp, _ ctx: RequestContext) throws -> LoyaltyProgram {
        guard let p = try app.services.loyalty.get(try ctx.int64Param("id")) else { throw HTTPError.notFound }
        return p
    }

    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let p = try load(app, ctx)
        return try render(app, ctx, p, result: nil, error: nil, text: "", status: 200)
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, _ p: LoyaltyProgram, result: CodeImportResult?, error: String?, text: String, status: Int) throws -> Response {
        try app.page("loyalty/show.html", title: p.name, context: ctx, nav: .databases, status: status, [
            "program": program(p),
            "codes": .list(try app.services.loyalty.recentCodes(p.id).map { ["code": .string($0.code), "status": .string($0.status), "profile": .string($0.profileID ?? "")] }),
            "result": result.map { r in
                ["added": .string(View.count(r.added)), "duplicates": .string(View.count(r.duplicates)),
                 "invalid": .list(r.invalid.prefix(20).map { ["line": .int($0.line), "reason": .string($0.reason)] }),
                 "invalid_count": .string(View.count(r.invalid.count))]
            } ?? .null,
            "error": TemplateValue(error), "text": .string(text),
        ])
    }

    static func addCodes(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let p = try load(app, ctx)
        var text = ctx.form["codes"] ?? ""
        if let file = ctx.files.first(where: { $0.fieldName == "file" && !$0.bytes.isEmpty }) {
            guard let decoded = String(validating: file.bytes, as: UTF8.self) else {
                return try render(app, ctx, p, result: nil, error: "The file is not UTF-8 text.", text: text, status: 422)
            }
            text += "\n" + decoded
        }
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return try render(app, ctx, p, result: nil, error: "Paste codes, one per line, or choose a file.", text: "", status: 422)
        }
        let result = try app.services.loyalty.addCodes(to: p.id, text: text)
        return try render(app, ctx, try load(app, ctx), result: result, error: nil, text: "", status: 200)
    }

    static func delete(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireDeleter()
        let p = try load(app, ctx)
        do {
            try app.services.loyalty.delete(p.id)
        } catch let error as ValidationError {
            return try render(app, ctx, p, result: nil, error: error.fieldErrors.values.first, text: "", status: 409)
        }
        return Response.redirect(to: "/loyalty?done=deleted")
    }
}
