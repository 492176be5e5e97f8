import HTTP
import Roster

/// The subscription manager: a subscriber's own page behind the signed link in their messages (no account, no
/// cookie). GET shows it; each form POSTs one change and comes back to the page (or shows why not).
enum SubscriberPages {
    static let notices = ["saved"]

    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let token = ctx.params["token"] ?? ""
        guard let view = try app.services.manager.view(token: token) else { return invalidLink(app) }
        return try render(app, ctx, token: token, view, error: nil, status: 200)
    }

    static func fields(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try change(app, ctx) { manager, token in
            var values: [String: String] = [:]
            for (name, value) in ctx.form.pairs where name.hasPrefix("f:") { values[String(name.dropFirst(2))] = value }
            guard values.count <= 100 else { throw ValidationError(field: "fields", "Too many fields.") }
            try manager.updateFields(token: token, values)
        }
    }

    static func subscribe(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try change(app, ctx) { manager, token in
            try manager.setSubscribed(token: token, subscriptionID: try subscriptionID(ctx), try state(ctx))
        }
    }

    static func categories(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try change(app, ctx) { manager, token in
            try manager.setCategories(token: token, subscriptionID: try subscriptionID(ctx), ctx.form.all("category"))
        }
    }

    static func everything(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try change(app, ctx) { manager, token in
            try manager.setGlobal(token: token, subscribed: try state(ctx))
        }
    }

    /// The on/off of a path: anything else is no such address.
    static func state(_ ctx: RequestContext) throws -> Bool {
        switch ctx.params["state"] {
        case "on": return true
        case "off": return false
        default: throw HTTPError.notFound
        }
    }

    static func subscriptionID(_ ctx: RequestContext) throws -> Int64 {
        guard let id = ctx.params["id"].flatMap({ Int64($0) }) else { throw HTTPError.notFound }
        return id
    }

    /// A change from one of the page's forms: the link must be valid and the form's token bound to it; a refused
    /// change shows the page again with the reason and changes nothing.
    static func change(_ app: WebApp, _ ctx: RequestContext, _ body: (SubscriptionManager, String) throws -> Void) throws -> Response {
        let token = ctx.params["token"] ?? ""
        guard let view = try app.services.manager.view(token: token) else { return invalidLink(app) }
        guard ctx.request.method == "POST", try app.services.links.checkFormToken(ctx.form["form_token"] ?? "", for: token) else {
            throw HTTPError.csrf
        }
        do {
            try body(app.services.manager, token)
        } catch let error as ValidationError {
            let reason = error.fieldErrors.sorted { $0.key < $1.key }.map(\.value).joined(separator: " ")
            return try render(app, ctx, token: token, view, error: reason, status: 422)
        }
        return Response.redirect(to: SubscriberLinks.managerPrefix + token + "?done=saved", status: 303)
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, token: String, _ view: ManagerView, error: String?,
                       status: Int) throws -> Response {
        let language = view.database.smLanguage
        let words = SubscriberText.words(language)
        let base = SubscriberLinks.managerPrefix + token
        let values: TemplateDict = [
            "lang": .string(language == "ru" ? "ru" : "en"),
            "t": SubscriberText.values(language),
            "title": .string(view.database.smTitle.isEmpty ? words["title"] ?? "" : view.database.smTitle),
            "base": .string(base),
            "form_token": .string(try app.services.links.formToken(for: token)),
            "notice": .bool(ctx.request.query["done"] == "saved" && error == nil),
            "error": TemplateValue(error),
            "editable": .bool(view.editableFields),
            "fields": .list(view.fields.map { f in
                ["key": .string(f.key), "label": .string(f.label), "value": .string(f.value),
                 "input_type": .string(f.kind == "date" ? "date" : f.kind == "email" ? "email" : "text"),
                 "is_enum": .bool(f.kind == "enum"),
                 "options": .list(f.options.map { o in ["value": .string(o), "selected": .bool(o == f.value)] })]
            }),
            "subscriptions": .list(view.subscriptions.map { s in
                ["id": .string(String(s.id)), "resource": .string(s.resourceName), "channel": .string(s.channel.label),
                 "contact": .string(s.maskedContact), "status": .string(SubscriberText.status(s.status, language)),
                 "status_name": .string(s.status.name),
                 "can_unsubscribe": .bool(s.canUnsubscribe), "can_resubscribe": .bool(s.canResubscribe),
                 "topics": .list(s.availableCategories.map { c in ["name": .string(c), "chosen": .bool(s.categories.contains(c))] })]
            }),
            "global_unsubscribed": .bool(view.status == .unsubscribed),
            "can_unsubscribe_all": .bool(view.canUnsubscribeAll),
            "can_resubscribe_all": .bool(view.canResubscribeAll),
        ]
        return privatePage(Response.html(bytes: try app.templates.renderBytes("subscriber/manage.html", values), status: status))
    }

    /// Unknown, forged, altered or voided links all look the same.
    static func invalidLink(_ app: WebApp) -> Response {
        let values: TemplateDict = ["en": SubscriberText.values("en"), "ru": SubscriberText.values("ru")]
        let html = (try? app.templates.renderBytes("subscriber/invalid.html", values)) ?? Array("Not found".utf8)
        return privatePage(Response.html(bytes: html, status: 404))
    }

    /// The page names a person: never cached, never sent on as a referrer, never indexed.
    static func privatePage(_ response: Response) -> Response {
        var r = response
        r.setHeader("Cache-Control", "no-store")
        r.setHeader("Referrer-Policy", "no-referrer")
        r.setHeader("X-Robots-Tag", "noindex")
        return r
    }
}

