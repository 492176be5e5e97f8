/// A query kept by name in a store file, compiled at start-up by the store's `verify`.
public struct NamedQuery: Sendable {
    public let name: String
    public let sql: String
    public init(_ name: String, _ sql: String) {
        self.name = name
        self.sql = sql
    }
}

/// One schema change. Versions are applied in order, each in its own transaction, and recorded.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}
