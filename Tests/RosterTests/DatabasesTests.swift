import Foundation
@testable import Roster
import Secrets
import Store
import StoreTestSupport
import XCTest

/// A fresh store for one test (SQLite, or PostgreSQL with ROSTER_TEST_STORE=postgres).
func makePool() throws -> DatabasePool {
    try makeTestPool(in: FileManager.default.temporaryDirectory.appendingPathComponent("roster-db-\(UUID().uuidString)"))
}

/// Inserts profiles straight into a database's table (the profiles feature will do this through its own store).
func insertProfiles(_ pool: DatabasePool, database: Int64, count: Int, values: [String: SQLValue] = [:], engaged: Bool = false) throws {
    try pool.write { db in
        for i in 0..<count {
            let id = ProfileIdentity.newProfileID()
            let columns = ["profile_id", "email", "range_bucket", "created_at", "updated_at", "engaged_at"] + values.keys.sorted()
            let params: [any SQLBindable] = [id, "p\(i)-\(id)@example.com", ProfileIdentity.rangeBucket(id), 1, 1, engaged ? SQLValue.integer(1) : .null]
                + values.keys.sorted().map { values[$0]! }
            try db.prepare("INSERT INTO profiles_\(database) (\(columns.joined(separator: ","))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ",")))")
                .execute(params)
        }
    }
}

