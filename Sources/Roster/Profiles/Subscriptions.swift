import Foundation
import SQLiteStore

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
    public init(resourceID: Int64, channel: String, contact: String, provider: String = "", status: String = "subscribed",
                priority: Int? = nil, categories: [String] = [], fields: [String: JSONValue] = [:]) {
        self.fields = fields
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

    /// Adds a subscription, replacing an old one when a limit would be passed. Returns the new subscription's id.
    @discardableResult
    public func add(databaseID: Int64, profileRowID: Int64, _ input: SubscriptionInput, actor: Int64?) throws -> Int64 {
        let now = clock.now()
        return try pool.write { db in try Subscriptions.add(databaseID, profileRowID, input, actor: actor, now: now, db) }
    }

    static func add(_ databaseID: Int64, _ profileRowID: Int64, _ input: SubscriptionInput, actor: Int64?, now: Int64, _ db: Connection) throws -> Int64 {
        guard let resourceRow = try db.queryOne(DatabaseStore.attachedResource.sql, [databaseID, input.resourceID]) else {
            throw ValidationError(field: "resource", "The resource is not attached to this database.")
        }
        let resource = try ResourceStore.load(row: resourceRow, db)
        guard let channel = Channel(rawValue: input.channel), resource.channels.contains(channel) else {
            throw ValidationError(field: "channel", "\(resource.name) has no \(input.channel) channel.")
        }
        var errors: [String: String] = [:]
        var contact = ""
        switch validateContact(channel, contact: input.contact, provider: input.provider) {
        case .success(let c): contact = c
        case .failure(let e): errors["contact"] = e.reason
        }
        guard let status = ProfileStatus(text: input.status) else { throw ValidationError(field: "status", "Choose one of the seven statuses.") }
        if let p = input.priority, p < 0 || p > 1_000_000 { errors["priority"] = "A priority is a number from 0 to 1,000,000." }
        for category in input.categories where !resource.categories.contains(category) {
            errors["categories"] = "\(resource.name) has no category \(category)."
        }
        // Custom fields are judged by their type in the resource; standard channel fields (`_…`) are short texts.
        var fields: [String: JSONValue] = [:]
        for (name, value) in input.fields.sorted(by: { $0.key < $1.key }) {
            if name.hasPrefix("_") {
                switch value {
                case .string(let s) where s.utf8.count <= 255: fields[name] = .string(s)
                case .int, .double, .bool, .null: fields[name] = value
                default: errors["fields"] = "\(name) is a short text."
                }
            } else if let field = resource.fields.first(where: { $0.name == name }) {
                switch field.type.validate(json: value) {
                case .success(.integer(let i)): fields[name] = field.type == .boolean ? .bool(i != 0) : .int(i)
                case .success(.real(let d)): fields[name] = .double(d)
                case .success(.text(let t)): fields[name] = JSONValue.parse(t).flatMap { [.object, .array, .tags].contains(field.type) ? $0 : nil } ?? .string(t)
                case .success: fields[name] = .null
                case .failure(let e): errors["fields"] = "\(name) \(e.reason)."
                }
            } else {
                errors["fields"] = "\(resource.name) has no subscription field \(name)."
            }
        }
        if !errors.isEmpty { throw ValidationError(errors) }
        let t = table(databaseID)
        let scope = "profile = ? AND resource_id = ? AND channel = ?"
        let scopeParams: [any SQLBindable] = [profileRowID, resource.id, channel.rawValue]
        // The same contact in the same resource and channel is one subscription: update it instead.
        if let existing = try db.query("SELECT id FROM \(t) WHERE \(scope) AND contact = ?", scopeParams + [contact]).first?.int64("id") {
            try db.run("UPDATE \(t) SET status = ?, provider = ?, categories = ?, deleted = 0, updated_at = ?, priority = COALESCE(?, priority), fields = json_patch(fields, ?) WHERE id = ?",
                       [status.rawValue, input.provider, JSONValue.encodeStrings(input.categories), now, input.priority, JSONValue.object(fields).canonical, existing])
            try History.record(db, database: databaseID, profile: profileRowID, at: now, type: HistoryEvent.subscriptionChanged, actor: actor, details: JSONValue.object(["resource": .int(resource.id), "channel": .string(channel.rawValue), "status": .string(status.name)]))
            return existing
        }
        // Limits: the narrower scope first (20 per resource and channel), then the profile's 200.
        let inScope = try db.query("SELECT COUNT(*) FROM \(t) WHERE \(scope)", scopeParams).first?[0].int ?? 0
        let inProfile = try db.query("SELECT COUNT(*) FROM \(t) WHERE profile = ?", [profileRowID]).first?[0].int ?? 0
        var victim: Int64?
        if inScope >= perResourceChannelLimit {
            victim = try db.query("SELECT id FROM \(t) WHERE \(scope) \(replacementOrder) LIMIT 1", scopeParams).first?.int64("id")
        } else if inProfile >= perProfileLimit {
            victim = try db.query("SELECT id FROM \(t) WHERE profile = ? \(replacementOrder) LIMIT 1", [profileRowID]).first?.int64("id")
        }
        if let victim {
            try db.run("DELETE FROM \(t) WHERE id = ?", [victim])
            try History.record(db, database: databaseID, profile: profileRowID, at: now, type: HistoryEvent.subscriptionDeleted, actor: actor, details: JSONValue.object(["replaced_by_limit": .bool(true), "subscription": .int(victim)]))
        }
        var priority = input.priority
        if priority == nil {
            if resource.increasePriority {
                try db.run("UPDATE \(t) SET priority = priority + 1 WHERE \(scope)", scopeParams)
                priority = 0
            } else {
                priority = (try db.query("SELECT MAX(priority) + 1 FROM \(t) WHERE \(scope)", scopeParams).first?[0].int) ?? 0
            }
        }
        try db.prepare("""
            INSERT INTO \(t) (profile, resource_id, channel, contact, provider, status, priority, categories, fields, deleted, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
            """).execute([profileRowID, resource.id, channel.rawValue, contact, input.provider, status.rawValue, priority!,
                          JSONValue.encodeStrings(input.categories), JSONValue.object(fields).canonical, now, now])
        let id = db.lastInsertRowID
        try History.record(db, database: databaseID, profile: profileRowID, at: now, type: HistoryEvent.subscriptionAdded, actor: actor, details: JSONValue.object(["resource": .int(resource.id), "channel": .string(channel.rawValue), "status": .string(status.name)]))
        return id
    }

    /// Marks a subscription deleted (kept, restorable) or restores it.
    public func setDeleted(databaseID: Int64, profileRowID: Int64, subscriptionID: Int64, deleted: Bool, actor: Int64?) throws {
        let now = clock.now()
        try pool.write { db in
            let changed = try db.prepare("UPDATE \(Subscriptions.table(databaseID)) SET deleted = ?, updated_at = ? WHERE id = ? AND profile = ?")
                .execute([deleted, now, subscriptionID, profileRowID])
            if changed == 0 { throw ValidationError(field: "subscription", "No such subscription.") }
            try History.record(db, database: databaseID, profile: profileRowID, at: now, type: deleted ? HistoryEvent.subscriptionDeleted : HistoryEvent.subscriptionChanged, actor: actor, details: JSONValue.object(["subscription": .int(subscriptionID), "restored": .bool(!deleted)]))
        }
    }

    /// Changes a subscription's status and priority.
    public func update(databaseID: Int64, profileRowID: Int64, subscriptionID: Int64, status: String, priority: Int, actor: Int64?) throws {
        guard let s = ProfileStatus(text: status) else { throw ValidationError(field: "status", "Choose one of the seven statuses.") }
        if priority < 0 || priority > 1_000_000 { throw ValidationError(field: "priority", "A priority is a number from 0 to 1,000,000.") }
        let now = clock.now()
        try pool.write { db in
            let changed = try db.prepare("UPDATE \(Subscriptions.table(databaseID)) SET status = ?, priority = ?, updated_at = ? WHERE id = ? AND profile = ?")
                .execute([s.rawValue, priority, now, subscriptionID, profileRowID])
            if changed == 0 { throw ValidationError(field: "subscription", "No such subscription.") }
            try History.record(db, database: databaseID, profile: profileRowID, at: now, type: s == .unsubscribed ? HistoryEvent.unsubscribed : HistoryEvent.subscriptionChanged, actor: actor, details: JSONValue.object(["subscription": .int(subscriptionID), "status": .string(s.name), "priority": .int(Int64(priority))]))
        }
    }
}
