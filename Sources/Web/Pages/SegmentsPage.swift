import HTTP

/// GET /segments: saved segments (none can exist before databases do).
enum SegmentsPage {
    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try app.page("segments/list.html", title: "Segments", context: ctx, nav: .segments, ["segments": .list([])])
    }
}
