import Foundation
import XCTest

/// The real release binary behind the real nginx, driven over HTTP on loopback.
final class ServerThroughNginxTests: RosterServerTestCase {
    func get(_ path: String, _ jar: Jar) throws -> HTTPReply {
        try httpRequest(port: server.httpPort, method: "GET", path: path, headers: jar.header)
    }

    func post(_ path: String, _ fields: [(String, String)], _ jar: Jar, extra: [String: String] = [:]) throws -> HTTPReply {
        var headers = jar.header.merging(extra) { a, _ in a }
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return try httpRequest(port: server.httpPort, method: "POST", path: path, headers: headers, body: formBody(fields))
    }

    func testLoginDatabasesCSRFAndLogout() throws {
        var jar = Jar()
        let root = try get("/", jar)
        XCTAssertEqual(root.status, 302)
        let guarded = try get("/databases", jar)
        XCTAssertEqual(guarded.status, 303)
        XCTAssertEqual(guarded.header("Location"), "/login?next=%2Fdatabases")

        let loginPage = try get("/login", jar)
        XCTAssertEqual(loginPage.status, 200)
        XCTAssertTrue(loginPage.body.contains("<h1>Sign in to Roster</h1>"))
        jar.take(loginPage)
        let loginToken = csrfToken(in: loginPage.body)
        XCTAssertFalse(loginToken.isEmpty)

        let wrong = try post("/login", [("csrf_token", loginToken), ("email", server.adminEmail), ("password", "not the password")], jar)
        XCTAssertEqual(wrong.status, 401)
        XCTAssertTrue(wrong.body.contains("The email or the password is wrong."))
        XCTAssertTrue(wrong.headers("Set-Cookie").allSatisfy { !$0.hasPrefix("roster_session=") })

        let login = try post("/login", [("csrf_token", loginToken), ("email", server.adminEmail), ("password", server.adminPassword)], jar)
        XCTAssertEqual(login.status, 303)
        XCTAssertEqual(login.header("Location"), "/databases")
        jar.take(login)
        XCTAssertNotNil(jar.cookies["roster_session"])

        let databases = try get("/databases", jar)
        XCTAssertEqual(databases.status, 200)
        XCTAssertTrue(databases.body.contains("<h1>Databases</h1>"))
        for nav in ["/databases", "/segments", "/tasks", "/settings"] {
            XCTAssertTrue(databases.body.contains("href=\"\(nav)\""), nav)
        }
        let pageToken = csrfToken(in: databases.body)

        let forged = try post("/settings/users", [("email", "x@example.com"), ("role", "admin"), ("password", "xxxxxxxxxxxx")], jar)
        XCTAssertEqual(forged.status, 403)
        XCTAssertTrue(forged.body.contains("The form could not be accepted"))

        let logout = try post("/logout", [("csrf_token", pageToken)], jar)
        XCTAssertEqual(logout.status, 303)
        let stale = jar
        jar.take(logout)
        XCTAssertNil(jar.cookies["roster_session"])
        let replay = try get("/databases", stale)
        XCTAssertEqual(replay.status, 303, "the old cookie no longer works after logout")

        let (_, users) = try server.command(["user", "list"])
        XCTAssertFalse(users.contains("x@example.com"), "the forged POST wrote nothing")
    }

    func testSecurityHeadersOnPagesErrorsAndStaticFiles() throws {
        let jar = Jar()
        for path in ["/login", "/no-such-page", "/static/app.css"] {
            let reply = try get(path, jar)
            let csp = reply.header("Content-Security-Policy") ?? ""
            XCTAssertTrue(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "\(path): \(csp)")
            XCTAssertEqual(reply.header("X-Content-Type-Options"), "nosniff", path)
            XCTAssertEqual(reply.header("Referrer-Policy"), "same-origin", path)
        }
        let css = try get("/static/app.css", jar)
        XCTAssertEqual(css.status, 200)
        XCTAssertEqual(css.header("Content-Type"), "text/css")
        XCTAssertNil(css.header("X-Request-Id"), "nginx serves Public/ itself")
        let missing = try get("/no-such-page", jar)
        XCTAssertEqual(missing.status, 404)
        XCTAssertTrue(missing.body.contains("Page not found"))
    }

