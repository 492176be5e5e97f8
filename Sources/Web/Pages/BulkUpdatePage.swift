import Foundation
import HTTP
import Roster

/// GET /databases/:id/bulk-update[?segment=ID]: the bulk-update form (selection, action, options);
/// POST: the builder's buttons, "Preview" (exact counts and a sample), or "Launch" (a task; the reply is at once).
/// GET /tasks/:id/changes.csv: a finished task's change log.
enum BulkUpdatePage {
    static let fieldRows = 5

    static func form(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        let selection = Selection()
        var segment: Segment?
        if let id = Int64(ctx.request.query["segment"] ?? "") {
            guard let s = try app.services.segments.get(id), s.databaseID == db.id else { throw HTTPError.notFound }
            segment = s
            // The segment's own selection always applies (shown read-only); the form's rules start empty and narrow it.
        }
        return try render(app, ctx, db, segment: segment, selection: selection, form: FormData(), preview: nil, errors: [:], status: 200)
    }

    static func submit(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        var segment: Segment?
        if let id = Int64(ctx.form["segment"] ?? "") {
            guard let s = try app.services.segments.get(id), s.databaseID == db.id else { throw HTTPError.badRequest("The segment belongs to another database.") }
            segment = s
        }
        var (selection, errors) = SegmentsPage.selection(from: ctx.form)
        let step = ctx.form["action"] ?? "preview"
        if step != "preview" && step != "launch" && step != "schedule" {
            selection.rules = SegmentBuilder.apply(step, to: selection.rules)
            return try render(app, ctx, db, segment: segment, selection: selection, form: ctx.form, preview: nil, errors: errors, status: 200)
        }
        let action: BulkAction
        do { action = try parseAction(ctx.form) } catch let error as ValidationError {
            errors.merge(error.fieldErrors) { a, _ in a }
            return try render(app, ctx, db, segment: segment, selection: selection, form: ctx.form, preview: nil, errors: errors, status: 422)
        }
        if !errors.isEmpty { return try render(app, ctx, db, segment: segment, selection: selection, form: ctx.form, preview: nil, errors: errors, status: 422) }
        let request = BulkRequest(databaseID: db.id, segmentID: segment?.id, selection: selection, action: action, skipTriggers: ctx.checkbox("skip_triggers"))
        do {
            try app.services.bulk.validate(request, role: user.role)
            if step == "schedule" {
                let title = (ctx.form["schedule_title"] ?? "").isEmpty ? "\(action.label): \(segment?.name ?? db.name)" : ctx.form["schedule_title"] ?? ""
                let id = try app.services.schedules.create(request, title: title, timing: try SchedulePages.timing(ctx.form), user: user)
                return Response.redirect(to: "/schedules/\(id)")
            }
            if step == "launch" {
                let title = "\(action.label): \(segment?.name ?? db.name)"
                let id = try app.services.bulk.start(request, title: title, user: user)
                return Response.redirect(to: "/tasks/\(id)")
            }
            let preview = try app.services.bulk.preview(request, actor: user)
            return try render(app, ctx, db, segment: segment, selection: selection, form: ctx.form, preview: preview, errors: [:], status: 200)
        } catch let error as ValidationError {
            return try render(app, ctx, db, segment: segment, selection: selection, form: ctx.form, preview: nil, errors: error.fieldErrors, status: 422)
        }
    }

    /// A preview's counts, skip reasons and sample, for the bulk form and for an approver on the task page.
    /// `undo`: "values" or "profiles" (an undo's items), nil for any other update.
    static func previewView(_ p: BulkPreview, databaseID: Int64, subscriptions: Bool, undo: String? = nil) -> TemplateValue {
        func rows(_ list: [ChangeRow]) -> TemplateValue {
            .list(list.map { ["profile_id": .string($0.profileID), "email": .string($0.email), "field": .string($0.field),
                              "before": .string($0.before), "after": .string($0.after)] })
        }
        return [
            "database_id": .string(String(databaseID)),
            "selected": .string(View.count(p.selected)), "updated": .string(View.count(p.updated)), "deleted": .string(View.count(p.deleted)),
            "skipped": .string(View.count(p.skipped)), "failed": .string(View.count(p.failed)),
            "reasons": .list(p.reasons.sorted { $0.key < $1.key }.map { ["count": .string(View.count($0.value)), "label": .string(SkipReason.label($0.key))] }),
            "sample": rows(p.sample), "drift": rows(p.drift),
            "subscriptions": .bool(subscriptions), "undo": .bool(undo != nil), "undo_profiles": .bool(undo == "profiles"),
        ]
    }

