import Foundation
@testable import SQLiteStore
import XCTest

/// Each test gets its own database file in a fresh temporary folder.
func temporaryDatabasePath() -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("roster-sqlite-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("test.sqlite").path
}

final class ConnectionTests: XCTestCase {
    func testOpensInWALWithForeignKeysAndBusyTimeout() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        XCTAssertEqual(try db.scalar("PRAGMA journal_mode").string, "wal")
        XCTAssertEqual(try db.scalar("PRAGMA foreign_keys").int, 1)
        XCTAssertEqual(try db.scalar("PRAGMA busy_timeout").int, 5000)
    }

    func testTheStatementCacheIsBoundedAndKeepsTheBusiestStatements() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        try db.execute("CREATE TABLE t (a INTEGER)")
        let hot = "SELECT COUNT(*) FROM t"
        for i in 0..<3 * SQLiteConnection.statementCacheLimit {
            _ = try db.scalar(hot)
            _ = try db.scalar("SELECT \(i) FROM t")  // a new text each time, as API field lists can be
        }
        XCTAssertLessThanOrEqual(db.cachedStatementCount, SQLiteConnection.statementCacheLimit)
        let before = db.cachedStatementCount
        _ = try db.scalar(hot)
        XCTAssertEqual(db.cachedStatementCount, before, "the statement in use all along is still cached")
    }

    func testBindsAndReadsEveryType() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        try db.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)")
        let text = "O'Brien \"q\" ; DROP TABLE t; -- Ёлка 🎉 \u{0}tail"
        try db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [Int64.max, -0.5, text, [UInt8]([0, 1, 255]), SQLValue.null])
        let row = try XCTUnwrap(db.queryOne("SELECT i, r, s, b, n FROM t"))
        XCTAssertEqual(row["i"], .integer(Int64.max))
        XCTAssertEqual(row["r"], .real(-0.5))
        XCTAssertEqual(row.string("s"), text, "text with quotes, SQL, unicode and NUL survives binding unchanged")
        XCTAssertEqual(row["b"], .blob([0, 1, 255]))
        XCTAssertEqual(row["n"], .null)
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM t").int, 1, "the SQL inside the value was not executed")
    }

    func testEmptyTextAndBlobAreNotNull() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        let row = try XCTUnwrap(db.queryOne("SELECT ? AS s, ? AS b, typeof(?) AS t", ["", [UInt8](), ""]))
        XCTAssertEqual(row["s"], .text(""))
        XCTAssertEqual(row.string("t"), "text")
    }

    func testErrorCarriesCodeMessageAndSQL() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        try db.execute("CREATE TABLE u (email TEXT UNIQUE)")
        try db.run("INSERT INTO u VALUES (?)", ["a@b.c"])
        do {
            try db.run("INSERT INTO u VALUES (?)", ["a@b.c"])
            XCTFail("expected a unique violation")
        } catch {
            XCTAssertEqual(error.code, 19)
            XCTAssertEqual(error.extendedCode, 2067)
            XCTAssertTrue(error.isUniqueViolation)
            XCTAssertTrue(error.message.contains("UNIQUE"), error.message)
            XCTAssertEqual(error.sql, "INSERT INTO u VALUES (?)")
        }
    }

    func testPrepareErrorNamesTheSQL() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        XCTAssertThrowsError(try db.prepare("SELEC 1")) { error in
            let e = error as? SQLiteError
            XCTAssertEqual(e?.code, 1)
            XCTAssertEqual(e?.sql, "SELEC 1")
        }
    }

    func testRefusesSeveralStatementsInOnePrepare() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        XCTAssertThrowsError(try db.prepare("SELECT 1; SELECT 2"))
        XCTAssertNoThrow(try db.prepare("SELECT 1;  "))
    }

    func testWrongParameterCountIsAnError() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        XCTAssertThrowsError(try db.query("SELECT ?, ?", [1]))
    }

    func testTransactionCommitsOrRollsBackAndRethrows() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        try db.execute("CREATE TABLE t (x INTEGER)")
        _ = try db.inTransaction { try $0.run("INSERT INTO t VALUES (1)") }
        struct Boom: Error {}
        XCTAssertThrowsError(try db.inTransaction { db in
            try db.run("INSERT INTO t VALUES (2)")
            throw Boom()
        }) { XCTAssertTrue($0 is Boom, "the original error is rethrown") }
        XCTAssertEqual(try db.query("SELECT x FROM t").map { $0.int("x") }, [1])
        XCTAssertFalse(db.isInTransaction)
    }

    func testForeignKeysAreEnforced() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        try db.execute("CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p INTEGER REFERENCES p(id))")
        XCTAssertThrowsError(try db.run("INSERT INTO c VALUES (?)", [42])) {
            XCTAssertEqual(($0 as? SQLiteError)?.code, 19)
        }
    }

    func testVerifyStopsOnATypoAndNamesTheQuery() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        try db.execute("CREATE TABLE users (id INTEGER)")
        XCTAssertNoThrow(try db.verify([NamedQuery("ok", "SELECT id FROM users")]))
        XCTAssertThrowsError(try db.verify([NamedQuery("users.broken", "SELECT idd FROM users")])) { error in
            let e = error as? SQLiteError
            XCTAssertTrue(e?.message.contains("users.broken") ?? false, String(describing: e))
            XCTAssertEqual(e?.sql, "SELECT idd FROM users")
        }
    }

    func testForEachStreamsRows() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        var seen: [Int] = []
        try db.prepare("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) SELECT x FROM n")
            .forEach([5]) { seen.append($0.int("x") ?? 0) }
        XCTAssertEqual(seen, [1, 2, 3, 4, 5])
    }

    /// Column names are cached per statement; a schema change made through another connection makes SQLite
    /// re-prepare `SELECT *`, and the rows must then carry the new columns under their own names.
    func testCachedSelectStarSeesColumnsAddedAndDroppedElsewhere() throws {
        let path = temporaryDatabasePath()
        let reader = try SQLiteConnection(path: path)
        let other = try SQLiteConnection(path: path)
        try other.execute("CREATE TABLE t (a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'one');")
        XCTAssertEqual(try reader.queryOne("SELECT * FROM t")?.columns, ["a", "b"])
        try other.execute("ALTER TABLE t ADD COLUMN c INTEGER DEFAULT 7; ALTER TABLE t DROP COLUMN b; ALTER TABLE t ADD COLUMN d TEXT DEFAULT 'dee';")
        let row = try XCTUnwrap(try reader.queryOne("SELECT * FROM t"))
        XCTAssertEqual(row.columns, ["a", "c", "d"])
        XCTAssertEqual(row["c"], .integer(7))
        XCTAssertEqual(row["d"], .text("dee"))
        XCTAssertEqual(row["b"], .null)
    }

    func testRowIndexWithAHintFindsColumnsEitherSideOfIt() throws {
        let row = Row(columns: ["a", "b", "c"], values: [.integer(1), .integer(2), .integer(3)])
        XCTAssertEqual(row.index(of: "c", from: 1), 2)
        XCTAssertEqual(row.index(of: "a", from: 2), 0)
        XCTAssertEqual(row.index(of: "b", from: 9), 1)
        XCTAssertNil(row.index(of: "z", from: 1))
    }
}

