import Foundation
import HTTP
import Roster

/// Profiles of a database: the list (GET /databases/:id/profiles), a new profile, the profile page, its edit
/// form with conflict detection, and deletion (admins).
enum ProfilePages {
    static func list(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let db = try ctx.database(app)
        var query = ProfileQuery()
        query.fields = ["_fname", "_lname"]
        query.search = String((ctx.request.query["q"] ?? "").prefix(200))
        query.status = ctx.request.query["status"].flatMap { $0.isEmpty ? nil : ProfileStatus(text: $0) }
        query.sort = ProfileQuery.Sort(rawValue: ctx.request.query["sort"] ?? "") ?? .created
        if let after = ctx.request.query["after"] {
            let parts = after.split(separator: "-").compactMap { Int64($0) }
            if parts.count == 2 { query.after = (parts[0], parts[1]) }
        }
        let page = try app.services.profiles.list(databaseID: db.id, query)
        let total = try app.services.profiles.count(databaseID: db.id, search: query.search, status: query.status)
        var nextLink: String?
        if let next = page.next {
            var q = FormData()
            if !query.search.isEmpty { q.append("q", query.search) }
            if let s = query.status { q.append("status", s.name) }
            q.append("sort", query.sort.rawValue)
            q.append("after", "\(next.key)-\(next.id)")
            nextLink = "/databases/\(db.id)/profiles?" + q.encoded
        }
        return try app.page("profiles/list.html", title: "Profiles of \(db.name)", context: ctx, nav: .databases, [
            "database": View.database(db),
            "profiles": .list(page.profiles.map { p in
                ["id": .string(p.profileID), "email": .string(p.email), "name": .string([p.values["_fname"] ?? "", p.values["_lname"] ?? ""].joined(separator: " ").trimmingCharacters(in: .whitespaces)),
                 "status": .string(p.status.label), "status_name": .string(p.status.name), "created": .string(View.day(p.createdAt)),
                 "activity": .string(View.day(p.lastInteractionAt))]
            }),
            "q": .string(query.search),
            "statuses": .list(ProfileStatus.allCases.map { ["value": .string($0.name), "label": .string($0.label), "selected": .bool($0 == query.status)] }),
            "sort_activity": .bool(query.sort == .activity),
            "total": .string(View.count(total)), "total_text": .string(View.counted(total, "matching profile")),
            "next": TemplateValue(nextLink),
            "is_first_page": .bool(query.after == nil),
            "first_link": .string("/databases/\(db.id)/profiles"),
        ])
    }

    static func load(_ app: WebApp, _ ctx: RequestContext, _ db: ProfileDatabase) throws -> Profile {
        guard let p = try app.services.profiles.get(databaseID: db.id, profileID: ctx.param("profile")) else { throw HTTPError.notFound }
        return p
    }

    /// One field as the profile's page and form show it, standard or the database's own.
    struct FieldRow {
        let key: String
        let label: String
        let kind: StandardField.Kind
        let options: [String]
        let isSelect: Bool
        let isTextarea: Bool
    }

    /// The standard fields by group, in the order the page shows them: fixed, so built once.
    static let standardGroups: [(group: StandardField.Group, rows: [FieldRow])] =
        StandardField.Group.allCases.map { group in
            (group, StandardField.all.filter { $0.group == group }.map {
                FieldRow(key: $0.key, label: $0.label, kind: $0.kind, options: $0.options,
                         isSelect: !$0.options.isEmpty, isTextarea: false)
            })
        }

    /// The fields grouped as the profile page and form show them (standard groups, then "Additional fields"), each row
    /// made into a view model by `row`.
    static func groups(_ app: WebApp, _ db: ProfileDatabase,
                       _ row: (FieldRow) -> TemplateValue) throws -> TemplateValue {
        var groups: [TemplateValue] = standardGroups.map { group in
            ["id": .string(group.group.rawValue), "label": .string(group.group.label),
             "fields": .list(group.rows.map(row))]
        }
        let custom = try app.services.databases.fields(of: db.id).map { field in
            FieldRow(key: field.name, label: field.name, kind: .typed(field.type),
                     options: field.type == .boolean ? ["true", "false"] : field.options,
                     isSelect: field.type == .enum || field.type == .boolean,
                     isTextarea: field.type == .object || field.type == .array)
        }
        groups.append(["id": "additional", "label": "Additional fields", "fields": .list(custom.map(row))])
        return .list(groups)
    }

    /// The form rows with typed values, input kinds and errors.
    static func formGroups(_ app: WebApp, _ db: ProfileDatabase, values: [String: String],
                           errors: [String: String]) throws -> TemplateValue {
        try groups(app, db) { field in
            let (inputType, hint) = inputKind(field.kind)
            let value = values[field.key]
            return ["key": .string(field.key), "label": .string(field.label), "value": .string(value ?? ""),
                    "input": .string(inputType), "hint": .string(hint), "error": TemplateValue(errors[field.key]),
                    "options": .list(field.options.map { ["value": .string($0), "selected": .bool($0 == value)] }),
                    "is_select": .bool(field.isSelect),
                    "is_textarea": .bool(field.isTextarea)]
        }
    }

