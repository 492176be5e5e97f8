import HTTP
import Roster
import Secrets

/// GET /login shows the form; POST /login checks the password and starts a new session.
enum LoginPage {
    static func show(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        if ctx.session != nil { return Response.redirect(to: safeNext(ctx.request.query["next"]), status: 303) }
        return try render(app, ctx, email: "", error: nil, status: 200)
    }

    static func submit(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let email = ctx.form["email"] ?? ""
        let password = ctx.form["password"] ?? ""
        switch try app.accounts.login(email: email, password: password, remoteAddress: ctx.request.remoteAddress) {
        case .invalidCredentials:
            return try render(app, ctx, email: email, error: "The email or the password is wrong.", status: 401)
        case .throttled(let seconds):
            var response = try render(app, ctx, email: email, error: throttledMessage(seconds), status: 429)
            response.addHeader("Retry-After", String(seconds))
            return response
        case .secondFactorRequired(let challenge):
            let next = safeNext(ctx.form["next"])
            var response = Response.redirect(to: "/login/code" + (next == "/databases" ? "" : "?next=" + FormData.encode(next)),
                                             status: 303)
            response.addHeader("Set-Cookie", LoginCodePage.setCookie(challenge, app: app, ctx: ctx))
            return response
        case .challengeExpired:
            return try render(app, ctx, email: email, error: "The email or the password is wrong.", status: 401)
        case .success(let token, _):
            // A fresh session id at every sign-in; whatever session the browser had before is ended.
            if let old = ctx.sessionToken { try app.accounts.logout(token: old) }
            var response = Response.redirect(to: safeNext(ctx.form["next"]), status: 303)
            response.addHeader("Set-Cookie", app.sessionCookie(value: token, request: ctx.request, maxAge: nil))
            response.addHeader("Set-Cookie", LoginCodePage.clearCookie(WebApp.loginCSRFCookie))
            return response
        }
    }

    static func render(_ app: WebApp, _ ctx: RequestContext, email: String, error: String?, status: Int) throws -> Response {
        let csrf = loginCSRF(ctx)
        let next = ctx.request.method == "POST" ? (ctx.form["next"] ?? "") : (ctx.request.query["next"] ?? "")
        var response = try app.page("login.html", title: "Sign in", context: ctx, status: status, [
            "email": .string(email),
            "error": TemplateValue(error),
            "next": .string(safeNext(next) == "/databases" ? "" : safeNext(next)),
            "login_csrf": .string(csrf),
        ])
        response.addHeader("Set-Cookie", loginCSRFCookie(csrf, app: app, ctx: ctx))
        return response
    }

    /// Before sign-in there is no session to hold a CSRF token: a random value goes both into a cookie and into the
    /// form, and POSTs to /login and /login/code require the two to match (double submit).
    static func loginCSRF(_ ctx: RequestContext) -> String {
        let existing = ctx.request.cookie(WebApp.loginCSRFCookie) ?? ""
        return existing.count >= 32 && existing.count <= 64 ? existing : Secrets.randomToken()
    }

    static func loginCSRFCookie(_ csrf: String, app: WebApp, ctx: RequestContext) -> String {
        var cookie = "\(WebApp.loginCSRFCookie)=\(csrf); Path=/login; HttpOnly; SameSite=Strict"
        if ctx.request.isHTTPS || app.configuration.forceSecureCookies { cookie += "; Secure" }
        return cookie
    }

    static func throttledMessage(_ seconds: Int) -> String {
        seconds < 120 ? "Too many failed sign-ins. Wait \(seconds) seconds, then try again."
            : "Too many failed sign-ins. Wait \(seconds / 60) minutes, then try again."
    }

    /// Only a path of this site: one leading `/`, then printable ASCII without `\` (browsers drop tabs and line
    /// breaks from URLs and read `\` as `/`, so `/\t/evil.example` would become `//evil.example`), at most 2 KB.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.utf8.count <= 2048, next.hasPrefix("/"),
              next.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "\\") }) else { return "/databases" }
        let afterSlash = next.utf8.dropFirst().first
        guard afterSlash != UInt8(ascii: "/") else { return "/databases" }
        return next
    }
}
