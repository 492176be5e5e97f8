import Foundation
@testable import Roster
import Store
import XCTest

final class BulkUpdateTests: XCTestCase, BulkFixtures {
    static let now = BulkSetup.now

    func testFieldUpdateSetsAndDeletesWithAChangeLog() throws {
        let s = try makeSetup()
        let task = try run(s, BulkRequest(databaseID: s.db.id, selection: moscow(), action: .updateFields([FieldChange(field: "vip", value: "yes"), FieldChange(field: "score", value: nil)])))
        XCTAssertEqual([task.total, task.updated, task.skipped], [6, 6, 0])
        let people = try all(s)
        XCTAssertEqual(people.filter { $0.values["vip"] == "true" }.count, 6)
        XCTAssertTrue(people.prefix(6).allSatisfy { $0.values["score"] == "" })
        XCTAssertEqual(people[7].values["score"], "7", "Paris is untouched")
        // Again: nothing changes, everything is skipped as unchanged.
        let again = try run(s, BulkRequest(databaseID: s.db.id, selection: moscow(), action: .updateFields([FieldChange(field: "vip", value: "true")])))
        XCTAssertEqual([again.updated, again.skipped], [0, 6])
        XCTAssertEqual(again.details, [SkipReason.unchanged: 6])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("changes-\(UUID().uuidString).csv").path
        try s.bulk.writeChanges(taskID: task.id, databaseID: s.db.id, to: path)
        let csv = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\r\n")
        XCTAssertEqual(csv.first, "profile_id,email,field,field_key,before,after")
        XCTAssertEqual(csv.count, 1 + 12, "vip and score for six profiles")
        XCTAssertTrue(csv.contains { $0.contains(",p0@x.io,score,score,0,") }, "each row has the profile's email: \(csv)")
        XCTAssertTrue(csv.contains { $0.hasSuffix(",vip,vip,,true") }, "\(csv)")
        XCTAssertEqual(try s.profiles.history(databaseID: s.db.id, rowID: people[0].rowID, type: HistoryEvent.fieldChanged, since: nil).count, 1)
        let triggers = try s.pool.read { try $0.scalar("SELECT COUNT(*) FROM trigger_events WHERE type = 'field_updated'").int }
        XCTAssertEqual(triggers, 6)
    }

    func testForgedFieldsAndValuesAreRefusedBeforeAnyTask() throws {
        let s = try makeSetup()
        func refuse(_ action: BulkAction, _ key: String, user: User? = nil, selection: Selection? = nil) {
            XCTAssertThrowsError(try s.bulk.start(BulkRequest(databaseID: s.db.id, selection: selection ?? moscow(), action: action), title: "t", user: user ?? s.admin)) { error in
                XCTAssertNotNil((error as? ValidationError)?.fieldErrors[key], "\(key): \(error)")
            }
        }
        refuse(.updateFields([FieldChange(field: "other_db_field", value: "1")]), "field_other_db_field")
        refuse(.updateFields([FieldChange(field: "score", value: "abc")]), "field_score")
        refuse(.updateFields([FieldChange(field: "email", value: "x@y.z")]), "field_email")
        refuse(.updateFields([]), "fields")
        refuse(.addSubscription(resourceID: 999, channel: "email", status: "subscribed", sourceResourceID: nil, includeUnsafe: false), "resource")
        refuse(.addSubscription(resourceID: s.news.id, channel: "viber", status: "subscribed", sourceResourceID: nil, includeUnsafe: false), "channel")
        refuse(.updateSubscriptionStatus(resourceID: s.news.id, channel: "email", status: "9", includeUnsafe: false), "status")
        refuse(.promoCodes(programID: 42, attach: true), "program")
        refuse(.deleteInactive, "action", user: s.editor)
        refuse(.unsubscribe, "action", user: s.viewer)
        refuse(.deleteInactive, "rules", selection: Selection())
        refuse(.unsubscribe, "rules", selection: Selection())
        XCTAssertEqual(try s.runner.recent().count, 0, "no task was created")
    }

    func testGlobalUnsubscribeAndRangeThenLimit() throws {
        let s = try makeSetup(count: 40)
        // Range first (whole database), then rules, then the first N in creation order.
        let selection = Selection(rules: .group(.and, [.rule(Rule(subject: "status", op: "in", value: "subscribed"))]), rangeFrom: 0, rangeTo: 50, limit: 3)
        let expected = try all(s).filter { ProfileIdentity.rangeBucket($0.profileID) < 5000 }.prefix(3).map(\.profileID)
        let task = try run(s, BulkRequest(databaseID: s.db.id, selection: selection, action: .unsubscribe))
        XCTAssertEqual(task.updated, 3)
        XCTAssertEqual(try all(s).filter { $0.status == .unsubscribed }.map(\.profileID), Array(expected))
    }

