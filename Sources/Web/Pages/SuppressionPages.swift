import Foundation
import HTTP
import Roster

/// Settings → Suppression lists: lists of emails, phones and whole email domains that no subscription may be created
/// for or made subscribed to, global or attached to chosen databases. Editors fill them; admins make and delete them.
enum SuppressionPages {
    static let path = "/settings/suppression-lists"
    /// A pasted or uploaded list is read up to this size (about 100,000 lines).
    static let maximumUploadBytes = 8 << 20

    static let notices: [String: String] = [
        "created": "The list was created.",
        "saved": "The list was saved.",
        "deleted": "The list was deleted.",
        "removed": "The entry was removed: that contact can be subscribed again.",
    ]

    static func index(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try renderIndex(app, ctx, input: SuppressionListInput(name: ""), errors: [:], status: 200)
    }

    static func renderIndex(_ app: WebApp, _ ctx: RequestContext, input: SuppressionListInput, errors: [String: String],
                            status: Int) throws -> Response {
        let names = try databaseNames(app)
        return try app.page("settings/suppression_lists.html", title: "Suppression lists", context: ctx, nav: .settings, status: status, [
            "lists": .list(try app.services.suppressions.lists().map { l in
                ["id": .string(String(l.id)), "name": .string(l.name), "entries": .string(View.count(l.entries)),
                 "scope": .string(l.global ? "every database" : l.databaseIDs.isEmpty ? "no database yet"
                    : l.databaseIDs.map { names[$0] ?? "#\($0)" }.joined(separator: ", ")),
                 "auto": .bool(l.autoBounces)]
            }),
            "form": formValues(app, input, names: names),
            "errors": View.errors(errors),
            "notice": TemplateValue(ctx.request.query["done"].flatMap { notices[$0] }),
        ])
    }

    static func create(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try requireListManager(ctx)
        let input = readInput(ctx)
        do {
            let list = try app.services.suppressions.createList(input)
            return Response.redirect(to: "\(path)/\(list.id)?done=created")
        } catch let error as ValidationError {
            return try renderIndex(app, ctx, input: input, errors: error.fieldErrors, status: 422)
        }
    }

    /// Lists are changed only by those `Role.canManageSuppressionLists` allows (the database form asks the same).
    static func requireListManager(_ ctx: RequestContext) throws {
        guard try ctx.requireUser().role.canManageSuppressionLists else { throw HTTPError.forbidden }
    }

