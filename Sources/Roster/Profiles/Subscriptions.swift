import Foundation
import Store

/// A profile's subscription to a resource on one channel.
public struct Subscription: Sendable, Equatable {
    public let id: Int64
    public let resourceID: Int64
    public let channel: Channel
    /// The channel's contact: an email, a phone (sms, whatsapp, viber), a push subscription id, a Telegram chat id.
    public let contact: String
    /// Push only: the provider (e.g. Firefox, FCM).
    public let provider: String
    public let status: ProfileStatus
    /// Lower number = higher priority.
    public let priority: Int
    public let categories: [String]
    public let deleted: Bool
    public let createdAt: Int64
    /// The values of the resource's custom subscription fields and of the standard channel fields (`_browser_name`…).
    public let fields: [String: JSONValue]

    init(row: Row) {
        id = row.int64("id") ?? 0
        resourceID = row.int64("resource_id") ?? 0
        channel = Channel(rawValue: row.string("channel") ?? "") ?? .email
        contact = row.string("contact") ?? ""
        provider = row.string("provider") ?? ""
        status = ProfileStatus(rawValue: row.int("status") ?? 0) ?? .subscribed
        priority = row.int("priority") ?? 0
        categories = JSONValue.stringList(row.string("categories"))
        deleted = row.bool("deleted")
        createdAt = row.int64("created_at") ?? 0
        if case .object(let o)? = JSONValue.parse(row.string("fields") ?? "{}") { fields = o } else { fields = [:] }
    }
}

public struct SubscriptionInput: Sendable {
    public var resourceID: Int64
    public var channel: String
    public var contact: String
    public var provider: String
    public var status: String
    /// nil: not given (the resource's "increase priority" option decides).
    public var priority: Int?
    public var categories: [String]
    /// Custom subscription fields of the resource (by name) and standard channel fields (names starting with `_`).
    public var fields: [String: JSONValue]
    /// Allows moving a subscription out of an unsafe status into subscribed.
    public var includeUnsafe: Bool
    public init(resourceID: Int64, channel: String, contact: String, provider: String = "", status: String = "subscribed",
                priority: Int? = nil, categories: [String] = [], fields: [String: JSONValue] = [:], includeUnsafe: Bool = false) {
        self.fields = fields
        self.includeUnsafe = includeUnsafe
        self.resourceID = resourceID
        self.channel = channel
        self.contact = contact
        self.provider = provider
        self.status = status
        self.priority = priority
        self.categories = categories
    }
}

/// Subscriptions with the limits of the spec: at most 200 per profile and 20 per resource in one channel. When a
/// new one would pass a limit it replaces an old one, chosen in this order: deleted first; then invalid, hard
/// bounced, complainer, suspended, unconfirmed; then the lowest priority (highest number); then the oldest.
public final class Subscriptions: Sendable {
    public static let perProfileLimit = 200
    public static let perResourceChannelLimit = 20

    let pool: DatabasePool
    let clock: Clock

    public init(pool: DatabasePool, clock: Clock = .system) {
        self.pool = pool
        self.clock = clock
    }

    static func table(_ databaseID: Int64) -> String { "subscriptions_\(databaseID)" }

    /// The replacement order, most replaceable first.
    static let replacementOrder = """
        ORDER BY deleted DESC,
                 CASE status WHEN 6 THEN 0 WHEN 3 THEN 1 WHEN 2 THEN 2 WHEN 5 THEN 3 WHEN 4 THEN 4 ELSE 5 END,
                 priority DESC, created_at ASC, id ASC
        """

    public func list(databaseID: Int64, profileRowID: Int64) throws -> [Subscription] {
        try pool.read { db in
            try db.query("SELECT * FROM \(Subscriptions.table(databaseID)) WHERE profile = ? ORDER BY resource_id, channel, priority, id", [profileRowID])
                .map(Subscription.init(row:))
        }
    }

