import StoreCore
import CSQLite
import Foundation

/// One SQLite connection. Not Sendable: a connection is used by one thread at a time; the pool hands them out.
public final class SQLiteConnection {
    let handle: OpaquePointer
    public let path: String
    /// Prepared statements by SQL text, so each named query is compiled once per connection.
    private var statementCache: [String: SQLiteStatement] = [:]

    public enum Mode: Sendable { case readWrite, readOnly }

    /// Applied once, before the first connection (see shim.h for why).
    private static let configured: Int32 = roster_sqlite3_configure()

    /// How long a statement waits for another process's lock before SQLITE_BUSY.
    public let busyTimeoutMilliseconds: Int32

    public init(path: String, mode: Mode = .readWrite, busyTimeoutMilliseconds: Int32 = 5000) throws(SQLiteError) {
        _ = SQLiteConnection.configured
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        self.path = path
        var db: OpaquePointer?
        let flags: Int32 = (mode == .readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE))
            | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(extendedCode: rc, message: "\(message) (\(path))")
        }
        self.handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
        // Every connection enforces foreign keys; write connections switch the file to WAL so readers never block the writer.
        try execute("PRAGMA foreign_keys = ON")
        if mode == .readWrite {
            try execute("PRAGMA journal_mode = WAL")
            try execute("PRAGMA synchronous = NORMAL")
            // The one writer gets a 32 MB page cache (the default is 2 MB): a bulk chunk that changes thousands of
            // rows touches random pages of several indexes, and a small cache spills them to the WAL mid-transaction,
            // writing the same pages many times over.
            try execute("PRAGMA cache_size = -32768")
            // Savepoints (one per imported row) keep the pages they change in a sub-journal: in memory, not a temp file.
            try execute("PRAGMA temp_store = MEMORY")
            // Checkpoint every 10,000 pages (40 MB of WAL) instead of every 1,000: a bulk task then copies and
            // fsyncs the database a tenth as often, and the pages served meanwhile keep their latency.
            try execute("PRAGMA wal_autocheckpoint = 10000")
            // After a checkpoint lets the WAL start over, cut the file back to 64 MB: a burst (a large import) must not
            // leave a WAL of its peak size on disk for ever.
            try execute("PRAGMA journal_size_limit = 67108864")
        }
    }

    /// Copies this connection's database into a new file at `path` with SQLite's online backup API, in one step: the
    /// copy reads one snapshot (one read transaction), so it is consistent while writers go on beside it (in WAL mode a
    /// reader never blocks the writer). The copy is left in rollback-journal mode: one self-contained file.
    public func backup(to path: String) throws(SQLiteError) {
        var target: OpaquePointer?
        let rc = sqlite3_open_v2(path, &target, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE, nil)
        guard rc == SQLITE_OK, let target else {
            if let target { sqlite3_close_v2(target) }
            throw SQLiteError(extendedCode: rc, message: "cannot create the backup file \(path)")
        }
        defer { sqlite3_close_v2(target) }
        guard let backup = sqlite3_backup_init(target, "main", handle, "main") else {
            throw SQLiteError(extendedCode: sqlite3_extended_errcode(target), message: String(cString: sqlite3_errmsg(target)))
        }
        let step = sqlite3_backup_step(backup, -1)
        let finish = sqlite3_backup_finish(backup)
        guard step == SQLITE_DONE, finish == SQLITE_OK else {
            throw SQLiteError(extendedCode: step == SQLITE_DONE ? finish : step, message: String(cString: sqlite3_errmsg(target)))
        }
        let journal = sqlite3_exec(target, "PRAGMA journal_mode = DELETE", nil, nil, nil)
        guard journal == SQLITE_OK else {
            throw SQLiteError(extendedCode: journal, message: String(cString: sqlite3_errmsg(target)))
        }
    }

    deinit {
        statementCache.removeAll()
        sqlite3_close_v2(handle)
    }

    func error(code: Int32, sql: String?) -> SQLiteError {
        SQLiteError(extendedCode: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Runs one or more statements without parameters (schema changes, pragmas). Never use it with values.
    public func execute(_ sql: String) throws(SQLiteError) {
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errmsg)
        if rc != SQLITE_OK {
            let message = errmsg.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(errmsg)
            throw SQLiteError(extendedCode: sqlite3_extended_errcode(handle), message: message, sql: sql)
        }
    }

    /// A new statement that the caller owns (not cached): for SQL built at run time from a catalogue.
    public func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        try SQLiteStatement(connection: self, sql: sql)
    }

    /// The cached statement for this SQL; compiled on first use.
    /// Compiled statements kept per connection, keyed by their text. Bounded: texts built from what callers send
    /// (the API's field lists, per-database table names) could otherwise grow it without end. When it is full the
    /// least recently used half goes; a statement a caller still holds stays valid until released.
    public static let statementCacheLimit = 512
    private var useCounter: UInt64 = 0

    public func cached(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        useCounter &+= 1
        // One hash of the text per call, as before the bound: the use mark lives in the statement itself.
        if let stmt = statementCache[sql] {
            stmt.lastUse = useCounter
            return stmt
        }
        let stmt = try SQLiteStatement(connection: self, sql: sql)
        if statementCache.count >= SQLiteConnection.statementCacheLimit {
            let keep = statementCache.sorted { $0.value.lastUse > $1.value.lastUse }.prefix(SQLiteConnection.statementCacheLimit / 2)
            statementCache = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
        stmt.lastUse = useCounter
        statementCache[sql] = stmt
        return stmt
    }

    public var cachedStatementCount: Int { statementCache.count }

    public func query(_ sql: String, _ values: [any SQLBindable] = []) throws(SQLiteError) -> [Row] {
        try cached(sql).query(values)
    }

    public func queryOne(_ sql: String, _ values: [any SQLBindable] = []) throws(SQLiteError) -> Row? {
        try cached(sql).query(values).first
    }

    public func scalar(_ sql: String, _ values: [any SQLBindable] = []) throws(SQLiteError) -> SQLValue {
        try queryOne(sql, values)?.values.first ?? .null
    }

    @discardableResult
    public func run(_ sql: String, _ values: [any SQLBindable] = []) throws(SQLiteError) -> Int {
        try cached(sql).execute(values)
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Runs `body` with a different busy timeout (0: fail at once if another process holds the lock), then puts the
    /// connection's own back.
    public func withBusyTimeout<T>(_ milliseconds: Int32, _ body: () throws -> T) rethrows -> T {
        sqlite3_busy_timeout(handle, milliseconds)
        defer { sqlite3_busy_timeout(handle, busyTimeoutMilliseconds) }
        return try body()
    }
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    public enum TransactionKind: String, Sendable {
        /// Takes the write lock at BEGIN, so a writer never fails half-way with SQLITE_BUSY on upgrade.
        case immediate = "BEGIN IMMEDIATE"
        case deferred = "BEGIN DEFERRED"
    }

    /// Runs `body` in a transaction: commits when it returns, rolls back and rethrows when it throws.
    public func inTransaction<T>(_ kind: TransactionKind = .immediate, _ body: (SQLiteConnection) throws -> T) throws -> T {
        // Prepared once per connection: a page opens several short read transactions, and parsing BEGIN and
        // COMMIT each time showed in its profile.
        try cached(kind.rawValue).execute()
        do {
            let result = try body(self)
            try cached("COMMIT").execute()
            return result
        } catch {
            if isInTransaction { try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Compiles every query once, so a typo in SQL stops start-up instead of failing a user's request.
    public func verify(_ queries: [NamedQuery]) throws(SQLiteError) {
        for query in queries {
            do {
                _ = try cached(query.sqliteText)
            } catch let error {
                throw SQLiteError(extendedCode: error.extendedCode, message: "named query \(query.name): \(error.message)", sql: query.sqliteText)
            }
        }
    }
}
