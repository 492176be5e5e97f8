import HTTP
import Roster

/// Segments: GET /segments (list and "new" form), GET /segments/new, POST /segments/new (the builder's round
/// trips and saving), GET /segments/:id (counts and members), GET /segments/:id/edit, POST /segments/:id,
/// POST /segments/:id/delete, POST /segments/:id/copy (into a static segment), POST /segments/:id/members/:row/remove,
/// POST /segments/:id/export.
enum SegmentsPage {
    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let databases = try app.services.databases.list().map(\.database)
        let names = Dictionary(databases.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let segments = try app.services.segments.list()
        return try app.page("segments/list.html", title: "Segments", context: ctx, nav: .segments, [
            "segments": .list(segments.map { segment in
                let counts = app.services.segments.counts(segment, cached: true)
                return ["id": .string(String(segment.id)), "name": .string(segment.name), "kind": .string(segment.kind.label),
                        "database": .string(names[segment.databaseID] ?? "—"), "database_id": .string(String(segment.databaseID)),
                        "count": .string((try? counts.get()).map { View.count($0.selected) } ?? "—"),
                        "problem": .bool((try? counts.get()) == nil)]
            }),
            "databases": .list(databases.map { ["id": .string(String($0.id)), "name": .string($0.name)] }),
            "has_databases": .bool(!databases.isEmpty),
        ])
    }

    static func load(_ app: WebApp, _ ctx: RequestContext) throws -> Segment {
        guard let segment = try app.services.segments.get(try ctx.int64Param("id")) else { throw HTTPError.notFound }
        return segment
    }

    // MARK: The builder

    static func new(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        guard let databaseID = Int64(ctx.request.query["database"] ?? ""), let db = try app.services.databases.get(databaseID) else {
            throw HTTPError.badRequest("Choose a database for the segment.")
        }
        let kind = SegmentKind(rawValue: ctx.request.query["kind"] ?? "") ?? .dynamic
        // A new segment starts with no rule: it selects the whole database until a rule is added, and the count says
        // so. (A preset rule narrowed new segments without anyone noticing.)
        let start = Selection(rules: .group(.and, []))
        return try builder(app, ctx, db, segment: nil, name: "", kind: kind, selection: start, errors: [:], status: 200)
    }

    static func builder(_ app: WebApp, _ ctx: RequestContext, _ db: ProfileDatabase, segment: Segment?, name: String, kind: SegmentKind,
                        selection: Selection, errors: [String: String], status: Int, countsWanted: Bool = true) throws -> Response {
        let context = try app.services.segments.context(databaseID: db.id)
        let statics = try app.services.segments.list(databaseID: db.id).filter { $0.kind == .static && $0.id != segment?.id }
        var counts: SelectionCounts?
        var ruleErrors = errors
        if kind == .dynamic && countsWanted {
            do { counts = try app.services.segments.counts(databaseID: db.id, selection) }
            catch let error as ValidationError { ruleErrors.merge(error.fieldErrors) { a, _ in a } }
        }
        let action = segment.map { "/segments/\($0.id)" } ?? "/segments/new"
        let title = segment == nil ? "New \(kind.label.lowercased()) segment in \(db.name)" : "Edit \(segment!.name)"
        return try app.page("segments/builder.html", title: title, context: ctx, nav: .segments, status: status, [
            "database": View.database(db), "action": .string(action), "name": .string(name),
            "kind": .string(kind.rawValue), "is_dynamic": .bool(kind == .dynamic), "segment": segment.map { ["id": .string(String($0.id))] } ?? .null,
            "rows": .list(SegmentBuilder.rows(selection.rules, context: context, subjects: try SegmentBuilder.subjects(app, databaseID: db.id),
                                              staticSegments: statics, errors: ruleErrors)),
            "range_from": .string(String(selection.rangeFrom)), "range_to": .string(String(selection.rangeTo)),
            "limit": .string(selection.limit.map(String.init) ?? ""),
            "counts": counts.map(View.counts) ?? .null,
            "errors": View.errors(ruleErrors), "has_errors": .bool(!ruleErrors.isEmpty && status != 200),
        ])
    }