final class DatabasesTests: XCTestCase {
    func testCreateListsWithCountsAndRefusesDuplicateNames() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let customers = try databases.create(DatabaseInput(name: " Customers ", description: "Shop buyers", tags: "retail, eu; vip"))
        XCTAssertEqual(customers.name, "Customers")
        XCTAssertEqual(customers.tags, ["retail", "eu", "vip"])
        try insertProfiles(pool, database: customers.id, count: 3)
        let list = try databases.list()
        XCTAssertEqual(list.map(\.database.name), ["Customers"])
        XCTAssertEqual(list.first?.profileCount, 3)
        XCTAssertThrowsError(try databases.create(DatabaseInput(name: "customers"))) {
            XCTAssertNotNil(($0 as? ValidationError)?.fieldErrors["name"])
        }
        XCTAssertThrowsError(try databases.create(DatabaseInput(name: "", smLanguage: "xx"))) {
            XCTAssertEqual(Set(($0 as? ValidationError)?.fieldErrors.keys ?? [:].keys), ["name", "sm_language"])
        }
    }

    func testCustomFieldNamesAreCheckedAndNeverReachSQL() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "D"))
        for bad in ["id", "x\"; DROP TABLE databases; --", String(repeating: "a", count: 200), "email", "_fname", "fname", "1abc", "имя", "a b", ""] {
            XCTAssertThrowsError(try databases.addField(to: db.id, FieldInput(name: bad, type: "line")), bad) {
                XCTAssertNotNil(($0 as? ValidationError)?.fieldErrors["name"], bad)
            }
        }
        try databases.addField(to: db.id, FieldInput(name: "CRM_ID", type: "number"))
        XCTAssertThrowsError(try databases.addField(to: db.id, FieldInput(name: "crm_id", type: "line")), "case-only duplicate")
        XCTAssertThrowsError(try databases.addField(to: db.id, FieldInput(name: "plan", type: "enum", options: " , ")))
        XCTAssertThrowsError(try databases.addField(to: db.id, FieldInput(name: "plan", type: "enum", options: "a,b,a")))
        XCTAssertThrowsError(try databases.addField(to: db.id, FieldInput(name: "n", type: "number", defaultValue: "1.5"))) {
            XCTAssertNotNil(($0 as? ValidationError)?.fieldErrors["default_value"])
        }
        XCTAssertThrowsError(try databases.addField(to: db.id, FieldInput(name: "t", type: "decimal")))
        XCTAssertEqual(try databases.fields(of: db.id).map(\.name), ["CRM_ID"])
        XCTAssertEqual(try pool.read { try $0.scalar("SELECT COUNT(*) FROM databases").int }, 1, "the injection attempt did nothing")
    }

    func testEveryTypeGetsAColumn() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "D"))
        for type in FieldType.allCases {
            try databases.addField(to: db.id, FieldInput(name: "f_\(type.rawValue)", type: type.rawValue, options: type == .enum ? "a,b" : "", indexed: type == .number))
        }
        let columns = try pool.read { try $0.query($0.dialect.tableColumns, ["profiles_\(db.id)"]).compactMap { $0.string("name") } }
        for field in try databases.fields(of: db.id) { XCTAssertTrue(columns.contains(field.column), field.name) }
        let indexes = try pool.read { try $0.query($0.dialect.tableIndexes, ["profiles_\(db.id)"]).compactMap { $0.string("name") } }
        let numberField = try databases.fields(of: db.id).first { $0.type == .number }!
        XCTAssertTrue(indexes.contains { $0.hasSuffix("_c_\(numberField.id)") })
    }

    func testChangingTypeConvertsEveryValueOrRefusesWithACount() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "D"))
        let field = try databases.addField(to: db.id, FieldInput(name: "score", type: "line"))
        try insertProfiles(pool, database: db.id, count: 3, values: [field.column: .text("42")])
        try insertProfiles(pool, database: db.id, count: 2, values: [field.column: .text("007")])
        try insertProfiles(pool, database: db.id, count: 1, values: [field.column: .text("n/a")])
        XCTAssertThrowsError(try databases.updateField(field.id, FieldInput(name: "score", type: "number"))) { error in
            let message = (error as? ValidationError)?.fieldErrors["type"] ?? ""
            XCTAssertTrue(message.hasPrefix("1 stored value would not fit"), message)
            XCTAssertTrue(message.contains("n/a"), message)
        }
        XCTAssertEqual(try databases.field(field.id)?.type, .line, "nothing changed")
        try pool.write { try $0.run("UPDATE profiles_\(db.id) SET \(field.column) = NULL WHERE \(field.column) = 'n/a'") }
        try databases.updateField(field.id, FieldInput(name: "score", type: "number"))
        let values = try pool.read { try $0.query("SELECT \(field.column) AS v FROM profiles_\(db.id) WHERE \(field.column) IS NOT NULL").map { $0["v"] } }
        XCTAssertEqual(values.sorted { ($0.int64 ?? 0) < ($1.int64 ?? 0) }, [.integer(7), .integer(7), .integer(42), .integer(42), .integer(42)])
        // And back to line: no value is lost, numbers become their text.
        try databases.updateField(field.id, FieldInput(name: "score", type: "line"))
        let texts = try pool.read { try $0.query("SELECT \(field.column) AS v FROM profiles_\(db.id) WHERE \(field.column) IS NOT NULL").compactMap { $0.string("v") } }
        XCTAssertEqual(texts.sorted(), ["42", "42", "42", "7", "7"])
        XCTAssertEqual(try databases.valueCount(try databases.field(field.id)!), 5)
    }

    func testEnumOptionsCannotDropValuesInUse() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "D"))
        let plan = try databases.addField(to: db.id, FieldInput(name: "plan", type: "enum", options: "basic,pro"))
        try insertProfiles(pool, database: db.id, count: 2, values: [plan.column: .text("pro")])
        XCTAssertThrowsError(try databases.updateField(plan.id, FieldInput(name: "plan", type: "enum", options: "basic,gold")))
        XCTAssertNoThrow(try databases.updateField(plan.id, FieldInput(name: "plan", type: "enum", options: "basic,pro,gold")))
    }

    func testDeletingAFieldDropsItsColumn() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "D"))
        let f = try databases.addField(to: db.id, FieldInput(name: "x", type: "number", indexed: true))
        try databases.deleteField(f.id)
        let columns = try pool.read { try $0.query($0.dialect.tableColumns, ["profiles_\(db.id)"]).compactMap { $0.string("name") } }
        XCTAssertFalse(columns.contains(f.column))
        XCTAssertNil(try databases.field(f.id))
    }

    func testSetFieldOnAllProfilesIsOneStatement() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "D"))
        let f = try databases.addField(to: db.id, FieldInput(name: "vip", type: "boolean"))
        try insertProfiles(pool, database: db.id, count: 10)
        XCTAssertEqual(try databases.setFieldOnAllProfiles(f, value: "yes"), 10)
        XCTAssertEqual(try databases.valueCount(f), 10)
        XCTAssertThrowsError(try databases.setFieldOnAllProfiles(f, value: "perhaps"))
        XCTAssertEqual(try databases.setFieldOnAllProfiles(f, value: nil), 10)
        XCTAssertEqual(try databases.valueCount(f), 0)
    }

    func testDeleteIsRefusedWhileProfilesHadInteractions() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "D"))
        try insertProfiles(pool, database: db.id, count: 2)
        try insertProfiles(pool, database: db.id, count: 1, engaged: true)
        let impact = try databases.deletionImpact(db.id)
        XCTAssertEqual(impact.profiles, 3)
        XCTAssertEqual(impact.engagedProfiles, 1)
        XCTAssertFalse(impact.allowed)
        XCTAssertThrowsError(try databases.delete(db.id)) { XCTAssertTrue("\($0)".contains("1 profiles")) }
        try pool.write { try $0.run("DELETE FROM profiles_\(db.id) WHERE engaged_at IS NOT NULL") }
        try databases.delete(db.id)
        XCTAssertNil(try databases.get(db.id))
        XCTAssertEqual(try pool.read { try $0.scalar($0.dialect.tableExists, ["profiles_\(db.id)"]).int }, 0)
    }

    func testADeletedDatabasesIdIsNeverReused() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        _ = try databases.create(DatabaseInput(name: "A"))
        let b = try databases.create(DatabaseInput(name: "B"))
        try databases.delete(b.id)
        XCTAssertGreaterThan(try databases.create(DatabaseInput(name: "C")).id, b.id, "old tasks and links never point at a new database")
    }

    func testStandardFieldDefaultsAreValidated() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "D"))
        XCTAssertThrowsError(try databases.updateStandardSettings(db.id, ["_bdate": .init(defaultValue: "2024-02-30"), "email": .init(defaultValue: "a@b.c")])) {
            XCTAssertEqual(Set(($0 as? ValidationError)?.fieldErrors.keys ?? [:].keys), ["_bdate", "email"])
        }
        try databases.updateStandardSettings(db.id, ["_country": .init(defaultValue: "Germany", required: true, showInSM: true), "_sex": .init(required: true)])
        let settings = try databases.standardSettings(of: db.id)
        XCTAssertEqual(settings["_country"], StandardFieldSetting(defaultValue: "Germany", required: true, showInSM: true))
        XCTAssertEqual(settings["_sex"]?.required, true)
    }

    func testStructureRoundTripsAndSameStructureCopies() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let resources = Resources(pool: pool)
        let news = try resources.create(ResourceInput(name: "Newsletter", channels: ["email", "sms"], categories: "Sales\nNews", fields: "level:number"))
        let db = try databases.create(DatabaseInput(name: "Customers", tags: "a", resourceIDs: [news.id]))
        try databases.addField(to: db.id, FieldInput(name: "plan", type: "enum", options: "basic,pro", defaultValue: "basic", indexed: true))
        try databases.addField(to: db.id, FieldInput(name: "prefs", type: "object"))
        try databases.updateStandardSettings(db.id, ["_country": .init(defaultValue: "DE", required: false, showInSM: true)])
        var structure = try XCTUnwrap(databases.structure(of: db.id))
        let parsed = try DatabaseStructure.parse(structure.json())
        XCTAssertEqual(parsed, structure)
        structure.name = "Customers 2"
        let copy = try databases.create(from: structure)
        XCTAssertEqual(try databases.fields(of: copy.id).map(\.name), ["plan", "prefs"])
        XCTAssertEqual(try databases.fields(of: copy.id).first?.indexed, true)
        XCTAssertEqual(try databases.attachedResources(copy.id).map(\.name), ["Newsletter"])
        XCTAssertEqual(try resources.list().count, 1, "the existing resource was attached, not duplicated")
        XCTAssertEqual(try databases.standardSettings(of: copy.id)["_country"]?.defaultValue, "DE")
        let third = try databases.createWithSameStructure(from: db.id, name: "Customers 3")
        XCTAssertEqual(try databases.profileCount(third.id), 0)
        XCTAssertEqual(try databases.fields(of: third.id).count, 2)
    }

    func testABadStructureCreatesNothing() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        XCTAssertThrowsError(try DatabaseStructure.parse("{\"format\": \"roster-database-structure/1\", \"name\": \"x\"}")) {
            XCTAssertTrue("\($0)".contains("custom_fields"), "\($0)")
        }
        XCTAssertThrowsError(try DatabaseStructure.parse("not json"))
        let bad = DatabaseStructure(format: DatabaseStructure.formatName, name: "X", custom_fields: [.init(name: "ok", type: "line"), .init(name: "id", type: "line")],
                                    resources: [.init(name: "R", channels: ["email"])])
        XCTAssertThrowsError(try databases.create(from: bad))
        let badResource = DatabaseStructure(format: DatabaseStructure.formatName, name: "X", custom_fields: [], resources: [.init(name: "R", channels: ["fax"])])
        XCTAssertThrowsError(try databases.create(from: badResource))
        XCTAssertEqual(try databases.list().count, 0)
        XCTAssertEqual(try Resources(pool: pool).list().count, 0, "nothing half-created")
    }
}

