import Foundation
import Secrets
import Store
import Synchronization

/// Links a subscriber follows without an account: the subscription manager of one profile. Each carries what it
/// is for and an HMAC-SHA-256 under a server key kept in the database (so every app host checks every link);
/// rotating the key voids every link given out before.
public final class SubscriberLinks: Sendable {
    let pool: DatabasePool
    let clock: Clock
    /// Read on every subscriber request; a key rotated on another host is seen within this many seconds.
    private let cache = ReadMostly<(key: String, created: Int64, expires: Int64)?>(nil)
    static let cacheSeconds: Int64 = 10
    /// Links and tokens longer than this are not looked at.
    public static let maximumTokenLength = 600

    public init(pool: DatabasePool, clock: Clock = .system) {
        self.pool = pool
        self.clock = clock
    }

    /// How this installation is reached and how long a confirmation link lasts: set once at start-up from the
    /// configuration (ROSTER_PUBLIC_URL, ROSTER_CONFIRMATION_HOURS). Process-wide because the writer that asks for a
    /// confirmation runs inside every way in, none of which should carry it.
    public struct Configuration: Sendable {
        /// Scheme and host, without the trailing slash: links in API answers and trigger events are absolute.
        public var publicURL = "http://127.0.0.1:8080"
        public var confirmationHours = 72
        public init(publicURL: String = "http://127.0.0.1:8080", confirmationHours: Int = 72) {
            self.publicURL = publicURL
            self.confirmationHours = confirmationHours
        }
    }
    /// Read by every page that shows a link (from all worker threads at once): a readers-writer lock, not a mutex.
    private static let current = ReadMostly(Configuration())
    public static var configuration: Configuration {
        get { current.read { $0 } }
        set { current.write { $0 = newValue } }
    }
    public var publicURL: String { SubscriberLinks.configuration.publicURL }

    /// The path of the subscription manager under nginx's prefix for subscribers.
    public static let managerPrefix = "/s/"

    /// The signing key, made on first use.
    func key() throws -> String {
        let now = clock.now()
        if let cached = cache.read({ $0 }), now < cached.expires { return cached.key }
        let stored = try pool.read { try $0.queryOne(SubscriberStore.secret) }
        let (key, created) = try stored.flatMap { row in row.string("secret").map { ($0, row.int64("created_at") ?? 0) } }
            ?? pool.write { try SubscriberLinks.key($0, now: now) }
        cache.write { $0 = (key, created, now + SubscriberLinks.cacheSeconds) }
        return key
    }

    /// The key as this transaction sees it, made if there is none yet (the writer signs confirmation links inside
    /// the transaction that adds the subscription).
    static func key(_ db: Connection, now: Int64) throws -> (key: String, created: Int64) {
        if let row = try db.queryOne(SubscriberStore.secret), let key = row.string("secret"), !key.isEmpty {
            return (key, row.int64("created_at") ?? 0)
        }
        try db.run(SubscriberStore.createSecret, [Secrets.randomToken(), now])
        guard let row = try db.queryOne(SubscriberStore.secret), let key = row.string("secret"), !key.isEmpty else {
            throw ValidationError(field: "link", "The link key could not be made.")
        }
        return (key, row.int64("created_at") ?? now)
    }

    /// When the key in use was made (Settings shows it), or nil before the first link.
    public func keyCreatedAt() throws -> Int64? {
        try pool.read { try $0.queryOne(SubscriberStore.secret)?.int64("created_at") }
    }

    /// A new key: every subscription-manager link given out so far stops working.
    public func rotate() throws {
        _ = try key()
        try pool.write { try $0.run(SubscriberStore.rotateSecret, [Secrets.randomToken(), clock.now()]) }
        cache.write { $0 = nil }
    }

    // MARK: Tokens

    /// `purpose` keeps a token of one kind from being used as another.
    func sign(_ purpose: String, _ payload: String) throws -> String {
        SubscriberLinks.sign(purpose, payload, key: try key())
    }

