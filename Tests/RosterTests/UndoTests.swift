import Foundation
@testable import Roster
import Store
import XCTest

/// Undo, from issue #17's sentences: it restores the before-value wherever the current value is still the task's
/// after-value; values changed since are counted exactly and left alone; subscriptions the task added are removed;
/// codes it attached go back; codes it detached come back only if free; a deletion comes back with ids,
/// subscriptions, history, codes, relations and memberships, until the archive period ends.
final class UndoTests: XCTestCase, BulkFixtures {
    /// What a person sees of the database: each profile's values and status, each subscription's status, each
    /// promo code's holder. Bookkeeping (updated_at, version, interaction times) is not part of it.
    func state(_ s: BulkSetup) throws -> [String: String] {
        try s.pool.read { db in
            var out: [String: String] = [:]
            for row in try db.query("SELECT * FROM profiles_\(s.db.id) ORDER BY id") {
                let id = row.int64("id") ?? 0
                for (name, value) in zip(row.columns, row.values)
                where !["updated_at", "version", "last_interaction_at", "engaged_at"].contains(name) {
                    out["profile \(id) \(name)"] = "\(value)"
                }
            }
            for row in try db.query("SELECT profile, resource_id, channel, contact, status, deleted FROM subscriptions_\(s.db.id)") {
                let key = "sub \(row.int64("profile") ?? 0) \(row.int64("resource_id") ?? 0) \(row.string("channel") ?? "") \(row.string("contact") ?? "")"
                out[key] = "\(row.int("status") ?? -1) \(row.int("deleted") ?? -1)"
            }
            for row in try db.query("SELECT code, status, profile_id FROM promo_codes") {
                out["code \(row.string("code") ?? "")"] = "\(row.string("status") ?? "") \(row.string("profile_id") ?? "-")"
            }
            return out
        }
    }

