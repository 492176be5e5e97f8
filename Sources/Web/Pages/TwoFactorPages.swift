import HTTP
import Roster

/// Settings → Two-factor sign-in: set it up with a QR code, see and renew recovery codes, turn it off. Where the
/// requirement (Settings → Security) applies to a user without it, these pages and sign-out are all they can reach.
enum TwoFactorPages {
    static let path = "/settings/two-factor"

    static let notices: [String: String] = [
        "required": "Your role signs in with a second factor. Set it up to go on.",
        "disabled": "Two-factor sign-in is off. You sign in with your password only.",
    ]

    /// What a user who must set up a second factor may still reach.
    static func reachableWhileSettingUp(_ requestPath: String) -> Bool {
        requestPath == path || requestPath.hasPrefix(path + "/") || requestPath == "/logout"
    }

    struct State {
        var errors: [String: String] = [:]
        var form = ""
        var codes: [String] = []
    }

    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try render(app, ctx, State(), status: 200)
    }

    /// POST …/setup: a secret to set up (the one already waiting, if any); the page then shows its QR code.
    static func setup(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let me = try ctx.requireUser()
        _ = try app.services.twoFactor.pendingSecret(userID: me.id)
        return Response.redirect(to: path + "#setup")
    }

    /// POST …/confirm: the code the app shows turns it on; the recovery codes are shown this once.
    static func confirm(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try showingCodes(app, ctx, form: "confirm") { try app.services.twoFactor.confirmSetup(userID: $0, code: $1) }
    }

    /// POST …/recovery-codes: new recovery codes for a current code; the old ones stop working.
    static func renewCodes(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        try showingCodes(app, ctx, form: "codes") { try app.services.twoFactor.regenerateRecoveryCodes(userID: $0, code: $1) }
    }

    /// A form that takes a code and gives recovery codes: they are shown once, or the reason beside the form.
    static func showingCodes(_ app: WebApp, _ ctx: RequestContext, form: String,
                             _ action: (Int64, String) throws -> [String]) throws -> Response {
        let me = try ctx.requireUser()
        do {
            return try render(app, ctx, State(codes: try action(me.id, ctx.form["code"] ?? "")), status: 200)
        } catch let error as ValidationError {
            return try render(app, ctx, State(errors: error.fieldErrors, form: form), status: 422)
        }
    }

    /// POST …/disable: off, with the password.
    static func disable(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let me = try ctx.requireUser()
        do {
            try app.services.twoFactor.disable(user: me, password: ctx.form["password"] ?? "")
            return Response.redirect(to: path + "?done=disabled")
        } catch let error as ValidationError {
            return try render(app, ctx, State(errors: error.fieldErrors, form: "disable"), status: 422)
        }
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, _ state: State, status: Int) throws -> Response {
        let me = try ctx.requireUser()
        // Read again: the session's copy of the user predates a setup confirmed in this request.
        guard let user = try app.accounts.user(id: me.id) else { throw HTTPError.notFound }
        let service = app.services.twoFactor
        var setup: TemplateValue = .null
        if !user.twoFactorEnabled, let secret = try service.waitingSecret(userID: user.id) {
            let uri = TOTP.uri(secret: secret, account: user.email)
            setup = ["secret": .string(stride(from: 0, to: secret.count, by: 4).map { i in
                         String(secret.dropFirst(i).prefix(4)) }.joined(separator: " ")),
                     "uri": .string(uri),
                     "qr": QRCodeSVG.svg(uri, title: "QR code to scan with an authenticator app").map(TemplateValue.trustedHTML) ?? .null]
        }
        func err(_ form: String, _ key: String) -> TemplateValue { state.form == form ? TemplateValue(state.errors[key]) : .null }
        let required = try service.requirement().applies(to: user.role)
        return try app.page("settings/two_factor.html", title: "Two-factor sign-in", context: ctx, nav: .settings, status: status, [
            "enabled": .bool(user.twoFactorEnabled),
            "required": .bool(required),
            "codes_left": .int(user.twoFactorEnabled ? try service.recoveryCodesLeft(userID: user.id) : 0),
            "setup": setup,
            "codes": .list(state.codes.map { .string($0) }),
            "notice": TemplateValue(ctx.request.query["done"].flatMap { notices[$0] }),
            "errors": ["confirm": err("confirm", "code"), "codes": err("codes", "code"), "disable": err("disable", "password")],
        ])
    }
}

/// POST /settings/users/:id/two-factor-reset: an admin turns off another user's second factor (a lost phone).
enum TwoFactorResetAction {
    static func run(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let me = try ctx.requireAdmin()
        guard let id = ctx.params["id"].flatMap({ Int64($0) }) else { throw HTTPError.notFound }
        do {
            try app.services.twoFactor.reset(userID: id, actingUserID: me.id)
        } catch let error as ValidationError {
            return try SettingsPage.render(app, ctx, state: .init(errors: error.fieldErrors, form: "user-\(id)"), status: 422)
        }
        return Response.redirect(to: "/settings?done=two-factor-reset")
    }
}

/// POST /settings/subscriber-links/rotate: a new key for subscribers' links; every link sent before stops working.
enum SubscriberKeyRotateAction {
    static func run(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireAdmin()
        try app.services.links.rotate()
        return Response.redirect(to: "/settings?done=links-rotated#subscriber-links")
    }
}

/// POST /settings/security: who must sign in with a second factor.
enum SecuritySettingsAction {
    static func run(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireAdmin()
        do {
            try app.services.twoFactor.setRequirement(ctx.form["two_factor_required"] ?? "")
        } catch let error as ValidationError {
            return try SettingsPage.render(app, ctx, state: .init(errors: error.fieldErrors, form: "security"), status: 422)
        }
        return Response.redirect(to: "/settings?done=security-saved#security")
    }
}