final class ResourcesAndLoyaltyTests: XCTestCase {
    func testResourceValidationAndAttachment() throws {
        let pool = try makePool()
        let resources = Resources(pool: pool)
        XCTAssertThrowsError(try resources.create(ResourceInput(name: "", channels: ["fax"], fields: "bad line"))) {
            XCTAssertEqual(Set(($0 as? ValidationError)?.fieldErrors.keys ?? [:].keys), ["name", "channels", "fields"])
        }
        let r = try resources.create(ResourceInput(name: "Website", channels: ["email", "push", "email"], categories: "Sales, News", fields: "device:line\nscore:float", increasePriority: true))
        XCTAssertEqual(r.channels, [.email, .push])
        XCTAssertEqual(r.categories, ["Sales", "News"])
        XCTAssertEqual(r.fields.map(\.name), ["device", "score"])
        XCTAssertTrue(r.increasePriority)
        let databases = Databases(pool: pool)
        let a = try databases.create(DatabaseInput(name: "A", resourceIDs: [r.id]))
        let b = try databases.create(DatabaseInput(name: "B", resourceIDs: [r.id]))
        XCTAssertEqual(try resources.databases(using: r.id).map(\.name), ["A", "B"], "one resource, several databases")
        XCTAssertThrowsError(try resources.delete(r.id))
        try databases.update(a.id, DatabaseInput(name: "A"))
        try databases.update(b.id, DatabaseInput(name: "B"))
        try resources.delete(r.id)
        XCTAssertThrowsError(try databases.create(DatabaseInput(name: "C", resourceIDs: [999])))
    }

