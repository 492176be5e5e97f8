import Foundation
import HTTP
@testable import Roster
import Secrets
import SQLiteStore
import Store
@testable import Web
import XCTest

/// Issue "Run Roster for years": automatic resume, backups and restores, `roster check`, /healthz, /metrics, logs.
/// Expected values come from the sentences, not from the code.
final class OperationsTests: XCTestCase {
    func runningTask(_ app: WebApp, cursor: Int64) throws -> Int64 {
        try app.services.pool.write { db in
            try db.run("INSERT INTO tasks (kind, state, title, parameters, created_at, started_at, cursor) VALUES ('\(ExportProfilesTask.kind)', 'running', 't', '{}', 1, 1, ?)",
                       [cursor])
            return try db.lastInsertedID()
        }
    }

    func setRunning(_ app: WebApp, _ id: Int64, cursor: Int64) throws {
        try app.services.pool.write { try $0.run("UPDATE tasks SET state = 'running', cursor = ? WHERE id = ?", [cursor, id]) }
    }

    // "When the app starts and finds tasks that were running, it resumes them by itself … A task interrupted three
    // times at the same chunk is not retried again: it stays interrupted with the reason shown."
    func testRestartsResumeTasksUntilTheThirdInterruptionAtOneCursor() throws {
        let (app, _) = try makeApp()
        app.services.tasks.stop()   // the rows are played by hand
        let id = try runningTask(app, cursor: 40)
        XCTAssertEqual(try app.services.tasks.recover().resumed, [id], "first restart: resumed")
        XCTAssertEqual(try app.services.tasks.task(id)?.state, .queued)
        try setRunning(app, id, cursor: 40)
        XCTAssertEqual(try app.services.tasks.recover().resumed, [id], "second restart at the same cursor: resumed")
        try setRunning(app, id, cursor: 40)
        let third = try app.services.tasks.recover()
        XCTAssertEqual(third.held, [id], "third restart at the same cursor: held")
        let held = try XCTUnwrap(app.services.tasks.task(id))
        XCTAssertEqual(held.state, .interrupted)
        XCTAssertTrue(held.message.contains("3 times"), held.message)

        // Progress between crashes starts the count again.
        let other = try runningTask(app, cursor: 10)
        XCTAssertEqual(try app.services.tasks.recover().resumed, [other])
        try setRunning(app, other, cursor: 10)
        XCTAssertEqual(try app.services.tasks.recover().resumed, [other])
        try setRunning(app, other, cursor: 20)
        XCTAssertEqual(try app.services.tasks.recover().resumed, [other], "the cursor moved: a first interruption there")
        XCTAssertEqual(try app.services.tasks.task(other)?.interruptions, 1)

        // A person resuming the held task starts its count again.
        try app.services.tasks.resume(id, role: .admin)
        XCTAssertEqual(try app.services.tasks.task(id)?.interruptions, 0)
        try setRunning(app, id, cursor: 40)
        XCTAssertEqual(try app.services.tasks.recover().resumed, [id])
    }

