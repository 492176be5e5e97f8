import Foundation
import HTTP
@testable import Roster
import Secrets
import Store
import StoreTestSupport
@testable import Web
import XCTest

/// Issue #16: "`roster copy-store --from sqlite:PATH --to postgres://…` copies everything (users, databases, profiles,
/// subscriptions, history, segments, tasks, tokens) and verifies the counts; profile ids, range buckets and segment
/// membership are the same on the other side" — and then "the same pages and API answers on PostgreSQL".
final class CopyStoreTests: XCTestCase {
    static let now: Int64 = 1_790_000_000

    func app(_ pool: DatabasePool, _ dir: URL) throws -> WebApp {
        let services = Services.make(pool: pool, exportDirectory: dir.appendingPathComponent("exports").path,
                                     clock: Clock { CopyStoreTests.now })
        return WebApp(services: services, templates: try TemplateSet.load(directory: projectTemplatesDirectory()))
    }

    func testACopiedInstallationAnswersTheSamePagesAndAPICallsOnPostgreSQL() throws {
        Secrets.initialize()
        guard (try? PostgresTestDatabase.clusterURL()) != nil else { throw XCTSkip("no PostgreSQL test cluster") }
        let dir = try temporaryFolder("roster-copy")
        let sqlite = try DatabasePool(path: dir.appendingPathComponent("roster.sqlite").path, migrations: Schema.migrations,
                                      queries: Schema.queries)
        let before = try app(sqlite, dir)
        let s = before.services
        let admin = try s.accounts.createUser(email: "admin@example.com", name: "Ann", role: .admin, password: "password for admin")
        try s.accounts.createUser(email: "viewer@example.com", name: "", role: .viewer, password: "password for viewer")
        // Every kind of data: ten typed custom fields, resources and subscriptions, history (seeded, then a bulk
        // update's), segments (a static one with members), a finished task with its change log, loyalty codes,
        // an API token and an idempotency key, a webhook.
        let db = try DemoData(pool: sqlite, clock: Clock { CopyStoreTests.now }).seed(databaseName: "Shop", count: 120)
        let program = try s.loyalty.create(name: "Spring", description: "")
        _ = try s.loyalty.addCodes(to: program.id, text: "SPRING-1\nSPRING-2\nSPRING-3")
        var rules = Selection()
        rules.rangeFrom = 10
        rules.rangeTo = 70
        let dynamic = try s.segments.create(databaseID: db.id, SegmentInput(name: "Middle", selection: rules), actor: admin.id)
        let fixed = try s.segments.create(databaseID: db.id, SegmentInput(name: "Picked", kind: .static), actor: admin.id)
        XCTAssertGreaterThan(try s.segments.addMembers(to: fixed.id, from: dynamic, actor: admin.id), 0)
        let task = try s.bulk.start(BulkRequest(databaseID: db.id, segmentID: dynamic.id, selection: rules,
                                                action: .updateFields([FieldChange(field: "_city", value: "Copyville")])),
                                    title: "Move them", user: admin)
        s.tasks.runUntilIdle()
        XCTAssertEqual(try s.tasks.task(task)?.state, .done)
        let token = try s.apiTokens.create(name: "script", databaseIDs: [db.id], by: admin.id).token
        let call = #"{"token": "\#(token)", "db_id": \#(db.id), "data": [{"email": "api@example.com", "_city": "Oslo"}]}"#
        func api(_ app: WebApp) -> Response {
            app.handle(Request(method: "POST", target: "/api/v1.1/profiles/add_batch",
                               headers: ["Content-Type": "application/json", "Idempotency-Key": "k-1"], body: Array(call.utf8)))
        }
        let first = api(before)
        XCTAssertEqual(first.status, 200, first.bodyText)
        _ = try Webhooks(pool: sqlite, allowPrivate: true).add(url: "http://127.0.0.1:9/roster")
        let browser = Browser(before)
        XCTAssertEqual(browser.login("admin@example.com", "password for admin").status, 303)

        let member = try XCTUnwrap(s.segments.members(fixed, after: 0, limit: 1).profiles.first)
        let pages = ["/databases", "/databases/\(db.id)", "/databases/\(db.id)/profiles", "/databases/\(db.id)/profiles?q=Copyville",
                     "/databases/\(db.id)/profiles/\(member.profileID)", "/databases/\(db.id)/standard-fields", "/resources", "/loyalty",
                     "/loyalty/\(program.id)", "/segments", "/segments/\(dynamic.id)", "/segments/\(fixed.id)", "/tasks", "/tasks/\(task)",
                     "/tasks/\(task)/changes.csv", "/databases/\(db.id)/structure.json"]
        let answers = pages.map { browser.get($0) }
        for (page, answer) in zip(pages, answers) { XCTAssertEqual(answer.status, 200, page) }

        // The copy.
        let database = try PostgresTestDatabase()
        let postgres = try DatabasePool(postgresURL: database.url, migrations: Schema.migrations, queries: Schema.queries)
        let report = try CopyStore.copy(from: sqlite, to: postgres)
        let profiles = try XCTUnwrap(report.tables.first { $0.name == "profiles_\(db.id)" })
        XCTAssertEqual(profiles.rows, 121, "120 seeded and one from the API")
        for table in ["users", "sessions", "databases", "custom_fields", "resources", "history_\(db.id)", "subscriptions_\(db.id)",
                      "segments", "segment_members_\(db.id)", "tasks", "task_changes", "api_tokens", "api_idempotency", "webhooks",
                      "loyalty_programs", "promo_codes"] {
            XCTAssertGreaterThan(report.tables.first { $0.name == table }?.rows ?? 0, 0, "\(table) copied")
        }
        XCTAssertThrowsError(try CopyStore.copy(from: sqlite, to: postgres), "a second copy into a database with data is refused")

        // The same session, pages and answers on PostgreSQL.
        let after = try app(postgres, dir)
        let same = Browser(after)
        same.cookies = browser.cookies
        for (page, answer) in zip(pages, answers) {
            let again = same.get(page)
            XCTAssertEqual(again.status, 200, page)
            XCTAssertEqual(again.bodyText, answer.bodyText, "\(page) reads the same on PostgreSQL")
        }
        let replay = api(after)
        XCTAssertEqual(replay.header("Idempotency-Replayed"), "true", "the idempotency key came along")
        XCTAssertEqual(replay.bodyText, first.bodyText)
        XCTAssertNotNil(try after.services.apiTokens.authenticate(token), "the token works")
        XCTAssertEqual(Browser(after).login("viewer@example.com", "password for viewer").status, 303, "passwords came along")
        // Profile ids, range buckets and membership are the same; counts of the same rules agree.
        let read = { (pool: DatabasePool) in
            try pool.read { try $0.query("SELECT id, profile_id, range_bucket, s_city FROM profiles_\(db.id) ORDER BY id").map(\.values) }
        }
        XCTAssertEqual(try read(postgres), try read(sqlite))
        XCTAssertEqual(try after.services.segments.counts(databaseID: db.id, rules), try s.segments.counts(databaseID: db.id, rules))
        // New rows continue after the copied ids.
        let created = try after.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "new@example.com"]), actor: nil)
        let highest = try sqlite.read { try $0.scalar("SELECT MAX(id) FROM profiles_\(db.id)").int64 } ?? 0
        XCTAssertGreaterThan(created.rowID, highest)
    }

    // A SQLite value PostgreSQL's text cannot hold (U+0000, written behind Roster's back) stops the copy with the
    // table and column named, and nothing is kept; wide tables (hundreds of custom fields) stay under PostgreSQL's
    // 65,535 parameters per statement; the PostgreSQL URL is shown without its password wherever it is written.
    func testWideTablesCopyAndAValuePostgreSQLCannotHoldStopsTheCopy() throws {
        Secrets.initialize()
        guard (try? PostgresTestDatabase.clusterURL()) != nil else { throw XCTSkip("no PostgreSQL test cluster") }
        let dir = try temporaryFolder("roster-copy-wide")
        let sqlite = try DatabasePool(path: dir.appendingPathComponent("roster.sqlite").path, migrations: Schema.migrations,
                                      queries: Schema.queries)
        let databases = Databases(pool: sqlite)
        let db = try databases.create(DatabaseInput(name: "Wide"))
        for i in 0..<320 { _ = try databases.addField(to: db.id, FieldInput(name: "f\(i)", type: "line")) }
        let profiles = Profiles(pool: sqlite)
        for i in 0..<210 {
            _ = try profiles.create(databaseID: db.id, ProfileInput(values: ["email": "w\(i)@x.io", "f7": "seven \(i)"]), actor: nil)
        }
        let first = try PostgresTestDatabase(), second = try PostgresTestDatabase()   // kept until the test ends
        let target = try DatabasePool(postgresURL: first.url, migrations: Schema.migrations, queries: Schema.queries)
        let report = try CopyStore.copy(from: sqlite, to: target)
        XCTAssertEqual(report.tables.first { $0.name == "profiles_\(db.id)" }?.rows, 210)

        try sqlite.write { try $0.run("UPDATE profiles_\(db.id) SET s_fname = ? WHERE email = 'w3@x.io'", ["ab\u{0}cd"]) }
        let refused = try DatabasePool(postgresURL: second.url, migrations: Schema.migrations, queries: Schema.queries)
        XCTAssertThrowsError(try CopyStore.copy(from: sqlite, to: refused)) { error in
            XCTAssertTrue("\(error)".contains("profiles_\(db.id).s_fname"), "\(error)")
        }
        XCTAssertEqual(try refused.read { try $0.scalar("SELECT COUNT(*) FROM users").int }, 0)
        XCTAssertEqual(try refused.read { try $0.scalar("SELECT COUNT(*) FROM databases").int }, 0, "nothing was kept")

        XCTAssertEqual(DatabasePool.withoutPassword("postgres://ann:s3cret@db.internal:5432/roster?sslmode=require&password=x"),
                       "postgres://ann@db.internal:5432/roster?sslmode=require")
        XCTAssertEqual(DatabasePool.withoutPassword("postgresql:///roster?host=/run/pg&PASSWORD=x&sslpassword=y"),
                       "postgresql:///roster?host=/run/pg")
    }
}
