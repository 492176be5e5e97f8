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
    private let admin: Connection
    private let name: String

    public init() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let base = environment["ROSTER_TEST_POSTGRES_URL"], !base.isEmpty else {
            if environment["ROSTER_TEST_POSTGRES_REQUIRED"] == "1" { XCTFail("ROSTER_TEST_POSTGRES_URL is not set") }
            throw XCTSkip("no PostgreSQL server (ROSTER_TEST_POSTGRES_URL)")
        }
        admin = try DatabasePool.connect(postgresURL: base)
        name = "r_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try admin.execute("CREATE DATABASE \(name)")
        url = base.replacingOccurrences(of: "/roster?", with: "/\(name)?")
    }

    deinit { try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }

    /// Keeps a test's database for as long as its pool may use it (the cluster goes when the suite ends).
    public static func keep(_ database: PostgresTestDatabase) {
        kept.withLock { $0.append(database) }
    }
    private static let kept = Mutex<[PostgresTestDatabase]>([])
}

