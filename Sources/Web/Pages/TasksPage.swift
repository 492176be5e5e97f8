import HTTP
import Roster

/// GET /tasks lists every task; GET /tasks/:id shows one with its progress; POST …/cancel, …/resume, and …/approve and
/// …/reject for a task that awaits a second admin.
enum TasksPage {
    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let tasks = try app.services.tasks.recent()
        let databases = Dictionary(try app.services.databases.list().map { ($0.database.id, $0.database.name) }, uniquingKeysWith: { a, _ in a })
        let segments = Dictionary(try app.services.segments.list().map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let labels = try ChangeLabels.read(app.services.pool)
        return try app.page("tasks/list.html", title: "Tasks", context: ctx, nav: .tasks, [
            "tasks": .list(tasks.map { task in
                guard case .dict(var d) = View.task(task) else { return .null }
                d["database"] = .string(task.databaseID.flatMap { databases[$0] } ?? "—")
                d["segment"] = TemplateValue(task.segmentID.flatMap { segments[$0] })
                d["segment_id"] = .string(task.segmentID.map(String.init) ?? "")
                return .dict(d)
            }),
            "refresh": .bool(tasks.contains { $0.state == .queued || $0.state == .running }),
            "schedules": .list(try app.services.schedules.list().map { schedule in
                guard case .dict(var d) = try SchedulePages.view(app, schedule, labels: labels) else { return .null }
                d["database"] = .string(databases[schedule.databaseID] ?? "—")
                return .dict(d)
            }),
        ])
    }

    static func load(_ app: WebApp, _ ctx: RequestContext) throws -> TaskRecord {
        guard let task = try app.services.tasks.task(try ctx.int64Param("id")) else { throw HTTPError.notFound }
        return task
    }

    /// A task whose file the signed-in user may download now: its launcher or an admin, before the file expires.
    static func loadDownload(_ app: WebApp, _ ctx: RequestContext) throws -> TaskRecord {
        let task = try load(app, ctx)
        guard let user = ctx.user, app.services.files.mayDownload(task, user: user) else {
            throw HTTPError(403, "Not yours to download", "Only the person who started this task, or an admin, can download its file.")
        }
        if app.services.files.isExpired(task) {
            throw HTTPError(410, "Expired", "Task files are kept \(app.services.files.keepDays) days after the task ends; run it again.")
        }
        return task
    }

    static func detail(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try render(app, ctx, try load(app, ctx), rejectError: nil, status: 200)
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, _ task: TaskRecord, rejectError: String?, status: Int) throws -> Response {
        let database = try task.databaseID.flatMap { try app.services.databases.get($0) }
        // An admin who may decide asks for the preview (`?preview=1`): it runs the whole dry run, so not on every view.
        // The approve form carries the count it showed; approval is refused if the selection changed meanwhile.
        var preview: TemplateValue = .null
        var previewError: TemplateValue = .null
        var previewed: TemplateValue = .string("")
        if let user = ctx.user, Approvals.mayDecide(task, user: user), task.kind == BulkUpdateTask.kind,
           ctx.request.query["preview"] == "1" {
            do {
                let request = try app.services.bulk.request(of: task)
                let subscriptions: Bool
                if case .updateSubscriptionStatus = request.action { subscriptions = true } else { subscriptions = false }
                let counted = try app.services.bulk.preview(request, actor: user, task: task.id)
                var undo: String?
                if case .undo = request.action { undo = try app.services.bulk.restoresProfiles(request) ? "profiles" : "values" }
                preview = BulkUpdatePage.previewView(counted, databaseID: request.databaseID, subscriptions: subscriptions, undo: undo)
                previewed = .string(String(counted.selected))
            } catch let error as ValidationError {
                previewError = .string(error.description)
            }
        }
        // What was asked, in words: the action with its names and labels, and the selection.
        var asked: TemplateValue = .null
        if task.kind == BulkUpdateTask.kind, let request = try? app.services.bulk.request(of: task) {
            let labels = try ChangeLabels.read(app.services.pool)
            let segment = try request.segmentID.flatMap { try app.services.segments.get($0)?.name }
            asked = ["action": .string(labels.words(request.action, skipTriggers: request.skipTriggers)),
                     "selection": .string((try? SegmentBuilder.words(app, databaseID: request.databaseID, request.selection)) ?? ""),
                     "segment": TemplateValue(segment)]
        }
        // Undo: the task that undid this one, or a link to undo it, or why it cannot be undone.
        var undo: TemplateValue = .null
        if let user = ctx.user, user.role.canEdit {
            let state = try app.services.bulk.undoState(of: task, role: user.role)
            undo = ["undone_by": .string(state.undoneBy.map(String.init) ?? ""), "possible": .bool(state.possible),
                    "refusal": TemplateValue(state.refusal)]
        }
        return try app.page("tasks/show.html", title: task.title, context: ctx, nav: .tasks, status: status, [
            "asked": asked, "undo": undo,
            "task": View.task(task),
            "database": database.map(View.database) ?? .null,
            "refresh": .bool(task.state == .queued || task.state == .running),
            "may_decide": .bool(ctx.user.map { Approvals.mayDecide(task, user: $0) } ?? false),
            "preview": preview, "preview_error": previewError, "previewed": previewed,
            "decision_error": TemplateValue(rejectError),
        ])
    }

    /// POST /tasks/:id/approve: another admin lets the task run.
    static func approve(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireAdmin()
        let task = try load(app, ctx)
        let previewed = (ctx.form["previewed"] ?? "").count <= 12 ? Int(ctx.form["previewed"] ?? "") : nil
        do { try app.services.approvals.approve(task.id, by: user, previewed: previewed) } catch let error as ValidationError {
            return try render(app, ctx, try load(app, ctx), rejectError: error.description, status: 422)
        } catch is PermissionError { throw HTTPError.forbidden }
        return Response.redirect(to: "/tasks/\(task.id)")
    }

    /// POST /tasks/:id/reject: another admin cancels the task with a reason.
    static func reject(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireAdmin()
        let task = try load(app, ctx)
        do { try app.services.approvals.reject(task.id, by: user, reason: ctx.form["reason"] ?? "") } catch let error as ValidationError {
            return try render(app, ctx, try load(app, ctx), rejectError: error.fieldErrors["reason"] ?? error.description, status: 422)
        } catch is PermissionError { throw HTTPError.forbidden }
        return Response.redirect(to: "/tasks/\(task.id)")
    }

    static func cancel(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let task = try load(app, ctx)
        guard Approvals.mayCancel(task, user: user) else { throw HTTPError.forbidden }
        try app.services.tasks.cancel(task.id)
        return Response.redirect(to: "/tasks/\(task.id)")
    }

    static func resume(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let task = try load(app, ctx)
        do { try app.services.tasks.resume(task.id, role: user.role) } catch is ValidationError {
        } catch let e as PermissionError { _ = e; throw HTTPError.forbidden }
        return Response.redirect(to: "/tasks/\(task.id)")
    }
}
