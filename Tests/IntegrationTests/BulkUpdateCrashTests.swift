import Foundation
import XCTest

/// A bulk update killed with SIGKILL half-way: its counts are the rows it changed, the file is intact, and the next
/// start resumes it by itself to exactly where an uninterrupted run ends.
final class BulkUpdateCrashTests: RosterServerTestCase {
    func signIn() throws -> Jar {
        var jar = Jar()
        let page = try httpRequest(port: server.httpPort, method: "GET", path: "/login")
        jar.take(page)
        let login = try httpRequest(port: server.httpPort, method: "POST", path: "/login",
                                    headers: jar.header.merging(["Content-Type": "application/x-www-form-urlencoded"]) { a, _ in a },
                                    body: formBody([("csrf_token", csrfToken(in: page.body)), ("email", server.adminEmail), ("password", server.adminPassword)]))
        jar.take(login)
        return jar
    }

    func testSIGKILLMidTaskThenResumeEndsLikeAnUninterruptedRun() throws {
        let profiles = 60_000
        let (status, output) = try server.command(["seed", "--database", "Crash", "--profiles", String(profiles)])
        XCTAssertEqual(status, 0, output)
        let db = try server.sql("SELECT id FROM databases WHERE name = 'Crash'")
        let jar = try signIn()
        let form = try httpRequest(port: server.httpPort, method: "GET", path: "/databases/\(db)/bulk-update", headers: jar.header)
        XCTAssertEqual(form.status, 200)
        let launch = try httpRequest(port: server.httpPort, method: "POST", path: "/databases/\(db)/bulk-update",
                                     headers: jar.header.merging(["Content-Type": "application/x-www-form-urlencoded"]) { a, _ in a },
                                     body: formBody([("csrf_token", csrfToken(in: form.body)), ("node", "r"), ("kind_r", "group"), ("join_r", "and"),
                                                     ("range_from", "0"), ("range_to", "100"), ("limit", ""),
                                                     ("bulk_action", "update_fields"), ("field_0", "_city"), ("mode_0", "set"), ("value_0", "Crashville"),
                                                     ("action", "launch")]))
        XCTAssertEqual(launch.status, 303, launch.body)
        let task = try XCTUnwrap(launch.header("Location")).split(separator: "/").last.map(String.init)!
        // Wait for some committed chunks, then crash.
        var processed = 0
        for _ in 0..<400 {
            processed = Int(try server.sql("SELECT processed FROM tasks WHERE id = \(task)")) ?? 0
            if processed > 0 { break }
            usleep(5_000)
        }
        server.killApp()
        processed = Int(try server.sql("SELECT processed FROM tasks WHERE id = \(task)")) ?? 0
        XCTAssertGreaterThan(processed, 0, "the crash came after at least one chunk")
        XCTAssertLessThan(processed, profiles, "the crash came before the end")
        XCTAssertEqual(try server.sql("SELECT updated FROM tasks WHERE id = \(task)"),
                       try server.sql("SELECT COUNT(*) FROM profiles_\(db) WHERE s_city = 'Crashville'"), "the counts are the rows changed")
        XCTAssertEqual(try server.sql("SELECT updated FROM tasks WHERE id = \(task)"),
                       try server.sql("SELECT COUNT(*) FROM task_changes WHERE task_id = \(task)"), "one change-log row per change")
        XCTAssertTrue(try server.storeIsIntact())
        // The next start continues the task by itself, from its last committed chunk.
        try server.restartApp()
        var state = ""
        for _ in 0..<600 {
            state = try server.sql("SELECT state FROM tasks WHERE id = \(task)")
            if state == "done" || state == "failed" { break }
            usleep(100_000)
        }
        XCTAssertEqual(state, "done", server.appLog)
        XCTAssertTrue(server.appLog.contains("task resumed after a restart"), server.appLog)
        XCTAssertEqual(try server.sql("SELECT interruptions FROM tasks WHERE id = \(task)"), "1")
        // The end state of a run that was never interrupted: every profile changed once, logged once, in history once.
        XCTAssertEqual(try server.sql("SELECT COUNT(*) FROM profiles_\(db) WHERE COALESCE(s_city, '') <> 'Crashville'"), "0")
        XCTAssertEqual(try server.sql("SELECT processed || ' ' || total FROM tasks WHERE id = \(task)"), "\(profiles) \(profiles)")
        let skipped = Int(try server.sql("SELECT skipped FROM tasks WHERE id = \(task)")) ?? -1
        XCTAssertEqual((Int(try server.sql("SELECT updated FROM tasks WHERE id = \(task)")) ?? 0) + skipped, profiles)
        XCTAssertEqual(try server.sql("SELECT COUNT(*) FROM task_changes WHERE task_id = \(task)"), try server.sql("SELECT updated FROM tasks WHERE id = \(task)"))
        XCTAssertEqual(try server.sql("SELECT COUNT(*) FROM (SELECT profile_id FROM task_changes WHERE task_id = \(task) GROUP BY profile_id HAVING COUNT(*) > 1) d"), "0",
                       "no profile was changed twice")
        XCTAssertEqual(try server.sql("SELECT COUNT(*) FROM task_targets"), "0")
        XCTAssertTrue(try server.storeIsIntact())
    }
}