    /// The selection a builder form describes (also used by the bulk-update form).
    static func selection(from form: FormData) -> (Selection, [String: String]) {
        var errors: [String: String] = [:]
        var selection = Selection(rules: SegmentBuilder.tree(from: form))
        let from = (form["range_from"] ?? "").trimmingCharacters(in: .whitespaces)
        let to = (form["range_to"] ?? "").trimmingCharacters(in: .whitespaces)
        if let f = Int(from.isEmpty ? "0" : from), let t = Int(to.isEmpty ? "100" : to) {
            selection.rangeFrom = f
            selection.rangeTo = t
        } else {
            errors["range"] = "A range is two whole numbers of percent, from 0 to 100."
        }
        let limit = (form["limit"] ?? "").trimmingCharacters(in: .whitespaces)
        if !limit.isEmpty {
            if let n = Int(limit) { selection.limit = n == 0 ? nil : n } else { errors["limit"] = "The limit is a whole number (0 or empty: none)." }
        }
        return (selection, errors)
    }

    /// POST /segments/new and POST /segments/:id: a builder button, or save.
    static func submit(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let existing: Segment? = ctx.params["id"] == nil ? nil : try load(app, ctx)
        let databaseID = existing?.databaseID ?? Int64(ctx.form["database"] ?? "") ?? 0
        guard let db = try app.services.databases.get(databaseID) else { throw HTTPError.badRequest("Choose a database for the segment.") }
        let kind = existing?.kind ?? SegmentKind(rawValue: ctx.form["kind"] ?? "") ?? .dynamic
        var (selection, errors) = selection(from: ctx.form)
        let name = ctx.form["name"] ?? ""
        let action = ctx.form["action"] ?? "save"
        if action != "save" {
            selection.rules = SegmentBuilder.apply(action, to: selection.rules)
            return try builder(app, ctx, db, segment: existing, name: name, kind: kind, selection: selection, errors: errors, status: 200)
        }
        if !errors.isEmpty {
            return try builder(app, ctx, db, segment: existing, name: name, kind: kind, selection: selection, errors: errors, status: 422)
        }
        do {
            let input = SegmentInput(name: name, kind: kind, selection: selection)
            if let existing {
                try app.services.segments.update(existing.id, input)
                return Response.redirect(to: "/segments/\(existing.id)?done=saved")
            }
            let created = try app.services.segments.create(databaseID: db.id, input, actor: user.id)
            return Response.redirect(to: "/segments/\(created.id)?done=created")
        } catch let error as ValidationError {
            return try builder(app, ctx, db, segment: existing, name: name, kind: kind, selection: selection, errors: error.fieldErrors, status: 422)
        }
    }

    static func edit(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let segment = try load(app, ctx)
        guard let db = try app.services.databases.get(segment.databaseID) else { throw HTTPError.notFound }
        return try builder(app, ctx, db, segment: segment, name: segment.name, kind: segment.kind, selection: segment.selection, errors: [:], status: 200)
    }

    // MARK: One segment

    static func detail(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let segment = try load(app, ctx)
        guard let db = try app.services.databases.get(segment.databaseID) else { throw HTTPError.notFound }
        let counts = app.services.segments.counts(segment)
        var members: TemplateValue = .list([])
        var next: TemplateValue = .null
        if case .success = counts {
            let after = Int64(ctx.request.query["after"] ?? "") ?? 0
            let page = try app.services.segments.members(segment, after: after)
            members = .list(page.profiles.map { p in
                ["profile_id": .string(p.profileID), "row": .string(String(p.rowID)), "email": .string(p.email),
                 "name": .string([p.values["_fname"] ?? "", p.values["_lname"] ?? ""].joined(separator: " ").trimmingCharacters(in: .whitespaces)),
                 "status": .string(p.status.label), "status_name": .string(p.status.name)]
            })
            next = page.next.map { .string("/segments/\(segment.id)?after=\($0)") } ?? .null
        }
        let statics = try app.services.segments.list(databaseID: db.id).filter { $0.kind == .static && $0.id != segment.id }
        var problem: String?
        if case .failure(let error) = counts { problem = error.fieldErrors.sorted { $0.key < $1.key }.map(\.value).joined(separator: " ") }
        return try app.page("segments/show.html", title: segment.name, context: ctx, nav: .segments, [
            "segment": ["id": .string(String(segment.id)), "name": .string(segment.name), "kind": .string(segment.kind.label),
                        "is_static": .bool(segment.kind == .static), "summary": .string(try summary(app, segment))],
            "database": View.database(db),
            "counts": (try? counts.get()).map(View.counts) ?? .null,
            "problem": TemplateValue(problem),
            "members": members, "next": next,
            "statics": .list(statics.map { ["id": .string(String($0.id)), "name": .string($0.name)] }),
            "notice": TemplateValue(try notice(app, ctx)),
        ])
    }

