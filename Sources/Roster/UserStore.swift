import Store

public struct User: Sendable, Equatable {
    public let id: Int64
    public let email: String
    public let name: String
    public let role: Role
    public let passwordHash: String
    public let createdAt: Int64
    /// Signs in with a one-time code after the password (TwoFactor).
    public let twoFactorEnabled: Bool

    init(row: Row) {
        id = row.int64("id") ?? 0
        email = row.string("email") ?? ""
        name = row.string("name") ?? ""
        role = Role(rawValue: row.string("role") ?? "") ?? .viewer
        passwordHash = row.string("password_hash") ?? ""
        createdAt = row.int64("created_at") ?? 0
        twoFactorEnabled = row.int64("totp_enabled_at") != nil
    }
}

/// The SQL for users. Nothing outside the store files writes SQL.
public enum UserStore {
    static let selectColumns = "SELECT id, email, name, role, password_hash, created_at, totp_enabled_at FROM users"
    static let byEmail = NamedQuery("users.byEmail", "\(selectColumns) WHERE email = ?")
    static let byID = NamedQuery("users.byID", "\(selectColumns) WHERE id = ?")
    static let all = NamedQuery("users.all", "\(selectColumns) ORDER BY email")
    static let count = NamedQuery("users.count", "SELECT COUNT(*) FROM users")
    static let adminCount = NamedQuery("users.adminCount", "SELECT COUNT(*) FROM users WHERE role = 'admin'")
    static let insert = NamedQuery("users.insert", """
        INSERT INTO users (email, name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
        """)
    static let updateRole = NamedQuery("users.updateRole", "UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
    static let updateName = NamedQuery("users.updateName", "UPDATE users SET name = ?, updated_at = ? WHERE id = ?")
    static let updatePassword = NamedQuery("users.updatePassword", "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
    static let delete = NamedQuery("users.delete", "DELETE FROM users WHERE id = ?")

    static var queries: [NamedQuery] { [byEmail, byID, all, count, adminCount, insert, updateRole, updateName, updatePassword, delete] }

    static func find(email: String, _ db: Connection) throws -> User? {
        try db.queryOne(byEmail, [email]).map(User.init(row:))
    }
    static func find(id: Int64, _ db: Connection) throws -> User? {
        try db.queryOne(byID, [id]).map(User.init(row:))
    }
    static func list(_ db: Connection) throws -> [User] {
        try db.query(all).map(User.init(row:))
    }
    static func countAll(_ db: Connection) throws -> Int {
        try db.scalar(count).int ?? 0
    }
    static func countAdmins(_ db: Connection) throws -> Int {
        try db.scalar(adminCount).int ?? 0
    }
    static func create(email: String, name: String, role: Role, passwordHash: String, now: Int64, _ db: Connection) throws -> Int64 {
        try db.run(insert, [email, name, role.rawValue, passwordHash, now, now])
        return try db.lastInsertedID()
    }
    static func setRole(id: Int64, role: Role, now: Int64, _ db: Connection) throws {
        try db.run(updateRole, [role.rawValue, now, id])
    }
    static func setName(id: Int64, name: String, now: Int64, _ db: Connection) throws {
        try db.run(updateName, [name, now, id])
    }
    static func setPasswordHash(id: Int64, hash: String, now: Int64, _ db: Connection) throws {
        try db.run(updatePassword, [hash, now, id])
    }
    static func remove(id: Int64, _ db: Connection) throws {
        try db.run(delete, [id])
    }
}
