import HTTP

/// POST /logout ends the session on the server, not only in the browser.
enum LogoutAction {
    static func run(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        if let token = ctx.sessionToken { try app.accounts.logout(token: token) }
        var response = Response.redirect(to: "/login", status: 303)
        response.addHeader("Set-Cookie", app.sessionCookie(value: "", request: ctx.request, maxAge: 0))
        return response
    }
}
