import Foundation
import HTTP
import Roster

/// GET /databases/:id: the database's settings, fields, resources and actions.
enum DatabasePage {
    static let notices: [String: String] = [
        "created": "The database was created.", "saved": "The settings were saved.", "field-added": "The field was added.",
        "field-saved": "The field was saved.", "field-deleted": "The field was deleted with its values.",
        "standard-saved": "The standard fields were saved.", "cloned": "This is the new empty database with the same structure.",
        "resource-attached": "The resource was attached: its channels can now hold this database's subscriptions.",
    ]

    /// POST /databases/:id/resources: attach a resource from the database's page (no round trip through the settings).
    static func attachResource(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        guard let resourceID = Int64(ctx.form["resource"] ?? "") else {
            throw HTTPError(422, "Not attached", "Choose one of the resources.")
        }
        try app.services.databases.attachResource(db.id, resourceID: resourceID)
        return Response.redirect(to: "/databases/\(db.id)?done=resource-attached#resources")
    }

    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let db = try ctx.database(app)
        let services = app.services
        let fields = try services.databases.fields(of: db.id)
        let settings = try services.databases.standardSettings(of: db.id)
        let others = try services.databases.list().filter { $0.database.id != db.id }
        let charts = try services.databases.charts(db.id, now: Int64(Date().timeIntervalSince1970))
        let attached = try services.databases.attachedResources(db.id)
        let profileCount = try services.databases.profileCount(db.id)
        let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return try app.page("databases/show.html", title: db.name, context: ctx, nav: .databases, [
            "database": View.database(db),
            "profile_count": .string(View.count(profileCount)),
            "fields": .list(fields.map(View.field)),
            "standard_groups": .list(StandardField.Group.allCases.map { group in
                [
                    "label": .string(group.label),
                    "fields": .list(StandardField.all.filter { $0.group == group }.map { field in
                        let s = settings[field.key] ?? StandardFieldSetting()
                        return ["key": .string(field.key), "label": .string(field.label), "default_value": .string(s.defaultValue ?? ""),
                                "required": .bool(s.required), "show_in_sm": .bool(s.showInSM)]
                    }),
                ]
            }),
            "resources": .list(attached.map(View.resource)),
            "attachable": .list(try services.resources.list().filter { r in !attached.contains { $0.id == r.id } }.map {
                ["id": .string(String($0.id)), "name": .string($0.name)]
            }),
            "is_empty": .bool(profileCount == 0),
            "status_chart": .trustedHTML(SVGChart.bars(title: "Profiles by global status",
                charts.statuses.map { SVGChart.Bar(label: $0.0.label, value: $0.1, color: SVGChart.color($0.0.name)) })),
            "channel_charts": .list(charts.subscriptions.map { channel, counts in
                ["channel": .string(channel.label),
                 "chart": .trustedHTML(SVGChart.bars(title: "\(channel.label) subscriptions by status",
                    counts.map { SVGChart.Bar(label: $0.0.label, value: $0.1, color: SVGChart.color($0.0.name)) }))]
            }),
            "activity_chart": .trustedHTML(SVGChart.columns(title: "History events per month, last 12 months",
                charts.months.map { month, n in (label: monthNames[(Int(month.suffix(2)) ?? 1) - 1] + " " + month.prefix(4).suffix(2), value: n) })),
            "other_databases": .list(others.map { ["id": .string(String($0.database.id)), "name": .string($0.database.name)] }),
            "notice": TemplateValue(ctx.request.query["done"].flatMap { notices[$0] }),
        ])
    }
}

/// GET /databases/:id/delete asks, naming what will be lost; POST deletes (admins only).
enum DatabaseDeletePage {
    static func confirm(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireDeleter()
        let db = try ctx.database(app)
        return try render(app, ctx, db, error: nil, status: 200)
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, _ db: ProfileDatabase, error: String?, status: Int) throws -> Response {
        let impact = try app.services.databases.deletionImpact(db.id)
        return try app.page("databases/delete.html", title: "Delete \(db.name)", context: ctx, nav: .databases, status: status, [
            "database": View.database(db),
            "profiles": .string(View.count(impact.profiles)), "engaged": .string(View.count(impact.engagedProfiles)),
            "fields": .string(View.count(impact.customFields)), "allowed": .bool(impact.allowed), "error": TemplateValue(error),
        ])
    }

    static func delete(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireDeleter()
        let db = try ctx.database(app)
        guard ctx.form["confirm_name"] == db.name else {
            return try render(app, ctx, db, error: "Type the database's name exactly to confirm.", status: 422)
        }
        do {
            try app.services.databases.delete(db.id)
        } catch let error as ValidationError {
            return try render(app, ctx, db, error: error.fieldErrors.values.first, status: 409)
        }
        return Response.redirect(to: "/databases?done=deleted")
    }
}

/// GET and POST /databases/:id/standard-fields: defaults, required and subscription-manager switches of the standard fields.
enum StandardFieldsAction {
    static func save(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        var settings: [String: StandardFieldSetting] = [:]
        for field in StandardField.all {
            settings[field.key] = StandardFieldSetting(defaultValue: ctx.form["default_\(field.key)"], required: ctx.checkbox("required_\(field.key)"),
                                                       showInSM: ctx.checkbox("sm_\(field.key)"))
        }
        do {
            try app.services.databases.updateStandardSettings(db.id, settings)
        } catch let error as ValidationError {
            return try render(app, ctx, db, settings: settings, errors: error.fieldErrors, status: 422)
        }
        return Response.redirect(to: "/databases/\(db.id)?done=standard-saved#standard")
    }

    static func edit(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        return try render(app, ctx, db, settings: try app.services.databases.standardSettings(of: db.id), errors: [:], status: 200)
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, _ db: ProfileDatabase, settings: [String: StandardFieldSetting],
                       errors: [String: String], status: Int) throws -> Response {
        try app.page("databases/standard.html", title: "Standard fields of \(db.name)", context: ctx, nav: .databases, status: status, [
            "database": View.database(db),
            "rows": .list(StandardField.all.map { field in
                let s = settings[field.key] ?? StandardFieldSetting()
                return ["key": .string(field.key), "label": .string(field.label), "group": .string(field.group.label),
                        "default_value": .string(s.defaultValue ?? ""), "required": .bool(s.required), "show_in_sm": .bool(s.showInSM),
                        "error": TemplateValue(errors[field.key])]
            }),
        ])
    }
}
