import StoreCore
import Foundation

/// One writer and many readers over one SQLite file in WAL mode.
///
/// Writes are serialized through a single connection (SQLite allows one writer at a time anyway; queueing
/// here rather than in busy_timeout keeps waits fair and short). Readers each borrow their own connection,
/// so pages read in parallel with a running write.
///
/// `@unchecked Sendable`: connections are only touched while borrowed under `lock` or `writerLock`.
public final class SQLitePool: @unchecked Sendable {
    public let path: String
    private let writer: SQLiteConnection
    private let writerLock = FairLock()
    private let lock = NSLock()
    private var idleReaders: [SQLiteConnection] = []
    private let queries: [NamedQuery]

    public init(path: String, migrations: [Migration], queries: [NamedQuery]) throws {
        self.path = path
        self.queries = queries
        writer = try SQLiteConnection(path: path, mode: .readWrite)
        try Migrator.migrate(writer, migrations)
        try writer.verify(queries)
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction on the writer connection.
    @discardableResult
    public func write<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        writerLock.lock()
        defer { writerLock.unlock() }
        return try writer.inTransaction(.immediate, body)
    }

    /// Runs `body` in a write transaction only if the writer is free right now (in this process and in others);
    /// returns nil otherwise. For bookkeeping that can wait for a later request, such as a session's last-seen time:
    /// a page must never queue behind a background task's chunk for it.
    @discardableResult
    public func writeIfFree<T>(_ body: (SQLiteConnection) throws -> T) throws -> T? {
        guard writerLock.try() else { return nil }
        defer { writerLock.unlock() }
        do {
            return try writer.withBusyTimeout(0) { try writer.inTransaction(.immediate, body) }
        } catch let error as SQLiteError where error.isBusy {
            return nil
        }
    }

    /// Moves checkpoints off the writer: SQLite's automatic checkpoint runs inside the commit that crosses the
    /// threshold, holding the writer (and so every API call behind it) for the hundreds of milliseconds it takes to
    /// copy 40 MB of WAL. Instead a second connection checkpoints (PASSIVE: alongside the writer, never blocking it)
    /// every `seconds`. For the long-running server; tools keep the automatic checkpoint.
    ///
    /// PASSIVE alone never lets the WAL start over while writes keep coming (a million-row import grew it to 9 GB):
    /// SQLite rewinds the WAL only when every frame is checkpointed at the moment a write begins. So when the WAL file
    /// passes `walLimitBytes`, the checkpointer also takes its turn at the writer (the same queue as every write, so
    /// nothing writes meanwhile), checkpoints the few frames written since its last pass and truncates the file
    /// (TRUNCATE), waiting at most 100 ms for readers still on old frames; if they are not done it tries next time.
    public func startBackgroundCheckpoints(every seconds: Double = 1, walLimitBytes: Int64 = 64 << 20) throws {
        let checkpointer = try SQLiteConnection(path: path, mode: .readWrite)
        try writerWithoutTransaction { try $0.execute("PRAGMA wal_autocheckpoint = 0") }
        try checkpointer.execute("PRAGMA wal_autocheckpoint = 0")
        let box = CheckpointConnection(checkpointer)
        let wal = path + "-wal"
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: seconds)
                try? box.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                var info = stat()
                guard stat(wal, &info) == 0, Int64(info.st_size) > walLimitBytes else { continue }
                writerLock.lock()
                _ = try? box.connection.withBusyTimeout(100) { try box.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
                writerLock.unlock()
            }
        }
        thread.name = "roster-checkpoint"
        thread.start()
    }

    /// Copies the database to a new file at `path` from one consistent snapshot, on a reader connection: the writer
    /// and the pages go on meanwhile.
    public func backup(to path: String) throws {
        let conn = try borrowReader()
        defer { giveBack(conn) }
        try conn.backup(to: path)
    }

    /// Since when (seconds since 1970) the writer has been held by one caller, or nil while it is free. A write that
    /// holds it for minutes means something is stuck (/healthz).
    public var writerHeldSince: Double? { writerLock.heldSince }

    /// Whether a write queues behind the current one: long background work (an import's chunk) ends early then, so a
    /// page or an API call waits for a row or two instead of a whole chunk.
    public var writerHasWaiters: Bool { writerLock.hasWaiters }

    /// Runs `body` on the writer without opening a transaction (checkpoints, VACUUM, pragmas).
    public func writerWithoutTransaction<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        writerLock.lock()
        defer { writerLock.unlock() }
        return try body(writer)
    }

    /// Runs `body` on a reader connection inside one deferred transaction, so it sees one consistent snapshot.
    @discardableResult
    public func read<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        // Inside `readScope` on this thread: join its transaction (one snapshot, no new BEGIN, no new file locks).
        if let scoped = ReadScope.current(of: self, as: SQLiteConnection.self) { return try body(scoped) }
        let conn = try borrowReader()
        defer { giveBack(conn) }
        return try conn.inTransaction(.deferred, body)
    }

    /// Runs `body` with one read transaction that every `read` on this thread joins. A page that reads ten things
    /// then sees one consistent snapshot and takes SQLite's read locks once instead of ten times. For requests that
    /// do not read their own writes (GET pages): writes still go to the writer, and this snapshot would not see them.
    public func readScope<T>(_ body: () throws -> T) throws -> T {
        if ReadScope.current(of: self, as: SQLiteConnection.self) != nil { return try body() }
        let conn = try borrowReader()
        defer { giveBack(conn) }
        return try conn.inTransaction(.deferred) { c in
            try ReadScope.with(ReadScope(pool: self, connection: c), body)
        }
    }

    private func borrowReader() throws -> SQLiteConnection {
        lock.lock()
        if let conn = idleReaders.popLast() {
            lock.unlock()
            return conn
        }
        lock.unlock()
        let conn = try SQLiteConnection(path: path, mode: .readOnly)
        try conn.verify(queries.filter { $0.isReadOnlyCandidate })
        return conn
    }

    private func giveBack(_ conn: SQLiteConnection) {
        lock.lock()
        idleReaders.append(conn)
        lock.unlock()
    }
}

extension NamedQuery {
    /// Read connections compile only the queries that read; writes are compiled on the writer.
    var isReadOnlyCandidate: Bool {
        let head = sqliteText.drop(while: { $0.isWhitespace }).prefix(6).uppercased()
        return head.hasPrefix("SELECT") || head.hasPrefix("WITH")
    }
}

/// The checkpoint thread's own connection, used by that thread only.
private final class CheckpointConnection: @unchecked Sendable {
    let connection: SQLiteConnection
    init(_ connection: SQLiteConnection) { self.connection = connection }
}
