import Foundation
import Secrets
import Store

public struct APIToken: Sendable {
    public let id: Int64
    public let name: String
    public let databaseIDs: [Int64]
    public let createdAt: Int64
    public let lastUsedAt: Int64?
    public let revoked: Bool
    public let expiresAt: Int64?
    /// The user who created it (nil for tokens made on the command line, or once that user is deleted).
    public let createdBy: Int64?

    init(row: Row) {
        createdBy = row.int64("created_by")
        id = row.int64("id") ?? 0
        name = row.string("name") ?? ""
        if case .array(let items)? = JSONValue.parse(row.string("databases") ?? "[]") {
            databaseIDs = items.compactMap { if case .int(let i) = $0 { return i } else { return nil } }
        } else {
            databaseIDs = []
        }
        createdAt = row.int64("created_at") ?? 0
        lastUsedAt = row.int64("last_used_at")
        revoked = row.int64("revoked_at") != nil
        expiresAt = row.int64("expires_at")
    }
}

enum APIStore {
    static let insert = NamedQuery("api.insertToken", "INSERT INTO api_tokens (name, digest, databases, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
    static let all = NamedQuery("api.tokens", "SELECT * FROM api_tokens ORDER BY id DESC")
    static let byDigest = NamedQuery("api.tokenByDigest", "SELECT * FROM api_tokens WHERE digest = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)")
    static let revoke = NamedQuery("api.revoke", "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
    static let used = NamedQuery("api.used", "UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
    static let replay = NamedQuery("api.replay", "SELECT content_type, response, request_digest FROM api_idempotency WHERE token_id = ? AND key = ? AND created_at > ?")
    static let remember = NamedQuery("api.remember", """
        INSERT INTO api_idempotency (token_id, key, content_type, response, created_at, request_digest) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (token_id, key) DO UPDATE SET content_type = excluded.content_type, response = excluded.response,
            created_at = excluded.created_at, request_digest = excluded.request_digest
        """)
    static let forget = NamedQuery("api.forget", "DELETE FROM api_idempotency WHERE created_at < ?")
    static var queries: [NamedQuery] { [insert, all, byDigest, revoke, used, replay, remember, forget] }
}

/// API tokens: created by admins, shown once, stored as digests, scoped to databases, revocable.
public final class APITokens: Sendable {
    public let pool: DatabasePool
    let clock: Clock

    public init(pool: DatabasePool, clock: Clock = .system) {
        self.pool = pool
        self.clock = clock
    }

    /// Creates a token; returns it (the only time it is visible) and its record.
    public func create(name raw: String, databaseIDs: [Int64], by creator: Int64?, expiresInDays: Int? = nil) throws -> (token: String, record: APIToken) {
        let name = raw.trimmed
        var errors: [String: String] = [:]
        if name.isEmpty || name.count > 100 { errors["name"] = "Name the token (up to 100 characters), e.g. after the script that uses it." }
        if databaseIDs.isEmpty { errors["databases"] = "Choose at least one database the token may change." }
        if let days = expiresInDays, !(1...3650).contains(days) { errors["expires"] = "A token lasts 1 to 3,650 days (or leave it empty: until revoked)." }
        if !errors.isEmpty { throw ValidationError(errors) }
        let token = "rst_" + Secrets.randomToken(bytes: 32)
        let id = try pool.write { db -> Int64 in
            for id in databaseIDs where try db.queryOne(DatabaseStore.byID, [id]) == nil {
                throw ValidationError(field: "databases", "Database \(id) does not exist.")
            }
            try db.run(APIStore.insert, [name, Secrets.digest(token), JSONValue.array(databaseIDs.map { .int($0) }).canonical, creator, clock.now(),
                                              expiresInDays.map { clock.now() + Int64($0) * 86_400 }])
            return try db.lastInsertedID()
        }
        return (token, try readBack(try list().first { $0.id == id }, "token"))
    }

    public func list() throws -> [APIToken] { try pool.read { try $0.query(APIStore.all).map(APIToken.init(row:)) } }

    public func revoke(_ id: Int64) throws {
        let n = try pool.write { try $0.run(APIStore.revoke, [clock.now(), id]) }
        if n == 0 { throw ValidationError(field: "token", "No such active token.") }
    }

    /// The active token with this secret, or nil. Failures are counted per client address: more than 20 in
    /// 15 minutes and the address is refused (`throttled`) until the window passes. The token is never logged.
    public func authenticate(_ token: String, from address: String = "") throws -> APIToken? {
        let now = clock.now()
        let key = "api:" + address
        if try pool.read({ try $0.scalar(LoginThrottle.countSince, [key, now - 900]).int ?? 0 }) >= APITokens.maxFailures { throw Throttled() }
        guard !token.isEmpty, token.utf8.count < 200,
              let found = try pool.read({ try $0.queryOne(APIStore.byDigest, [Secrets.digest(token), now]).map(APIToken.init(row:)) }) else {
            try pool.write { db in
                try db.run(LoginThrottle.insert, [key, now])
                try db.run(LoginThrottle.prune, [now - 86_400])
            }
            return nil
        }
        return found
    }

    public static let maxFailures = 20
    public struct Throttled: Error {}

    /// For tests: registers a token with a chosen secret (the spec's examples use a fixed one).
    func register(token: String, name: String, databaseIDs: [Int64]) throws {
        try pool.write { db in
            try db.run(APIStore.insert, [name, Secrets.digest(token), JSONValue.array(databaseIDs.map { .int($0) }).canonical, SQLValue.null, clock.now(), SQLValue.null])
        }
    }
}
