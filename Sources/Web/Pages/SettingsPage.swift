import Foundation
import HTTP
import Roster

/// GET /settings: the user's own account; for admins, the users of this installation.
enum SettingsPage {
    /// Notices after a redirect are picked from this list by key, so no text from the URL is ever shown.
    static let notices: [String: String] = [
        "password-changed": "Your password was changed. Your other sessions were signed out.",
        "user-created": "The user was added.",
        "role-changed": "The role was changed.",
        "user-deleted": "The user was deleted.",
        "password-reset": "The password was set, and that user's sessions were signed out.",
        "webhook-added": "The webhook was added. Its signing secret is shown in the list.",
        "webhook-deleted": "The webhook was deleted.",
        "token-revoked": "The token was revoked; requests with it are refused from now on.",
        "approvals-saved": "The approval rules were saved. They apply to bulk updates launched from now on.",
        "two-factor-reset": "That user's two-factor sign-in is off and their sessions were signed out.",
        "security-saved": "Saved. Users whom the rule names set up two-factor sign-in at their next page.",
        "links-rotated": "Subscribers' links have a new key. Every subscription-manager link sent before no longer works.",
    ]

    struct FormState {
        var errors: [String: String] = [:]
        var newUser: [String: String] = [:]
        /// Which form the errors belong to.
        var form = ""
        /// A token just created: its name and secret, shown this once.
        var newToken: (name: String, token: String)?
    }

    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try render(app, ctx, state: FormState(), status: 200)
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, state: FormState, status: Int) throws -> Response {
        let me = try ctx.requireUser()
        var users: [TemplateValue] = []
        if me.role.canManageUsers {
            users = try app.accounts.listUsers().map { user in
                [
                    "id": .string(String(user.id)),
                    "email": .string(user.email),
                    "name": .string(user.name),
                    "role": .string(user.role.rawValue),
                    "role_label": .string(user.role.label),
                    "is_me": .bool(user.id == me.id),
                    "created": .string(DateText.day(user.createdAt)),
                    "two_factor": .bool(user.twoFactorEnabled),
                    "roles": .list(Role.allCases.map { role in
                        ["value": .string(role.rawValue), "label": .string(role.label), "selected": .bool(role == user.role)]
                    }),
                    "error": TemplateValue(state.form == "user-\(user.id)" ? state.errors.values.sorted().first : nil),
                ]
            }
        }
        let newRole = state.newUser["role"] ?? Role.editor.rawValue
        let errors = state.errors
        func err(_ form: String, _ key: String) -> TemplateValue {
            state.form == form ? TemplateValue(errors[key]) : .null
        }
        var tokens: [TemplateValue] = []
        var databaseChoices: [TemplateValue] = []
        if me.role.canManageUsers {
            let names = Dictionary(try app.services.databases.list().map { ($0.database.id, $0.database.name) }, uniquingKeysWith: { a, _ in a })
            tokens = try app.services.apiTokens.list().map { t in
                ["id": .string(String(t.id)), "name": .string(t.name), "databases": .string(t.databaseIDs.map { names[$0] ?? "#\($0)" }.joined(separator: ", ")),
                 "created": .string(View.time(t.createdAt)), "used": .string(t.lastUsedAt.map(View.time) ?? "never"), "revoked": .bool(t.revoked)]
            }
            databaseChoices = names.sorted { $0.value < $1.value }.map { ["id": .string(String($0.key)), "name": .string($0.value)] }
        }
        var webhooks: [TemplateValue] = []
        var deliveries: [TemplateValue] = []
        if me.role.canManageUsers {
            webhooks = try app.services.webhooks.list().map { w in
                ["id": .string(String(w.id)), "url": .string(w.url), "secret": .string(w.secret), "pending": .string(View.count(w.pending)),
                 "failures": .int(w.failures), "retry": .string(w.nextAttemptAt > 0 ? View.time(w.nextAttemptAt) : "")]
            }
            deliveries = try app.services.webhooks.recentDeliveries(limit: 20).map { d in
                ["webhook": .string(String(d.webhookID)), "events": .string("\(d.firstEvent)–\(d.lastEvent) (\(d.events))"), "attempt": .int(d.attempt),
                 "status": .string(d.statusCode.map(String.init) ?? "—"), "ok": .bool(d.statusCode.map { (200..<300).contains($0) } ?? false),
                 "error": .string(d.error), "at": .string(View.time(d.at))]
            }
        }
        var approvals: TemplateValue = .null
        if me.role.canManageUsers {
            let rules = try app.services.approvals.rules()
            let typed = state.form == "approvals" ? state.newUser["over_profiles"] : nil
            approvals = ["delete_inactive": .bool(rules.deleteInactive), "unsubscribe": .bool(rules.unsubscribe),
                         "over_profiles": .string(typed ?? rules.overProfiles.map(String.init) ?? "")]
        }
        // The archive of profiles deleted by bulk tasks (kept for their undo).
        var archive: TemplateValue = .null
        if me.role.canManageUsers {
            let size = try app.services.archive.size()
            archive = ["profiles": .string(View.count(size.profiles)), "size": .string(View.bytes(Int64(size.bytes))),
                       "days": .string(String(app.services.archive.days)), "oldest": TemplateValue(size.oldest.map(View.time))]
        }
        var backup: TemplateValue = .null
        if me.role.canManageUsers, let last = try app.services.backups.last() {
            backup = ["ok": .bool(last.ok), "finished": .string(View.time(last.finishedAt)), "size": .string(View.bytes(last.bytes)),
                      "kind": .string(last.scheduled ? "scheduled" : "by hand"), "path": .string(last.path), "message": .string(last.message)]
        }
        var security: TemplateValue = .null
        if me.role.canManageUsers {
            let current = try app.services.twoFactor.requirement()
            security = ["choices": .list(TwoFactorRequirement.allCases.map { choice in
                ["value": .string(choice.rawValue), "label": .string(choice.label), "selected": .bool(choice == current)]
            }), "error": err("security", "two_factor_required"),
                        "links_since": TemplateValue(try app.services.links.keyCreatedAt().map(View.time))]
        }
        return try app.page("settings/index.html", title: "Settings", context: ctx, nav: .settings, status: status, [
            "security": security, "two_factor": .bool(me.twoFactorEnabled),
            "approvals": approvals, "approvals_error": err("approvals", "over_profiles"), "archive": archive,
            "backup": backup, "backup_schedule": TemplateValue(app.configuration.backupSchedule),
            "webhooks": .list(webhooks), "deliveries": .list(deliveries), "webhook_error": err("webhook", "url"),
            "tokens": .list(tokens), "token_databases": .list(databaseChoices),
            "new_token": state.newToken.map { ["name": .string($0.name), "token": .string($0.token)] } ?? .null,
            "token_errors": ["name": err("token", "name"), "databases": err("token", "databases"), "expires": err("token", "expires")],
            "me": ["email": .string(me.email), "name": .string(me.name), "role_label": .string(me.role.label)],
            "notice": TemplateValue(ctx.request.query["done"].flatMap { notices[$0] }),
            "users": .list(users),
            "password_errors": [
                "current_password": err("password", "current_password"),
                "password": err("password", "password"),
                "password_confirm": err("password", "password_confirm"),
            ],
            "new_user": [
                "email": .string(state.newUser["email"] ?? ""),
                "name": .string(state.newUser["name"] ?? ""),
                "roles": .list(Role.allCases.map { role in
                    ["value": .string(role.rawValue), "label": .string(role.label), "selected": .bool(role.rawValue == newRole)]
                }),
                "errors": [
                    "email": err("new-user", "email"),
                    "name": err("new-user", "name"),
                    "password": err("new-user", "password"),
                    "role": err("new-user", "role"),
                ],
            ],
        ])
    }
}