    func testOversizedBodiesGet413FromNginx() throws {
        let big = [UInt8](repeating: UInt8(ascii: "a"), count: 2 << 20)
        let reply = try httpRequest(port: server.httpPort, method: "POST", path: "/login",
                                    headers: ["Content-Type": "application/x-www-form-urlencoded"], body: big)
        XCTAssertEqual(reply.status, 413)
        // The API location takes larger bodies (up to 12m): this one reaches the app, which has no such route yet.
        let api = try httpRequest(port: server.httpPort, method: "POST", path: "/api/v1.1/nothing",
                                  headers: ["Content-Type": "application/json"], body: big)
        XCTAssertNotEqual(api.status, 413)
        let huge = [UInt8](repeating: UInt8(ascii: "a"), count: 13 << 20)
        let tooBig = try httpRequest(port: server.httpPort, method: "POST", path: "/api/v1.1/nothing",
                                     headers: ["Content-Type": "application/json"], body: huge)
        XCTAssertEqual(tooBig.status, 413)
    }

    func testWrongMethodAndMalformedBodyGetClearErrors() throws {
        var jar = Jar()
        let page = try get("/login", jar)
        jar.take(page)
        let put = try httpRequest(port: server.httpPort, method: "PUT", path: "/login", headers: jar.header)
        XCTAssertEqual(put.status, 405)
        var headers = jar.header
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        let broken = try httpRequest(port: server.httpPort, method: "POST", path: "/login", headers: headers, body: Array("email=%E0%A4%A".utf8))
        XCTAssertEqual(broken.status, 400)
    }

    func testSIGTERMStopsCleanlyAndDataSurvivesARestart() throws {
        var jar = Jar()
        let page = try get("/login", jar)
        jar.take(page)
        XCTAssertEqual(try post("/login", [("csrf_token", csrfToken(in: page.body)), ("email", server.adminEmail), ("password", server.adminPassword)], jar).status, 303)
        XCTAssertEqual(server.stopApp(), 0, "SIGTERM is a clean exit: \(server.appLog)")
        XCTAssertTrue(server.appLog.contains("roster: stopped"), server.appLog)
        let down = try get("/login", jar)
        XCTAssertEqual(down.status, 502, "nginx answers, the app is gone")

        // A second bootstrap (as a second `make run` does) changes no password.
        let (status, output) = try server.command(["bootstrap"], environment: ["ROSTER_ADMIN_PASSWORD": "another password!"])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(output.contains("users exist already"), output)
        let (check, integrity) = try server.command(["migrate"])
        XCTAssertEqual(check, 0, integrity)
    }

    func testCLIAddsAUserWhoCanSignIn() throws {
        let (status, output) = try server.command(["user", "add", "--email", "viewer@example.com", "--role", "viewer", "--name", "Vi"], stdin: "viewer password 1\n")
        XCTAssertEqual(status, 0, output)
        let (badStatus, badOutput) = try server.command(["user", "add", "--email", "x@example.com", "--role", "root"], stdin: "whatever pass\n")
        XCTAssertNotEqual(badStatus, 0)
        XCTAssertTrue(badOutput.contains("--role"), badOutput)
        var jar = Jar()
        let page = try get("/login", jar)
        jar.take(page)
        let login = try post("/login", [("csrf_token", csrfToken(in: page.body)), ("email", "viewer@example.com"), ("password", "viewer password 1")], jar)
        XCTAssertEqual(login.status, 303)
        jar.take(login)
        let settings = try get("/settings", jar)
        XCTAssertTrue(settings.body.contains("Viewer"))
        XCTAssertFalse(settings.body.contains("Add a user"))
    }

    func signIn() throws -> Jar {
        var jar = Jar()
        let page = try get("/login", jar)
        jar.take(page)
        let login = try post("/login", [("csrf_token", csrfToken(in: page.body)), ("email", server.adminEmail), ("password", server.adminPassword)], jar)
        XCTAssertEqual(login.status, 303)
        jar.take(login)
        return jar
    }

    func testDatabaseFromCLIThenExportRunsInTheBackgroundAndStreamsThroughNginx() throws {
        let structure = server.folder.appendingPathComponent("s.json")
        try #"{"format": "roster-database-structure/1", "name": "Shop <b>", "custom_fields": [{"name": "score", "type": "number"}]}"#
            .write(to: structure, atomically: true, encoding: .utf8)
        let (status, output) = try server.command(["database", "create", "--structure", structure.path])
        XCTAssertEqual(status, 0, output)
        let id = output.trimmingCharacters(in: .whitespacesAndNewlines)
        let jar = try signIn()
        let list = try get("/databases", jar)
        XCTAssertTrue(list.body.contains("Shop &lt;b&gt;"), "names are escaped")
        let form = try get("/databases/\(id)/export", jar)
        XCTAssertEqual(form.status, 200)
        let started = try post("/databases/\(id)/export", [("csrf_token", csrfToken(in: form.body)), ("fields", "email"), ("fields", "score")], jar)
        XCTAssertEqual(started.status, 303)
        let task = try XCTUnwrap(started.header("Location"))
        var done = false
        for _ in 0..<100 where !done {
            done = try get(task, jar).body.contains("Download the CSV")
            if !done { usleep(50_000) }
        }
        XCTAssertTrue(done, "the task runner finished the export")
        let file = try get(task + "/download", jar)
        XCTAssertEqual(file.status, 200)
        XCTAssertEqual(file.body, "profile_id,status,email,score\r\n")
        XCTAssertEqual(file.header("Content-Length"), "31")
    }

