import Foundation
@testable import Roster
import Store
import XCTest

final class ExportProfilesTaskTests: XCTestCase {
    func testCellsFollowRFC4180AndNeutraliseFormulas() {
        XCTAssertEqual(ExportProfilesTask.cell("plain", neutralize: true), "plain")
        XCTAssertEqual(ExportProfilesTask.cell("a,b", neutralize: true), "\"a,b\"")
        XCTAssertEqual(ExportProfilesTask.cell("say \"hi\"", neutralize: true), "\"say \"\"hi\"\"\"")
        XCTAssertEqual(ExportProfilesTask.cell("two\nlines", neutralize: true), "\"two\nlines\"")
        for bad in ["=SUM(A1)", "+1", "-2+3", "@cmd", "\tx", "\rx"] {
            XCTAssertTrue(ExportProfilesTask.cell(bad, neutralize: true).trimmingCharacters(in: ["\""]).hasPrefix("'"), bad)
        }
        XCTAssertEqual(ExportProfilesTask.cell("-5", neutralize: false), "-5", "numbers stay numbers")
    }

    func testExportWritesEveryProfileOnceEvenAfterAnInterruptedChunk() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "D"))
        let note = try databases.addField(to: db.id, FieldInput(name: "note", type: "line"))
        let vip = try databases.addField(to: db.id, FieldInput(name: "vip", type: "boolean"))
        try insertProfiles(pool, database: db.id, count: 7, values: [note.column: .text("=HYPERLINK(\"x\")"), vip.column: .integer(1)])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("roster-export-\(UUID().uuidString)").path
        let export = ExportProfilesTask(directory: dir)
        // A stopped runner only records the task, so the test can play the crash by hand.
        let recorder = TaskRunner(pool: pool, handlers: [ExportProfilesTask.kind: export], chunkSize: 3)
        recorder.stop()
        let runner = TaskRunner(pool: pool, handlers: [ExportProfilesTask.kind: export], chunkSize: 3)
        let id = try recorder.enqueue(kind: ExportProfilesTask.kind, title: "e", databaseID: db.id, userID: nil,
                                    parameters: ["fields": .array([.string("email"), .string("note"), .string("vip")])])
        // Simulate a crash: one chunk committed, then a second chunk's rows written to the file but never committed.
        try pool.write { db2 in
            let task = TaskRecord(row: try db2.queryOne("SELECT * FROM tasks WHERE id = ?", [id])!)
            let prepared = try export.prepare(task, db2)
            try db2.run("UPDATE tasks SET state = 'running', started_at = 1, total = ?, parameters = ? WHERE id = ?",
                        [prepared.total, JSONValue.object(task.parameters.merging(prepared.parameters) { $1 }).canonical, id])
        }
        try pool.write { db2 in
            let task = TaskRecord(row: try db2.queryOne("SELECT * FROM tasks WHERE id = ?", [id])!)
            let first = try export.runChunk(task, limit: 3, db2)
            try db2.run("UPDATE tasks SET cursor = ?, processed = ?, added = ?, output_bytes = ? WHERE id = ?", [first.cursor, first.processed, first.added, first.outputBytes, id])
        }
        struct Crash: Error {}
        XCTAssertThrowsError(try pool.write { db2 -> Void in
            let task = TaskRecord(row: try db2.queryOne("SELECT * FROM tasks WHERE id = ?", [id])!)
            _ = try export.runChunk(task, limit: 3, db2)
            throw Crash()
        })
        XCTAssertEqual(try runner.recoverInterrupted(), 1)
        try runner.resume(id, role: .admin)
        runner.runUntilIdle()
        let task = try XCTUnwrap(runner.task(id))
        XCTAssertEqual(task.state, .done)
        XCTAssertEqual(task.added, 7)
        let csv = try String(contentsOfFile: export.path(for: id), encoding: .utf8)
        let lines = csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        XCTAssertEqual(lines.first, "profile_id,status,email,note,vip")
        XCTAssertEqual(lines.count, 8, "a header and each profile exactly once:\n\(csv)")
        XCTAssertEqual(Set(lines.dropFirst().map { $0.split(separator: ",")[0] }).count, 7)
        XCTAssertTrue(lines[1].hasSuffix(",\"'=HYPERLINK(\"\"x\"\")\",true"), lines[1])
    }

    func testCopiesLeaveCreatedEventsThatTheHistoryExportWrites() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let source = try databases.create(DatabaseInput(name: "S"))
        let target = try databases.create(DatabaseInput(name: "T"))
        try insertProfiles(pool, database: source.id, count: 4)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("roster-history-\(UUID().uuidString)").path
        let files = ExportProfilesTask(directory: dir)
        let runner = TaskRunner(pool: pool, handlers: [CopyProfilesTask.kind: CopyProfilesTask(), ExportHistoryTask.kind: ExportHistoryTask(files: files)], chunkSize: 3)
        try runner.enqueue(kind: CopyProfilesTask.kind, title: "c", databaseID: source.id, userID: nil, parameters: ["target_database_id": .int(target.id)])
        let export = try runner.enqueue(kind: ExportHistoryTask.kind, title: "h", databaseID: target.id, userID: nil, parameters: [:])
        runner.runUntilIdle()
        XCTAssertEqual(try runner.task(export)?.added, 4)
        let lines = try String(contentsOfFile: files.path(for: export), encoding: .utf8).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        XCTAssertEqual(lines.first, "profile_id,time,type,actor,details")
        XCTAssertEqual(lines.count, 5)
        XCTAssertTrue(lines[1].contains(",created,,") && lines[1].contains("from_database"), lines[1])
        // Deleting a profile takes its history with it.
        try pool.write { try $0.run("DELETE FROM profiles_\(target.id)") }
        XCTAssertEqual(try pool.read { try $0.scalar("SELECT COUNT(*) FROM history_\(target.id)").int }, 0)
        try databases.delete(target.id)
        for table in ["profiles_\(target.id)", "history_\(target.id)"] {
            XCTAssertEqual(try pool.read { try $0.scalar($0.dialect.tableExists, [table]).int }, 0, table)
        }
    }

    /// A segment's export writes the profiles its selection took at the start: one that matches only later is
    /// left out, one that stops matching is still written, one deleted meanwhile is skipped.
    func testASegmentsExportIsFrozenAtTheStart() throws {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "D"))
        let score = try databases.addField(to: db.id, FieldInput(name: "score", type: "number"))
        for value in 1...6 { try insertProfiles(pool, database: db.id, count: 1, values: [score.column: .integer(Int64(value))]) }
        let segments = Segments(pool: pool)
        let high = try segments.create(databaseID: db.id, SegmentInput(name: "High", selection: Selection(rules: .group(.and, [.rule(Rule(subject: "custom:\(score.id)", op: "gt", value: "3"))]))), actor: nil)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("roster-export-\(UUID().uuidString)").path
        let export = ExportProfilesTask(directory: dir)
        let runner = TaskRunner(pool: pool, handlers: [ExportProfilesTask.kind: export], chunkSize: 2)
        runner.stop()
        let id = try runner.enqueue(kind: ExportProfilesTask.kind, title: "e", databaseID: db.id, userID: nil,
                                    parameters: ["fields": .array([.string("score")]), "segment_id": .int(high.id)])
        try pool.write { db2 in
            let task = TaskRecord(row: try db2.queryOne("SELECT * FROM tasks WHERE id = ?", [id])!)
            let prepared = try export.prepare(task, db2)
            XCTAssertEqual(prepared.total, 3)
            try db2.run("UPDATE tasks SET state = 'running', started_at = 1, total = ?, parameters = ? WHERE id = ?",
                        [prepared.total, JSONValue.object(task.parameters.merging(prepared.parameters) { $1 }).canonical, id])
        }
        try pool.write { db2 in
            try db2.run("UPDATE profiles_\(db.id) SET \(score.column) = 10 WHERE \(score.column) = 1")   // now matches: not taken
            try db2.run("UPDATE profiles_\(db.id) SET \(score.column) = 0 WHERE \(score.column) = 4")    // no longer matches: still taken
            try db2.run("DELETE FROM profiles_\(db.id) WHERE \(score.column) = 6")                        // gone: skipped
            try db2.run("UPDATE segments SET selection = '{}' WHERE id = ?", [high.id])
        }
        let fresh = TaskRunner(pool: pool, handlers: [ExportProfilesTask.kind: export], chunkSize: 2)
        XCTAssertEqual(try fresh.recoverInterrupted(), 1)
        try fresh.resume(id, role: .admin)
        fresh.runUntilIdle()
        let task = try XCTUnwrap(fresh.task(id))
        XCTAssertEqual(task.state, .done, task.message)
        XCTAssertEqual([task.total, task.processed, task.added], [3, 3, 2])
        let lines = try String(contentsOfFile: export.path(for: id), encoding: .utf8).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        XCTAssertEqual(lines.dropFirst().map { $0.split(separator: ",").last.map(String.init) ?? "" }, ["0", "5"])
        XCTAssertEqual(try pool.read { try $0.scalar("SELECT COUNT(*) FROM task_targets").int }, 0, "targets are dropped at the end")
    }

    /// A segment export prepared by an older build (no frozen targets) stops with a message rather than being read
    /// as a whole-database export.
    func testAnOlderSegmentExportStopsInsteadOfWritingEveryone() throws {
        let pool = try makePool()
        let db = try Databases(pool: pool).create(DatabaseInput(name: "D"))
        try insertProfiles(pool, database: db.id, count: 3)
        let segment = try Segments(pool: pool).create(databaseID: db.id, SegmentInput(name: "S"), actor: nil)
        let export = ExportProfilesTask(directory: FileManager.default.temporaryDirectory.appendingPathComponent("roster-export-\(UUID().uuidString)").path)
        let runner = TaskRunner(pool: pool, handlers: [ExportProfilesTask.kind: export])
        runner.stop()
        let id = try runner.enqueue(kind: ExportProfilesTask.kind, title: "e", databaseID: db.id, userID: nil,
                                    parameters: ["fields": .array([.string("email")]), "segment_id": .int(segment.id), "max_id": .int(1_000)])
        try pool.write { db2 in
            let task = TaskRecord(row: try db2.queryOne("SELECT * FROM tasks WHERE id = ?", [id])!)
            XCTAssertThrowsError(try export.runChunk(task, limit: 10, db2)) { error in
                XCTAssertTrue((error as? ValidationError)?.description.contains("older version") ?? false, "\(error)")
            }
        }
    }
}