    func undo(_ s: BulkSetup, _ task: TaskRecord, user: User? = nil) throws -> TaskRecord {
        try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(), action: .undo(taskID: task.id)), user: user)
    }

    /// Keys whose values differ between two states.
    func differences(_ a: [String: String], _ b: [String: String]) -> Set<String> {
        Set(a.keys).union(b.keys).filter { a[$0] != b[$0] }
    }

    func testEachActionUndoneRestoresWhatWasNotChangedSinceAndCountsTheRestExactly() throws {
        var random = SystemRandomNumberGenerator()
        for round in 0..<6 {
            let s = try makeSetup(count: 14, chunkSize: 4)
            let people = try all(s)
            let loyalty = Loyalty(pool: s.pool)
            let program = try loyalty.create(name: "Spring \(round)", description: "")
            _ = try loyalty.addCodes(to: program.id, text: (1...10).map { "C\(round)-\($0)" }.joined(separator: "\n"))
            for (i, p) in people.enumerated() where i % 2 == 0 {
                try s.subs.add(databaseID: s.db.id, profileRowID: p.rowID, SubscriptionInput(
                    resourceID: s.news.id, channel: "email", contact: p.email, status: ProfileStatus(rawValue: i % 7)!.name), actor: nil)
            }
            try s.pool.write { try $0.run("UPDATE profiles_\(s.db.id) SET status = ? WHERE id = ?", [ProfileStatus.complainer.rawValue, people[1].rowID]) }
            let limit = Int.random(in: 8...14, using: &random)
            let selection = Selection(limit: limit)
            let action: BulkAction
            switch round {
            case 0: action = .updateFields([FieldChange(field: "score", value: "500"), FieldChange(field: "vip", value: "true"),
                                            FieldChange(field: "_city", value: nil)])
            case 1: action = .unsubscribe
            case 2: action = .updateSubscriptionStatus(resourceID: s.news.id, channel: "email", status: "unconfirmed", includeUnsafe: true)
            case 3: action = .addSubscription(resourceID: s.news.id, channel: "email", status: "subscribed", sourceResourceID: nil, includeUnsafe: true)
            case 4: action = .promoCodes(programID: program.id, attach: true)
            default:
                _ = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 14), action: .promoCodes(programID: program.id, attach: true)))
                action = .promoCodes(programID: program.id, attach: false)
            }
            let before = try state(s)
            let task = try run(s, BulkRequest(databaseID: s.db.id, selection: selection, action: action))
            XCTAssertGreaterThan(task.updated, 2, "round \(round) changed something")
            let changed = try state(s)
            // Drift: someone changes two of the task's values afterwards, in the way each kind of value changes.
            let log = try s.pool.read { try $0.query("SELECT profile_id, field FROM task_changes WHERE task_id = ? ORDER BY id", [task.id]) }
            let touched = Array(Set(log.compactMap { $0.string("profile_id") })).sorted().prefix(2)
            let rows = people.filter { touched.contains($0.profileID) }.map(\.rowID)
            XCTAssertEqual(rows.count, 2)
            try s.pool.write { db in
                for row in rows {
                    switch round {
                    case 0: try db.run("UPDATE profiles_\(s.db.id) SET s_city = 'Rome' WHERE id = ?", [row])
                    case 1: try db.run("UPDATE profiles_\(s.db.id) SET status = 5 WHERE id = ?", [row])
                    case 2, 3: try db.run("UPDATE subscriptions_\(s.db.id) SET status = 5 WHERE profile = ? AND resource_id = ?", [row, s.news.id])
                    case 4: try db.run("UPDATE promo_codes SET status = 'activated' WHERE profile_id = (SELECT profile_id FROM profiles_\(s.db.id) WHERE id = ?)", [row])
                    default:
                        let pid = try db.scalar("SELECT profile_id FROM profiles_\(s.db.id) WHERE id = ?", [row]).string ?? ""
                        try db.run("INSERT INTO promo_codes (program_id, code, status, database_id, profile_id, created_at) VALUES (?, ?, 'attached', ?, ?, 0)",
                                   [program.id, "NEW-\(row)", s.db.id, pid])
                    }
                }
            }
            let drifted = try state(s)
            let undone = try undo(s, task)
            // Each of the two profiles had one value changed since (for fields: the city, one of three values).
            let reason = round == 5 ? SkipReason.codeTaken : SkipReason.changedSince
            XCTAssertEqual(undone.details[reason], 2, "round \(round): exactly the drifted values are left alone: \(undone.details)")
            let values = try s.bulk.changeCount(taskID: task.id)
            XCTAssertEqual(undone.updated, values - 2, "round \(round): every other value is put back")
            XCTAssertEqual(undone.total, values, "one item per change-log row")
            let after = try state(s)
            // Every value the drift did not touch is as before the task; the drifted ones are as the drift left them.
            let driftKeys = differences(changed, drifted)
            // A detached code stays detached when the drift gave its profile another code of the program.
            let blocked = Set(before.filter { key, value in round == 5 && touched.contains { value.hasSuffix(" " + $0) } }.keys)
            for key in differences(before, after) where !blocked.contains(key) {
                XCTAssertTrue(driftKeys.contains(key), "round \(round): \(key) is \(after[key] ?? "gone"), was \(before[key] ?? "absent")")
                XCTAssertEqual(after[key], drifted[key], "round \(round): \(key) is left as the drift made it")
            }
            XCTAssertFalse(driftKeys.isEmpty)
            // The undo has its own change log, and a second undo (or an undo of the undo) is refused.
            XCTAssertEqual(try s.bulk.changeCount(taskID: undone.id), undone.updated)
            XCTAssertThrowsError(try s.bulk.start(BulkRequest(databaseID: s.db.id, selection: Selection(), action: .undo(taskID: task.id)),
                                                  title: "again", user: s.admin))
            XCTAssertThrowsError(try s.bulk.start(BulkRequest(databaseID: s.db.id, selection: Selection(), action: .undo(taskID: undone.id)),
                                                  title: "undo of undo", user: s.admin))
        }
    }

    func testThePreviewCountsAndShowsTheDrift() throws {
        let s = try makeSetup(count: 8, chunkSize: 3)
        let task = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 8), action: .updateFields([FieldChange(field: "score", value: "5")])))
        XCTAssertEqual(task.updated, 7, "one profile already had 5")
        let victim = try all(s)[2]
        try s.pool.write { try $0.run("UPDATE profiles_\(s.db.id) SET c_1 = 1234 WHERE id = ?", [victim.rowID]) }
        let preview = try s.bulk.preview(BulkRequest(databaseID: s.db.id, selection: Selection(), action: .undo(taskID: task.id)), actor: s.editor)
        XCTAssertEqual([preview.selected, preview.updated, preview.skipped], [7, 6, 1])
        XCTAssertEqual(preview.drift.map(\.profileID), [victim.profileID], "\(preview.drift)")
        XCTAssertEqual(preview.drift.first?.before, "5", "what the task left")
        XCTAssertEqual(preview.drift.first?.after, "1234", "what it is now")
        XCTAssertEqual(preview.sample.count, 6)
        XCTAssertTrue(preview.sample.allSatisfy { $0.before == "5" })
    }

    func testOnlyEndedBulkTasksOfTheDatabaseAreUndoneAndDeletionsNeedAnAdmin() throws {
        let s = try makeSetup(count: 6)
        func refuse(_ id: Int64, user: User, database: Int64? = nil, _ words: String) {
            XCTAssertThrowsError(try s.bulk.start(BulkRequest(databaseID: database ?? s.db.id, selection: Selection(), action: .undo(taskID: id)),
                                                  title: "u", user: user)) { error in
                XCTAssertTrue("\(error)".contains(words), "\(error)")
            }
        }
        refuse(999, user: s.admin, "No such task")
        let fields = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 3), action: .updateFields([FieldChange(field: "vip", value: "true")])))
        refuse(fields.id, user: s.viewer, "Viewers")
        let other = try Databases(pool: s.pool).create(DatabaseInput(name: "Other"))
        refuse(fields.id, user: s.admin, database: other.id, "Only a bulk update of this database")
        try s.pool.write { try $0.run("UPDATE profiles_\(s.db.id) SET last_interaction_at = NULL") }
        let deletion = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 2), action: .deleteInactive))
        refuse(deletion.id, user: s.editor, "Only admins")
        _ = try undo(s, fields, user: s.editor)
        s.runner.stop()
        let waiting = try s.bulk.start(BulkRequest(databaseID: s.db.id, selection: Selection(limit: 2), action: .unsubscribe), title: "w", user: s.admin)
        refuse(waiting, user: s.admin, "has not ended")
    }

    func testADeletionComesBackWholeWithItsIdsAndIsPurgedAfterThePeriod() throws {
        let s = try makeSetup(count: 10, chunkSize: 3)
        let people = try all(s)
        let extras = ProfileExtras(pool: s.pool)
        let segments = Segments(pool: s.pool)
        let vip = try segments.create(databaseID: s.db.id, SegmentInput(name: "VIP", kind: .static), actor: nil)
        let loyalty = Loyalty(pool: s.pool)
        let program = try loyalty.create(name: "Autumn", description: "")
        _ = try loyalty.addCodes(to: program.id, text: "K1\nK2\nK3")
        for (i, p) in people.enumerated() {
            try s.subs.add(databaseID: s.db.id, profileRowID: p.rowID, SubscriptionInput(resourceID: s.news.id, channel: "email", contact: p.email), actor: nil)
            if i % 2 == 0 { _ = try segments.addMember(segmentID: vip.id, databaseID: s.db.id, profileRowID: p.rowID, actor: nil) }
            // Relations among the deleted, and between deleted and kept profiles.
            try extras.addRelation(databaseID: s.db.id, profileID: p.profileID, name: "knows", other: people[(i + 3) % people.count].profileID,
                                   properties: "since=\(i)", actor: nil)
        }
        _ = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 3), action: .promoCodes(programID: program.id, attach: true)))
        // A Float field: JSON writes 1.0 as 1, and it must come back as the real 1.0.
        let ratio = try Databases(pool: s.pool).addField(to: s.db.id, FieldInput(name: "ratio", type: "float"))
        try s.pool.write { try $0.run("UPDATE profiles_\(s.db.id) SET c_\(ratio.id) = CAST(id AS REAL) / 2") }
        let cutoff = BulkUpdates.cutoff(now: s.now, months: 1)
        try s.pool.write { db in
            for (i, p) in people.enumerated() {
                try db.run("UPDATE profiles_\(s.db.id) SET last_interaction_at = ? WHERE id = ?", [i < 7 ? cutoff - 10 : cutoff + 10, p.rowID])
            }
        }
        let tables = ["profiles_\(s.db.id)", "subscriptions_\(s.db.id)", "history_\(s.db.id)", "relations_\(s.db.id)",
                      "segment_members_\(s.db.id)", "promo_codes"]
        func everything() throws -> [String: [String]] {
            try s.pool.read { db in
                var out: [String: [String]] = [:]
                for t in tables { out[t] = try db.query("SELECT * FROM \(t)").map { "\($0.values)" }.sorted() }
                return out
            }
        }
        let before = try everything()
        let deletion = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 9), action: .deleteInactive))
        XCTAssertEqual(deletion.deleted, 7)
        XCTAssertEqual(try all(s).count, 3)
        let archive = DeletionArchive(pool: s.pool, days: 30)
        XCTAssertEqual(try archive.size().profiles, 7)
        let undone = try undo(s, deletion)
        XCTAssertEqual([undone.total, undone.updated, undone.skipped], [7, 7, 0])
        XCTAssertEqual(try everything(), before, "every row is back as it was, with its id")
        XCTAssertEqual(try archive.size().profiles, 0, "a restored profile leaves the archive")

        // Deleted again: a profile created since with one of the emails is not overwritten; the rest come back.
        let again = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 9), action: .deleteInactive))
        _ = try s.profiles.create(databaseID: s.db.id, ProfileInput(values: ["email": people[0].email]), actor: nil)
        let partly = try undo(s, again)
        XCTAssertEqual([partly.updated, partly.details[SkipReason.profileExists]], [6, 1])
        XCTAssertEqual(try archive.size().profiles, 1, "the one not restored stays archived until the period ends")

        // After the period the archive is purged, and the undo says why it cannot run.
        let third = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 9), action: .deleteInactive))
        XCTAssertEqual(try archive.purge(now: s.now + 29 * 86_400), 0, "kept for 30 days")
        XCTAssertGreaterThan(try archive.purge(now: s.now + 31 * 86_400), 0)
        XCTAssertEqual(try archive.size().profiles, 0)
        XCTAssertThrowsError(try s.bulk.start(BulkRequest(databaseID: s.db.id, selection: Selection(), action: .undo(taskID: third.id)),
                                              title: "u", user: s.admin)) { XCTAssertTrue("\($0)".contains("no longer archived"), "\($0)") }
    }

    /// Review finding: the change log shows values as people read them ("a, b", "2024-05-01", "3.0") while the columns
    /// hold them as stored; an undo must still see them as what the task set, on both stores.
    func testValuesOfEveryTypeComeBackWhateverTheirDisplay() throws {
        let s = try makeSetup(count: 6, chunkSize: 4)
        let databases = Databases(pool: s.pool)
        _ = try databases.addField(to: s.db.id, FieldInput(name: "labels", type: "tags"))
        _ = try databases.addField(to: s.db.id, FieldInput(name: "since", type: "date"))
        _ = try databases.addField(to: s.db.id, FieldInput(name: "ratio", type: "float"))
        _ = try databases.addField(to: s.db.id, FieldInput(name: "last_ip", type: "ip"))
        let before = try state(s)
        let task = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 4), action: .updateFields([
            FieldChange(field: "labels", value: "a, b"), FieldChange(field: "since", value: "2024-05-01"), FieldChange(field: "ratio", value: "3"),
            FieldChange(field: "last_ip", value: "10.0.0.1"), FieldChange(field: "phones", value: "+7 900 111-22-33"), FieldChange(field: "vip", value: "true")])))
        XCTAssertEqual(task.updated, 4)
        let undone = try undo(s, task)
        XCTAssertEqual(undone.details, [:], "nothing was changed since, so nothing is left alone")
        XCTAssertEqual(undone.updated, try s.bulk.changeCount(taskID: task.id))
        XCTAssertEqual(differences(before, try state(s)), [])
    }

    /// Review finding: a task that brought back a deleted subscription is undone by deleting it again.
    func testASubscriptionBroughtBackFromDeletionIsDeletedAgain() throws {
        let s = try makeSetup(count: 2)
        let p = try all(s)[0]
        try s.subs.add(databaseID: s.db.id, profileRowID: p.rowID, SubscriptionInput(resourceID: s.news.id, channel: "email", contact: p.email,
                                                                                    status: "unsubscribed"), actor: nil)
        try s.pool.write { try $0.run("UPDATE subscriptions_\(s.db.id) SET deleted = 1") }
        let before = try state(s)
        let task = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 1), action: .addSubscription(
            resourceID: s.news.id, channel: "email", status: "subscribed", sourceResourceID: nil, includeUnsafe: true)))
        XCTAssertEqual(task.updated, 1)
        XCTAssertEqual(try s.bulk.changeCount(taskID: task.id), 1)
        _ = try undo(s, task)
        XCTAssertEqual(differences(before, try state(s)), [], "deleted again, with its earlier status")
    }

    /// Review finding: SQLite gives the highest ids of deleted rows to new rows; restoring must not fail on them.
    func testRestoringWorksWhenNewRowsTookTheDeletedIds() throws {
        let s = try makeSetup(count: 4)
        let people = try all(s)
        for p in people {
            try s.subs.add(databaseID: s.db.id, profileRowID: p.rowID, SubscriptionInput(resourceID: s.news.id, channel: "email", contact: p.email),
                           actor: nil)
        }
        // The two newest profiles are deleted; then two new ones come, with history and subscriptions of their own.
        try s.pool.write { db in
            try db.run("UPDATE profiles_\(s.db.id) SET last_interaction_at = CASE WHEN id > ? THEN NULL ELSE ? END", [people[1].rowID, s.now])
        }
        let deletion = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(rules: .group(.and, [.rule(Rule(subject: "field:email",
                                                                                                                       op: "not_empty"))])),
                                              action: .deleteInactive))
        XCTAssertEqual(deletion.deleted, 2)
        // New rows of the kept profiles take the deleted rows' ids (SQLite gives out the highest id + 1 again).
        for i in 0..<3 {
            try s.subs.add(databaseID: s.db.id, profileRowID: people[0].rowID, SubscriptionInput(resourceID: s.promo.id, channel: "email",
                                                                                                contact: "extra\(i)@x.io"), actor: nil)
        }
        let undone = try undo(s, deletion)
        XCTAssertEqual(undone.updated, 2)
        XCTAssertEqual(try all(s).count, 4)
        for p in people.suffix(2) {
            XCTAssertEqual(try s.subs.list(databaseID: s.db.id, profileRowID: p.rowID).map(\.contact), [p.email], "its subscription is back")
            XCTAssertGreaterThan(try s.pool.read { try $0.scalar("SELECT COUNT(*) FROM history_\(s.db.id) WHERE profile = ?", [p.rowID]).int ?? 0 }, 0)
        }
        XCTAssertEqual(try s.subs.list(databaseID: s.db.id, profileRowID: people[0].rowID).count, 4, "the kept profile's new rows stay")
    }

    /// Review findings: approval rules count profiles, not values; only an admin resumes the undo of a deletion.
    func testApprovalRulesCountProfilesAndOnlyAdminsResumeARestore() throws {
        let s = try makeSetup(count: 6)
        let task = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 4), action: .updateFields([
            FieldChange(field: "score", value: "50"), FieldChange(field: "vip", value: "true"), FieldChange(field: "_city", value: "Rome")])))
        try Approvals(pool: s.pool, tasks: s.runner).save(ApprovalRules(overProfiles: 5), by: s.admin)
        let undone = try undo(s, task)
        XCTAssertEqual(undone.total, 12, "12 values of 4 profiles: under the rule's 5 profiles")
        try Approvals(pool: s.pool, tasks: s.runner).save(ApprovalRules(), by: s.admin)
        try s.pool.write { try $0.run("UPDATE profiles_\(s.db.id) SET last_interaction_at = NULL") }
        let deletion = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 2), action: .deleteInactive))
        s.runner.stop()
        let restore = try s.bulk.start(BulkRequest(databaseID: s.db.id, selection: Selection(), action: .undo(taskID: deletion.id)),
                                       title: "r", user: s.admin)
        let record = try XCTUnwrap(s.runner.task(restore))
        let handler = BulkUpdateTask()
        XCTAssertFalse(handler.mayRun(record, role: .editor))
        XCTAssertTrue(handler.mayRun(record, role: .admin))
        XCTAssertTrue(handler.mayRun(try XCTUnwrap(s.runner.task(undone.id)), role: .editor))
    }

    /// Review finding: an undo waiting for approval is approved on its own preview (its items, not the database's
    /// profiles), runs, and puts the values back.
    func testAnUndoWaitingForApprovalIsApprovedOnItsPreviewAndRuns() throws {
        let s = try makeSetup(count: 6)
        let second = try Accounts(pool: s.pool).createUser(email: "a2@x.io", name: "", role: .admin, password: "password for a2")
        let before = try state(s)
        let task = try run(s, BulkRequest(databaseID: s.db.id, selection: Selection(limit: 3), action: .updateFields([
            FieldChange(field: "score", value: "50"), FieldChange(field: "vip", value: "true")])))
        let approvals = Approvals(pool: s.pool, tasks: s.runner, clock: Clock { BulkSetup.now })
        try approvals.save(ApprovalRules(overProfiles: 2), by: s.admin)
        let request = BulkRequest(databaseID: s.db.id, selection: Selection(), action: .undo(taskID: task.id))
        let id = try s.bulk.start(request, title: "undo", user: s.admin)
        XCTAssertEqual(try s.runner.task(id)?.state, .awaitingApproval, "3 profiles: over the rule's 2")
        let preview = try s.bulk.preview(request, actor: second, task: id)
        XCTAssertEqual(preview.selected, 6, "two values for each of three profiles")
        try approvals.approve(id, by: second, previewed: preview.selected)
        s.runner.runUntilIdle()
        let undone = try XCTUnwrap(s.runner.task(id))
        XCTAssertEqual([undone.state.rawValue, String(undone.updated)], ["done", "6"], undone.message)
        XCTAssertEqual(differences(before, try state(s)), [])
    }
}
