import Foundation
import HTTP
import Roster

/// Schedules: made from the bulk-update form ("Schedule the update"), listed on the Tasks page, and on
/// GET /schedules/:id shown with their timing to edit (POST), pause, resume or delete.
enum SchedulePages {
    static let zones: [TemplateValue] = TimeZone.knownTimeZoneIdentifiers.sorted().map { .string($0) }

    /// The timing a form describes (the domain checks every field).
    static func timing(_ form: FormData) throws -> ScheduleTiming {
        try ScheduleTiming.parse(recurrence: form["schedule_recurrence"] ?? "", date: form["schedule_date"] ?? "",
                                 time: form["schedule_time"] ?? "", weekday: form["schedule_weekday"] ?? "",
                                 day: form["schedule_day"] ?? "", zone: form["schedule_zone"] ?? "")
    }

    /// The schedule fields: as typed (after an error), else as `timing` has them, else defaults.
    static func fieldsView(_ form: FormData?, timing: ScheduleTiming?, title: String, errors: [String: String], open: Bool) -> TemplateValue {
        var recurrence = "once", date = UTCTime.day(Int64(Date().timeIntervalSince1970)), time = "03:00", weekday = "1", day = "1"
        var zone = "UTC"
        if let timing {
            recurrence = timing.recurrence.name
            time = String(format: "%02d:%02d", timing.minuteOfDay / 60, timing.minuteOfDay % 60)
            zone = timing.timeZone
            switch timing.recurrence {
            case .once(let at): date = timing.localDay(at)
            case .weekly(let w): weekday = String(w)
            case .monthly(let d): day = String(d)
            case .daily: break
            }
        }
        if let form, form["schedule_recurrence"] != nil {
            recurrence = form["schedule_recurrence"] ?? recurrence
            date = form["schedule_date"] ?? date
            time = form["schedule_time"] ?? time
            weekday = form["schedule_weekday"] ?? weekday
            day = form["schedule_day"] ?? day
            zone = form["schedule_zone"] ?? zone
        }
        let recurrences = [("once", "Once"), ("daily", "Every day"), ("weekly", "Every week"), ("monthly", "Every month")]
        return [
            "open": .bool(open), "title": .string(form?["schedule_title"] ?? title),
            "recurrences": .list(recurrences.map { ["value": .string($0.0), "label": .string($0.1), "selected": .bool($0.0 == recurrence)] }),
            "weekdays": .list(ScheduleTiming.weekdays.enumerated().map { i, name in
                ["value": .string(String(i + 1)), "label": .string(name), "selected": .bool(String(i + 1) == weekday)]
            }),
            "date": .string(date), "time": .string(time), "day": .string(day), "zone": .string(zone), "zones": .list(zones),
            "errors": View.errors(errors.filter { $0.key.hasPrefix("schedule") }),
        ]
    }

    static func view(_ app: WebApp, _ s: Schedule, labels: ChangeLabels) throws -> TemplateValue {
        [
            "id": .string(String(s.id)), "title": .string(s.title),
            "what": .string(s.request.map { labels.words($0.action, skipTriggers: $0.skipTriggers) } ?? "(the update cannot be read; delete this schedule)"),
            "when": .string(s.timing.words), "paused": .bool(s.paused), "next": .string(s.nextRun.map { View.time($0) + " UTC" } ?? "none"),
            "last_run": .string(View.time(s.lastRun)), "last_task": .string(s.lastTaskID.map(String.init) ?? ""),
            "last_error": TemplateValue(s.lastError), "created_by": .string(s.createdByEmail ?? "a deleted user"),
            "database_id": .string(String(s.databaseID)), "database": TemplateValue(try app.services.databases.get(s.databaseID)?.name),
            "segment": TemplateValue(try s.request?.segmentID.flatMap { try app.services.segments.get($0)?.name }),
        ]
    }

    static func load(_ app: WebApp, _ ctx: RequestContext) throws -> Schedule {
        guard let schedule = try app.services.schedules.get(try ctx.int64Param("id")) else { throw HTTPError.notFound }
        return schedule
    }

    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try render(app, ctx, try load(app, ctx), form: nil, errors: [:], status: 200)
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, _ s: Schedule, form: FormData?, errors: [String: String],
                       status: Int) throws -> Response {
        let other = errors.filter { !$0.key.hasPrefix("schedule_") }.values.sorted().joined(separator: " ")
        return try app.page("tasks/schedule.html", title: s.title, context: ctx, nav: .tasks, status: status, [
            "schedule": try view(app, s, labels: try ChangeLabels.read(app.services.pool)),
            "fields": fieldsView(form, timing: s.timing, title: s.title, errors: errors, open: true),
            "may_manage": .bool(ctx.user.map { Schedules.mayManage(s, user: $0) } ?? false),
            "error": other.isEmpty ? .null : .string(other),
        ])
    }

    /// Runs a change; a refusal shows the page again with the reason, a role that may not is 403.
    static func change(_ app: WebApp, _ ctx: RequestContext, _ body: (Schedule, User) throws -> Void) throws -> Response {
        let user = try ctx.requireEditor()
        let schedule = try load(app, ctx)
        do {
            try body(schedule, user)
        } catch let error as ValidationError {
            return try render(app, ctx, schedule, form: ctx.form, errors: error.fieldErrors, status: 422)
        } catch is PermissionError {
            throw HTTPError.forbidden
        }
        return Response.redirect(to: "/schedules/\(schedule.id)")
    }

    static func save(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try change(app, ctx) { s, user in
            try app.services.schedules.update(s.id, title: ctx.form["schedule_title"] ?? "", timing: try timing(ctx.form), user: user)
        }
    }

    static func pause(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try change(app, ctx) { s, user in try app.services.schedules.setPaused(s.id, true, user: user) }
    }

    static func resume(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try change(app, ctx) { s, user in try app.services.schedules.setPaused(s.id, false, user: user) }
    }

    static func delete(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let schedule = try load(app, ctx)
        guard Schedules.mayManage(schedule, user: user) else { throw HTTPError.forbidden }
        try app.services.schedules.delete(schedule.id, user: user)
        return Response.redirect(to: "/tasks#schedules")
    }
}
