import Foundation
import HTTP
import Roster

/// GET /healthz and GET /metrics: for load balancers, supervisors and Prometheus, not for people.
enum OperationsPages {
    /// 200 when every check passes, 503 naming the failing ones. No session: nginx lets only its own side reach it.
    static func health(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let results = Checkup.health(pool: app.services.pool, tasks: app.services.tasks, files: app.services.files)
        let ok = results.allSatisfy(\.ok)
        let checks = JSONValue.object(Dictionary(results.map { ($0.name, JSONValue.object(["ok": .bool($0.ok), "detail": .string($0.detail)])) },
                                                 uniquingKeysWith: { a, _ in a }))
        var response = Response.text(JSONValue.object(["status": .string(ok ? "ok" : "failing"), "checks": checks]).canonical + "\n",
                                     status: ok ? 200 : 503)
        response.setHeader("Content-Type", "application/json")
        return response
    }

    /// Prometheus text format, for a client on this host or one that sends an admin's API token as a Bearer token.
    static func metrics(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        guard try mayScrape(app, ctx.request) else {
            var refused = Response.text("Metrics are served to this host, or with an admin's API token (Authorization: Bearer …).\n",
                                        status: 403)
            refused.setHeader("WWW-Authenticate", "Bearer")
            return refused
        }
        let g = try OperationsGauges.read(pool: app.services.pool, now: app.services.clock.now())
        var out = Metrics.shared.render()
        out += Metrics.gauge("roster_tasks", "Tasks by state.", TaskState.allCases.map {
            (labels: "state=\"\($0.rawValue)\"", value: Double(g.tasksByState[$0.rawValue] ?? 0))
        })
        out += Metrics.gauge("roster_webhook_backlog_events", "Trigger events not yet delivered, summed over active webhooks.",
                             [(labels: "", value: Double(g.webhookBacklog))])
        out += Metrics.gauge("roster_login_failures_recent", "Failed sign-ins and API-token checks in the last 15 minutes, by key kind.",
                             g.loginFailuresRecent.sorted { $0.key < $1.key }.map { (labels: "kind=\"\(Metrics.label($0.key))\"", value: Double($0.value)) })
        out += Metrics.gauge("roster_database_bytes", "Size of the SQLite database file.", [(labels: "", value: Double(g.databaseBytes))])
        out += Metrics.gauge("roster_wal_bytes", "Size of the SQLite write-ahead log.", [(labels: "", value: Double(g.walBytes))])
        out += Metrics.gauge("roster_last_backup_timestamp_seconds", "When the last backup finished (0: never).",
                             [(labels: "", value: Double(g.lastBackupAt ?? 0))])
        out += Metrics.gauge("roster_last_backup_ok", "1 when the last backup passed its checks.", [(labels: "", value: g.lastBackupOK ? 1 : 0)])
        var response = Response.text(out)
        response.setHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        return response
    }

    static func mayScrape(_ app: WebApp, _ request: Request) throws -> Bool {
        let address = request.remoteAddress
        if address == "::1" || address.hasPrefix("127.") { return true }
        guard let header = request.header("Authorization"), header.lowercased().hasPrefix("bearer ") else { return false }
        let token = String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        guard let found = try? app.services.apiTokens.authenticate(token, from: address), let creator = found.createdBy,
              let user = try app.accounts.user(id: creator) else { return false }
        return user.role == .admin
    }
}
