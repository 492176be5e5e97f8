import HTTP
import Roster

/// GET /tasks/:id/undo says what undoing a bulk task does; with ?preview=1 it runs the undo's dry run (values put
/// back, values changed since, with samples: the whole change log, so only when asked) and offers the launch; POST
/// launches it as a task of its own.
enum UndoPage {
    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        return try render(app, ctx, try TasksPage.load(app, ctx), user: user, error: nil, status: 200)
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, _ task: TaskRecord, user: User, error: String?, status: Int) throws -> Response {
        guard task.kind == BulkUpdateTask.kind else { throw HTTPError.notFound }
        var preview: TemplateValue = .null
        var refusal = error
        let deletion = (try? app.services.bulk.restoresProfiles(BulkRequest(databaseID: task.databaseID ?? 0, selection: Selection(),
                                                                             action: .undo(taskID: task.id)))) ?? false
        do {
            let request = try app.services.bulk.undoRequest(of: task, role: user.role)
            if error == nil, ctx.request.query["preview"] == "1" {
                let counted = try app.services.bulk.preview(request, actor: user)
                preview = BulkUpdatePage.previewView(counted, databaseID: request.databaseID, subscriptions: false,
                                                     undo: deletion ? "profiles" : "values")
            }
        } catch let error as ValidationError {
            refusal = refusal ?? error.description
        }
        return try app.page("tasks/undo.html", title: "Undo: \(task.title)", context: ctx, nav: .tasks, status: status, [
            "task": View.task(task), "preview": preview, "refusal": TemplateValue(refusal), "deletion": .bool(deletion),
        ])
    }

    static func start(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let task = try TasksPage.load(app, ctx)
        guard task.kind == BulkUpdateTask.kind else { throw HTTPError.notFound }
        do {
            let request = try app.services.bulk.undoRequest(of: task, role: user.role)
            let id = try app.services.bulk.start(request, title: "Undo #\(task.id): \(task.title)".prefix(200).description, user: user)
            return Response.redirect(to: "/tasks/\(id)")
        } catch let error as ValidationError {
            return try render(app, ctx, task, user: user, error: error.description, status: 422)
        }
    }
}
