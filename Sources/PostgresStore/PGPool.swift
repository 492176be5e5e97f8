import Foundation
import StoreCore

/// Connections to one PostgreSQL database, shared by every app host: reads on a snapshot, writes one at a time.
///
/// Writes keep SQLite's rule, one at a time, across every host: each write transaction first takes one transaction
/// advisory lock (`pg_advisory_xact_lock`), released by its COMMIT or ROLLBACK, and within a host a fair lock queues
/// the threads in arrival order. Store code written for one writer (read, check, then write) stays correct with
/// several hosts, and two writers never deadlock. Reads run in parallel, each on one REPEATABLE READ snapshot.
///
/// `@unchecked Sendable`: a connection is touched only by the thread that borrowed it.
public final class PGPool: @unchecked Sendable {
    public let url: String
    private let queries: [NamedQuery]
    private let lock = NSLock()
    private var idle: [PGConnection] = []
    private let writerLock = FairLock()
    /// Keeps this many idle connections; more are opened under load and closed when given back.
    public var maxIdle = 32

    /// The advisory-lock key of the writer, and of schema migrations: fixed numbers, the same on every host.
    static let writerKey: Int64 = 0x526F_7374_6572_5731  // "RosterW1"
    static let migrationKey: Int64 = 0x526F_7374_6572_4D31  // "RosterM1"

    /// Connects, applies `migrations` (one host at a time) and prepares `queries` to check them.
    public init(url: String, migrations: [Migration], queries: [NamedQuery]) throws {
        self.url = url
        self.queries = queries
        let first = try PGConnection(url: url)
        try Self.migrate(first, migrations)
        try first.verify(queries)
        idle.append(first)
    }

    /// Applies the migrations newer than the database's version, each in its own transaction, under a session
    /// advisory lock so that two hosts starting together migrate once.
    @discardableResult
    public static func migrate(_ db: PGConnection, _ migrations: [Migration]) throws -> [Int] {
        try db.run("SELECT pg_advisory_lock(?)", [migrationKey])
        defer { _ = try? db.run("SELECT pg_advisory_unlock(?)", [migrationKey]) }
        try db.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version bigint PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)
            """)
        let current = try db.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").int ?? 0
        var applied: [Int] = []
        for migration in try Migration.pending(migrations, current: current) {
            try db.inTransaction { db in
                try db.execute(migration.text(for: .postgres))
                try db.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                           [migration.version, migration.name, ISO8601DateFormatter().string(from: Date())])
            }
            applied.append(migration.version)
        }
        return applied
    }

    /// Runs `body` in a write transaction that holds the writer on every host.
    @discardableResult
    public func write<T>(_ body: (PGConnection) throws -> T) throws -> T {
        writerLock.lock()
        defer { writerLock.unlock() }
        let conn = try borrow()
        defer { giveBack(conn) }
        return try conn.inTransaction { c in
            try c.run("SELECT pg_advisory_xact_lock(?)", [Self.writerKey])
            return try body(c)
        }
    }

    /// Runs `body` in a write transaction only if no write holds the writer on any host right now; nil otherwise.
    @discardableResult
    public func writeIfFree<T>(_ body: (PGConnection) throws -> T) throws -> T? {
        guard writerLock.try() else { return nil }
        defer { writerLock.unlock() }
        let conn = try borrow()
        defer { giveBack(conn) }
        return try conn.inTransaction { c -> T? in
            guard try c.scalar("SELECT pg_try_advisory_xact_lock(?)", [Self.writerKey]).int64 == 1 else { return nil }
            return try body(c)
        }
    }

    /// Runs `body` holding the writer but outside a transaction (maintenance statements such as VACUUM).
    public func writerWithoutTransaction<T>(_ body: (PGConnection) throws -> T) throws -> T {
        writerLock.lock()
        defer { writerLock.unlock() }
        let conn = try borrow()
        defer { giveBack(conn) }
        try conn.run("SELECT pg_advisory_lock(?)", [Self.writerKey])
        defer { _ = try? conn.run("SELECT pg_advisory_unlock(?)", [Self.writerKey]) }
        return try body(conn)
    }

    /// Runs `body` in one read-only snapshot transaction; inside `readScope` on this thread, joins the scope's.
    @discardableResult
    public func read<T>(_ body: (PGConnection) throws -> T) throws -> T {
        if let scoped = ReadScope.current(of: self, as: PGConnection.self) { return try body(scoped) }
        let conn = try borrow()
        defer { giveBack(conn) }
        return try conn.inTransaction(.snapshot, body)
    }

    /// Runs `body` with one snapshot that every `read` on this thread joins (a page's reads).
    public func readScope<T>(_ body: () throws -> T) throws -> T {
        if ReadScope.current(of: self, as: PGConnection.self) != nil { return try body() }
        let conn = try borrow()
        defer { giveBack(conn) }
        return try conn.inTransaction(.snapshot) { c in
            try ReadScope.with(ReadScope(pool: self, connection: c), body)
        }
    }

    /// Since when this host's writer has been held, or nil while it is free.
    public var writerHeldSince: Double? { writerLock.heldSince }

    /// Whether a write on this host waits behind the current one.
    public var writerHasWaiters: Bool { writerLock.hasWaiters }

    private func borrow() throws -> PGConnection {
        lock.lock()
        if let conn = idle.popLast() {
            lock.unlock()
            return conn
        }
        lock.unlock()
        let conn = try PGConnection(url: url)
        return conn
    }

    /// A connection goes back only in a clean state: one left in a transaction (a failed COMMIT) or broken is closed.
    private func giveBack(_ conn: PGConnection) {
        guard !conn.isInTransaction, conn.isHealthy else { return }
        lock.lock()
        if idle.count < maxIdle { idle.append(conn) }
        lock.unlock()
    }
}
