import HTTP
import Roster

/// GET /databases: every profile database with its profile count, and what can be done with it.
enum DatabasesPage {
    static let notices: [String: String] = [
        "deleted": "The database was deleted with its profiles.",
    ]

    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let list = try app.services.databases.list()
        return try app.page("databases/list.html", title: "Databases", context: ctx, nav: .databases, [
            "databases": .list(list.map { summary in
                var value = View.database(summary.database)
                if case .dict(var d) = value {
                    d["profile_count"] = .string(View.count(summary.profileCount))
                    d["field_count"] = .string(View.count(summary.fieldCount))
                    value = .dict(d)
                }
                return value
            }),
            "notice": TemplateValue(ctx.request.query["done"].flatMap { notices[$0] }),
            "section": "databases",
        ])
    }
}