/// POST /settings/password: change your own password (the current one is required).
enum PasswordChangeAction {
    static func run(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        guard let session = ctx.session else { throw HTTPError.forbidden }
        let new = ctx.form["password"] ?? ""
        if new != (ctx.form["password_confirm"] ?? "") {
            return try SettingsPage.render(app, ctx, state: .init(errors: ["password_confirm": "The two new passwords differ."], form: "password"), status: 422)
        }
        do {
            try app.accounts.changeOwnPassword(session: session, current: ctx.form["current_password"] ?? "", new: new)
        } catch let error as ValidationError {
            return try SettingsPage.render(app, ctx, state: .init(errors: error.fieldErrors, form: "password"), status: 422)
        }
        return Response.redirect(to: "/settings?done=password-changed")
    }
}

/// POST /settings/users: an admin adds a user.
enum UserCreateAction {
    static func run(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireAdmin()
        let typed = ["email": ctx.form["email"] ?? "", "name": ctx.form["name"] ?? "", "role": ctx.form["role"] ?? ""]
        guard let role = Role(rawValue: typed["role"] ?? "") else {
            return try SettingsPage.render(app, ctx, state: .init(errors: ["role": "Choose admin, editor or viewer."], newUser: typed, form: "new-user"), status: 422)
        }
        do {
            try app.accounts.createUser(email: typed["email"] ?? "", name: typed["name"] ?? "", role: role, password: ctx.form["password"] ?? "")
        } catch let error as ValidationError {
            return try SettingsPage.render(app, ctx, state: .init(errors: error.fieldErrors, newUser: typed, form: "new-user"), status: 422)
        }
        return Response.redirect(to: "/settings?done=user-created")
    }
}