    func testPromoCodesAreUniquePerProgram() throws {
        let pool = try makePool()
        let loyalty = Loyalty(pool: pool)
        let program = try loyalty.create(name: "Summer", description: "")
        let result = try loyalty.addCodes(to: program.id, text: "\u{FEFF}CODE1\nCODE2,ignored column\n\nCODE1\n\"CODE3\"\nhas space\n" + String(repeating: "X", count: 65))
        XCTAssertEqual(result.added, 3)
        XCTAssertEqual(result.duplicates, 1)
        XCTAssertEqual(result.invalid.map(\.line), [6, 7])
        let again = try loyalty.addCodes(to: program.id, text: "CODE2\nCODE4")
        XCTAssertEqual(again.added, 1)
        XCTAssertEqual(again.duplicates, 1)
        XCTAssertEqual(try loyalty.get(program.id)?.free, 4)
        let other = try loyalty.create(name: "Winter", description: "")
        XCTAssertEqual(try loyalty.addCodes(to: other.id, text: "CODE1").added, 1, "unique within a program, not across")
        XCTAssertThrowsError(try loyalty.create(name: "summer", description: ""))
    }
}

final class CopyProfilesTaskTests: XCTestCase {
    func testCopiesByFieldNameSkipsExistingEmailsAndReportsCounts() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let source = try databases.create(DatabaseInput(name: "S"))
        let target = try databases.create(DatabaseInput(name: "T"))
        let sScore = try databases.addField(to: source.id, FieldInput(name: "Score", type: "line"))
        let sOnly = try databases.addField(to: source.id, FieldInput(name: "only_here", type: "line"))
        let tScore = try databases.addField(to: target.id, FieldInput(name: "score", type: "number"))
        try insertProfiles(pool, database: source.id, count: 5, values: [sScore.column: .text("12"), sOnly.column: .text("x")])
        try insertProfiles(pool, database: source.id, count: 2, values: [sScore.column: .text("not a number")])
        // One profile already in the target (same email).
        let existing = try pool.read { try $0.queryOne("SELECT email FROM profiles_\(source.id) ORDER BY id LIMIT 1")!.string("email")! }
        try pool.write { try $0.run("INSERT INTO profiles_\(target.id) (profile_id, email, range_bucket, created_at, updated_at) VALUES ('x', ?, 1, 1, 1)", [existing]) }