final class MigratorTests: XCTestCase {
    let first = Migration(version: 1, name: "one", sql: "CREATE TABLE a (x INTEGER);")
    let second = Migration(version: 2, name: "two", sql: "CREATE TABLE b (y INTEGER); INSERT INTO b VALUES (7);")

    func testAppliesInOrderOnceAndRecords() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        XCTAssertEqual(try Migrator.migrate(db, [first]), [1])
        XCTAssertEqual(try Migrator.migrate(db, [first, second]), [2])
        XCTAssertEqual(try Migrator.migrate(db, [first, second]), [])
        let recorded = try db.query("SELECT version, name FROM schema_migrations ORDER BY version")
        XCTAssertEqual(recorded.map { $0.int("version") }, [1, 2])
        XCTAssertEqual(recorded.map { $0.string("name") }, ["one", "two"])
        XCTAssertEqual(try db.scalar("SELECT y FROM b").int, 7)
    }

    func testAFailingMigrationRollsBackWholeAndStops() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        let broken = Migration(version: 2, name: "broken", sql: "CREATE TABLE b (y INTEGER); INSERT INTO nope VALUES (1);")
        XCTAssertThrowsError(try Migrator.migrate(db, [first, broken]))
        XCTAssertEqual(try db.scalar("SELECT MAX(version) FROM schema_migrations").int, 1)
        XCTAssertEqual(try db.scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'").int, 0, "half of a migration never stays")
    }

    func testRefusesADatabaseNewerThanTheBuild() throws {
        let db = try SQLiteConnection(path: temporaryDatabasePath())
        try Migrator.migrate(db, [first, second])
        XCTAssertThrowsError(try Migrator.migrate(db, [first]))
    }
}

