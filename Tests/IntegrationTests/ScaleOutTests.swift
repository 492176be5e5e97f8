import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue #16: "Two app processes behind one nginx on one PostgreSQL: a signed-in session works on both; a bulk task
/// launched through one continues on the other after the first is killed with SIGKILL; an update_batch retried with
/// the same Idempotency-Key through the other host is applied once."
///
/// Two `roster serve` processes with their own data folders (and host ids), one PostgreSQL database, one shared files
/// folder; one nginx in front of both, and one nginx per host to reach a given host on purpose.
final class ScaleOutTests: XCTestCase {
    final class Host {
        let name: String
        let folder: URL
        let port: Int
        var environment: [String: String]
        var process: Process?
        let log: URL
        init(name: String, folder: URL, environment: [String: String]) throws {
            self.name = name
            self.folder = folder.appendingPathComponent(name)
            port = try freeLoopbackPort()
            log = folder.appendingPathComponent("\(name).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            self.environment = environment
            self.environment["ROSTER_DATA"] = self.folder.appendingPathComponent("data").path
            self.environment["ROSTER_LISTEN"] = "127.0.0.1:\(port)"
            self.environment["ROSTER_HOST_ID"] = name
        }
        func start(_ binary: String) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["serve"]
            p.environment = environment
            let handle = try FileHandle(forWritingTo: log)
            handle.seekToEndOfFile()
            p.standardOutput = handle
            p.standardError = handle
            try p.run()
            process = p
        }
        func kill9() {
            guard let process, process.isRunning else { return }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        func stop() {
            guard let process, process.isRunning else { return }
            process.terminate()
            process.waitUntilExit()
        }
        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
    }

