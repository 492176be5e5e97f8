import Foundation
import Roster
import Secrets
import Store
import Synchronization
import XCTest

// What the test suites share to run on either store. A library only test targets depend on: the app never links it.

/// A fresh store for one test, with Roster's schema: SQLite in a temporary folder (`folder`), or, with
/// ROSTER_TEST_STORE=postgres, a database of its own on the test cluster. `make test` runs the suites once per store.
public func makeTestPool(in folder: URL) throws -> DatabasePool {
    Secrets.initialize()
    if ProcessInfo.processInfo.environment["ROSTER_TEST_STORE"] == "postgres" {
        let database = try PostgresTestDatabase()
        PostgresTestDatabase.keep(database)
        return try DatabasePool(postgresURL: database.url, migrations: Schema.migrations, queries: Schema.queries)
    }
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return try DatabasePool(path: folder.appendingPathComponent("roster.sqlite").path, migrations: Schema.migrations, queries: Schema.queries)
}

/// A database of its own on the test cluster (scripts/postgres.sh, started by `make test`), dropped afterwards.
public final class PostgresTestDatabase: @unchecked Sendable {
    public let url: String
    private let name: String

    /// The test cluster's URL (its database `roster`); `make test` always sets it, so only a bare `swift test`
    /// without a server skips, and one that requires the cluster fails.
    public static func clusterURL() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        guard let base = environment["ROSTER_TEST_POSTGRES_URL"], !base.isEmpty else {
            if environment["ROSTER_TEST_POSTGRES_REQUIRED"] == "1" { XCTFail("ROSTER_TEST_POSTGRES_URL is not set") }
            throw XCTSkip("no PostgreSQL server (ROSTER_TEST_POSTGRES_URL)")
        }
        return base
    }

    public init() throws {
        let base = try Self.clusterURL()
        let name = "r_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try Self.administer(base) { try $0.execute("CREATE DATABASE \(name)") }
        self.name = name
        url = base.replacingOccurrences(of: "/roster?", with: "/\(name)?")
    }

    /// Drops the database, ending whatever connections a test's pool (or its background threads) still hold.
    func drop() {
        guard let base = ProcessInfo.processInfo.environment["ROSTER_TEST_POSTGRES_URL"] else { return }
        try? Self.administer(base) { try $0.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
    }

    deinit { drop() }

    /// One connection to the cluster's own database for CREATE and DROP DATABASE, shared by every test.
    private static let admin = Mutex<Connection?>(nil)

    private static func administer(_ base: String, _ body: (Connection) throws -> Void) throws {
        try admin.withLock { (connection: inout Connection?) throws -> Void in
            if connection == nil { connection = try DatabasePool.connect(postgresURL: base) }
            if let connection { try body(connection) }
        }
    }

    /// Keeps a test's database while the test runs (its pool may open connections at any time), and drops it when
    /// the test ends: pools live on in background threads, and the cluster would run out of connections.
    public static func keep(_ database: PostgresTestDatabase) {
        _ = observer
        kept.withLock { $0.append(database) }
    }

    static func dropKept() {
        let databases = kept.withLock { list -> [PostgresTestDatabase] in
            defer { list.removeAll() }
            return list
        }
        for database in databases { database.drop() }
    }

    private static let kept = Mutex<[PostgresTestDatabase]>([])
    private static let observer: DropAfterEachTest = {
        let observer = DropAfterEachTest()
        XCTestObservationCenter.shared.addTestObserver(observer)
        return observer
    }()
}

/// Drops the databases a test kept once the test has finished.
final class DropAfterEachTest: NSObject, XCTestObservation, @unchecked Sendable {
    func testCaseDidFinish(_ testCase: XCTestCase) {
        PostgresTestDatabase.dropKept()
    }
}