    /// Keyed notices only: the URL says which one and its numbers; the words come from here (never from the URL).
    static func notice(_ app: WebApp, _ ctx: RequestContext) throws -> String? {
        switch ctx.request.query["done"] {
        case "saved": return "The segment was saved."
        case "created": return "The segment was created."
        case "member-removed": return "The profile was removed from this segment."
        default: break
        }
        guard ctx.request.query["done"] == "joined", let n = Int(ctx.request.query["n"] ?? ""), (0...100_000_000).contains(n),
              let from = Int64(ctx.request.query["from"] ?? ""), let source = try app.services.segments.get(from) else { return nil }
        return "\(View.count(n)) profiles joined from \(source.name)."
    }

    /// The rules in words, for the segment's page.
    static func summary(_ app: WebApp, _ segment: Segment) throws -> String {
        if segment.kind == .static { return "A fixed list of profiles, added and removed by hand." }
        return try SegmentBuilder.words(app, databaseID: segment.databaseID, segment.selection)
    }

    static func delete(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let segment = try load(app, ctx)
        try app.services.segments.delete(segment.id)
        return Response.redirect(to: "/segments")
    }

    /// POST /segments/:id/copy: everyone the segment selects now joins a static segment.
    static func copy(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let segment = try load(app, ctx)
        guard let target = Int64(ctx.form["target"] ?? "") else { throw HTTPError.badRequest("Choose a static segment.") }
        do {
            let joined = try app.services.segments.addMembers(to: target, from: segment, actor: user.id)
            return Response.redirect(to: "/segments/\(target)?done=joined&n=\(joined)&from=\(segment.id)")
        } catch let error as ValidationError {
            throw HTTPError(422, "Cannot add the members", error.fieldErrors.values.sorted().joined(separator: " "))
        }
    }

    static func removeMember(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let segment = try load(app, ctx)
        do {
            try app.services.segments.removeMember(segmentID: segment.id, databaseID: segment.databaseID, profileRowID: try ctx.int64Param("row"), actor: user.id)
        } catch let error as ValidationError {
            throw HTTPError(422, "Cannot remove the profile", error.fieldErrors.values.sorted().joined(separator: " "))
        }
        return Response.redirect(to: "/segments/\(segment.id)?done=member-removed")
    }

    /// POST /segments/:id/export: the segment's profiles to CSV (all standard and custom fields).
    static func export(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireUser()
        let segment = try load(app, ctx)
        guard case .success = app.services.segments.counts(segment) else { throw HTTPError(422, "Cannot export", "The segment's rules no longer fit its database.") }
        let fields = StandardField.all.map(\.key) + (try app.services.databases.fields(of: segment.databaseID)).map(\.name)
        let id = try app.services.tasks.enqueue(kind: ExportProfilesTask.kind, title: "Export segment: \(segment.name)", databaseID: segment.databaseID,
                                                userID: user.id, parameters: ["fields": .array(fields.map { .string($0) }), "segment_id": .int(segment.id)])
        return Response.redirect(to: "/tasks/\(id)")
    }

    // MARK: From a profile's page

    /// POST /databases/:id/profiles/:profile/segments: adds the profile to a static segment.
    static func addProfile(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        guard let p = try app.services.profiles.get(databaseID: db.id, profileID: ctx.param("profile")) else { throw HTTPError.notFound }
        guard let segmentID = Int64(ctx.form["segment"] ?? "") else { throw HTTPError.badRequest("Choose a static segment.") }
        do { try app.services.segments.addMember(segmentID: segmentID, databaseID: db.id, profileRowID: p.rowID, actor: user.id) }
        catch let error as ValidationError { throw HTTPError(422, "Cannot add the profile", error.fieldErrors.values.sorted().joined(separator: " ")) }
        return Response.redirect(to: "/databases/\(db.id)/profiles/\(p.profileID)#segments")
    }

    static func removeProfile(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        guard let p = try app.services.profiles.get(databaseID: db.id, profileID: ctx.param("profile")) else { throw HTTPError.notFound }
        do { try app.services.segments.removeMember(segmentID: try ctx.int64Param("segment"), databaseID: db.id, profileRowID: p.rowID, actor: user.id) }
        catch let error as ValidationError { throw HTTPError(422, "Cannot remove the profile", error.fieldErrors.values.sorted().joined(separator: " ")) }
        return Response.redirect(to: "/databases/\(db.id)/profiles/\(p.profileID)#segments")
    }
}