    /// The action the form describes; a forged or incomplete one is a ValidationError naming the input.
    static func parseAction(_ form: FormData) throws -> BulkAction {
        func target() throws -> (Int64, String) {
            let parts = (form["target"] ?? "").split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, let id = Int64(parts[0]) else { throw ValidationError(field: "target", "Choose a resource and channel.") }
            return (id, parts[1])
        }
        switch form["bulk_action"] ?? "" {
        case "update_fields":
            var changes: [FieldChange] = []
            for i in 0..<fieldRows {
                let name = form["field_\(i)"] ?? ""
                if name.isEmpty { continue }
                changes.append(FieldChange(field: name, value: form["mode_\(i)"] == "delete" ? nil : (form["value_\(i)"] ?? "")))
            }
            return .updateFields(changes)
        case "add_subscription":
            let (r, c) = try target()
            let source = form["source"] ?? "fields"
            var sourceID: Int64?
            if source != "fields" {
                guard let id = Int64(source) else { throw ValidationError(field: "source_resource", "Choose where the contacts come from.") }
                sourceID = id
            }
            return .addSubscription(resourceID: r, channel: c, status: form["status"] ?? "", sourceResourceID: sourceID, includeUnsafe: form["include_unsafe"] != nil)
        case "subscription_status":
            let (r, c) = try target()
            return .updateSubscriptionStatus(resourceID: r, channel: c, status: form["status"] ?? "", includeUnsafe: form["include_unsafe"] != nil)
        case "attach_promo", "detach_promo":
            guard let program = Int64(form["program"] ?? "") else { throw ValidationError(field: "program", "Choose a loyalty program.") }
            return .promoCodes(programID: program, attach: form["bulk_action"] == "attach_promo")
        case "delete_inactive": return .deleteInactive
        case "unsubscribe": return .unsubscribe
        default: throw ValidationError(field: "bulk_action", "Choose what to do with the profiles.")
        }
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, _ db: ProfileDatabase, segment: Segment?, selection: Selection, form: FormData,
                       preview: BulkPreview?, errors: [String: String], status: Int) throws -> Response {
        let context = try app.services.segments.context(databaseID: db.id)
        let statics = try app.services.segments.list(databaseID: db.id).filter { $0.kind == .static }
        let custom = try app.services.databases.fields(of: db.id)
        let attached = try app.services.databases.attachedResources(db.id)
        let chosenAction = form["bulk_action"] ?? "update_fields"
        let lastFilledRow = (0..<fieldRows).last { !(form["field_\($0)"] ?? "").isEmpty } ?? -1
        let isAdmin = ctx.user?.role.canDelete ?? false
        var actions: [(String, String)] = [("update_fields", "Update profile fields"), ("add_subscription", "Add a subscription to a resource"),
                                           ("subscription_status", "Change the status of subscriptions"), ("attach_promo", "Attach promo codes"),
                                           ("detach_promo", "Detach promo codes"), ("unsubscribe", "Global unsubscribe")]
        if isAdmin { actions.insert(("delete_inactive", "Delete inactive profiles"), at: 5) }
        var fieldChoices: [(String, String)] = StandardField.all.filter { $0.kind != .email }.map { ($0.key, $0.label) }
        fieldChoices += custom.map { ($0.name, "\($0.name) (\($0.type.label))") }
        let targets = attached.flatMap { r in r.channels.map { c in ("\(r.id):\(c.rawValue)", "\(r.name) — \(c.label)") } }
        let cutoff = app.services.bulk.currentCutoff
        let previewValue = preview.map { previewView($0, databaseID: db.id, subscriptions: chosenAction == "subscription_status") } ?? .null
        return try app.page("bulk/form.html", title: "Update profiles of \(segment?.name ?? db.name)", context: ctx, nav: .databases, status: status, [
            "database": View.database(db),
            "segment": try segment.map { s -> TemplateValue in
                let count = (try? app.services.segments.counts(s, cached: true).get().selected).map(View.count) ?? "?"
                return ["id": .string(String(s.id)), "name": .string(s.name), "kind": .string(s.kind.label.lowercased()),
                        "count": .string(count), "what": .string(s.kind == .static ? "members" : "rules, range and limit")]
            } ?? .null,
            "rows": .list(SegmentBuilder.rows(selection.rules, context: context, subjects: try SegmentBuilder.subjects(app, databaseID: db.id),
                                              staticSegments: statics, errors: errors)),
            "range_from": .string(String(selection.rangeFrom)), "range_to": .string(String(selection.rangeTo)),
            "limit": .string(selection.limit.map(String.init) ?? ""),
            "actions": .list(actions.map { ["value": .string($0.0), "label": .string($0.1), "selected": .bool($0.0 == chosenAction)] }),
            "action_shows": ["fields": .bool(chosenAction == "update_fields"),
                             "target": .bool(["add_subscription", "subscription_status"].contains(chosenAction)),
                             "source": .bool(chosenAction == "add_subscription"),
                             "program": .bool(["attach_promo", "detach_promo"].contains(chosenAction)),
                             "delete": .bool(chosenAction == "delete_inactive"),
                             "condition": .bool(["delete_inactive", "unsubscribe"].contains(chosenAction))],
            "selection_words": .string(try SegmentBuilder.words(app, databaseID: db.id, selection)),
            "can_delete": .bool(isAdmin), "condition_actions": .string(isAdmin ? "delete_inactive unsubscribe" : "unsubscribe"),
            "field_rows": .list((0..<fieldRows).map { i in
                let chosen = form["field_\(i)"] ?? ""
                // The rows in use and one empty row for the next field (JavaScript shows the next one as each is chosen).
                return ["index": .int(i), "value": .string(form["value_\(i)"] ?? ""), "delete": .bool(form["mode_\(i)"] == "delete"),
                        "hidden": .bool(i > lastFilledRow + 1),
                        "error": TemplateValue(errors["field_" + chosen]),
                        "choices": .list([["value": "", "label": "— no field —", "selected": .bool(chosen.isEmpty)]] + fieldChoices.map {
                            ["value": .string($0.0), "label": .string($0.1), "selected": .bool($0.0 == chosen)]
                        })]
            }),
            "targets": .list(targets.map { ["value": .string($0.0), "label": .string($0.1), "selected": .bool($0.0 == form["target"])] }),
            "sources": .list([["value": "fields", "label": "profile fields (email, phones)", "selected": .bool((form["source"] ?? "fields") == "fields")]]
                             + attached.map { ["value": .string(String($0.id)), "label": .string("subscriptions in \($0.name) (same channel)"), "selected": .bool(String($0.id) == form["source"])] }),
            "statuses": .list(ProfileStatus.allCases.map { ["value": .string($0.name), "label": .string($0.label), "selected": .bool($0.name == (form["status"] ?? "subscribed"))] }),
            "programs": .list(try app.services.loyalty.list().map { ["value": .string(String($0.id)), "label": .string($0.name), "selected": .bool(String($0.id) == form["program"])] }),
            "include_unsafe": .bool(form["include_unsafe"] != nil), "skip_triggers": .bool(form["skip_triggers"] != nil),
            "cutoff": .string(UTCTime.day(cutoff)), "removal_months": .int(app.services.bulk.removalMinMonths),
            "removal_months_text": .string(View.counted(app.services.bulk.removalMinMonths, "month")),
            "preview": previewValue,
            "schedule": SchedulePages.fieldsView(form, timing: nil, title: "", errors: errors,
                                                 open: form["action"] == "schedule" || errors.keys.contains { $0.hasPrefix("schedule_") }),
            "errors": View.errors(errors), "has_errors": .bool(!errors.isEmpty),
        ])
    }

    /// GET /tasks/:id/changes.csv: before → after of every value the task changed.
    static func changes(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let task = try TasksPage.loadDownload(app, ctx)
        guard task.kind == BulkUpdateTask.kind else { throw HTTPError.notFound }
        let headers = [("Content-Type", "text/csv; charset=utf-8"), ("Content-Disposition", "attachment; filename=\"task-\(task.id)-changes.csv\"")]
        // HEAD asks for the headers only: nothing is written.
        if ctx.request.method == "HEAD" { return Response(status: 200, headers: headers) }
        try app.services.files.requireFreeSpace(at: app.services.export.directory)
        let path = (app.services.export.directory as NSString).appendingPathComponent("changes-\(task.id)-\(UUID().uuidString).csv")
        try FileManager.default.createDirectory(atPath: app.services.export.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try app.services.bulk.writeChanges(taskID: task.id, databaseID: task.databaseID ?? 0, to: path)
        var response = Response(status: 200, headers: headers)
        response.bodyFile = path
        response.deleteBodyFileAfterSending = true
        return response
    }
}
