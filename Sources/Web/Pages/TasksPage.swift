import HTTP

/// GET /tasks: background tasks (imports, exports, bulk updates) and their progress.
enum TasksPage {
    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try app.page("tasks/list.html", title: "Tasks", context: ctx, nav: .tasks, ["tasks": .list([])])
    }
}
