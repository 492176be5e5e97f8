/// Which store a connection speaks to. Store code picks its SQL text by it where the two dialects differ.
public enum StoreKind: String, Sendable {
    case sqlite, postgres
}

/// A query kept by name in a store file, compiled at start-up by the store's `verify`.
///
/// One text serves both stores where their SQL agrees; where it does not, the PostgreSQL text sits right beside the
/// SQLite one, so a reader sees both dialects of a query in one place. Store code passes the query itself (not its
/// text) to the connection, which picks the text of its store.
public struct NamedQuery: Sendable {
    public let name: String
    /// SQLite's text, and PostgreSQL's unless `postgresText` is given.
    public let sqliteText: String
    public let postgresText: String?

    public init(_ name: String, _ sql: String, postgres: String? = nil) {
        self.name = name
        self.sqliteText = sql
        self.postgresText = postgres
    }

    /// The text for `kind`.
    public func text(for kind: StoreKind) -> String {
        kind == .postgres ? (postgresText ?? sqliteText) : sqliteText
    }
}

/// One schema change. Versions are applied in order, each in its own transaction, and recorded.
///
/// Like a named query, a migration carries its PostgreSQL text beside SQLite's when the two differ.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    /// SQLite's text, and PostgreSQL's unless `postgresText` is given.
    public let sql: String
    public let postgresText: String?
    public init(version: Int, name: String, sql: String, postgres: String? = nil) {
        self.version = version
        self.name = name
        self.sql = sql
        self.postgresText = postgres
    }

    public func text(for kind: StoreKind) -> String {
        kind == .postgres ? (postgresText ?? sql) : sql
    }
}

extension Migration {
    /// The migrations a database at schema `current` still needs, in order; both stores' migrators apply these.
    /// A database newer than every migration this build knows is refused: an older build must not write to it.
    public static func pending(_ migrations: [Migration], current: Int) throws -> [Migration] {
        let versions = migrations.map(\.version)
        precondition(versions == versions.sorted() && Set(versions).count == versions.count,
                     "migrations must have unique, increasing versions")
        if let newest = versions.last, current > newest { throw SchemaTooNew(current: current, newest: newest) }
        return migrations.filter { $0.version > current }
    }
}

/// The database was migrated by a newer build than this one.
public struct SchemaTooNew: Error, CustomStringConvertible, Sendable {
    public let current: Int
    public let newest: Int
    public var description: String {
        "the database is at schema version \(current), newer than this build knows (\(newest)); use a newer roster"
    }
}

/// What store code asks of a failure, whichever store raised it.
public protocol StoreFailure: Error {
    /// A NOT NULL, UNIQUE, CHECK or foreign-key constraint refused the change.
    var isConstraintViolation: Bool { get }
    /// The store's own words for what went wrong.
    var message: String { get }
    /// The statement that failed, when there was one.
    var sql: String? { get }
    /// The connection to the store failed (a server restart, a network cut): the work itself may be fine.
    var isConnectionFailure: Bool { get }
    /// The store cannot hold a value the request sent (PostgreSQL's text and U+0000): bad input, not a server fault.
    var isUnstorableValue: Bool { get }
}

extension StoreFailure {
    public var isConnectionFailure: Bool { false }
    public var isUnstorableValue: Bool { false }
}
