import Foundation
import PostgresStore
import StoreCore
import StoreTestSupport
import XCTest

/// Two pools on one database stand for two app hosts: they share nothing but PostgreSQL. Each test gets a database
/// of its own (created from the cluster's URL, dropped afterwards), because pools open connections of their own.
final class PGPoolTests: XCTestCase {
    var database: PostgresTestDatabase!
    var url: String { database.url }

    override func setUpWithError() throws {
        database = try PostgresTestDatabase()
    }

    override func tearDown() {
        database = nil  // dropped, with whatever connections the test's pools still hold
    }

    let migrations = [
        Migration(version: 1, name: "counter", sql: "CREATE TABLE counter (id bigint PRIMARY KEY, n bigint NOT NULL)"),
        Migration(version: 2, name: "one row", sql: "INSERT INTO counter VALUES (1, 0)"),
    ]

    func testTwoHostsStartingTogetherMigrateOnce() throws {
        let failures = Failures()
        let (url, migrations) = (self.url, self.migrations)
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            failures.record { _ = try PGPool(url: url, migrations: migrations, queries: [NamedQuery("n", "SELECT n FROM counter WHERE id = ?")]) }
        }
        XCTAssertTrue(failures.all.isEmpty, "\(failures.all)")
        let check = try PGConnection(url: url)
        XCTAssertEqual(try check.scalar("SELECT count(*) FROM schema_migrations"), .integer(2))
        XCTAssertEqual(try check.scalar("SELECT count(*) FROM counter"), .integer(1), "migration 2 ran once")
    }

    /// Read, then write what was read: with one writer at a time across hosts, no increment is lost.
    func testWritesOnTwoHostsAreOneAtATime() throws {
        let hosts = [try PGPool(url: url, migrations: migrations, queries: []), try PGPool(url: url, migrations: migrations, queries: [])]
        let perThread = 25
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            for _ in 0..<perThread {
                failures.record {
                    try hosts[i % 2].write { db in
                        let n = try db.scalar("SELECT n FROM counter WHERE id = 1").int64 ?? 0
                        try db.run("UPDATE counter SET n = ? WHERE id = 1", [n + 1])
                    }
                }
            }
        }
        XCTAssertTrue(failures.all.isEmpty, "\(failures.all)")
        XCTAssertEqual(try hosts[0].read { try $0.scalar("SELECT n FROM counter WHERE id = 1") }, .integer(Int64(4 * perThread)))
    }

    func testWriteIfFreeGivesWayToAWriteOnAnotherHost() throws {
        let a = try PGPool(url: url, migrations: migrations, queries: [])
        let b = try PGPool(url: url, migrations: migrations, queries: [])
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? a.write { db in
                try db.run("UPDATE counter SET n = 7 WHERE id = 1")
                holding.signal()
                release.wait()
            }
            done.signal()
        }
        holding.wait()
        XCTAssertNil(try b.writeIfFree { db in try db.run("UPDATE counter SET n = 99 WHERE id = 1") })
        release.signal()
        done.wait()
        XCTAssertEqual(try b.writeIfFree { db in try db.run("UPDATE counter SET n = n + 1 WHERE id = 1") }, 1)
        XCTAssertEqual(try b.read { try $0.scalar("SELECT n FROM counter") }, .integer(8))
    }

    /// A page's reads see one snapshot, even when a write on another host commits between them; a write inside a
    /// read is refused.
    func testReadScopeIsOneSnapshot() throws {
        let a = try PGPool(url: url, migrations: migrations, queries: [])
        let b = try PGPool(url: url, migrations: migrations, queries: [])
        let (first, second) = try a.readScope { () -> (SQLValue, SQLValue) in
            let first = try a.read { try $0.scalar("SELECT n FROM counter") }
            try b.write { db in try db.run("UPDATE counter SET n = 5 WHERE id = 1") }
            let second = try a.read { try $0.scalar("SELECT n FROM counter") }
            return (first, second)
        }
        XCTAssertEqual(first, .integer(0))
        XCTAssertEqual(second, .integer(0), "the scope's snapshot does not move")
        XCTAssertEqual(try a.read { try $0.scalar("SELECT n FROM counter") }, .integer(5))
        XCTAssertThrowsError(try a.read { try $0.run("UPDATE counter SET n = 6") })
    }

    func testAFailedWriteRollsBackAndTheConnectionIsReused() throws {
        let pool = try PGPool(url: url, migrations: migrations, queries: [])
        struct Refused: Error {}
        XCTAssertThrowsError(try pool.write { db in
            try db.run("UPDATE counter SET n = 42 WHERE id = 1")
            throw Refused()
        })
        XCTAssertThrowsError(try pool.write { db in try db.run("INSERT INTO counter VALUES (1, 0)") }, "duplicate key")
        XCTAssertEqual(try pool.read { try $0.scalar("SELECT n FROM counter") }, .integer(0))
        XCTAssertNil(pool.writerHeldSince)
    }

    func testANewerSchemaIsRefused() throws {
        _ = try PGPool(url: url, migrations: migrations, queries: [])
        XCTAssertThrowsError(try PGPool(url: url, migrations: Array(migrations.prefix(1)), queries: [])) { error in
            XCTAssertTrue("\(error)".contains("newer than this build knows"), "\(error)")
        }
    }
}

/// Errors thrown on several threads, collected under a lock.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [any Error] = []

    func record(_ body: () throws -> Void) {
        do { try body() } catch {
            lock.lock()
            errors.append(error)
            lock.unlock()
        }
    }

    var all: [any Error] {
        lock.lock()
        defer { lock.unlock() }
        return errors
    }
}
