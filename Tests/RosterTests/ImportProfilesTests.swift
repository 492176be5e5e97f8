import Foundation
@testable import Roster
import Store
import XCTest

final class ImportProfilesTests: XCTestCase {
    struct Setup {
        let pool: DatabasePool
        let db: ProfileDatabase
        let imports: ProfileImports
        let runner: TaskRunner
        let profiles: Profiles
        let resource: Resource
    }

    func makeSetup(chunkSize: Int = 3) throws -> Setup {
        let pool = try makePool()
        let resource = try Resources(pool: pool).create(ResourceInput(name: "News", channels: ["email", "sms"]))
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "D", resourceIDs: [resource.id]))
        _ = try databases.addField(to: db.id, FieldInput(name: "age", type: "number"))
        _ = try databases.addField(to: db.id, FieldInput(name: "card", type: "line"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("roster-import-\(UUID().uuidString)").path
        let imports = ProfileImports(pool: pool, directory: dir)
        let runner = TaskRunner(pool: pool, handlers: [ImportProfilesTask.kind: ImportProfilesTask(imports: imports)], chunkSize: chunkSize)
        return Setup(pool: pool, db: db, imports: imports, runner: runner, profiles: Profiles(pool: pool), resource: resource)
    }

    func upload(_ s: Setup, _ bytes: [UInt8], name: String = "people.csv") throws -> ImportUpload {
        try s.imports.store(UploadSource(filename: name) { path in
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
        })
    }

    func upload(_ s: Setup, _ text: String) throws -> ImportUpload { try upload(s, Array(text.utf8)) }

    /// Uploads, maps every column to its suggested field, runs the task to its end.
    @discardableResult
    func runImport(_ s: Setup, _ text: String, configure: (inout ImportSettings) -> Void = { _ in }) throws -> TaskRecord {
        let up = try upload(s, text)
        var settings = ImportSettings(targets: up.suggestedTargets(custom: try Databases(pool: s.pool).fields(of: s.db.id)))
        configure(&settings)
        let parameters = try s.imports.parameters(databaseID: s.db.id, upload: up, settings)
        let id = try s.runner.enqueue(kind: ImportProfilesTask.kind, title: "i", databaseID: s.db.id, userID: nil, parameters: parameters)
        s.runner.runUntilIdle()
        return try s.runner.task(id)!
    }

    func failedRows(_ s: Setup, _ task: TaskRecord) throws -> String {
        try String(contentsOfFile: s.imports.failedRowsPath(taskID: task.id), encoding: .utf8)
    }

    func profile(_ s: Setup, email: String) throws -> Profile? {
        try s.profiles.list(databaseID: s.db.id, { var q = ProfileQuery(); q.search = email; return q }()).profiles.first
    }

    func testCSVReaderHandlesBOMSemicolonsQuotesAndLineBreaks() throws {
        let s = try makeSetup()
        let up = try upload(s, Array("\u{FEFF}email;note\r\na@x.io;\"two\nlines; \"\"quoted\"\"\"\r\n\r\nb@x.io;plain\n".utf8))
        XCTAssertEqual(up.delimiter, UInt8(ascii: ";"))
        XCTAssertEqual(up.header, ["email", "note"], "the byte-order mark is not part of the first name")
        XCTAssertEqual(up.samples, [["a@x.io", "two\nlines; \"quoted\""], ["b@x.io", "plain"]])
    }

    func testCSVReaderReportsMalformedRowsAndCarriesOn() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("csv-\(UUID().uuidString).csv").path
        let long = String(repeating: "x", count: CSVReader.maxRecordBytes + 10)
        var bytes = Array("a,b\n1,\"x\"y\n2,\(long)\n3,\u{00e9}\n".utf8)
        bytes += [0x34, 0x2C, 0xFF, 0xFE, 0x0A]  // invalid UTF-8
        bytes += Array("5,\"never closed\n6,ok\n".utf8)
        FileManager.default.createFile(atPath: dir, contents: Data(bytes))
        let reader = try CSVReader(path: dir, delimiter: UInt8(ascii: ","))
        var records: [CSVRecord] = []
        while let r = reader.next() { records.append(r) }
        XCTAssertEqual(records.count, 6)
        XCTAssertEqual(records[0], .fields(["a", "b"]))
        guard case .malformed(let quote) = records[1] else { return XCTFail("\(records[1])") }
        XCTAssertTrue(quote.contains("closing quote"), quote)
        guard case .malformed(let tooLong) = records[2] else { return XCTFail("\(records[2])") }
        XCTAssertTrue(tooLong.contains("longer than"), tooLong)
        XCTAssertEqual(records[3], .fields(["3", "é"]))
        guard case .malformed(let utf8) = records[4] else { return XCTFail("\(records[4])") }
        XCTAssertTrue(utf8.contains("UTF-8"), utf8)
        guard case .malformed(let open) = records[5] else { return XCTFail("\(records[5])") }
        XCTAssertTrue(open.contains("never closed"), open)
    }

    func testUploadsThatAreNotCSVAreRefused() throws {
        let s = try makeSetup()
        XCTAssertThrowsError(try upload(s, [])) { XCTAssertTrue("\($0)".contains("empty"), "\($0)") }
        XCTAssertThrowsError(try upload(s, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13])) { XCTAssertTrue("\($0)".contains("binary"), "\($0)") }
        XCTAssertThrowsError(try upload(s, "\n\n")) { XCTAssertTrue("\($0)".contains("no rows"), "\($0)") }
        XCTAssertThrowsError(try s.imports.inspect(token: "../../etc/passwd", filename: "x")) { XCTAssertTrue("\($0)".contains("No such upload"), "\($0)") }
    }

    func testImportAddsUpdatesAndReportsBadRowsWithoutHalfWrites() throws {
        let s = try makeSetup()
        _ = try s.profiles.create(databaseID: s.db.id, ProfileInput(values: ["email": "old@x.io", "_fname": "Old", "age": "40"]), actor: nil)
        let csv = """
            email,first name,age,status,card
            new1@x.io,Ann,31,subscribed,A-1
            OLD@x.io,,41,unsubscribed,
            bad-email,Bob,20,subscribed,B
            new2@x.io,Cy,not a number,subscribed,C
            new3@x.io,Di,22,nonsense,D
            new4@x.io,Ed,23
            "new5@x.io",Flo,24,complainer,"F, with comma"

            """
        let task = try runImport(s, csv)
        XCTAssertEqual(task.state, .done, task.message)
        XCTAssertEqual(task.total, 7)
        XCTAssertEqual(task.processed, 7)
        XCTAssertEqual(task.added, 2)
        XCTAssertEqual(task.updated, 1)
        XCTAssertEqual(task.failed, 4)
        let ann = try XCTUnwrap(profile(s, email: "new1@x.io"))
        XCTAssertEqual(ann.values["_fname"], "Ann")
        XCTAssertEqual(ann.values["age"], "31")
        XCTAssertEqual(ann.values["card"], "A-1")
        let old = try XCTUnwrap(profile(s, email: "old@x.io"))
        XCTAssertEqual(old.values["_fname"], "Old", "an empty cell does not wipe a value")
        XCTAssertEqual(old.values["age"], "41")
        XCTAssertEqual(old.status, .unsubscribed)
        XCTAssertEqual(try XCTUnwrap(profile(s, email: "new5@x.io")).values["card"], "F, with comma")
        for missing in ["new2@x.io", "new3@x.io", "new4@x.io"] { XCTAssertNil(try profile(s, email: missing), missing) }
        let failed = try failedRows(s, task)
        let lines = failed.split(separator: "\r\n").map(String.init)
        XCTAssertEqual(lines.first, "row,reason,email,first name,age,status,card")
        XCTAssertEqual(lines.count, 5)
        XCTAssertTrue(lines[1].hasPrefix("4,") && lines[1].contains("mail"), lines[1])
        XCTAssertTrue(lines[2].hasPrefix("5,") && lines[2].contains("age"), lines[2])
        XCTAssertTrue(lines[3].hasPrefix("6,") && lines[3].contains("nonsense"), lines[3])
        XCTAssertTrue(lines[4].hasPrefix("7,") && lines[4].contains("3 values"), lines[4])
        // The history says how the profile came and what changed.
        let created = try s.profiles.history(databaseID: s.db.id, rowID: ann.rowID, type: nil, since: nil)
        XCTAssertEqual(created.first?.type, HistoryEvent.created)
        XCTAssertTrue(created.first?.details.contains("\"import\"") ?? false)
        let updated = try s.profiles.history(databaseID: s.db.id, rowID: old.rowID, type: HistoryEvent.fieldChanged, since: nil)
        XCTAssertTrue(updated.first?.details.contains("age") ?? false)
    }

    func testSkipExistingMatchByCustomFieldAndPhone() throws {
        let s = try makeSetup()
        _ = try s.profiles.create(databaseID: s.db.id, ProfileInput(values: ["email": "a@x.io", "card": "C-1", "phones": "+79001112233"]), actor: nil)
        var task = try runImport(s, "card,age\nC-1,50\nC-2,60\n") { $0.match = "field:card" }
        XCTAssertEqual([task.added, task.updated, task.failed], [1, 1, 0], task.message)
        XCTAssertEqual(try profile(s, email: "a@x.io")?.values["age"], "50")
        task = try runImport(s, "phone,age\n+7 900 111-22-33,70\n") { $0.match = "phone" }
        XCTAssertEqual([task.added, task.updated, task.failed], [0, 1, 0], task.message)
        XCTAssertEqual(try profile(s, email: "a@x.io")?.values["age"], "70")
        task = try runImport(s, "email,age\na@x.io,99\n") { $0.existing = "skip" }
        XCTAssertEqual([task.added, task.updated, task.skipped], [0, 0, 1])
        XCTAssertEqual(try profile(s, email: "a@x.io")?.values["age"], "70")
    }

    func testImportSubscribesToTheResource() throws {
        let s = try makeSetup()
        let task = try runImport(s, "email,phones\ns1@x.io,+79001234567\ns2@x.io,\n") {
            $0.resourceID = s.resource.id
            $0.channel = "sms"
            $0.subscriptionStatus = "unconfirmed"
        }
        XCTAssertEqual([task.added, task.failed], [1, 1])
        let p = try XCTUnwrap(profile(s, email: "s1@x.io"))
        let subs = try Subscriptions(pool: s.pool).list(databaseID: s.db.id, profileRowID: p.rowID)
        XCTAssertEqual(subs.map(\.contact), ["+79001234567"])
        XCTAssertEqual(subs.first?.status, .unconfirmed)
        XCTAssertNil(try profile(s, email: "s2@x.io"), "a row whose subscription fails is not half-imported")
        XCTAssertTrue(try failedRows(s, task).contains("no phone"))
    }

    func testMappingMistakesAreRefusedBeforeAnyTask() throws {
        let s = try makeSetup()
        let up = try upload(s, "email,age,x\na@x.io,1,2\n")
        func refuse(_ settings: ImportSettings, _ key: String) {
            XCTAssertThrowsError(try s.imports.parameters(databaseID: s.db.id, upload: up, settings)) { error in
                XCTAssertNotNil((error as? ValidationError)?.fieldErrors[key], "\(key): \(error)")
            }
        }
        refuse(ImportSettings(targets: ["email", "age", "forged"]), "column_2")
        refuse(ImportSettings(targets: ["email", "email", ""]), "column_1")
        refuse(ImportSettings(targets: ["", "", ""]), "columns")
        refuse({ var x = ImportSettings(targets: ["", "age", ""]); x.match = "email"; return x }(), "match")
        refuse({ var x = ImportSettings(targets: ["email", "age", ""]); x.resourceID = s.resource.id; x.channel = "push"; return x }(), "channel")
        refuse({ var x = ImportSettings(targets: ["email", "age", ""]); x.resourceID = 999; x.channel = "email"; return x }(), "resource")
        XCTAssertEqual(try s.runner.recent().count, 0)
    }

    func testAnInterruptedImportResumesWithoutDoingRowsTwice() throws {
        let s = try makeSetup(chunkSize: 2)
        let rows = (1...7).map { "r\($0)@x.io,\($0)" } + ["bad,1"]
        let up = try upload(s, "email,age\n" + rows.joined(separator: "\n") + "\n")
        let parameters = try s.imports.parameters(databaseID: s.db.id, upload: up, ImportSettings(targets: ["email", "age"]))
        let handler = ImportProfilesTask(imports: s.imports)
        let recorder = TaskRunner(pool: s.pool, handlers: [ImportProfilesTask.kind: handler], chunkSize: 2)
        recorder.stop()
        let id = try recorder.enqueue(kind: ImportProfilesTask.kind, title: "i", databaseID: s.db.id, userID: nil, parameters: parameters)
        // One chunk commits; the next one writes and then "crashes" before its commit.
        try s.pool.write { db in
            var task = TaskRecord(row: try db.queryOne("SELECT * FROM tasks WHERE id = ?", [id])!)
            for (k, v) in try handler.survey(task) { task.parameters[k] = v }  // as the runner does, before the transaction
            let prepared = try handler.prepare(task, db)
            try db.run("UPDATE tasks SET state = 'running', started_at = 1, total = ?, parameters = ? WHERE id = ?",
                       [prepared.total, JSONValue.object(task.parameters.merging(prepared.parameters) { $1 }).canonical, id])
            let started = TaskRecord(row: try db.queryOne("SELECT * FROM tasks WHERE id = ?", [id])!)
            let first = try handler.runChunk(started, limit: 2, db)
            try db.run("UPDATE tasks SET cursor = ?, processed = ?, added = ?, output_bytes = ? WHERE id = ?", [first.cursor, first.processed, first.added, first.outputBytes, id])
        }
        struct Crash: Error {}
        XCTAssertThrowsError(try s.pool.write { db -> Void in
            let task = TaskRecord(row: try db.queryOne("SELECT * FROM tasks WHERE id = ?", [id])!)
            _ = try handler.runChunk(task, limit: 2, db)
            throw Crash()
        })
        XCTAssertEqual(try s.runner.recoverInterrupted(), 1)
        try s.runner.resume(id, role: .admin)
        s.runner.runUntilIdle()
        let task = try XCTUnwrap(s.runner.task(id))
        XCTAssertEqual(task.state, .done)
        XCTAssertEqual([task.processed, task.added, task.failed], [8, 7, 1])
        let count = try s.pool.read { try $0.scalar("SELECT COUNT(*) FROM profiles_\(s.db.id)").int }
        XCTAssertEqual(count, 7)
        XCTAssertEqual(try failedRows(s, task).split(separator: "\r\n").count, 2, "the failed row is listed once")
    }
}
