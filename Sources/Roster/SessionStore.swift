import Store

public struct SessionRecord: Sendable {
    public let tokenDigest: String
    public let userID: Int64
    public let csrfToken: String
    public let createdAt: Int64
    public let lastSeenAt: Int64
}

public enum SessionStore {
    static let insert = NamedQuery("sessions.insert", """
        INSERT INTO sessions (token_digest, user_id, csrf_token, created_at, last_seen_at, remote_addr) VALUES (?, ?, ?, ?, ?, ?)
        """)
    /// A session with its user, in one statement: every signed-in request reads both.
    static let withUser = NamedQuery("sessions.withUser", """
        SELECT s.token_digest, s.user_id, s.csrf_token, s.created_at AS session_created_at, s.last_seen_at,
               u.id, u.email, u.name, u.role, u.password_hash, u.created_at, u.totp_enabled_at
        FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_digest = ?
        """)
    static let touch = NamedQuery("sessions.touch", "UPDATE sessions SET last_seen_at = ? WHERE token_digest = ?")
    static let delete = NamedQuery("sessions.delete", "DELETE FROM sessions WHERE token_digest = ?")
    static let deleteForUser = NamedQuery("sessions.deleteForUser", "DELETE FROM sessions WHERE user_id = ?")
    static let deleteForUserExcept = NamedQuery("sessions.deleteForUserExcept", "DELETE FROM sessions WHERE user_id = ? AND token_digest <> ?")
    static let deleteExpired = NamedQuery("sessions.deleteExpired", "DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?")

    static var queries: [NamedQuery] {
        [insert, withUser, touch, delete, deleteForUser, deleteForUserExcept, deleteExpired]
    }

    /// The session and its user; nil when either is gone.
    static func findWithUser(digest: String, _ db: Connection) throws -> (SessionRecord, User)? {
        guard let row = try db.queryOne(withUser, [digest]) else { return nil }
        let record = SessionRecord(tokenDigest: row.string("token_digest") ?? "", userID: row.int64("user_id") ?? 0,
                                   csrfToken: row.string("csrf_token") ?? "",
                                   createdAt: row.int64("session_created_at") ?? 0,
                                   lastSeenAt: row.int64("last_seen_at") ?? 0)
        return (record, User(row: row))
    }
}

public enum LoginThrottle {
    static let insert = NamedQuery("loginFailures.insert", "INSERT INTO login_failures (key, failed_at) VALUES (?, ?)")
    static let countSince = NamedQuery("loginFailures.countSince", "SELECT COUNT(*) FROM login_failures WHERE key = ? AND failed_at >= ?")
    static let clear = NamedQuery("loginFailures.clear", "DELETE FROM login_failures WHERE key = ?")
    static let prune = NamedQuery("loginFailures.prune", "DELETE FROM login_failures WHERE failed_at < ?")
    static let lastSince = NamedQuery("loginFailures.lastSince", "SELECT MAX(failed_at) FROM login_failures WHERE key = ? AND failed_at >= ?")
    static let forget = NamedQuery("loginFailures.forget", "DELETE FROM login_failures WHERE id = ?")

    static var queries: [NamedQuery] { [insert, countSince, clear, prune, lastSince, forget] }
}
