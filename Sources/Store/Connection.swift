import PostgresStore
import SQLiteStore
@_exported import StoreCore

/// One connection, to SQLite or to PostgreSQL: what store code holds while it runs statements.
///
/// A value around the store's own connection (no allocation per use). Like the connections it wraps, it belongs to
/// one thread at a time and is not `Sendable`. Statements write `?` for parameters on both stores.
public struct Connection {
    enum Backend {
        case sqlite(SQLiteConnection)
        case postgres(PGConnection)
    }

    let backend: Backend

    public init(_ connection: SQLiteConnection) { backend = .sqlite(connection) }
    public init(_ connection: PGConnection) { backend = .postgres(connection) }

    public var kind: StoreKind {
        switch backend {
        case .sqlite: return .sqlite
        case .postgres: return .postgres
        }
    }

    /// The SQLite connection, for the few operations only SQLite has (integrity check, online backup).
    public var sqlite: SQLiteConnection? {
        if case .sqlite(let connection) = backend { return connection }
        return nil
    }

    // MARK: Named queries: the text of this connection's store

    public func query(_ named: NamedQuery, _ values: [any SQLBindable] = []) throws -> [Row] {
        switch backend {
        case .sqlite(let c): return try c.query(named.sqliteText, values)
        case .postgres(let c): return try c.query(named.text(for: .postgres), values, prepared: true)
        }
    }

    public func queryOne(_ named: NamedQuery, _ values: [any SQLBindable] = []) throws -> Row? {
        try query(named, values).first
    }

    public func scalar(_ named: NamedQuery, _ values: [any SQLBindable] = []) throws -> SQLValue {
        try queryOne(named, values)?.values.first ?? .null
    }

    @discardableResult
    public func run(_ named: NamedQuery, _ values: [any SQLBindable] = []) throws -> Int {
        switch backend {
        case .sqlite(let c): return try c.run(named.sqliteText, values)
        case .postgres(let c): return try c.run(named.text(for: .postgres), values, prepared: true)
        }
    }

    public func cached(_ named: NamedQuery) throws -> Statement {
        switch backend {
        case .sqlite(let c): return Statement(backend: .sqlite(try c.cached(named.sqliteText)))
        case .postgres(let c): return Statement(backend: .postgres(c, named.text(for: .postgres), prepared: true))
        }
    }

    /// Compiles (SQLite) or prepares (PostgreSQL) each query's text for this store; the first failure names it.
    public func verify(_ queries: [NamedQuery]) throws {
        switch backend {
        case .sqlite(let c): try c.verify(queries)
        case .postgres(let c): try c.verify(queries)
        }
    }

    // MARK: Statements built at run time (table names from ids, column lists)

    /// Runs statements without parameters (schema changes, settings).
    public func execute(_ sql: String) throws {
        switch backend {
        case .sqlite(let c): try c.execute(sql)
        case .postgres(let c): try c.execute(sql)
        }
    }

    public func query(_ sql: String, _ values: [any SQLBindable] = []) throws -> [Row] {
        switch backend {
        case .sqlite(let c): return try c.query(sql, values)
        case .postgres(let c): return try c.query(sql, values, prepared: false)
        }
    }

    public func queryOne(_ sql: String, _ values: [any SQLBindable] = []) throws -> Row? {
        switch backend {
        case .sqlite(let c): return try c.queryOne(sql, values)
        case .postgres(let c): return try c.queryOne(sql, values, prepared: false)
        }
    }

    public func scalar(_ sql: String, _ values: [any SQLBindable] = []) throws -> SQLValue {
        switch backend {
        case .sqlite(let c): return try c.scalar(sql, values)
        case .postgres(let c): return try c.scalar(sql, values, prepared: false)
        }
    }

    /// Runs a statement; returns how many rows it changed.
    @discardableResult
    public func run(_ sql: String, _ values: [any SQLBindable] = []) throws -> Int {
        switch backend {
        case .sqlite(let c): return try c.run(sql, values)
        case .postgres(let c): return try c.run(sql, values, prepared: false)
        }
    }

    /// A statement built for this call (dynamic SQL: table names from ids, column lists), not kept in the cache of
    /// named statements.
    public func prepare(_ sql: String) throws -> Statement {
        switch backend {
        case .sqlite(let c): return Statement(backend: .sqlite(try c.prepare(sql)))
        case .postgres(let c): return Statement(backend: .postgres(c, sql, prepared: false))
        }
    }

    /// A statement run many times in one transaction (SQLite keeps it compiled; on PostgreSQL the per-database
    /// tables' statements go unprepared, see `PGConnection.query`).
    public func cached(_ sql: String) throws -> Statement {
        switch backend {
        case .sqlite(let c): return Statement(backend: .sqlite(try c.cached(sql)))
        case .postgres(let c): return Statement(backend: .postgres(c, sql, prepared: false))
        }
    }

    /// Runs `body` so that, if it fails, the transaction goes on as if it had not run: code that catches a
    /// constraint violation and carries on (a duplicate email becomes a form error, an import skips the row) needs
    /// this. SQLite undoes just the failed statement by itself; PostgreSQL aborts the whole transaction unless the
    /// statement ran inside a savepoint.
    public func recoverable<T>(_ body: () throws -> T) throws -> T {
        guard case .postgres(let c) = backend else { return try body() }
        try c.execute("SAVEPOINT roster_recoverable")
        do {
            let result = try body()
            try c.execute("RELEASE SAVEPOINT roster_recoverable")
            return result
        } catch {
            try c.execute("ROLLBACK TO SAVEPOINT roster_recoverable; RELEASE SAVEPOINT roster_recoverable")
            throw error
        }
    }

    /// The id the last INSERT on this connection gave its row (an INTEGER PRIMARY KEY in SQLite, an identity column's
    /// sequence in PostgreSQL).
    public func lastInsertedID() throws -> Int64 {
        switch backend {
        case .sqlite(let c): return c.lastInsertRowID
        case .postgres(let c): return try c.scalar("SELECT lastval()").int64 ?? 0
        }
    }

    public var isInTransaction: Bool {
        switch backend {
        case .sqlite(let c): return c.isInTransaction
        case .postgres(let c): return c.isInTransaction
        }
    }
}

/// A statement of dynamic SQL, run once or a few times within one transaction.
public struct Statement {
    enum Backend {
        case sqlite(SQLiteStatement)
        case postgres(PGConnection, String, prepared: Bool)
    }

    let backend: Backend

    public func query(_ values: [any SQLBindable] = []) throws -> [Row] {
        switch backend {
        case .sqlite(let s): return try s.query(values)
        case .postgres(let c, let sql, let prepared): return try c.query(sql, values, prepared: prepared)
        }
    }

    /// Calls `body` for each row. SQLite steps through the rows one at a time; PostgreSQL fetches them in pages of
    /// 1,000 from a cursor, so an export of a million profiles never holds them all.
    public func forEach(_ values: [any SQLBindable] = [], _ body: (Row) throws -> Void) throws {
        switch backend {
        case .sqlite(let s): try s.forEach(values, body)
        case .postgres(let c, let sql, _): try c.forEach(sql, values, body)
        }
    }

    @discardableResult
    public func execute(_ values: [any SQLBindable] = []) throws -> Int {
        switch backend {
        case .sqlite(let s): return try s.execute(values)
        case .postgres(let c, let sql, let prepared): return try c.run(sql, values, prepared: prepared)
        }
    }
}