/// POST /settings/users/:id/role
enum UserRoleAction {
    static func run(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireAdmin()
        let id = try ctx.int64Param("id")
        guard try app.accounts.user(id: id) != nil else { throw HTTPError.notFound }
        guard let role = Role(rawValue: ctx.form["role"] ?? "") else {
            return try SettingsPage.render(app, ctx, state: .init(errors: ["role": "Choose admin, editor or viewer."], form: "user-\(id)"), status: 422)
        }
        do {
            try app.accounts.setRole(userID: id, role: role)
        } catch let error as ValidationError {
            return try SettingsPage.render(app, ctx, state: .init(errors: error.fieldErrors, form: "user-\(id)"), status: 422)
        }
        return Response.redirect(to: "/settings?done=role-changed")
    }
}

/// POST /settings/users/:id/password: an admin sets another user's password.
enum UserPasswordResetAction {
    static func run(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireAdmin()
        let id = try ctx.int64Param("id")
        guard try app.accounts.user(id: id) != nil else { throw HTTPError.notFound }
        do {
            try app.accounts.setPassword(userID: id, password: ctx.form["password"] ?? "")
        } catch let error as ValidationError {
            return try SettingsPage.render(app, ctx, state: .init(errors: error.fieldErrors, form: "user-\(id)"), status: 422)
        }
        return Response.redirect(to: "/settings?done=password-reset")
    }
}

/// POST /settings/users/:id/delete
enum UserDeleteAction {
    static func run(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let admin = try ctx.requireAdmin()
        let id = try ctx.int64Param("id")
        guard try app.accounts.user(id: id) != nil else { throw HTTPError.notFound }
        do {
            try app.accounts.deleteUser(userID: id, actingUserID: admin.id)
        } catch let error as ValidationError {
            return try SettingsPage.render(app, ctx, state: .init(errors: error.fieldErrors, form: "user-\(id)"), status: 422)
        }
        return Response.redirect(to: "/settings?done=user-deleted")
    }
}

/// POST /settings/approvals: an admin sets which bulk updates need a second admin.
enum ApprovalRulesAction {
    static func run(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let admin = try ctx.requireAdmin()
        let typed = (ctx.form["over_profiles"] ?? "").trimmingCharacters(in: .whitespaces)
        var rules = ApprovalRules(deleteInactive: ctx.checkbox("delete_inactive"), unsubscribe: ctx.checkbox("unsubscribe"))
        func refuse(_ message: String) throws -> Response {
            try SettingsPage.render(app, ctx, state: .init(errors: ["over_profiles": message], newUser: ["over_profiles": typed],
                                                           form: "approvals"), status: 422)
        }
        if !typed.isEmpty {
            guard typed.count <= 10, let limit = Int(typed) else {
                return try refuse("Enter a whole number of profiles, or leave it empty.")
            }
            rules.overProfiles = limit
        }
        do {
            try app.services.approvals.save(rules, by: admin)
        } catch let error as ValidationError {
            return try refuse(error.fieldErrors["over_profiles"] ?? error.description)
        }
        return Response.redirect(to: "/settings?done=approvals-saved#approvals")
    }
}

enum DateText {
    static func day(_ seconds: Int64) -> String { UTCTime.day(seconds) }
}

/// POST /settings/webhooks adds a receiver of trigger events; POST /settings/webhooks/:id/delete removes it (admins).
enum WebhookActions {
    static func add(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireAdmin()
        do {
            try app.services.webhooks.add(url: ctx.form["url"] ?? "")
        } catch let error as ValidationError {
            var state = SettingsPage.FormState()
            state.errors = error.fieldErrors
            state.form = "webhook"
            return try SettingsPage.render(app, ctx, state: state, status: 422)
        }
        return Response.redirect(to: "/settings?done=webhook-added#webhooks")
    }

    static func delete(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireAdmin()
        do { try app.services.webhooks.delete(try ctx.int64Param("id")) } catch is ValidationError { throw HTTPError.notFound }
        return Response.redirect(to: "/settings?done=webhook-deleted#webhooks")
    }
}