    final class Nginx {
        let port: Int
        let process: Process
        init(folder: URL, name: String, apps: [String]) throws {
            port = try freeLoopbackPort()
            let prefix = folder.appendingPathComponent(name).path
            let prep = Process()
            prep.executableURL = URL(fileURLWithPath: "/bin/bash")
            prep.arguments = [repositoryRoot.appendingPathComponent("scripts/nginx-prefix.sh").path, prefix, String(port)] + apps
            try prep.run()
            prep.waitUntilExit()
            guard prep.terminationStatus == 0 else { throw HarnessError(description: "nginx-prefix.sh failed") }
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
            process.arguments = ["-p", prefix + "/", "-c", prefix + "/nginx.conf"]
            process.currentDirectoryURL = URL(fileURLWithPath: prefix)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
        }
        func stop() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGQUIT)
            process.waitUntilExit()
        }
    }

    var folder: URL!
    var hosts: [Host] = []
    var proxies: [Nginx] = []
    var databaseURL = ""
    var adminURL = ""
    var databaseName = ""
    let binary = repositoryRoot.appendingPathComponent(".build/release/roster").path
    let adminEmail = "admin@example.com"
    let adminPassword = "scale-out admin pw"

    func sql(_ query: String) throws -> String { try psql(databaseURL, query) }

    override func setUpWithError() throws {
        let env = ProcessInfo.processInfo.environment
        guard let cluster = env["ROSTER_TEST_POSTGRES_URL"], !cluster.isEmpty else {
            if env["ROSTER_TEST_POSTGRES_REQUIRED"] == "1" { throw HarnessError(description: "ROSTER_TEST_POSTGRES_URL is not set") }
            throw XCTSkip("no PostgreSQL test cluster (make test starts one)")
        }
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError(description: "\(binary) is missing: run `make test`, which builds the release binary first")
        }
        adminURL = cluster
        databaseName = "scaleout_\(UUID().uuidString.prefix(8).lowercased())"
        _ = try psql(cluster, "CREATE DATABASE \(databaseName)")
        databaseURL = cluster.replacingOccurrences(of: "/roster?", with: "/\(databaseName)?")
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("roster-scale-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        chmod(folder.path, 0o755)
        var shared = env
        shared["ROSTER_DATABASE_URL"] = databaseURL
        shared["ROSTER_FILES"] = folder.appendingPathComponent("shared-files").path
        shared["ROSTER_TEMPLATES"] = repositoryRoot.appendingPathComponent("Templates").path
        shared["ROSTER_WORKERS"] = "6"
        shared["ROSTER_ADMIN_EMAIL"] = adminEmail
        shared["ROSTER_ADMIN_PASSWORD"] = adminPassword
        shared["ROSTER_TASK_LEASE_SECONDS"] = "3"
        shared["ROSTER_TASK_PAUSE_MS"] = "300"
        hosts = [try Host(name: "host-a", folder: folder, environment: shared), try Host(name: "host-b", folder: folder, environment: shared)]
        let (status, output) = try command(["bootstrap"])
        XCTAssertEqual(status, 0, output)
        for host in hosts { try host.start(binary) }
        proxies = [try Nginx(folder: folder, name: "nginx-both", apps: hosts.map { "127.0.0.1:\($0.port)" })]
            + (try hosts.map { try Nginx(folder: folder, name: "nginx-\($0.name)", apps: ["127.0.0.1:\($0.port)"]) })
        for proxy in proxies { try waitForAnswer(proxy.port) }
    }

    override func tearDown() {
        for host in hosts { host.stop() }
        for proxy in proxies { proxy.stop() }
        if !databaseName.isEmpty { _ = try? psql(adminURL, "DROP DATABASE IF EXISTS \(databaseName) WITH (FORCE)") }
        if let folder { try? FileManager.default.removeItem(at: folder) }
    }

    /// A `roster` command with host A's configuration (any host's would do: they share the store).
    @discardableResult
    func command(_ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        p.environment = hosts[0].environment
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func waitForAnswer(_ port: Int) throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let reply = try? httpRequest(port: port, method: "GET", path: "/login", timeout: 2), reply.status == 200 { return }
            usleep(100_000)
        }
        throw HarnessError(description: "no answer on \(port); logs: \(hosts.map(\.output).joined(separator: "\n"))")
    }

    func signIn(port: Int) throws -> Jar {
        var jar = Jar()
        let page = try httpRequest(port: port, method: "GET", path: "/login")
        jar.take(page)
        let login = try httpRequest(port: port, method: "POST", path: "/login",
                                    headers: jar.header.merging(["Content-Type": "application/x-www-form-urlencoded"]) { a, _ in a },
                                    body: formBody([("csrf_token", csrfToken(in: page.body)), ("email", adminEmail), ("password", adminPassword)]))
        XCTAssertEqual(login.status, 303, login.body)
        jar.take(login)
        return jar
    }

    var both: Int { proxies[0].port }
    func port(of host: Int) -> Int { proxies[host + 1].port }

    func testASessionFromOneHostWorksOnTheOther() throws {
        let jar = try signIn(port: port(of: 0))
        let onB = try httpRequest(port: port(of: 1), method: "GET", path: "/databases", headers: jar.header)
        XCTAssertEqual(onB.status, 200, "host B knows the session host A opened")
        // A form from host A, posted to host B: the CSRF token is the session's, wherever it is checked.
        let form = try httpRequest(port: port(of: 0), method: "GET", path: "/databases/new", headers: jar.header)
        XCTAssertEqual(form.status, 200)
        let created = try httpRequest(port: port(of: 1), method: "POST", path: "/databases",
                                      headers: jar.header.merging(["Content-Type": "application/x-www-form-urlencoded"]) { a, _ in a },
                                      body: formBody([("csrf_token", csrfToken(in: form.body)), ("name", "Made across hosts")]))
        XCTAssertEqual(created.status, 303, created.body)
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM databases WHERE name = 'Made across hosts'"), "1")
        // Signed out on B: the session is gone on A too.
        let page = try httpRequest(port: port(of: 1), method: "GET", path: "/databases", headers: jar.header)
        let out = try httpRequest(port: port(of: 1), method: "POST", path: "/logout",
                                  headers: jar.header.merging(["Content-Type": "application/x-www-form-urlencoded"]) { a, _ in a },
                                  body: formBody([("csrf_token", csrfToken(in: page.body))]))
        XCTAssertEqual(out.status, 303)
        let onA = try httpRequest(port: port(of: 0), method: "GET", path: "/databases", headers: jar.header)
        XCTAssertEqual(onA.status, 303, "signed out everywhere")
        // Through the shared nginx, every request works whichever host answers.
        let again = try signIn(port: both)
        for _ in 0..<6 {
            XCTAssertEqual(try httpRequest(port: both, method: "GET", path: "/databases", headers: again.header).status, 200)
        }
    }

    func testABulkTaskContinuesOnTheOtherHostAfterSIGKILL() throws {
        let profiles = 12_000
        let (status, output) = try command(["seed", "--database", "Scale", "--profiles", String(profiles)])
        XCTAssertEqual(status, 0, output)
        let db = try sql("SELECT id FROM databases WHERE name = 'Scale'")
        let jar = try signIn(port: both)
        let form = try httpRequest(port: both, method: "GET", path: "/databases/\(db)/bulk-update", headers: jar.header)
        XCTAssertEqual(form.status, 200)
        let launch = try httpRequest(port: both, method: "POST", path: "/databases/\(db)/bulk-update",
                                     headers: jar.header.merging(["Content-Type": "application/x-www-form-urlencoded"]) { a, _ in a },
                                     body: formBody([("csrf_token", csrfToken(in: form.body)), ("node", "r"), ("kind_r", "group"), ("join_r", "and"),
                                                     ("range_from", "0"), ("range_to", "100"), ("limit", ""),
                                                     ("bulk_action", "update_fields"), ("field_0", "_city"), ("mode_0", "set"), ("value_0", "Scaleville"),
                                                     ("action", "launch")]))
        XCTAssertEqual(launch.status, 303, launch.body)
        let task = try XCTUnwrap(launch.header("Location")?.split(separator: "/").last.map(String.init))
        // Wait for a committed chunk, then kill the host that holds the task.
        var holder = ""
        for _ in 0..<600 {
            let row = try sql("SELECT processed || ' ' || COALESCE(lease_owner, '') FROM tasks WHERE id = \(task)")
            let parts = row.split(separator: " ", maxSplits: 1).map(String.init)
            if let done = Int(parts.first ?? ""), done > 0, parts.count == 2 { holder = parts[1]; break }
            usleep(10_000)
        }
        let victim = try XCTUnwrap(hosts.firstIndex { holder.hasPrefix($0.name + "/") }, "holder: \(holder)")
        hosts[victim].kill9()
        let processed = Int(try sql("SELECT processed FROM tasks WHERE id = \(task)")) ?? 0
        XCTAssertGreaterThan(processed, 0)
        XCTAssertLessThan(processed, profiles, "the kill came before the end")
        XCTAssertEqual(try sql("SELECT state FROM tasks WHERE id = \(task)"), "running", "still held by the dead host's lease")

        var state = ""
        for _ in 0..<900 {
            state = try sql("SELECT state FROM tasks WHERE id = \(task)")
            if state == "done" || state == "failed" || state == "interrupted" { break }
            usleep(100_000)
        }
        let survivor = hosts[1 - victim]
        XCTAssertEqual(state, "done", survivor.output)
        XCTAssertTrue(survivor.output.contains("task taken over"), survivor.output)
        XCTAssertEqual(try sql("SELECT interruptions FROM tasks WHERE id = \(task)"), "1")
        // The end state of one uninterrupted run.
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM profiles_\(db) WHERE s_city IS DISTINCT FROM 'Scaleville'"), "0")
        XCTAssertEqual(try sql("SELECT processed || ' ' || total FROM tasks WHERE id = \(task)"), "\(profiles) \(profiles)")
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM task_changes WHERE task_id = \(task)"), try sql("SELECT updated FROM tasks WHERE id = \(task)"))
        XCTAssertEqual(try sql("""
            SELECT COUNT(*) FROM (SELECT profile_id FROM task_changes WHERE task_id = \(task) GROUP BY profile_id HAVING COUNT(*) > 1) d
            """), "0", "no profile was changed twice")
        // The task's page answers on the survivor, through the shared nginx (the dead host is skipped).
        let page = try httpRequest(port: both, method: "GET", path: "/tasks/\(task)", headers: jar.header)
        XCTAssertEqual(page.status, 200)
    }

    func testARetriedUpdateBatchThroughTheOtherHostIsAppliedOnce() throws {
        let jar = try signIn(port: port(of: 0))
        let form = try httpRequest(port: port(of: 0), method: "GET", path: "/databases/new", headers: jar.header)
        let made = try httpRequest(port: port(of: 0), method: "POST", path: "/databases",
                                   headers: jar.header.merging(["Content-Type": "application/x-www-form-urlencoded"]) { a, _ in a },
                                   body: formBody([("csrf_token", csrfToken(in: form.body)), ("name", "Api")]))
        XCTAssertEqual(made.status, 303, made.body)
        let db = try sql("SELECT id FROM databases WHERE name = 'Api'")
        let (status, tokenOutput) = try command(["token", "create", "--name", "script", "--databases", db])
        XCTAssertEqual(status, 0, tokenOutput)
        let token = tokenOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let body = Array(#"{"token": "\#(token)", "db_id": \#(db), "data": [{"email": "once@example.com", "_city": "Oslo"}]}"#.utf8)
        let headers = ["Content-Type": "application/json", "Idempotency-Key": "retry-1"]
        let first = try httpRequest(port: port(of: 0), method: "POST", path: "/api/v1.1/profiles/add_batch", headers: headers, body: body)
        XCTAssertEqual(first.status, 200, first.body)
        let retry = try httpRequest(port: port(of: 1), method: "POST", path: "/api/v1.1/profiles/add_batch", headers: headers, body: body)
        XCTAssertEqual(retry.status, 200, retry.body)
        XCTAssertEqual(retry.header("Idempotency-Replayed"), "true", "host B replays host A's answer")
        XCTAssertEqual(retry.body, first.body)
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM profiles_\(db) WHERE email = 'once@example.com'"), "1")

        let update = Array(#"{"token": "\#(token)", "db_id": \#(db), "data": [{"email": "once@example.com", "_city": "Bergen"}]}"#.utf8)
        let updateHeaders = ["Content-Type": "application/json", "Idempotency-Key": "retry-2"]
        let u1 = try httpRequest(port: port(of: 1), method: "POST", path: "/api/v1.1/profiles/update_batch", headers: updateHeaders, body: update)
        XCTAssertEqual(u1.status, 200, u1.body)
        let historyAfterFirst = try sql("SELECT COUNT(*) FROM history_\(db)")
        let u2 = try httpRequest(port: port(of: 0), method: "POST", path: "/api/v1.1/profiles/update_batch", headers: updateHeaders, body: update)
        XCTAssertEqual(u2.header("Idempotency-Replayed"), "true")
        XCTAssertEqual(try sql("SELECT COUNT(*) FROM history_\(db)"), historyAfterFirst, "applied once: no second history entry")
        XCTAssertEqual(try sql("SELECT s_city FROM profiles_\(db) WHERE email = 'once@example.com'"), "Bergen")
    }

    func post(_ port: Int, _ path: String, _ fields: [(String, String)], _ jar: Jar) throws -> HTTPReply {
        try httpRequest(port: port, method: "POST", path: path,
                        headers: jar.header.merging(["Content-Type": "application/x-www-form-urlencoded"]) { a, _ in a }, body: formBody(fields))
    }

    // "uploads in progress, task outputs (any host can serve any download)", and "the field-catalogue cache
    // (invalidated across hosts)": a CSV uploaded to host A is mapped and launched on host B; an export is downloaded
    // from either host; a field added through host A is on host B's next page.
    func testUploadsDownloadsAndFieldsWorkFromEitherHost() throws {
        let structure = folder.appendingPathComponent("s.json")
        try #"{"format": "roster-database-structure/1", "name": "Files", "custom_fields": [{"name": "note", "type": "line"}]}"#
            .write(to: structure, atomically: true, encoding: .utf8)
        let (status, output) = try command(["database", "create", "--structure", structure.path])
        XCTAssertEqual(status, 0, output)
        let id = output.trimmingCharacters(in: .whitespacesAndNewlines)
        let (a, b) = (port(of: 0), port(of: 1))
        let jar = try signIn(port: a)

        // The upload goes to host A, its mapping is submitted to host B.
        let form = try httpRequest(port: a, method: "GET", path: "/databases/\(id)/import", headers: jar.header)
        let boundary = "----rosterScaleOut"
        var body = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n\(csrfToken(in: form.body))\r\n".utf8)
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\nContent-Type: text/csv\r\n\r\n".utf8)
        body += Array("email,note\r\nann@example.com,first\r\nbob@example.com,second\r\n".utf8)
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        let mapping = try httpRequest(port: a, method: "POST", path: "/databases/\(id)/import",
                                      headers: jar.header.merging(["Content-Type": "multipart/form-data; boundary=\(boundary)"]) { a, _ in a }, body: body)
        XCTAssertEqual(mapping.status, 200, String(mapping.body.prefix(500)))
        guard let r = mapping.body.range(of: "name=\"upload\" value=\"") else { return XCTFail("no upload token") }
        let upload = String(mapping.body[r.upperBound...].prefix { $0 != "\"" })
        let started = try post(b, "/databases/\(id)/import/start", [("csrf_token", csrfToken(in: mapping.body)), ("upload", upload),
                                                                   ("filename", "people.csv"), ("column_0", "email"), ("column_1", "note"),
                                                                   ("match", "email"), ("existing", "update")], jar)
        XCTAssertEqual(started.status, 303, started.body)
        let importTask = try XCTUnwrap(started.header("Location")?.split(separator: "/").last.map(String.init))
        for _ in 0..<300 where try sql("SELECT state FROM tasks WHERE id = \(importTask)") != "done" { usleep(50_000) }
        XCTAssertEqual(try sql("SELECT state || ' ' || added FROM tasks WHERE id = \(importTask)"), "done 2")

        // An export launched on host B, downloaded from host A and from host B.
        let exportForm = try httpRequest(port: b, method: "GET", path: "/databases/\(id)/export", headers: jar.header)
        let export = try post(b, "/databases/\(id)/export", [("csrf_token", csrfToken(in: exportForm.body)), ("fields", "email"),
                                                            ("fields", "note")], jar)
        XCTAssertEqual(export.status, 303, export.body)
        let exportTask = try XCTUnwrap(export.header("Location"))
        var done = false
        for _ in 0..<300 where !done {
            done = try httpRequest(port: a, method: "GET", path: exportTask, headers: jar.header).body.contains("Download the CSV")
            if !done { usleep(50_000) }
        }
        XCTAssertTrue(done)
        for port in [a, b] {
            let file = try httpRequest(port: port, method: "GET", path: exportTask + "/download", headers: jar.header)
            XCTAssertEqual(file.status, 200)
            XCTAssertTrue(file.body.contains("ann@example.com,first"), file.body)
        }

        // A field added through host A shows on host B's next page (B had the catalogue cached from the export).
        let fieldForm = try httpRequest(port: a, method: "GET", path: "/databases/\(id)/fields/new", headers: jar.header)
        let added = try post(a, "/databases/\(id)/fields", [("csrf_token", csrfToken(in: fieldForm.body)), ("name", "loyalty_tier"),
                                                            ("type", "line")], jar)
        XCTAssertEqual(added.status, 303, added.body)
        let onB = try httpRequest(port: b, method: "GET", path: "/databases/\(id)/profiles/new", headers: jar.header)
        XCTAssertTrue(onB.body.contains("loyalty_tier"), "host B sees the new field")
    }
}