final class DatabasePoolTests: XCTestCase {
    func testReadersSeeCommittedDataAndAreNotBlockedByAWriter() throws {
        let pool = try SQLitePool(path: temporaryDatabasePath(),
                                    migrations: [Migration(version: 1, name: "t", sql: "CREATE TABLE t (x INTEGER)")],
                                    queries: [NamedQuery("t.count", "SELECT COUNT(*) FROM t")])
        try pool.write { try $0.run("INSERT INTO t VALUES (1)") }
        let inside = expectation(description: "writer holds its transaction")
        let release = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? pool.write { db in
                try db.run("INSERT INTO t VALUES (2)")
                inside.fulfill()
                release.wait()
            }
        }
        wait(for: [inside], timeout: 5)
        // While the write transaction is open, a reader still answers, from the last committed state.
        let started = Date()
        XCTAssertEqual(try pool.read { try $0.scalar("SELECT COUNT(*) FROM t").int }, 1)
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0)
        release.signal()
        // The next write waits for the first (one writer at a time) and then sees its row.
        try pool.write { try $0.run("INSERT INTO t VALUES (3)") }
        XCTAssertEqual(try pool.read { try $0.scalar("SELECT COUNT(*) FROM t").int }, 3)
    }

    /// Reads inside `readScope` share its snapshot; a read of another pool inside it uses that pool's own
    /// connection, and the outer scope is back once an inner one ends.
    func testReadScopeIsPerPoolAndRestoresTheOuterScope() throws {
        let make = { (value: Int) in
            try SQLitePool(path: temporaryDatabasePath(),
                             migrations: [Migration(version: 1, name: "t", sql: "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (\(value));")], queries: [])
        }
        let a = try make(1), b = try make(2)
        try a.readScope {
            XCTAssertEqual(try a.read { try $0.scalar("SELECT x FROM t").int }, 1)
            try a.write { try $0.run("UPDATE t SET x = 10") }
            XCTAssertEqual(try a.read { try $0.scalar("SELECT x FROM t").int }, 1, "the scope's snapshot, not the later write")
            try b.readScope {
                XCTAssertEqual(try b.read { try $0.scalar("SELECT x FROM t").int }, 2)
            }
            XCTAssertEqual(try b.read { try $0.scalar("SELECT x FROM t").int }, 2)
            XCTAssertEqual(try a.read { try $0.scalar("SELECT x FROM t").int }, 1, "still inside a's scope")
        }
        XCTAssertEqual(try a.read { try $0.scalar("SELECT x FROM t").int }, 10)
    }

    func testStartupFailsOnABrokenNamedQuery() {
        XCTAssertThrowsError(try SQLitePool(path: temporaryDatabasePath(),
                                              migrations: [Migration(version: 1, name: "t", sql: "CREATE TABLE t (x INTEGER)")],
                                              queries: [NamedQuery("t.typo", "SELECT y FROM t")]))
    }

    func testWritesFromManyThreadsAreSerialized() throws {
        let pool = try SQLitePool(path: temporaryDatabasePath(),
                                    migrations: [Migration(version: 1, name: "t", sql: "CREATE TABLE c (n INTEGER); INSERT INTO c VALUES (0);")],
                                    queries: [])
        DispatchQueue.concurrentPerform(iterations: 200) { _ in
            try! pool.write { db in
                let n = try db.scalar("SELECT n FROM c").int ?? 0
                try db.run("UPDATE c SET n = ?", [n + 1])
            }
        }
        XCTAssertEqual(try pool.read { try $0.scalar("SELECT n FROM c").int }, 200, "no lost update")
    }
}

final class FairLockTests: XCTestCase {
    /// A holder that releases and at once asks again goes behind the one already waiting.
    func testAWaiterIsServedBeforeTheHolderTakesTheLockAgain() {
        let lock = FairLock()
        let order = NSLock()
        nonisolated(unsafe) var served: [String] = []
        lock.lock()
        let waiting = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            waiting.signal()
            lock.lock()
            order.lock(); served.append("waiter"); order.unlock()
            lock.unlock()
            done.signal()
        }
        waiting.wait()
        usleep(50_000)  // the waiter is queued
        lock.unlock()
        lock.lock()
        order.lock(); served.append("holder again"); order.unlock()
        lock.unlock()
        done.wait()
        XCTAssertEqual(served, ["waiter", "holder again"])
        XCTAssertTrue(lock.try())
        XCTAssertFalse(lock.try(), "held")
        lock.unlock()
    }
}