    func testStatusUpdateRespectsUnsafeStatusesUnlessIncluded() throws {
        for include in [false, true] {
            let s = try makeSetup(count: 7)
            let people = try all(s)
            // One subscription per profile, in each of the seven statuses.
            for (i, p) in people.enumerated() {
                try s.subs.add(databaseID: s.db.id, profileRowID: p.rowID, SubscriptionInput(resourceID: s.news.id, channel: "email", contact: p.email,
                                                                                            status: ProfileStatus(rawValue: i)!.name), actor: nil)
            }
            let task = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 100), action: .updateSubscriptionStatus(resourceID: s.news.id, channel: "email", status: "subscribed", includeUnsafe: include)))
            let statuses = try people.map { try s.subs.list(databaseID: s.db.id, profileRowID: $0.rowID)[0].status }
            if include {
                XCTAssertEqual(task.updated, 6)
                XCTAssertTrue(statuses.allSatisfy { $0 == .subscribed })
            } else {
                XCTAssertEqual(task.updated, 2, "unconfirmed and suspended move; the four unsafe ones stay")
                XCTAssertEqual(task.details[SkipReason.unsafeStatus], 4)
                for unsafe in EventRules.unsafeStatuses { XCTAssertEqual(statuses[unsafe.rawValue], unsafe, "\(unsafe) is left alone") }
            }
        }
    }

    func testAddSubscriptionFromProfileFieldsAndFromAnotherResource() throws {
        let s = try makeSetup(count: 6)
        let people = try all(s)
        // From fields: SMS from the first phone; odd profiles have none.
        let sms = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 100), action: .addSubscription(resourceID: s.news.id, channel: "sms", status: "subscribed", sourceResourceID: nil, includeUnsafe: false)))
        XCTAssertEqual([sms.updated, sms.skipped], [3, 3])
        XCTAssertEqual(sms.details, [SkipReason.noContact: 3])
        XCTAssertEqual(try s.subs.list(databaseID: s.db.id, profileRowID: people[0].rowID).map(\.contact), ["+79000001000"])
        // From another resource: Promo's email subscriptions give News its contacts; one source is unsafe.
        try s.subs.add(databaseID: s.db.id, profileRowID: people[0].rowID, SubscriptionInput(resourceID: s.promo.id, channel: "email", contact: "alt0@x.io"), actor: nil)
        try s.subs.add(databaseID: s.db.id, profileRowID: people[1].rowID, SubscriptionInput(resourceID: s.promo.id, channel: "email", contact: "alt1@x.io", status: "complainer"), actor: nil)
        let request = BulkRequest(databaseID: s.db.id, selection: Selection(limit: 100), action: .addSubscription(resourceID: s.news.id, channel: "email", status: "subscribed", sourceResourceID: s.promo.id, includeUnsafe: false))
        let fromResource = try run(s, request)
        XCTAssertEqual(fromResource.updated, 1)
        XCTAssertEqual(fromResource.details, [SkipReason.noSource: 4, SkipReason.unsafeStatus: 1])
        XCTAssertTrue(try s.subs.list(databaseID: s.db.id, profileRowID: people[0].rowID).contains { $0.resourceID == s.news.id && $0.contact == "alt0@x.io" })
        var unsafe = request
        unsafe.action = .addSubscription(resourceID: s.news.id, channel: "email", status: "subscribed", sourceResourceID: s.promo.id, includeUnsafe: true)
        let included = try run(s, unsafe)
        XCTAssertEqual(included.updated, 1, "with the option the complainer's contact is used")
        XCTAssertEqual(included.details, [SkipReason.noSource: 4, SkipReason.unchanged: 1])
        // An existing subscription in an unsafe status is not resubscribed from fields either.
        let p2 = people[2]
        try s.subs.add(databaseID: s.db.id, profileRowID: p2.rowID, SubscriptionInput(resourceID: s.news.id, channel: "email", contact: p2.email, status: "hard_bounced"), actor: nil)
        let fromFields = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(rules: .group(.and, [.rule(Rule(subject: "field:email", op: "eq", value: p2.email))])),
                                                action: .addSubscription(resourceID: s.news.id, channel: "email", status: "subscribed", sourceResourceID: nil, includeUnsafe: false)))
        XCTAssertEqual(fromFields.details, [SkipReason.unsafeStatus: 1])
    }

    func testPromoCodesAttachOncePerProfileAndReportTheShortfall() throws {
        let s = try makeSetup(count: 5)
        let loyalty = Loyalty(pool: s.pool)
        let program = try loyalty.create(name: "Spring", description: "")
        _ = try loyalty.addCodes(to: program.id, text: "A1\nA2\nA3")
        let task = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 100), action: .promoCodes(programID: program.id, attach: true)))
        XCTAssertEqual([task.updated, task.skipped], [3, 2])
        XCTAssertEqual(task.details, [SkipReason.noFreeCode: 2])
        XCTAssertTrue(task.message.contains("ran out"))
        let codes = try s.pool.read { try $0.query("SELECT code, profile_id FROM promo_codes WHERE status = 'attached'") }
        XCTAssertEqual(Set(codes.compactMap { $0.string("profile_id") }).count, 3, "no code went to two profiles")
        _ = try loyalty.addCodes(to: program.id, text: "B1\nB2\nB3")
        let second = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 100), action: .promoCodes(programID: program.id, attach: true)))
        XCTAssertEqual(second.updated, 2, "profiles that already have a code of the program get none")
        XCTAssertEqual(second.details, [SkipReason.hasCode: 3])
        let detach = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 2), action: .promoCodes(programID: program.id, attach: false)))
        XCTAssertEqual(detach.updated, 2)
        XCTAssertEqual(try s.pool.read { try $0.scalar("SELECT COUNT(*) FROM promo_codes WHERE status = 'detached'").int }, 2)
    }

    func testCutoffIsTheSameOnTheFirstAndTheLastDayOfAMonth() {
        func day(_ y: Int, _ m: Int, _ d: Int) -> Int64 { Int64(UTCTime.days(year: y, month: m, day: d)) * 86_400 }
        XCTAssertEqual(BulkUpdates.cutoff(now: day(2025, 10, 1) + 3600, months: 1), day(2025, 9, 1))
        XCTAssertEqual(BulkUpdates.cutoff(now: day(2025, 10, 31) + 86_000, months: 1), day(2025, 9, 1))
        XCTAssertEqual(BulkUpdates.cutoff(now: day(2025, 5, 1), months: 4), day(2025, 1, 1))
        XCTAssertEqual(BulkUpdates.cutoff(now: day(2026, 1, 15), months: 1), day(2025, 12, 1))
        XCTAssertEqual(BulkUpdates.cutoff(now: day(2026, 3, 31), months: 0), day(2026, 3, 1))
    }

    func testDeleteOnlyProfilesWithoutInteractionsSinceTheCutoffKeepingStatistics() throws {
        let s = try makeSetup(count: 6)
        let people = try all(s)
        let cutoff = BulkUpdates.cutoff(now: s.now, months: 1)
        try s.pool.write { db in
            for (i, p) in people.enumerated() {
                // Three went quiet before the cut-off; three had an interaction after it.
                try db.run("UPDATE profiles_\(s.db.id) SET last_interaction_at = ? WHERE id = ?", [i < 3 ? cutoff - 86_400 : cutoff + 86_400, p.rowID])
            }
        }
        let statsBefore = try s.pool.read { try $0.scalar("SELECT SUM(count) FROM event_stats WHERE database_id = ?", [s.db.id]).int }
        let task = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(rules: .group(.and, [.rule(Rule(subject: "field:email", op: "not_empty"))])), action: .deleteInactive))
        XCTAssertEqual([task.deleted, task.skipped], [3, 3])
        XCTAssertEqual(task.details, [SkipReason.recentInteraction: 3])
        XCTAssertEqual(try all(s).map(\.profileID), people.suffix(3).map(\.profileID))
        XCTAssertEqual(try s.pool.read { try $0.scalar("SELECT SUM(count) FROM event_stats WHERE database_id = ?", [s.db.id]).int }, statsBefore, "reports keep the deleted profiles' actions")
        XCTAssertEqual(try s.pool.read { try $0.scalar("SELECT COUNT(*) FROM history_\(s.db.id) WHERE profile = ?", [people[0].rowID]).int }, 0)
        if s.pool.kind == .sqlite { XCTAssertEqual(try s.pool.read { try $0.scalar("PRAGMA integrity_check").string }, "ok") }
    }

    func testTargetsAreFrozenWhenTheTaskStarts() throws {
        let s = try makeSetup(count: 12, chunkSize: 5)
        s.runner.stop()   // records tasks only: the test plays the runner by hand
        let id = try s.bulk.start(BulkRequest(databaseID: s.db.id, selection: moscow(), action: .updateFields([FieldChange(field: "vip", value: "true")])), title: "t", user: s.editor)
        // Freeze the targets by hand, then move a Paris profile to Moscow: it must not be touched.
        let handler = BulkUpdateTask(clock: Clock { BulkUpdateTests.now })
        try s.pool.write { db in
            let task = TaskRecord(row: try db.queryOne("SELECT * FROM tasks WHERE id = ?", [id])!)
            let prepared = try handler.prepare(task, db)
            try db.run("UPDATE tasks SET state = 'running', started_at = 1, total = ?, parameters = ? WHERE id = ?",
                       [prepared.total, JSONValue.object(task.parameters.merging(prepared.parameters) { $1 }).canonical, id])
        }
        let paris = try all(s).last!
        try s.pool.write { try $0.run("UPDATE profiles_\(s.db.id) SET s_city = 'Moscow' WHERE id = ?", [paris.rowID]) }
        let fresh = TaskRunner(pool: s.pool, handlers: [BulkUpdateTask.kind: handler], chunkSize: 5)
        XCTAssertEqual(try fresh.recoverInterrupted(), 1)
        try fresh.resume(id, role: .admin)
        fresh.runUntilIdle()
        let task = try XCTUnwrap(fresh.task(id))
        XCTAssertEqual([task.total, task.updated], [6, 6])
        XCTAssertEqual(try all(s).last?.values["vip"], "", "a profile that matched only after the start is not touched")
        XCTAssertEqual(try s.pool.read { try $0.scalar("SELECT COUNT(*) FROM task_targets").int }, 0, "targets are dropped at the end")
    }

    /// A cancelled task's frozen targets are dropped, whether it was running (stopped after its chunk) or
    /// interrupted (cancelled at once); an interrupted one keeps them until then, to resume.
    func testCancelledTasksDropTheirTargets() throws {
        let s = try makeSetup(count: 12, chunkSize: 5)
        s.runner.stop()
        let handler = BulkUpdateTask(clock: Clock { BulkUpdateTests.now })
        let targets = { try s.pool.read { try $0.scalar("SELECT COUNT(*) FROM task_targets").int ?? -1 } }
        func startByHand() throws -> Int64 {
            let id = try s.bulk.start(BulkRequest(databaseID: s.db.id, selection: moscow(), action: .updateFields([FieldChange(field: "vip", value: "true")])), title: "t", user: s.editor)
            try s.pool.write { db in
                let task = TaskRecord(row: try db.queryOne("SELECT * FROM tasks WHERE id = ?", [id])!)
                let prepared = try handler.prepare(task, db)
                try db.run("UPDATE tasks SET state = 'running', started_at = 1, total = ?, parameters = ? WHERE id = ?",
                           [prepared.total, JSONValue.object(task.parameters.merging(prepared.parameters) { $1 }).canonical, id])
            }
            return id
        }
        let interrupted = try startByHand()
        let fresh = TaskRunner(pool: s.pool, handlers: [BulkUpdateTask.kind: handler], chunkSize: 5)
        XCTAssertEqual(try fresh.recoverInterrupted(), 1)
        XCTAssertEqual(try targets(), 6, "an interrupted task keeps its targets")
        try fresh.cancel(interrupted)
        XCTAssertEqual(try fresh.task(interrupted)?.state, .cancelled)
        XCTAssertEqual(try targets(), 0)

        let running = try startByHand()
        try s.pool.write { try $0.run("UPDATE tasks SET cancel_requested = 1 WHERE id = ?", [running]) }
        try s.pool.write { try $0.run("UPDATE tasks SET state = 'queued' WHERE id = ?", [running]) }
        fresh.runUntilIdle()
        XCTAssertEqual(try fresh.task(running)?.state, .cancelled)
        XCTAssertEqual(try targets(), 0)
    }

    /// The change log of a field update looks profiles up by row id from the chunk's temp table, never scans the
    /// profile table (the plan a plain JOIN got, which made a million-profile update 4x slower).
    func testTheFieldChangeLogNeverScansTheProfileTable() throws {
        let s = try makeSetup(count: 3)
        // SQLite's plan and its CROSS JOIN hint; PostgreSQL plans from statistics.
        if s.pool.kind != .sqlite { throw XCTSkip("a SQLite query plan") }
        let score = try Databases(pool: s.pool).fields(of: s.db.id).first { $0.name == "score" }!
        let plan = try s.pool.write { db -> [String] in
            try db.execute("CREATE TEMP TABLE IF NOT EXISTS bulk_profiles (id INTEGER PRIMARY KEY, profile_id TEXT NOT NULL)")
            let sql = BulkExecutor.changeLogSQL(table: ProfileTable.name(s.db.id), column: score.column, type: .number, db.dialect)
            return try db.prepare("EXPLAIN QUERY PLAN " + sql).query([1, "score", "1", 1]).compactMap { $0.string("detail") }
        }
        XCTAssertTrue(plan.contains { $0.hasPrefix("SCAN c") }, "\(plan)")
        XCTAssertTrue(plan.contains { $0.hasPrefix("SEARCH p USING INTEGER PRIMARY KEY") }, "\(plan)")
    }
}
