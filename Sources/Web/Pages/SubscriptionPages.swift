import HTTP
import Roster

/// A profile's subscriptions: POST …/subscriptions (add), …/subscriptions/:sub (status and priority),
/// …/subscriptions/:sub/delete and …/restore.
enum SubscriptionPages {
    /// `resources`: the database's attached resources (loaded once per page). A subscription to a resource that
    /// was detached later is still listed, under its id.
    static func groups(_ app: WebApp, _ db: ProfileDatabase, _ p: Profile, resources attached: [Resource]) throws -> TemplateValue {
        let subs = try app.services.subscriptions.list(databaseID: db.id, profileRowID: p.rowID)
        let suppressed = subs.isEmpty ? [:] : try app.services.suppressions.suppressed(databaseID: db.id, profileRowID: p.rowID)
        var resources: [(id: Int64, name: String)] = attached.map { ($0.id, $0.name) }
        for id in Set(subs.map(\.resourceID)) where !resources.contains(where: { $0.id == id }) {
            resources.append((id, try app.services.resources.get(id)?.name ?? "Resource \(id)"))
        }
        return .list(resources.compactMap { r -> TemplateValue? in
            let mine = subs.filter { $0.resourceID == r.id }
            if mine.isEmpty { return nil }
            return ["name": .string(r.name), "subscriptions": .list(mine.map { s in
                ["id": .string(String(s.id)), "channel": .string(s.channel.label), "contact": .string(s.contact), "provider": .string(s.provider),
                 "status": .string(s.status.label), "status_name": .string(s.status.name), "priority": .string(String(s.priority)),
                 "unsafe": .bool(EventRules.unsafe(s.status)), "suppressed": TemplateValue(suppressed[s.contact]),
                 "categories": .string(s.categories.joined(separator: ", ")), "deleted": .bool(s.deleted),
                 "fields": .string(s.fields.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.stringValue ?? $0.value.canonical)" }.joined(separator: "; ")),
                 "statuses": .list(ProfileStatus.allCases.map { ["value": .string($0.name), "label": .string($0.label), "selected": .bool($0 == s.status)] })]
            })]
        })
    }

    /// The add-subscription form. A new form offers the profile's own email and phones as the contact (the email
    /// filled in), so nobody retypes what the profile already holds.
    static func addForm(_ app: WebApp, _ db: ProfileDatabase, input: SubscriptionInput?, errors: [String: String], resources: [Resource]? = nil,
                        contacts: [String] = []) throws -> TemplateValue {
        let attached = try resources ?? app.services.databases.attachedResources(db.id)
        return [
            "contact_options": .list(contacts.map { .string($0) }),
            "options": .list(attached.flatMap { r in
                r.channels.map { c in
                    let value = "\(r.id):\(c.rawValue)"
                    return ["value": .string(value), "label": .string("\(r.name) — \(c.label)"),
                            "selected": .bool(input.map { "\($0.resourceID):\($0.channel)" == value } ?? false)]
                }
            }),
            "categories": .string(attached.map { "\($0.name): \($0.categories.isEmpty ? "none" : $0.categories.joined(separator: ", "))" }.joined(separator: "; ")),
            "contact": .string(input?.contact ?? contacts.first ?? ""), "provider": .string(input?.provider ?? ""),
            "priority": .string(input?.priority.map(String.init) ?? ""), "chosen_categories": .string(input?.categories.joined(separator: ", ") ?? ""),
            "statuses": .list(ProfileStatus.allCases.map { ["value": .string($0.name), "label": .string($0.label), "selected": .bool($0.name == (input?.status ?? "subscribed"))] }),
            "errors": View.errors(errors),
            "has_resources": .bool(!attached.isEmpty),
        ]
    }

    static func add(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        let p = try ProfilePages.load(app, ctx, db)
        let target = (ctx.form["target"] ?? "").split(separator: ":")
        let priorityText = (ctx.form["priority"] ?? "").trimmingCharacters(in: .whitespaces)
        let input = SubscriptionInput(resourceID: target.count == 2 ? Int64(target[0]) ?? 0 : 0, channel: target.count == 2 ? String(target[1]) : "",
                                      contact: ctx.form["contact"] ?? "", provider: ctx.form["provider"] ?? "", status: ctx.form["status"] ?? "",
                                      priority: Int(priorityText),
                                      categories: (ctx.form["categories"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        var errors: [String: String] = [:]
        if !priorityText.isEmpty && Int(priorityText) == nil { errors["priority"] = "A priority is a whole number." }
        if errors.isEmpty {
            do {
                try app.services.subscriptions.add(databaseID: db.id, profileRowID: p.rowID, input, actor: user.id)
                return Response.redirect(to: "/databases/\(db.id)/profiles/\(p.profileID)?done=subscription-added#subscriptions")
            } catch let error as ValidationError {
                errors = error.fieldErrors
            }
        }
        var response = try ProfilePages.show(app, ctx, addForm: try addForm(app, db, input: input, errors: errors, contacts: p.contacts))
        response.status = 422
        return response
    }

    static func update(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        let p = try ProfilePages.load(app, ctx, db)
        guard let priority = Int(ctx.form["priority"] ?? "") else { throw HTTPError(422, "Priority missing", "A priority is a whole number from 0.") }
        do {
            try app.services.subscriptions.update(databaseID: db.id, profileRowID: p.rowID, subscriptionID: try ctx.int64Param("sub"),
                                                  status: ctx.form["status"] ?? "", priority: priority,
                                                  includeUnsafe: ctx.checkbox("include_unsafe"), actor: user.id)
        } catch let error as ValidationError {
            throw HTTPError(422, "The subscription was not changed", error.fieldErrors.values.joined(separator: " "))
        }
        return Response.redirect(to: "/databases/\(db.id)/profiles/\(p.profileID)?done=subscription-changed#subscriptions")
    }

    static func setDeleted(_ app: WebApp, _ ctx: RequestContext, deleted: Bool) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        let p = try ProfilePages.load(app, ctx, db)
        do {
            try app.services.subscriptions.setDeleted(databaseID: db.id, profileRowID: p.rowID, subscriptionID: try ctx.int64Param("sub"), deleted: deleted, actor: user.id)
        } catch is ValidationError {
            throw HTTPError.notFound
        }
        return Response.redirect(to: "/databases/\(db.id)/profiles/\(p.profileID)?done=subscription-\(deleted ? "deleted" : "restored")#subscriptions")
    }
}