/// The double opt-in link: GET shows what is to be confirmed and a button (mail scanners follow links, so a GET
/// never confirms); POST confirms.
enum ConfirmationPages {
    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let token = ctx.params["token"] ?? ""
        return try render(app, token: token, try app.services.manager.confirmation(token: token),
                           justConfirmed: ctx.request.query["done"] == "confirmed")
    }

    static func confirm(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let token = ctx.params["token"] ?? ""
        let view = try app.services.manager.confirmation(token: token)
        guard view.state != .invalid else { return SubscriberPages.invalidLink(app) }
        guard try app.services.links.checkFormToken(ctx.form["form_token"] ?? "", for: token) else { throw HTTPError.csrf }
        let after = try app.services.manager.confirm(token: token)
        if after.state == .confirmed && view.state == .waiting {
            return Response.redirect(to: SubscriberLinks.confirmPrefix + token + "?done=confirmed", status: 303)
        }
        return try render(app, token: token, after, justConfirmed: false)
    }

    static func render(_ app: WebApp, token: String, _ view: ConfirmationView, justConfirmed: Bool) throws -> Response {
        if view.state == .invalid { return SubscriberPages.invalidLink(app) }
        let language = view.database?.smLanguage ?? "en"
        let words = SubscriberText.words(language)
        let message: String
        switch view.state {
        case .waiting: message = ""
        case .confirmed: message = justConfirmed ? words["confirmed"] ?? "" : words["already_confirmed"] ?? ""
        case .notConfirmable: message = words["not_confirmable"] ?? ""
        case .expired, .invalid: message = words["expired"] ?? ""
        }
        let values: TemplateDict = [
            "lang": .string(language == "ru" ? "ru" : "en"),
            "t": SubscriberText.values(language),
            "title": .string(words["confirm_title"] ?? ""),
            "action": .string(SubscriberLinks.confirmPrefix + token),
            "form_token": .string(try app.services.links.formToken(for: token)),
            "waiting": .bool(view.state == .waiting),
            "message": .string(message),
            "resource": .string(view.resourceName),
            "channel": .string(view.channel?.label ?? ""),
            "contact": .string(view.maskedContact),
        ]
        let status = view.state == .expired ? 410 : 200
        return SubscriberPages.privatePage(Response.html(bytes: try app.templates.renderBytes("subscriber/confirm.html", values),
                                                          status: status))
    }
}
