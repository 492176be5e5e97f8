import StoreCore

/// A failure reported by PostgreSQL or libpq, with the statement that caused it when there was one.
///
/// The SQLSTATE is kept as PostgreSQL gives it (five characters): its class (the first two) says what kind of
/// failure it is, the way an extended result code does for SQLite.
public struct PostgresError: StoreFailure, CustomStringConvertible, Equatable, Sendable {
    /// SQLSTATE, e.g. `23505` (unique violation); empty when libpq failed before the server answered.
    public let sqlState: String
    public let message: String
    public let sql: String?

    public init(sqlState: String, message: String, sql: String? = nil) {
        self.sqlState = sqlState
        self.message = message
        self.sql = sql
    }

    /// Class 23: a NOT NULL, foreign key, unique or check constraint refused the change.
    public var isConstraintViolation: Bool { sqlState.hasPrefix("23") }
    /// 40001 and 40P01: the transaction lost a serialization race or a deadlock and may be tried again.
    public var isRetryable: Bool { sqlState == "40001" || sqlState == "40P01" }
    /// Class 08, or no answer at all: the connection is gone and must be opened again.
    public var isConnectionFailure: Bool { sqlState.hasPrefix("08") || sqlState.isEmpty }
    /// A character the database cannot hold (22021: U+0000 in text, refused before sending) or cannot convert (22P05).
    public var isUnstorableValue: Bool { sqlState == "22021" || sqlState == "22P05" }

    public var description: String {
        var text = "PostgreSQL error"
        if !sqlState.isEmpty { text += " \(sqlState)" }
        text += ": \(message)"
        if let sql { text += " — in: \(sql)" }
        return text
    }
}