        let runner = TaskRunner(pool: pool, handlers: [CopyProfilesTask.kind: CopyProfilesTask()], chunkSize: 3)
        let id = try runner.enqueue(kind: CopyProfilesTask.kind, title: "Copy", databaseID: source.id, userID: nil,
                                    parameters: ["target_database_id": .int(target.id)])
        runner.runUntilIdle()
        let task = try XCTUnwrap(runner.task(id))
        XCTAssertEqual(task.state, .done, task.message)
        XCTAssertEqual(task.total, 7)
        XCTAssertEqual(task.processed, 7)
        XCTAssertEqual(task.added, 4)
        XCTAssertEqual(task.skipped, 1)
        XCTAssertEqual(task.failed, 2)
        XCTAssertTrue(task.message.contains("score"), task.message)
        let scores = try pool.read { try $0.query("SELECT \(tScore.column) AS v FROM profiles_\(target.id) WHERE profile_id <> 'x'").map { $0["v"] } }
        XCTAssertEqual(scores, Array(repeating: SQLValue.integer(12), count: 4))
        let ids = try pool.read { try $0.query("SELECT profile_id FROM profiles_\(target.id)").compactMap { $0.string("profile_id") } }
        let sourceIDs = try pool.read { try $0.query("SELECT profile_id FROM profiles_\(source.id)").compactMap { $0.string("profile_id") } }
        XCTAssertTrue(Set(ids).isDisjoint(with: sourceIDs), "copies get their own profile ids")
    }

    func testCancelAndInterruptAndResume() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let source = try databases.create(DatabaseInput(name: "S"))
        let target = try databases.create(DatabaseInput(name: "T"))
        try insertProfiles(pool, database: source.id, count: 10)
        // A stopped runner only records tasks, so the test decides what happens to them.
        let runner = TaskRunner(pool: pool, handlers: [CopyProfilesTask.kind: CopyProfilesTask()], chunkSize: 4)
        runner.stop()
        let cancelled = try runner.enqueue(kind: CopyProfilesTask.kind, title: "c", databaseID: source.id, userID: nil, parameters: ["target_database_id": .int(target.id)])
        try runner.cancel(cancelled)
        let worker = TaskRunner(pool: pool, handlers: [CopyProfilesTask.kind: CopyProfilesTask()], chunkSize: 4)
        worker.runUntilIdle()
        XCTAssertEqual(try worker.task(cancelled)?.state, .cancelled)
        XCTAssertEqual(try databases.profileCount(target.id), 0)

        // A task left "running" by a crash after one committed chunk: interrupted with exact counts, then resumed.
        let id = try runner.enqueue(kind: CopyProfilesTask.kind, title: "r", databaseID: source.id, userID: nil, parameters: ["target_database_id": .int(target.id)])
        let maxID = try pool.read { try $0.scalar("SELECT MAX(id) FROM profiles_\(source.id)").int64! }
        try pool.write { db in
            try db.run("UPDATE tasks SET state = 'running', started_at = 1, total = 10, parameters = ? WHERE id = ?",
                       [JSONValue.object(["target_database_id": .int(target.id), "max_id": .int(maxID)]).canonical, id])
            let task = TaskRecord(row: try db.queryOne("SELECT * FROM tasks WHERE id = ?", [id])!)
            let outcome = try CopyProfilesTask().runChunk(task, limit: 4, db)
            try db.run("UPDATE tasks SET cursor = ?, processed = ?, added = ? WHERE id = ?", [outcome.cursor, outcome.processed, outcome.added, id])
        }
        let restarted = TaskRunner(pool: pool, handlers: [CopyProfilesTask.kind: CopyProfilesTask()], chunkSize: 4)
        XCTAssertEqual(try restarted.recoverInterrupted(), 1)
        let interrupted = try XCTUnwrap(restarted.task(id))
        XCTAssertEqual(interrupted.state, .interrupted)
        XCTAssertEqual(interrupted.added, try databases.profileCount(target.id), "counts equal the committed rows")
        try restarted.resume(id, role: .admin)
        restarted.runUntilIdle()
        let done = try XCTUnwrap(restarted.task(id))
        XCTAssertEqual(done.state, .done)
        XCTAssertEqual(done.added, 10)
        XCTAssertEqual(try databases.profileCount(target.id), 10, "each profile copied exactly once")
        XCTAssertThrowsError(try restarted.resume(id, role: .admin))
    }
}
