import Foundation
import XCTest

/// `roster copy-store --from sqlite:PATH --to postgres://…` as an operator runs it: refused while a server holds the
/// SQLite folder; then, with the server stopped, the installation moves and `roster serve` on PostgreSQL answers
/// the same sign-in and pages.
final class CopyStoreCommandTests: XCTestCase {
    func testAnInstallationMovesToPostgreSQLWithTheCommand() throws {
        let env = ProcessInfo.processInfo.environment
        guard let cluster = env["ROSTER_TEST_POSTGRES_URL"], !cluster.isEmpty else {
            if env["ROSTER_TEST_POSTGRES_REQUIRED"] == "1" { throw HarnessError(description: "ROSTER_TEST_POSTGRES_URL is not set") }
            throw XCTSkip("no PostgreSQL test cluster (make test starts one)")
        }
        // The SQLite installation, whichever store the suite runs on.
        let server = try RunningRoster(store: .sqlite)
        defer { server.stop() }
        try server.start()
        let (seeded, output) = try server.command(["seed", "--database", "Moving", "--profiles", "300"])
        XCTAssertEqual(seeded, 0, output)
        let sqlitePath = server.folder.appendingPathComponent("data/roster.sqlite").path
        let before = try server.sql("SELECT COUNT(*) FROM profiles_1") + " " + server.sql("SELECT COUNT(*) FROM history_1")

        let name = "copy_\(UUID().uuidString.prefix(8).lowercased())"
        _ = try psql(cluster, "CREATE DATABASE \(name)")
        defer { _ = try? psql(cluster, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        let url = cluster.replacingOccurrences(of: "/roster?", with: "/\(name)?")
        let refused = try server.command(["copy-store", "--from", "sqlite:" + sqlitePath, "--to", url])
        XCTAssertNotEqual(refused.0, 0, "refused while serve holds the folder")
        XCTAssertTrue(refused.1.contains("stop it first"), refused.1)

        XCTAssertEqual(server.stopApp(), 0)
        let (copied, report) = try server.command(["copy-store", "--from", "sqlite:" + sqlitePath, "--to", url])
        XCTAssertEqual(copied, 0, report)
        XCTAssertTrue(report.contains("every table's count matches"), report)
        XCTAssertEqual(try psql(url, "SELECT COUNT(*) FROM profiles_1") + " " + psql(url, "SELECT COUNT(*) FROM history_1"), before)
        let again = try server.command(["copy-store", "--from", "sqlite:" + sqlitePath, "--to", url])
        XCTAssertNotEqual(again.0, 0, "a second copy into a database with data is refused")

        // The same app on PostgreSQL: the admin signs in with the same password and finds the database.
        server.extraEnvironment["ROSTER_DATABASE_URL"] = url
        try server.restartApp()
        var jar = Jar()
        let page = try httpRequest(port: server.httpPort, method: "GET", path: "/login")
        jar.take(page)
        let login = try httpRequest(port: server.httpPort, method: "POST", path: "/login",
                                    headers: jar.header.merging(["Content-Type": "application/x-www-form-urlencoded"]) { a, _ in a },
                                    body: formBody([("csrf_token", csrfToken(in: page.body)), ("email", server.adminEmail),
                                                    ("password", server.adminPassword)]))
        XCTAssertEqual(login.status, 303)
        jar.take(login)
        let databases = try httpRequest(port: server.httpPort, method: "GET", path: "/databases", headers: jar.header)
        XCTAssertEqual(databases.status, 200)
        XCTAssertTrue(databases.body.contains("Moving"), databases.body)
        XCTAssertTrue(server.appLog.contains("data in postgresql://"), "the server says where its data is")
    }
}
