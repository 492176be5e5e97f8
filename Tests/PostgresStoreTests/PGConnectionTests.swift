import Foundation
import PostgresStore
import StoreCore
import StoreTestSupport
import XCTest

/// The PostgreSQL layer against a real server: `make test` starts a throwaway cluster (scripts/postgres.sh) and
/// passes its URL in ROSTER_TEST_POSTGRES_URL. Each test works in a schema of its own, dropped afterwards.
final class PGConnectionTests: XCTestCase {
    var db: PGConnection!
    var schema = ""

    override func setUpWithError() throws {
        db = try PGConnection(url: try PostgresTestDatabase.clusterURL())
        schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try db.execute("CREATE SCHEMA \(schema); SET search_path TO \(schema)")
    }

    override func tearDownWithError() throws {
        if let db, !schema.isEmpty {
            if db.isInTransaction { try db.execute("ROLLBACK") }
            try db.execute("DROP SCHEMA \(schema) CASCADE")
        }
        db = nil
    }

    func testValuesRoundTripThroughBoundParameters() throws {
        try db.execute("CREATE TABLE t (i bigint, d double precision, s text, b bytea, f boolean, n numeric)")
        let bytes: [UInt8] = [0, 1, 0x5C, 0x78, 255, 39, 0]
        let text = "O'Brien; DROP TABLE t; -- é 😀 ? $1"
        try db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", [Int64.max, 0.1 + 0.2, text, bytes, true, 12])
        try db.run("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", [Int64.min, -Double.infinity, "", [UInt8](), false, SQLValue.null])
        let rows = try db.query("SELECT i, d, s, b, f, n FROM t ORDER BY i DESC")
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows[0].values, [.integer(Int64.max), .real(0.1 + 0.2), .text(text), .blob(bytes), .integer(1), .integer(12)])
        XCTAssertEqual(rows[1].values, [.integer(Int64.min), .real(-.infinity), .text(""), .blob([]), .integer(0), .null])
        XCTAssertEqual(rows[0].string("s"), text)
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM t WHERE s = ?", [text]), .integer(1))
        XCTAssertEqual(try db.scalar("SELECT sum(i) FROM t WHERE i > 0"), .integer(Int64.max), "SUM of bigints is numeric")
    }

    // libpq takes text as C strings: a value holding U+0000 would be stored cut short. It is refused instead, before
    // anything is sent, so the transaction around it goes on.
    func testTextWithANULIsRefusedNotCutShort() throws {
        try db.execute("CREATE TABLE t (s text)")
        try db.inTransaction { db in
            XCTAssertThrowsError(try db.run("INSERT INTO t VALUES (?)", ["ab\u{0}cd"])) { error in
                XCTAssertEqual((error as? PostgresError)?.sqlState, "22021")
            }
            try db.run("INSERT INTO t VALUES (?)", ["fine"])
        }
        XCTAssertEqual(try db.query("SELECT s FROM t").map { $0.values }, [[.text("fine")]])
    }

    func testRunCountsChangedRows() throws {
        try db.execute("CREATE TABLE t (id bigint PRIMARY KEY, v text)")
        for id in 1...5 { try db.run("INSERT INTO t (id, v) VALUES (?, ?)", [id, "x"]) }
        XCTAssertEqual(try db.run("UPDATE t SET v = ? WHERE id > ?", ["y", 2]), 3)
        XCTAssertEqual(try db.run("DELETE FROM t WHERE id = ?", [99]), 0)
    }

    func testConstraintViolationCarriesStateAndStatement() throws {
        try db.execute("CREATE TABLE t (email text UNIQUE NOT NULL)")
        try db.run("INSERT INTO t (email) VALUES (?)", ["a@example.com"])
        XCTAssertThrowsError(try db.run("INSERT INTO t (email) VALUES (?)", ["a@example.com"]), "a duplicate was accepted") { error in
            let failure = error as? PostgresError
            XCTAssertEqual(failure?.sqlState, "23505")
            XCTAssertTrue(failure?.isConstraintViolation ?? false)
            XCTAssertEqual(failure?.sql, "INSERT INTO t (email) VALUES (?)")
            XCTAssertTrue("\(error)".contains("23505"), "\(error)")
        }
        // The connection is still usable after the failure.
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM t"), .integer(1))
    }

    func testTransactionRollsBackWhenTheBodyThrows() throws {
        try db.execute("CREATE TABLE t (v bigint)")
        struct Refused: Error {}
        XCTAssertThrowsError(try db.inTransaction { conn in
            try conn.run("INSERT INTO t VALUES (?)", [1])
            throw Refused()
        })
        XCTAssertFalse(db.isInTransaction)
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM t"), .integer(0))
        try db.inTransaction { conn in try conn.run("INSERT INTO t VALUES (?)", [2]) }
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM t"), .integer(1))
    }

    func testSnapshotTransactionRefusesWrites() throws {
        try db.execute("CREATE TABLE t (v bigint)")
        XCTAssertThrowsError(try db.inTransaction(.snapshot) { conn in try conn.run("INSERT INTO t VALUES (?)", [1]) }) { error in
            XCTAssertEqual((error as? PostgresError)?.sqlState, "25006", "read-only transaction")
        }
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM t"), .integer(0))
    }

    func testStatementsArePreparedOnce() throws {
        try db.execute("CREATE TABLE t (v bigint)")
        let before = db.preparedCount
        for v in 1...20 { try db.run("INSERT INTO t VALUES (?)", [v]) }
        XCTAssertEqual(db.preparedCount, before + 1)
        XCTAssertEqual(try db.scalar("SELECT sum(v) FROM t"), .integer(210))
    }

    func testForEachPagesThroughACursorAndAllowsOtherStatements() throws {
        try db.execute("CREATE TABLE t (v bigint); CREATE TABLE seen (v bigint)")
        try db.run("INSERT INTO t SELECT g FROM generate_series(1, 2500) g")
        var count = 0, sum: Int64 = 0
        try db.forEach("SELECT v FROM t WHERE v > ? ORDER BY v", [500]) { row in
            count += 1
            sum += row.int64("v") ?? 0
            if count % 700 == 0 { try db.run("INSERT INTO seen VALUES (?)", [row.int64("v")]) }
        }
        XCTAssertEqual(count, 2000)
        XCTAssertEqual(sum, (501...2500).reduce(0, +))
        XCTAssertFalse(db.isInTransaction, "the transaction opened for the cursor is closed")
        XCTAssertEqual(try db.scalar("SELECT count(*) FROM seen"), .integer(2))
    }

    func testWrongParameterCountIsAnErrorNotACrash() throws {
        XCTAssertThrowsError(try db.query("SELECT CAST(? AS bigint) + CAST(? AS bigint)", [1])) { error in
            XCTAssertTrue("\(error)".contains("1 values for 2 placeholders"), "\(error)")
        }
    }

    func testVerifyNamesTheBrokenQuery() throws {
        try db.execute("CREATE TABLE t (v bigint)")
        XCTAssertNoThrow(try db.verify([NamedQuery("ok", "SELECT v FROM t WHERE v = ?")]))
        XCTAssertThrowsError(try db.verify([NamedQuery("broken", "SELECT nope FROM t")])) { error in
            XCTAssertTrue("\(error)".contains("named query broken"), "\(error)")
            XCTAssertEqual((error as? PostgresError)?.sqlState, "42703", "undefined column")
        }
    }

    func testAnUnreachableServerIsAClearError() {
        XCTAssertThrowsError(try PGConnection(url: "postgresql://roster@/nowhere?host=/nonexistent-socket-folder&connect_timeout=2")) { error in
            let failure = error as? PostgresError
            XCTAssertEqual(failure?.sqlState, "08001")
            XCTAssertTrue(failure?.isConnectionFailure ?? false)
            XCTAssertFalse(failure?.message.isEmpty ?? true)
        }
    }
}

/// Placeholder numbering needs no server.
final class PlaceholderTests: XCTestCase {
    func testQuestionMarksBecomeNumberedOutsideLiteralsAndComments() {
        let (sql, count) = Placeholders.numbered("""
            SELECT '?', "we?ird", x FROM t -- why?
            WHERE a = ? AND b = 'it''s ?' /* ? */ AND c IN (?, ?)
            """)
        XCTAssertEqual(count, 3)
        XCTAssertEqual(sql, """
            SELECT '?', "we?ird", x FROM t -- why?
            WHERE a = $1 AND b = 'it''s ?' /* ? */ AND c IN ($2, $3)
            """)
        XCTAssertEqual(Placeholders.numbered("SELECT 1").count, 0)
        XCTAssertEqual(Placeholders.numbered("SELECT 'unterminated ?").count, 0, "an open literal swallows the rest")
    }
}