    static func load(_ app: WebApp, _ ctx: RequestContext) throws -> SuppressionList {
        guard let list = try app.services.suppressions.list(id: try ctx.int64Param("id")) else { throw HTTPError.notFound }
        return list
    }

    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let list = try load(app, ctx)
        return try render(app, ctx, list, input: nil, errors: [:], added: nil, status: 200)
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, _ list: SuppressionList, input: SuppressionListInput?,
                       errors: [String: String], added: Suppressions.Added?, status: Int) throws -> Response {
        let search = String((ctx.request.query["q"] ?? "").prefix(100))
        let after = ctx.request.query["after"].flatMap { Int64($0) } ?? 0
        let entries = try app.services.suppressions.entries(listID: list.id, search: search, after: after, limit: 100)
        let settings = input ?? SuppressionListInput(name: list.name, global: list.global, autoBounces: list.autoBounces,
                                                     databaseIDs: list.databaseIDs)
        return try app.page("settings/suppression_list.html", title: list.name, context: ctx, nav: .settings, status: status, [
            "list": ["id": .string(String(list.id)), "name": .string(list.name), "entries": .string(View.count(list.entries))],
            "form": formValues(app, settings, names: try databaseNames(app)),
            "entries": .list(entries.map { e in
                ["id": .string(String(e.id)), "kind": .string(e.kind.rawValue), "value": .string(e.value), "reason": .string(e.reason),
                 "added": .string(View.time(e.createdAt))]
            }),
            "next": entries.count == 100 ? .string("?q=\(FormData.encode(search))&after=\(entries.last?.id ?? 0)") : .null,
            "search": .string(search),
            "added": added.map { a in
                ["added": .string(View.count(a.added)), "already": .string(View.count(a.already)),
                 "refused": .string(View.count(a.refusedCount)),
                 "lines": .list(a.refused.map { ["line": .int($0.line), "text": .string($0.text), "reason": .string($0.reason)] })]
            } ?? .null,
            "errors": View.errors(errors),
            "notice": TemplateValue(ctx.request.query["done"].flatMap { notices[$0] }),
        ])
    }

    static func update(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try requireListManager(ctx)
        let list = try load(app, ctx)
        let input = readInput(ctx)
        do {
            try app.services.suppressions.updateList(list.id, input)
            return Response.redirect(to: "\(path)/\(list.id)?done=saved")
        } catch let error as ValidationError {
            return try render(app, ctx, list, input: input, errors: error.fieldErrors, added: nil, status: 422)
        }
    }

    /// Entries typed (one per line) or a file (its first column).
    static func addEntries(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let list = try load(app, ctx)
        var text = ctx.form["entries"] ?? ""
        var reason = "added by hand"
        if let file = ctx.files.first(where: { $0.fieldName == "file" && $0.size > 0 }) {
            guard file.size <= maximumUploadBytes else {
                return try render(app, ctx, list, input: nil, errors: ["file": "A file has at most 8 MB here."], added: nil, status: 422)
            }
            let bytes = try file.storedPath.map { try Data(contentsOf: URL(fileURLWithPath: $0)) } ?? Data(file.bytes)
            guard let decoded = String(data: bytes, encoding: .utf8) else {
                return try render(app, ctx, list, input: nil, errors: ["file": "The file is not UTF-8 text."], added: nil, status: 422)
            }
            text = decoded
            reason = "from \(String(file.filename.prefix(100)))"
        }
        do {
            let added = try app.services.suppressions.add(listID: list.id, text: text, reason: reason)
            let fresh = try load(app, ctx)
            return try render(app, ctx, fresh, input: nil, errors: [:], added: added, status: added.refusedCount > 0 ? 422 : 200)
        } catch let error as ValidationError {
            return try render(app, ctx, list, input: nil, errors: error.fieldErrors, added: nil, status: 422)
        }
    }

    static func removeEntry(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let list = try load(app, ctx)
        do {
            try app.services.suppressions.remove(listID: list.id, entryID: try ctx.int64Param("entry"))
        } catch is ValidationError {
            throw HTTPError.notFound
        }
        return Response.redirect(to: "\(path)/\(list.id)?done=removed")
    }

    static func delete(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try requireListManager(ctx)
        let list = try load(app, ctx)
        try app.services.suppressions.deleteList(list.id)
        return Response.redirect(to: "\(path)?done=deleted")
    }

    static func readInput(_ ctx: RequestContext) -> SuppressionListInput {
        SuppressionListInput(name: ctx.form["name"] ?? "", global: ctx.form["scope"] == "global", autoBounces: ctx.checkbox("auto_bounces"),
                             databaseIDs: ctx.form.all("databases").prefix(1000).compactMap { Int64($0) })
    }

    static func databaseNames(_ app: WebApp) throws -> [Int64: String] {
        Dictionary(try app.services.databases.list().map { ($0.database.id, $0.database.name) }, uniquingKeysWith: { a, _ in a })
    }

    static func formValues(_ app: WebApp, _ input: SuppressionListInput, names: [Int64: String]) -> TemplateValue {
        ["name": .string(input.name), "global": .bool(input.global), "auto": .bool(input.autoBounces),
         "databases": .list(names.sorted { $0.value < $1.value }.map { id, name in
             ["id": .string(String(id)), "name": .string(name), "checked": .bool(input.databaseIDs.contains(id))]
         })]
    }
}