    /// A 3 MB CSV goes through nginx (its 1 MB page limit does not apply to imports), is spooled to disk by the
    /// app, mapped, and imported by the task runner.
    func testLargeCSVUploadThroughNginxIsImported() throws {
        let structure = server.folder.appendingPathComponent("s.json")
        try #"{"format": "roster-database-structure/1", "name": "Big", "custom_fields": [{"name": "note", "type": "line"}]}"#
            .write(to: structure, atomically: true, encoding: .utf8)
        let (status, output) = try server.command(["database", "create", "--structure", structure.path])
        XCTAssertEqual(status, 0, output)
        let id = output.trimmingCharacters(in: .whitespacesAndNewlines)
        let jar = try signIn()
        let form = try get("/databases/\(id)/import", jar)
        XCTAssertEqual(form.status, 200)
        let rows = 20_000
        var csv = "email,note\r\n"
        let padding = String(repeating: "n", count: 130)
        for i in 0..<rows { csv += "user\(i)@example.com,\(padding)\(i)\r\n" }
        let boundary = "----rosterIntegration42"
        var body = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n\(csrfToken(in: form.body))\r\n".utf8)
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n".utf8)
        body += Array(csv.utf8)
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        XCTAssertGreaterThan(body.count, 2 << 20)
        let mapping = try httpRequest(port: server.httpPort, method: "POST", path: "/databases/\(id)/import",
                                      headers: jar.header.merging(["Content-Type": "multipart/form-data; boundary=\(boundary)"]) { a, _ in a }, body: body)
        XCTAssertEqual(mapping.status, 200, String(mapping.body.prefix(500)))
        guard let r = mapping.body.range(of: "name=\"upload\" value=\"") else { return XCTFail("no upload token") }
        let upload = String(mapping.body[r.upperBound...].prefix { $0 != "\"" })
        let started = try post("/databases/\(id)/import/start", [("csrf_token", csrfToken(in: mapping.body)), ("upload", upload), ("filename", "big.csv"),
                                                                 ("column_0", "email"), ("column_1", "note"), ("match", "email"), ("existing", "update")], jar)
        XCTAssertEqual(started.status, 303, started.body)
        let task = try XCTUnwrap(started.header("Location"))
        var page = ""
        for _ in 0..<600 {
            page = try get(task, jar).body
            if page.contains("state-done") || page.contains("state-failed") { break }
            usleep(100_000)
        }
        XCTAssertTrue(page.contains("state-done"), page)
        XCTAssertTrue(page.contains("20,000 of 20,000"), page)
        let spool = server.folder.appendingPathComponent("data/uploads").path
        let left = (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []
        XCTAssertEqual(left.filter { $0.hasPrefix("body-") || $0.hasPrefix("part-") || $0.hasPrefix("import-") }, [], "spooled files are cleaned up")
    }

    /// A script with a token from the CLI calls update_batch through nginx: no cookie, no CSRF token; a 50 MB body is
    /// refused by nginx before the app sees it.
    func testBatchAPIThroughNginx() throws {
        let structure = server.folder.appendingPathComponent("s.json")
        try #"{"format": "roster-database-structure/1", "name": "API", "custom_fields": [{"name": "score", "type": "number"}]}"#
            .write(to: structure, atomically: true, encoding: .utf8)
        let (_, id) = try server.command(["database", "create", "--structure", structure.path])
        let db = id.trimmingCharacters(in: .whitespacesAndNewlines)
        let (status, tokenOut) = try server.command(["token", "create", "--name", "script", "--databases", db])
        XCTAssertEqual(status, 0, tokenOut)
        let token = tokenOut.trimmingCharacters(in: .whitespacesAndNewlines)
        let add = #"{"token": "\#(token)", "db_id": \#(db), "data": [{"email": "api@example.com", "score": 5}]}"#
        let created = try httpRequest(port: server.httpPort, method: "POST", path: "/api/v1.1/profiles/add_batch",
                                      headers: ["Content-Type": "application/json"], body: Array(add.utf8))
        XCTAssertEqual(created.status, 200, created.body)
        XCTAssertTrue(created.body.contains("\"error\":0"), created.body)
        let update = #"{"token": "\#(token)", "db_id": \#(db), "data": [{"email": "api@example.com", "score": 6}]}"#
        let updated = try httpRequest(port: server.httpPort, method: "POST", path: "/api/v1.1/profiles/update_batch",
                                      headers: ["Content-Type": "application/json"], body: Array(update.utf8))
        XCTAssertEqual(updated.header("Content-Type"), "application/json; charset=utf-8")
        XCTAssertTrue(updated.body.hasPrefix(#"{"error":0,"error_text":"Successful operation","result":[{"error":0"#), updated.body)
        XCTAssertEqual(try server.sql("SELECT c_1 FROM profiles_\(db) WHERE email = 'api@example.com'").isEmpty, false)
        let huge = [UInt8](repeating: UInt8(ascii: " "), count: 50 << 20)
        let refused = try httpRequest(port: server.httpPort, method: "POST", path: "/api/v1.1/profiles/update_batch",
                                      headers: ["Content-Type": "application/json"], body: huge, timeout: 60)
        XCTAssertEqual(refused.status, 413)
        XCTAssertFalse(server.appLog.contains(token), "tokens are never logged")
    }

    /// The hostile requests of the route fuzzer that matter most, sent through nginx to the release binary: the app
    /// answers each without a 5xx, keeps serving, and stores nothing for requests it refuses.
    func testHostileRequestsThroughNginxLeaveTheAppServingAndNothingBehind() throws {
        let structure = server.folder.appendingPathComponent("s.json")
        try #"{"format": "roster-database-structure/1", "name": "Hostile", "custom_fields": []}"#.write(to: structure, atomically: true, encoding: .utf8)
        let (status, output) = try server.command(["database", "create", "--structure", structure.path])
        XCTAssertEqual(status, 0, output)
        let id = output.trimmingCharacters(in: .whitespacesAndNewlines)
        let jar = try signIn()
        let token = csrfToken(in: try get("/databases/\(id)/import", jar).body)
        var fields: [(String, String)] = [("csrf_token", token), ("database", id), ("name", "S"), ("action", "count:r")]
        for path in ["r", "r.", "r.0", "r..1", "r.x"] { fields += [("node", path), ("kind_\(path)", "rule")] }
        for i in 0..<5_000 { fields += [("node", "r.\(i)")] }
        let hostile: [(String, String, [(String, String)]?)] = [
            ("GET", "/databases/\(id)/profiles?after=9223372036854775807&sort=%E2%80%AE&q=%00", nil),
            ("GET", "/segments/new?database=-9223372036854775808", nil),
            ("GET", "/tasks/9223372036854775807", nil),
            ("GET", "/login?next=/%09/evil.example", nil),
            ("POST", "/segments/new", fields),
            ("POST", "/databases/\(id)/bulk-update", [("csrf_token", token), ("node", "r"), ("node", "r."), ("bulk_action", "unsubscribe"), ("action", "preview")]),
        ]
        for (method, path, form) in hostile {
            let reply = method == "GET" ? try get(path, jar) : try post(path, form ?? [], jar)
            XCTAssertLessThan(reply.status, 500, "\(method) \(path)")
        }
        // A 3 MB upload (spooled by the app) without a session, and with a forged token: refused, nothing stored.
        let boundary = "----rosterHostile"
        func upload(_ csrf: String) -> [UInt8] {
            var body = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n\(csrf)\r\n".utf8)
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n\r\n".utf8)
            body += Array(String(repeating: "someone@example.com\r\n", count: 150_000).utf8)
            return body + Array("\r\n--\(boundary)--\r\n".utf8)
        }
        let type = ["Content-Type": "multipart/form-data; boundary=\(boundary)"]
        let anonymous = try httpRequest(port: server.httpPort, method: "POST", path: "/databases/\(id)/import", headers: type, body: upload("x"))
        XCTAssertEqual(anonymous.status, 401)
        let forged = try httpRequest(port: server.httpPort, method: "POST", path: "/databases/\(id)/import",
                                     headers: jar.header.merging(type) { a, _ in a }, body: upload("forged"))
        XCTAssertEqual(forged.status, 403)
        let uploads = server.folder.appendingPathComponent("data/uploads").path
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: uploads)) ?? [], [], "nothing stored for refused uploads")
        XCTAssertEqual(try get("/login", Jar()).status, 200, "the app still serves")
        XCTAssertTrue(try server.storeIsIntact())
    }
}