    /// The rows the profile page shows: label, key and value only (the page has no inputs to describe).
    static func showGroups(_ app: WebApp, _ db: ProfileDatabase, values: [String: String]) throws -> TemplateValue {
        try groups(app, db) { field in
            ["key": .string(field.key), "label": .string(field.label), "value": .string(values[field.key] ?? "")]
        }
    }

    static func inputKind(_ kind: StandardField.Kind) -> (String, String) {
        switch kind {
        case .email: return ("email", "")
        case .phones: return ("text", "Several numbers separated by commas, e.g. +79000000000")
        case .typed(let type):
            switch type {
            case .number: return ("text", "Whole number")
            case .float: return ("text", "Number with a dot, e.g. 12.5")
            case .date: return ("text", "2019-08-22 or 2019-08-22T10:30:00Z")
            case .ip: return ("text", "IPv4, e.g. 192.168.0.1")
            case .tags: return ("text", "Separated by , | or ;")
            case .object: return ("text", "JSON object")
            case .array: return ("text", "JSON array of objects")
            default: return ("text", "")
            }
        }
    }

    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try show(app, ctx, addForm: nil)
    }

    /// Notices after a redirect, picked by key (no text from the URL is ever shown).
    static let notices: [String: String] = [
        "saved": "The profile was saved.",
        "created": "The profile was created.",
        "subscription-added": "The subscription was added.",
        "subscription-changed": "The subscription was changed.",
        "subscription-deleted": "The subscription was marked deleted. Restore it from the list below.",
        "subscription-restored": "The subscription was restored.",
    ]

    /// The profile page; `addForm` carries a refused add-subscription form back with its errors.
    static func show(_ app: WebApp, _ ctx: RequestContext, addForm: TemplateValue?) throws -> Response {
        let db = try ctx.database(app)
        let p = try load(app, ctx, db)
        // The history period: one of the offered ones (anything else from the URL is the default).
        let days = Int(ctx.request.query["days"] ?? "").flatMap { [7, 30, 365, 0].contains($0) ? $0 : nil } ?? 7
        let type = ctx.request.query["type"].flatMap { HistoryEvent.all.contains($0) ? $0 : nil }
        let since = days > 0 ? Int64(Date().timeIntervalSince1970) - Int64(days) * 86_400 : nil
        let history = try app.services.profiles.history(databaseID: db.id, rowID: p.rowID, type: type, since: since)
        // Names for the events in words (resources, programs, field labels): read only when there are events.
        let words = history.isEmpty ? nil : try HistoryText(app: app)
        let attached = try app.services.databases.attachedResources(db.id)
        var values = try ProfileExtraPages.section(app, db, p)
        values["error"] = TemplateValue(ctx.request.query["problem"].flatMap { ProfileExtraPages.problems[$0] })
        // Static segments: the profile's, and the others of this database it can be added to.
        let memberOf = try app.services.segments.staticSegments(databaseID: db.id, profileRowID: p.rowID)
        let statics = try app.services.segments.list(databaseID: db.id).filter { s in s.kind == .static && !memberOf.contains { $0.id == s.id } }
        values["member_of"] = .list(memberOf.map { ["id": .string(String($0.id)), "name": .string($0.name)] })
        values["joinable_segments"] = .list(statics.map { ["id": .string(String($0.id)), "name": .string($0.name)] })
        return try app.page("profiles/show.html", title: p.email, context: ctx, nav: .databases, values.merging([
            "database": View.database(db),
            "subscriptions": try SubscriptionPages.groups(app, db, p, resources: attached),
            "add_subscription": try addForm ?? SubscriptionPages.addForm(app, db, input: nil, errors: [:], resources: attached,
                                                                                   contacts: p.contacts),
            "profile": profileValue(p),
            // Acting through the link is acting as the subscriber: only for those who may change the profile anyway.
            "manager_url": try ctx.user?.role.canEdit == true
                ? .string(app.services.links.managerURL(databaseID: db.id, profileID: p.profileID)) : .null,
            "groups": try showGroups(app, db, values: p.values),
            "history": .list(history.map { ["time": .string(View.time($0.at)), "type": .string(HistoryText.typeLabel($0.type)),
                                              "actor": .string($0.actorEmail ?? "—"), "details": .string(words?.describe(type: $0.type, details: $0.details) ?? "")] }),
            "history_types": .list(historyTypes.map { ["value": .string($0), "label": .string(HistoryText.typeLabel($0)), "selected": .bool($0 == type)] }),
            "periods": .list([(7, "Last 7 days"), (30, "Last 30 days"), (365, "Last year"), (0, "All time")].map {
                ["value": .int($0.0), "label": .string($0.1), "selected": .bool($0.0 == days)]
            }),
            "notice": TemplateValue(ctx.request.query["done"].flatMap { ProfilePages.notices[$0] }),
        ]))
    }

    /// Every type the history can hold (one list, in the domain).
    static let historyTypes = HistoryEvent.all

    static func profileValue(_ p: Profile) -> TemplateValue {
        ["id": .string(p.profileID), "email": .string(p.email), "md5": .string(p.md5), "xxh": .string(p.xxh),
         "status": .string(p.status.label), "status_name": .string(p.status.name), "version": .string(String(p.version)),
         "created": .string(View.time(p.createdAt)), "updated": .string(View.time(p.updatedAt)), "activity": .string(View.time(p.lastInteractionAt))]
    }

    static func statuses(_ selected: String) -> TemplateValue {
        .list(ProfileStatus.allCases.map { ["value": .string($0.name), "label": .string($0.label), "selected": .bool($0.name == selected)] })
    }

    static func readInput(_ ctx: RequestContext, _ app: WebApp, _ db: ProfileDatabase) throws -> ProfileInput {
        var values: [String: String] = [:]
        for field in StandardField.all { values[field.key] = ctx.form["f_\(field.key)"] ?? "" }
        for field in try app.services.databases.fields(of: db.id) { values[field.name] = ctx.form["f_\(field.name)"] ?? "" }
        return ProfileInput(values: values, status: ctx.form["status"] ?? "")
    }

    static func renderForm(_ app: WebApp, _ ctx: RequestContext, _ db: ProfileDatabase, profile: Profile?, input: ProfileInput,
                           errors: [String: String], conflict: Profile?, status: Int) throws -> Response {
        try app.page("profiles/form.html", title: profile.map { "Edit \($0.email)" } ?? "New profile", context: ctx, nav: .databases, status: status, [
            "database": View.database(db),
            "profile": profile.map(profileValue) ?? .null,
            "action": .string(profile.map { "/databases/\(db.id)/profiles/\($0.profileID)" } ?? "/databases/\(db.id)/profiles"),
            "version": .string(conflict.map { String($0.version) } ?? profile.map { String($0.version) } ?? ""),
            "groups": try formGroups(app, db, values: input.values, errors: errors),
            "statuses": statuses(input.status),
            "status_error": TemplateValue(errors["status"]),
            "conflict": conflict.map { current in
                .list(current.values.keys.sorted().compactMap { key -> TemplateValue? in
                    let theirs = current.values[key] ?? "", mine = input.values[key] ?? ""
                    return theirs == mine ? nil : ["field": .string(key), "theirs": .string(theirs), "mine": .string(mine)]
                })
            } ?? .null,
        ])
    }

    static func new(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        return try renderForm(app, ctx, db, profile: nil, input: ProfileInput(values: [:]), errors: [:], conflict: nil, status: 200)
    }

    static func create(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        let input = try readInput(ctx, app, db)
        do {
            let p = try app.services.profiles.create(databaseID: db.id, input, actor: user.id)
            return Response.redirect(to: "/databases/\(db.id)/profiles/\(p.profileID)?done=created")
        } catch let error as ValidationError {
            return try renderForm(app, ctx, db, profile: nil, input: input, errors: error.fieldErrors, conflict: nil, status: 422)
        }
    }

    static func edit(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        let p = try load(app, ctx, db)
        return try renderForm(app, ctx, db, profile: p, input: ProfileInput(values: p.values, status: p.status.name), errors: [:], conflict: nil, status: 200)
    }

    static func update(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        let p = try load(app, ctx, db)
        let input = try readInput(ctx, app, db)
        guard let version = Int64(ctx.form["version"] ?? "") else { throw HTTPError.badRequest("The form lacks the profile's version.") }
        do {
            try app.services.profiles.update(databaseID: db.id, profileID: p.profileID, input, expectedVersion: version, actor: user.id)
        } catch let error as ValidationError {
            return try renderForm(app, ctx, db, profile: p, input: input, errors: error.fieldErrors, conflict: nil, status: 422)
        } catch let conflict as EditConflict {
            return try renderForm(app, ctx, db, profile: conflict.current, input: input, errors: [:], conflict: conflict.current, status: 409)
        }
        return Response.redirect(to: "/databases/\(db.id)/profiles/\(p.profileID)?done=saved")
    }

    static func delete(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireDeleter()
        let db = try ctx.database(app)
        let p = try load(app, ctx, db)
        try app.services.profiles.delete(databaseID: db.id, profileID: p.profileID)
        return Response.redirect(to: "/databases/\(db.id)/profiles")
    }
}
