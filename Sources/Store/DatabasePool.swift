import Foundation
import PostgresStore
import SQLiteStore
@_exported import StoreCore

/// The store the app runs on: how store code reads (one snapshot) and writes (one transaction at a time).
///
/// SQLite (the embedded default): one writer and many readers over one file (`SQLitePool`). PostgreSQL (several app
/// hosts): a pool of connections whose writes take one advisory lock, so they stay one at a time across hosts
/// (`PGPool`). Every store file goes through this type.
public final class DatabasePool: @unchecked Sendable {
    enum Backend {
        case sqlite(SQLitePool)
        case postgres(PGPool)
    }

    let backend: Backend

    /// Opens (creating if needed) the SQLite database at `path`, applies `migrations` and compiles `queries`.
    public init(path: String, migrations: [Migration], queries: [NamedQuery]) throws {
        backend = .sqlite(try SQLitePool(path: path, migrations: migrations, queries: queries))
    }

    /// Connects to the PostgreSQL database at `url` (shared by every app host), applies `migrations` and prepares
    /// `queries`.
    public init(postgresURL url: String, migrations: [Migration], queries: [NamedQuery]) throws {
        backend = .postgres(try PGPool(url: url, migrations: migrations, queries: queries))
    }

    /// One connection of its own to PostgreSQL, outside any pool (administration, tools, tests).
    public static func connect(postgresURL url: String) throws -> Connection {
        Connection(try PGConnection(url: url))
    }

    public var kind: StoreKind {
        switch backend {
        case .sqlite: return .sqlite
        case .postgres: return .postgres
        }
    }

    /// The SQLite pool, for what only SQLite has (its file, online backup, checkpoints).
    public var sqlite: SQLitePool? {
        switch backend {
        case .sqlite(let pool): return pool
        case .postgres: return nil
        }
    }

    /// Where the data lives: the SQLite file's path, or the PostgreSQL URL without its password.
    public var path: String {
        switch backend {
        case .sqlite(let pool): return pool.path
        case .postgres(let pool): return Self.withoutPassword(pool.url)
        }
    }

    /// `postgres://user:secret@host/db?password=secret` → `postgres://user@host/db`, for logs and pages: the
    /// password goes wherever libpq's URL can carry it (the user info, or a `password` / `sslpassword` parameter).
    public static func withoutPassword(_ url: String) -> String {
        var text = url
        if let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@"),
           let colon = text[scheme.upperBound..<at].firstIndex(of: ":") {
            text = String(text[..<colon]) + String(text[at...])
        }
        guard let question = text.firstIndex(of: "?") else { return text }
        let kept = text[text.index(after: question)...].split(separator: "&").filter { pair in
            let raw = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            let key = (raw.removingPercentEncoding ?? raw).lowercased()
            return key != "password" && key != "sslpassword"
        }
        return String(text[..<question]) + (kept.isEmpty ? "" : "?" + kept.joined(separator: "&"))
    }

    /// Runs `body` in a write transaction; commits when it returns, rolls back when it throws.
    @discardableResult
    public func write<T>(_ body: (Connection) throws -> T) throws -> T {
        switch backend {
        case .sqlite(let pool): return try pool.write { try body(Connection($0)) }
        case .postgres(let pool): return try pool.write { try body(Connection($0)) }
        }
    }

    /// Runs `body` in a write transaction only if no other write holds or awaits the store right now; nil otherwise.
    @discardableResult
    public func writeIfFree<T>(_ body: (Connection) throws -> T) throws -> T? {
        switch backend {
        case .sqlite(let pool): return try pool.writeIfFree { try body(Connection($0)) }
        case .postgres(let pool): return try pool.writeIfFree { try body(Connection($0)) }
        }
    }

    /// Runs `body` on the writer outside any transaction (settings, VACUUM, checkpoints).
    public func writerWithoutTransaction<T>(_ body: (Connection) throws -> T) throws -> T {
        switch backend {
        case .sqlite(let pool): return try pool.writerWithoutTransaction { try body(Connection($0)) }
        case .postgres(let pool): return try pool.writerWithoutTransaction { try body(Connection($0)) }
        }
    }

    /// Runs `body` in one read transaction (one snapshot); inside `readScope`, joins the scope's.
    @discardableResult
    public func read<T>(_ body: (Connection) throws -> T) throws -> T {
        switch backend {
        case .sqlite(let pool): return try pool.read { try body(Connection($0)) }
        case .postgres(let pool): return try pool.read { try body(Connection($0)) }
        }
    }

    /// Runs `body` with one read transaction that every `read` on this thread joins (a page's reads).
    public func readScope<T>(_ body: () throws -> T) throws -> T {
        switch backend {
        case .sqlite(let pool): return try pool.readScope(body)
        case .postgres(let pool): return try pool.readScope(body)
        }
    }

    /// Starts the store's own upkeep in the background: for SQLite, WAL checkpoints off the writer (see
    /// `SQLitePool.startBackgroundCheckpoints`). For the long-running server; tools leave it off.
    public func startBackgroundMaintenance() throws {
        switch backend {
        case .sqlite(let pool): try pool.startBackgroundCheckpoints()
        case .postgres: break  // autovacuum is the server's
        }
    }

    /// Since when the writer has been held, or nil while it is free (/healthz).
    public var writerHeldSince: Double? {
        switch backend {
        case .sqlite(let pool): return pool.writerHeldSince
        case .postgres(let pool): return pool.writerHeldSince
        }
    }

    /// Whether a write waits behind the current one (long work then ends its chunk early).
    public var writerHasWaiters: Bool {
        switch backend {
        case .sqlite(let pool): return pool.writerHasWaiters
        case .postgres(let pool): return pool.writerHasWaiters
        }
    }
}
