import HTTP
import Roster

/// The batch API (`POST /api/v1.1/profiles/update_batch`, `import_batch`, `add_batch`) and the admin's token
/// actions under Settings (`POST /settings/api-tokens`, `POST /settings/api-tokens/:id/revoke`).
enum APIPages {
    static func batch(_ mode: BatchAPI.Mode) -> @Sendable (WebApp, RequestContext) throws -> Response {
        { app, ctx in
            let type = (ctx.request.contentType ?? "").lowercased()
            let xml = type.hasPrefix("application/xml") || type.hasPrefix("text/xml")
            let answer = app.services.batch.handle(mode: mode, body: ctx.request.body, xml: xml, idempotencyKey: ctx.request.header("idempotency-key"),
                                                   address: ctx.request.remoteAddress)
            var response = Response(status: answer.status, headers: [("Content-Type", xml ? "application/xml; charset=utf-8" : "application/json; charset=utf-8")],
                                    body: Array(answer.body.utf8))
            if answer.replayed { response.addHeader("Idempotency-Replayed", "true") }
            return response
        }
    }

    static func sibling(_ kind: BatchAPI.Sibling) -> @Sendable (WebApp, RequestContext) throws -> Response {
        { app, ctx in
            let type = (ctx.request.contentType ?? "").lowercased()
            let xml = type.hasPrefix("application/xml") || type.hasPrefix("text/xml")
            let answer = app.services.batch.handle(kind, body: ctx.request.body, xml: xml, address: ctx.request.remoteAddress)
            return Response(status: answer.status, headers: [("Content-Type", xml ? "application/xml; charset=utf-8" : "application/json; charset=utf-8")],
                            body: Array(answer.body.utf8))
        }
    }

    static func createToken(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let admin = try ctx.requireAdmin()
        let ids = ctx.form.all("databases").compactMap { Int64($0) }
        do {
            let days = (ctx.form["expires_days"] ?? "").trimmingCharacters(in: .whitespaces)
            let (token, record) = try app.services.apiTokens.create(name: ctx.form["name"] ?? "", databaseIDs: ids, by: admin.id,
                                                                    expiresInDays: days.isEmpty ? nil : (Int(days) ?? -1))
            var state = SettingsPage.FormState()
            state.newToken = (record.name, token)
            return try SettingsPage.render(app, ctx, state: state, status: 200)
        } catch let error as ValidationError {
            var state = SettingsPage.FormState()
            state.errors = error.fieldErrors
            state.form = "token"
            return try SettingsPage.render(app, ctx, state: state, status: 422)
        }
    }

    static func revokeToken(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireAdmin()
        do { try app.services.apiTokens.revoke(try ctx.int64Param("id")) } catch is ValidationError { throw HTTPError.notFound }
        return Response.redirect(to: "/settings?done=token-revoked#api-tokens")
    }
}
