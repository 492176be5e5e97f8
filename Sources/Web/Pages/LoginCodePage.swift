import HTTP
import Roster

/// GET /login/code asks for the second factor after a right password; POST /login/code checks it (throttled like
/// passwords) and starts the session. The pending sign-in lives in a short cookie that only /login paths see.
enum LoginCodePage {
    static let challengeCookie = "roster_2fa"

    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        if ctx.session != nil { return Response.redirect(to: LoginPage.safeNext(ctx.request.query["next"]), status: 303) }
        guard ctx.request.cookie(challengeCookie) != nil else { return Response.redirect(to: "/login", status: 303) }
        return try render(app, ctx, error: nil, status: 200)
    }

    static func submit(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let challenge = ctx.request.cookie(challengeCookie) ?? ""
        let code = ctx.form["code"] ?? ""
        switch try app.accounts.completeSignIn(challenge: challenge, code: code, remoteAddress: ctx.request.remoteAddress) {
        case .success(let token, _):
            if let old = ctx.sessionToken { try app.accounts.logout(token: old) }
            var response = Response.redirect(to: LoginPage.safeNext(ctx.form["next"]), status: 303)
            response.addHeader("Set-Cookie", app.sessionCookie(value: token, request: ctx.request, maxAge: nil))
            response.addHeader("Set-Cookie", clearCookie(challengeCookie))
            response.addHeader("Set-Cookie", clearCookie(WebApp.loginCSRFCookie))
            return response
        case .invalidCredentials:
            return try render(app, ctx, error: "This code is not right, or it was already used.", status: 401)
        case .throttled(let seconds):
            var response = try render(app, ctx, error: LoginPage.throttledMessage(seconds), status: 429)
            response.addHeader("Retry-After", String(seconds))
            return response
        case .challengeExpired, .secondFactorRequired:
            var response = try LoginPage.render(app, ctx, email: "", error: "The sign-in took too long. Enter your password again.",
                                                status: 401)
            response.addHeader("Set-Cookie", clearCookie(challengeCookie))
            return response
        }
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, error: String?, status: Int) throws -> Response {
        let csrf = LoginPage.loginCSRF(ctx)
        let next = ctx.request.method == "POST" ? (ctx.form["next"] ?? "") : (ctx.request.query["next"] ?? "")
        var response = try app.page("login_code.html", title: "Sign in: code", context: ctx, status: status, [
            "error": TemplateValue(error),
            "next": .string(LoginPage.safeNext(next) == "/databases" ? "" : LoginPage.safeNext(next)),
            "login_csrf": .string(csrf),
        ])
        response.addHeader("Set-Cookie", LoginPage.loginCSRFCookie(csrf, app: app, ctx: ctx))
        return response
    }

    static func setCookie(_ challenge: String, app: WebApp, ctx: RequestContext) -> String {
        var cookie = "\(challengeCookie)=\(challenge); Path=/login; HttpOnly; SameSite=Strict; Max-Age=\(app.accounts.policy.challengeLifetime)"
        if ctx.request.isHTTPS || app.configuration.forceSecureCookies { cookie += "; Secure" }
        return cookie
    }

    static func clearCookie(_ name: String) -> String { "\(name)=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0" }
}