    static func sign(_ purpose: String, _ payload: String, key: String) -> String {
        let body = Secrets.base64URL(Array(payload.utf8))
        return body + "." + mac(purpose, body, key: key)
    }

    /// The payload of a token signed for `purpose`, or nil when it is not one (forged, altered, an old key).
    func verify(_ purpose: String, _ token: String) throws -> String? {
        guard token.utf8.count <= SubscriberLinks.maximumTokenLength else { return nil }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let bytes = Secrets.base64URLDecode(String(parts[0])) else { return nil }
        guard Secrets.constantTimeEquals(SubscriberLinks.mac(purpose, String(parts[0]), key: try key()), String(parts[1])) else {
            return nil
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// 128 bits of HMAC-SHA-256, hex.
    static func mac(_ purpose: String, _ body: String, key: String) -> String {
        String(Secrets.hmacSHA256Hex(key: key, message: Array("\(purpose)\n\(body)".utf8)).prefix(32))
    }

    // MARK: The subscription manager's link

    /// The token in a profile's subscription-manager link.
    public func managerToken(databaseID: Int64, profileID: String) throws -> String {
        try sign("manage", "\(databaseID) \(profileID)")
    }

    /// The absolute link to a profile's subscription manager.
    public func managerURL(databaseID: Int64, profileID: String) throws -> String {
        publicURL + SubscriberLinks.managerPrefix + (try managerToken(databaseID: databaseID, profileID: profileID))
    }

    /// The database and profile a manager token names, or nil.
    public func managerTarget(_ token: String) throws -> (databaseID: Int64, profileID: String)? {
        guard let payload = try verify("manage", token) else { return nil }
        let parts = payload.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, let databaseID = Int64(parts[0]) else { return nil }
        return (databaseID, String(parts[1]))
    }

    /// The token the manager's forms carry: bound to the link, so a page elsewhere cannot post to it.
    public func formToken(for token: String) throws -> String {
        SubscriberLinks.mac("manage-form", token, key: try key())
    }

    // MARK: Double opt-in

    public static let confirmPrefix = "/s/confirm/"

    /// A confirmation link for one subscription, signed with the key this transaction sees; it records when it was
    /// made, and `confirmationTarget` refuses it after ROSTER_CONFIRMATION_HOURS.
    static func confirmationURL(databaseID: Int64, subscriptionID: Int64, contact: String, now: Int64, _ db: Connection) throws -> String {
        let token = sign("confirm", "\(databaseID) \(subscriptionID) \(now) \(contactMark(contact))", key: try key(db, now: now).key)
        return configuration.publicURL + confirmPrefix + token
    }

    /// A short digest of the contact the link was made for: SQLite may give a deleted subscription's id to a new
    /// one, and a link must not confirm somebody else's.
    static func contactMark(_ contact: String) -> String { String(Secrets.digest("confirm-contact\n" + contact).prefix(16)) }

    public enum Confirmation: Sendable, Equatable {
        case valid(databaseID: Int64, subscriptionID: Int64, contactMark: String)
        case expired(databaseID: Int64)
        case invalid
    }

    public func confirmationTarget(_ token: String) throws -> Confirmation {
        guard let payload = try verify("confirm", token) else { return .invalid }
        let parts = payload.split(separator: " ")
        guard parts.count == 4, let databaseID = Int64(parts[0]), let subscriptionID = Int64(parts[1]),
              let issued = Int64(parts[2]) else { return .invalid }
        let lifetime = Int64(SubscriberLinks.configuration.confirmationHours) * 3600
        if clock.now() - issued > lifetime { return .expired(databaseID: databaseID) }
        return .valid(databaseID: databaseID, subscriptionID: subscriptionID, contactMark: String(parts[3]))
    }

    public func checkFormToken(_ sent: String, for token: String) throws -> Bool {
        let expected = try formToken(for: token)
        return !sent.isEmpty && Secrets.constantTimeEquals(sent, expected)
    }
}