    // The task page shows the reason a held task waits.
    func testAHeldTaskShowsItsReasonOnItsPage() throws {
        let (browser, app) = try signIn(.admin)
        app.services.tasks.stop()
        let id = try runningTask(app, cursor: 7)
        for _ in 0..<3 {
            try setRunning(app, id, cursor: 7)
            try app.services.tasks.recover()
        }
        let page = browser.get("/tasks/\(id)")
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.bodyText.contains("3 times while this task was at the same point"), String(page.bodyText.prefix(3000)))
    }

    // A clean stop (SIGTERM) is not an interruption: the task is queued for the next start, uncounted.
    func testACleanStopQueuesTheRunningTaskWithoutCountingIt() throws {
        let (app, _) = try makeApp()
        let id = try runningTask(app, cursor: 3)
        let other = try runningTask(app, cursor: 5)
        let tasks = app.services.tasks
        try app.services.pool.write { db in
            try db.run("UPDATE tasks SET lease_owner = ?, lease_until = ? WHERE id = ?", [tasks.owner.text, Int64.max / 2, id])
            try db.run("UPDATE tasks SET lease_owner = 'elsewhere/1/x', lease_until = ? WHERE id = ?", [Int64.max / 2, other])
        }
        tasks.shutDown()
        XCTAssertEqual(try tasks.task(other)?.state, .running, "another host's task is left to that host")
        let task = try XCTUnwrap(app.services.tasks.task(id))
        XCTAssertEqual(task.state, .queued)
        XCTAssertEqual(task.interruptions, 0)
    }

    func makeProfiles(_ app: WebApp, count: Int) throws -> ProfileDatabase {
        let db = try app.services.databases.create(DatabaseInput(name: "Backed up"))
        for i in 0..<count {
            _ = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "b\(i)@x.io"]), actor: nil)
        }
        return db
    }

    // "roster backup --to FILE … writes it under a temporary name, checks it (integrity_check, schema version, row
    // counts in a small manifest beside it), then renames it." A restore "verifies the file and the manifest, keeps the
    // old database aside, and puts the backup in place."
    func testBackupIsCheckedAndRestoresWithTheSameRows() throws {
        try requireSQLite()
        let (app, _) = try makeApp()
        let db = try makeProfiles(app, count: 25)
        let folder = try temporaryFolder("roster-backup")
        let file = folder.appendingPathComponent("nightly.sqlite").path
        let manifest = try app.services.backups.take(to: file).manifest
        XCTAssertEqual(manifest.integrity, "ok")
        XCTAssertEqual(manifest.tables["profiles_\(db.id)"], 25)
        XCTAssertEqual(manifest.schemaVersion, Schema.migrations.last?.version)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        XCTAssertEqual(names, ["nightly.sqlite", "nightly.sqlite.manifest.json"], "no temporary file is left")
        XCTAssertEqual(try Backups.verify(file), manifest)
        XCTAssertEqual(try app.services.backups.last()?.ok, true)

        // Restore into another data folder that has its own (different) database: the old one is kept aside.
        let target = try temporaryFolder("roster-restore").appendingPathComponent("roster.sqlite").path
        let other = try DatabasePool(path: target, migrations: Schema.migrations, queries: Schema.queries)
        try other.writerWithoutTransaction { try $0.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
        let aside = try Backups.restore(from: file, to: target, now: 1_790_000_000)
        XCTAssertTrue(aside.hasSuffix(".before-restore-20260921-141320"), aside)
        XCTAssertTrue(FileManager.default.fileExists(atPath: aside))
        let reopened = try SQLiteConnection(path: target, mode: .readOnly)
        XCTAssertEqual(try reopened.scalar("SELECT COUNT(*) FROM profiles_\(db.id)").int, 25)
        XCTAssertEqual(try reopened.scalar("PRAGMA integrity_check").string, "ok")
    }

    // A new server: the restore goes into a data folder that has no database yet.
    func testRestoreIntoAnEmptyDataFolder() throws {
        try requireSQLite()
        let (app, _) = try makeApp()
        let db = try makeProfiles(app, count: 4)
        let file = try temporaryFolder("roster-backup").appendingPathComponent("b.sqlite").path
        try app.services.backups.take(to: file)
        let target = try temporaryFolder("roster-new").appendingPathComponent("roster.sqlite").path
        XCTAssertEqual(try Backups.restore(from: file, to: target, now: 0), "", "nothing to keep aside")
        let pool = try DatabasePool(path: target, migrations: Schema.migrations, queries: Schema.queries)
        XCTAssertEqual(try pool.read { try $0.scalar("SELECT COUNT(*) FROM profiles_\(db.id)").int }, 4)
    }

    // A crash leaves the live database with a WAL of recent commits: the restore keeps both aside, together, and
    // the backup never meets the old WAL.
    func testRestoreKeepsTheOldDatabaseWithItsWALAside() throws {
        try requireSQLite()
        let (app, _) = try makeApp()
        let db = try makeProfiles(app, count: 5)
        let backup = try temporaryFolder("roster-backup").appendingPathComponent("b.sqlite").path
        try app.services.backups.take(to: backup)
        // Five more profiles, committed to the WAL only; the files are copied as a crash would leave them.
        try app.services.pool.writerWithoutTransaction { try $0.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
        for i in 5..<10 { _ = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "b\(i)@x.io"]), actor: nil) }
        let live = try temporaryFolder("roster-live").appendingPathComponent("roster.sqlite").path
        try FileManager.default.copyItem(atPath: app.services.pool.path, toPath: live)
        try FileManager.default.copyItem(atPath: app.services.pool.path + "-wal", toPath: live + "-wal")
        XCTAssertGreaterThan(Checkup.fileSize(live + "-wal"), 0)

        let aside = try Backups.restore(from: backup, to: live, now: 0)
        let restored = try SQLiteConnection(path: live, mode: .readOnly)
        XCTAssertEqual(try restored.scalar("SELECT COUNT(*) FROM profiles_\(db.id)").int, 5, "the backup's rows, not the old WAL's")
        XCTAssertEqual(try restored.scalar("PRAGMA integrity_check").string, "ok")
        let old = try SQLiteConnection(path: aside, mode: .readOnly)
        XCTAssertEqual(try old.scalar("SELECT COUNT(*) FROM profiles_\(db.id)").int, 10, "the old database kept its recent commits")
        // A second restore at the same second keeps the first one's copy.
        let second = try Backups.restore(from: backup, to: live, now: 0)
        XCTAssertNotEqual(second, aside)
        XCTAssertTrue(FileManager.default.fileExists(atPath: aside))
        // Not a database at all: refused, nothing moved.
        let junk = try temporaryFolder("roster-junk").appendingPathComponent("junk.sqlite").path
        FileManager.default.createFile(atPath: junk, contents: Data(repeating: 7, count: 4096))
        XCTAssertThrowsError(try Backups.restore(from: junk, to: live, now: 0))
        XCTAssertEqual(try SQLiteConnection(path: live, mode: .readOnly).scalar("SELECT COUNT(*) FROM profiles_\(db.id)").int, 5)
    }

    // The runner marks a task running before its survey: a crash there is an interruption the next start counts.
    func testATaskIsRunningBeforeItsSurvey() throws {
        struct Probe: TaskHandler {
            let pool: DatabasePool
            func survey(_ task: TaskRecord) throws -> [String: JSONValue] {
                let state = try pool.read { try $0.scalar("SELECT state FROM tasks WHERE id = ?", [task.id]).string } ?? ""
                return ["state_in_survey": .string(state)]
            }
            func prepare(_ task: TaskRecord, _ db: Connection) throws -> (total: Int, parameters: [String: JSONValue]) { (1, [:]) }
            func runChunk(_ task: TaskRecord, limit: Int, _ db: Connection) throws -> ChunkOutcome {
                var outcome = ChunkOutcome(cursor: 1)
                outcome.processed = 1
                outcome.finished = true
                return outcome
            }
        }
        let (app, _) = try makeApp()
        let runner = TaskRunner(pool: app.services.pool, handlers: ["probe": Probe(pool: app.services.pool)])
        runner.stop()
        let id = try runner.enqueue(kind: "probe", title: "probe", databaseID: nil, userID: nil, parameters: [:])
        let worker = TaskRunner(pool: app.services.pool, handlers: ["probe": Probe(pool: app.services.pool)])
        worker.runUntilIdle()
        let task = try XCTUnwrap(worker.task(id))
        XCTAssertEqual(task.state, .done)
        XCTAssertEqual(task.parameters["state_in_survey"], .string("running"))
    }

    // A backup that is not what its manifest says is refused, and so is one without a manifest.
    func testRestoreRefusesADamagedOrIncompleteBackup() throws {
        try requireSQLite()
        let (app, _) = try makeApp()
        _ = try makeProfiles(app, count: 3)
        let folder = try temporaryFolder("roster-backup")
        let file = folder.appendingPathComponent("b.sqlite").path
        try app.services.backups.take(to: file)
        let target = folder.appendingPathComponent("live.sqlite").path
        FileManager.default.createFile(atPath: target, contents: Data("the live database".utf8))

        // One byte changed near the end of the file.
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: file))
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size - 100)
        try handle.write(contentsOf: Data([0x5A]))
        try handle.close()
        XCTAssertThrowsError(try Backups.restore(from: file, to: target, now: 0)) { error in
            XCTAssertTrue("\(error)".contains("SHA-256"), "\(error)")
        }
        try FileManager.default.removeItem(atPath: BackupManifest.path(for: file))
        XCTAssertThrowsError(try Backups.restore(from: file, to: target, now: 0)) { error in
            XCTAssertTrue("\(error)".contains("manifest"), "\(error)")
        }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "the live database", "nothing was replaced")
        // An existing name is never overwritten.
        XCTAssertThrowsError(try app.services.backups.take(to: target))
        XCTAssertEqual(try app.services.backups.last()?.ok, false, "a failed backup is recorded as failed")
    }

    // "Scheduled backups: ROSTER_BACKUP_DIR, daily at a set hour, keeping the last N".
    func testTheScheduleTakesOneBackupADayAtItsHourAndKeepsTheNewest() throws {
        try requireSQLite()
        final class Now: @unchecked Sendable { var value: Int64 = 1_790_000_000 - 1_790_000_000 % 86_400 + 2 * 3600 }   // 02:00 UTC
        let now = Now()
        let (app, _) = try makeApp(clock: Clock { now.value })
        _ = try makeProfiles(app, count: 2)
        let folder = try temporaryFolder("roster-schedule").path
        XCTAssertNil(app.services.backups.runSchedule(directory: folder, hour: 3, keep: 2), "02:00: not yet")
        for day in 0..<4 {
            now.value += (day == 0 ? 3600 : 86_400)   // 03:00 on four days
            XCTAssertNotNil(app.services.backups.runSchedule(directory: folder, hour: 3, keep: 2), "day \(day)")
            now.value += 600
            XCTAssertNil(app.services.backups.runSchedule(directory: folder, hour: 3, keep: 2), "once a day")
            now.value -= 600
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".sqlite") }
        XCTAssertEqual(names.count, 2, "the newest two are kept: \(names)")
        let settings = Browser(app)
        try app.accounts.createUser(email: "root@example.com", name: "", role: .admin, password: "password for root")
        XCTAssertEqual(settings.login("root@example.com", "password for root").status, 303)
        let page = settings.get("/settings").bodyText
        XCTAssertTrue(page.contains("Last backup: <span class=\"state state-done\">✓ checked</span>"), page)
        XCTAssertTrue(page.contains("· scheduled</p>"), page)
    }

    // "roster check: integrity and foreign keys, orphan files, WAL size, schema version; exit status non-zero on a problem."
    func testCheckFindsOrphanedFiles() throws {
        let (app, _) = try makeApp()
        let clean = Checkup.database(pool: app.services.pool, files: app.services.files)
        XCTAssertTrue(clean.allSatisfy(\.ok), "\(clean)")
        let storeChecks: Set<String> = app.services.pool.kind == .sqlite ? ["integrity", "foreign keys", "wal"] : ["store"]
        XCTAssertEqual(Set(clean.map(\.name)), storeChecks.union(["schema", "files"]))
        let exports = app.services.files.exportDirectory
        try FileManager.default.createDirectory(atPath: exports, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: exports + "/export-999.csv", contents: Data("email\n".utf8))
        let found = Checkup.database(pool: app.services.pool, files: app.services.files)
        XCTAssertEqual(found.first { $0.name == "files" }?.ok, true, "the hourly sweep removes them: a warning, not a problem")
        XCTAssertEqual(found.first { $0.name == "files" }?.warning, true)
        XCTAssertTrue(found.first { $0.name == "files" }?.detail.contains("export-999.csv") ?? false)
    }

    // "/healthz (no session) … the database answers, the writer is not stuck, free disk space above the threshold,
    // the task runner alive."
    func testHealthAnswersWithoutASessionAndNamesAFailingCheck() throws {
        let (app, _) = try makeApp()
        let ok = Browser(app).get("/healthz")
        XCTAssertEqual(ok.status, 200, ok.bodyText)
        XCTAssertTrue(ok.bodyText.contains("\"status\":\"ok\""), ok.bodyText)
        for check in ["database", "writer", "disk", "tasks"] { XCTAssertTrue(ok.bodyText.contains("\"\(check)\""), check) }

        // A disk threshold no disk meets: 503 naming the disk.
        let dir = try temporaryFolder("roster-health")
        let pool = try DatabasePool(path: dir.appendingPathComponent("r.sqlite").path, migrations: Schema.migrations, queries: Schema.queries)
        let services = Services.make(pool: pool, exportDirectory: dir.appendingPathComponent("exports").path, minFreeMB: 9_000_000)
        let full = WebApp(services: services, templates: app.templates)
        let failing = Browser(full).get("/healthz")
        XCTAssertEqual(failing.status, 503)
        XCTAssertTrue(failing.bodyText.contains("\"status\":\"failing\""), failing.bodyText)
        XCTAssertTrue(failing.bodyText.contains("below the free-space threshold"), failing.bodyText)
    }

    // "/metrics in Prometheus text format, for an admin API token or loopback only".
    func testMetricsAreForLoopbackOrAnAdminsToken() throws {
        let (browser, app) = try signIn(.admin)
        XCTAssertEqual(browser.get("/databases").status, 200)
        browser.remoteAddress = "203.0.113.9"
        XCTAssertEqual(browser.get("/metrics").status, 403, "a session is not enough from outside")
        let adminUser = try XCTUnwrap(app.accounts.user(email: "admin@example.com"))
        let db = try app.services.databases.create(DatabaseInput(name: "Any"))
        let (adminToken, _) = try app.services.apiTokens.create(name: "prometheus", databaseIDs: [db.id], by: adminUser.id)
        try app.accounts.createUser(email: "ed@example.com", name: "", role: .editor, password: "password for ed")
        let editor = try XCTUnwrap(app.accounts.user(email: "ed@example.com"))
        let (editorToken, _) = try app.services.apiTokens.create(name: "mine", databaseIDs: [db.id], by: editor.id)
        let outsider = Browser(app)
        outsider.remoteAddress = "203.0.113.9"
        XCTAssertEqual(outsider.get("/metrics", headers: ["Authorization": "Bearer \(editorToken)"]).status, 403)
        XCTAssertEqual(outsider.get("/metrics", headers: ["Authorization": "Bearer nonsense"]).status, 403)
        let scraped = outsider.get("/metrics", headers: ["Authorization": "Bearer \(adminToken)"])
        XCTAssertEqual(scraped.status, 200)
        XCTAssertEqual(scraped.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        let text = scraped.bodyText
        for name in ["roster_http_requests_total{method=\"GET\",route=\"/databases\",status=\"200\"}",
                     "roster_http_request_duration_seconds_bucket{route=\"/databases\",le=\"+Inf\"}",
                     "roster_tasks{state=\"queued\"}", "roster_webhook_backlog_events", "roster_database_bytes", "roster_wal_bytes",
                     "roster_login_failures_recent"] {
            XCTAssertTrue(text.contains(name), "\(name) in\n\(text.prefix(4000))")
        }
        let local = Browser(app)
        local.remoteAddress = "127.0.0.1"
        XCTAssertEqual(local.get("/metrics").status, 200)
        // A failed sign-in shows up as a sample, not only as the metric's help line.
        XCTAssertNotEqual(Browser(app).login("admin@example.com", "not the password").status, 303)
        XCTAssertTrue(local.get("/metrics").bodyText.contains("roster_login_failures_recent{kind=\"email\"}"))
    }

    // "One line per request (method, route pattern, status, milliseconds, user id, request id) … machine-readable."
    func testLogLinesAreOneLineAndCannotBeForged() {
        let line = Log.line("info", "request", ["method": "GET", "route": "/x\n ts=forged level=error", "status": "200"],
                            at: Date(timeIntervalSince1970: 1_790_000_000))
        XCTAssertEqual(line.filter { $0 == "\n" }.count, 1)
        XCTAssertTrue(line.hasPrefix("ts=2026-09-21T14:13:20.000Z level=info msg=request method=GET route=\"/x\\n ts=forged level=error\""), line)
        XCTAssertEqual(Log.quote("plain"), "plain")
        XCTAssertEqual(Log.quote(""), "\"\"")
        XCTAssertEqual(Log.quote("a\u{202E}b"), "\"a\\u202eb\"")
    }

    // "the request id also goes back in a response header".
    func testEveryAnswerCarriesItsRequestID() throws {
        let (app, _) = try makeApp()
        let answer = Browser(app).get("/no-such-page")
        XCTAssertEqual(answer.status, 404)
        let id = try XCTUnwrap(answer.header("X-Request-Id"))
        XCTAssertEqual(id.count, 16)
        XCTAssertNotEqual(Browser(app).get("/no-such-page").header("X-Request-Id"), id, "one id per request")
    }
}

/// Backups and restores are of a SQLite file; a PostgreSQL store is backed up by PostgreSQL (pg_basebackup, a replica).
func requireSQLite() throws {
    if ProcessInfo.processInfo.environment["ROSTER_TEST_STORE"] == "postgres" { throw XCTSkip("SQLite's backup and restore") }
}