    static func validateContact(_ channel: Channel, contact raw: String, provider: String) -> Result<String, FieldValueError> {
        let contact = raw.trimmingCharacters(in: .whitespaces)
        switch channel {
        case .email:
            if let problem = EmailAddress.problem(contact) { return .failure(FieldValueError("The email \(problem).")) }
            return .success(contact.lowercased())
        case .sms, .whatsapp, .viber:
            guard let phone = PhoneNumber.normalize(contact) else { return .failure(FieldValueError("The phone is not a number like +79000000000.")) }
            return .success(phone)
        case .push:
            if provider.trimmingCharacters(in: .whitespaces).isEmpty { return .failure(FieldValueError("A push subscription needs its provider.")) }
            if contact.isEmpty || contact.utf8.count > 4096 { return .failure(FieldValueError("A push subscription needs its subscription id.")) }
            return .success(contact)
        case .telegram_bot:
            guard Int64(contact) != nil else { return .failure(FieldValueError("A Telegram chat id is a whole number.")) }
            return .success(contact)
        }
    }

    /// Adds a subscription from the profile's form (or changes the one with the same contact): see
    /// `ProfileWriter.subscribe`. Returns the subscription's id.
    @discardableResult
    public func add(databaseID: Int64, profileRowID: Int64, _ input: SubscriptionInput, actor: Int64?) throws -> Int64 {
        let now = clock.now()
        return try pool.write { db in
            let writer = try ProfileWriter.open(db, databaseID: databaseID, actor: actor, origin: .form, now: now)
            guard let profileID = try db.scalar("SELECT profile_id FROM \(ProfileTable.name(databaseID)) WHERE id = ?", [profileRowID]).string else {
                throw ValidationError(field: "profile", "No such profile.")
            }
            guard let status = ProfileStatus(text: input.status) else {
                throw ValidationError(field: "status", "Choose one of the seven statuses.")
            }
            let change = SubscriptionChange(resourceID: input.resourceID, channel: input.channel, contact: input.contact,
                                            provider: input.provider, status: status, priority: input.priority,
                                            categories: input.categories, fields: input.fields, includeUnsafe: input.includeUnsafe)
            do {
                switch try writer.subscribe(rowID: profileRowID, profileID: profileID, change) {
                case .added(let id), .updated(let id, _, _), .unchanged(let id): return id
                }
            } catch let refusal as UnsafeStatusRefusal {
                throw ValidationError(field: "status", refusal.message)
            } catch let suppressed as SuppressedContact {
                throw ValidationError(field: "contact", suppressed.message)
            }
        }
    }

    /// Marks a subscription deleted (kept, restorable) or restores it.
    public func setDeleted(databaseID: Int64, profileRowID: Int64, subscriptionID: Int64, deleted: Bool, actor: Int64?) throws {
        let now = clock.now()
        try pool.write { db in
            do {
                try ProfileWriter.open(db, databaseID: databaseID, actor: actor, origin: .form, now: now)
                    .setSubscriptionDeleted(rowID: profileRowID, subscriptionID: subscriptionID, deleted: deleted)
            } catch let suppressed as SuppressedContact {
                throw ValidationError(field: "contact", suppressed.message)
            }
        }
    }

    /// Changes a subscription's status and priority (the unsafe-statuses rule applies unless `includeUnsafe`).
    public func update(databaseID: Int64, profileRowID: Int64, subscriptionID: Int64, status: String, priority: Int,
                       includeUnsafe: Bool = false, actor: Int64?) throws {
        guard let s = ProfileStatus(text: status) else { throw ValidationError(field: "status", "Choose one of the seven statuses.") }
        let now = clock.now()
        try pool.write { db in
            let writer = try ProfileWriter.open(db, databaseID: databaseID, actor: actor, origin: .form, now: now)
            do {
                try writer.setSubscription(rowID: profileRowID, subscriptionID: subscriptionID, status: s, priority: priority,
                                           includeUnsafe: includeUnsafe)
            } catch let refusal as UnsafeStatusRefusal {
                throw ValidationError(field: "status", refusal.message)
            } catch let suppressed as SuppressedContact {
                throw ValidationError(field: "contact", suppressed.message)
            }
        }
    }
}
