import HTTP

/// GET /databases: the profile databases. Until databases can be created it is an honest empty state.
enum DatabasesPage {
    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try app.page("databases/list.html", title: "Databases", context: ctx, nav: .databases, ["databases": .list([])])
    }
}
