import Foundation
import Store

/// What the subscription manager shows a subscriber: their database's title and language, the fields the database
/// shows them, and their subscriptions with the contact partly hidden.
public struct ManagerView: Sendable {
    public struct Field: Sendable {
        public let key: String
        public let label: String
        public let value: String
        /// For the input: `enum` offers `options`, `date` a date picker, anything else a line of text.
        public let kind: String
        public let options: [String]
    }

    public struct Item: Sendable {
        public let id: Int64
        public let resourceName: String
        public let channel: Channel
        public let maskedContact: String
        public let status: ProfileStatus
        public let categories: [String]
        public let availableCategories: [String]
        /// What the subscriber may do with it here.
        public let canUnsubscribe: Bool
        public let canResubscribe: Bool
    }

    public let database: ProfileDatabase
    public let profileID: String
    public let status: ProfileStatus
    public let fields: [Field]
    public let editableFields: Bool
    public let subscriptions: [Item]
    public var canUnsubscribeAll: Bool { status != .unsubscribed }
    public var canResubscribeAll: Bool { status == .unsubscribed }
}

/// The subscriber's own changes through their link. Every change is written by `ProfileWriter` with the
/// subscriber as its origin: the same rules as every other way in, and each one a customer interaction in the
/// profile's history with its trigger event.
///
/// A subscriber may come back only from *unsubscribed* (their own earlier choice). Complainer, hard bounced, invalid
/// and suspended are facts about the address or decisions of the sender, so the manager shows them and offers
/// nothing.
public final class SubscriptionManager: Sendable {
    let pool: DatabasePool
    let clock: Clock
    public let links: SubscriberLinks

    public init(pool: DatabasePool, links: SubscriberLinks, clock: Clock = .system) {
        self.pool = pool
        self.links = links
        self.clock = clock
    }

    /// The page behind a link, or nil when the link is not valid or its profile is gone.
    public func view(token: String) throws -> ManagerView? {
        guard let (databaseID, profileID) = try links.managerTarget(token) else { return nil }
        return try pool.read { db -> ManagerView? in
            guard let database = try db.queryOne(DatabaseStore.byID, [databaseID]).map(ProfileDatabase.init(row:)),
                  let row = try db.queryOne(Profiles.select(databaseID) + " WHERE profile_id = ?", [profileID]) else { return nil }
            let catalogue = try Profiles.catalogue(databaseID, db)
            let profile = Profiles.profile(row, catalogue.columns)
            var resources: [Int64: Resource] = [:]
            let items = try db.query("""
                SELECT * FROM \(Subscriptions.table(databaseID)) WHERE profile = ? AND deleted = 0 ORDER BY resource_id, channel, priority, id
                """, [profile.rowID]).map(Subscription.init(row:)).map { s -> ManagerView.Item in
                if resources[s.resourceID] == nil, let r = try db.queryOne(ResourceStore.byID, [s.resourceID]) {
                    resources[s.resourceID] = try ResourceStore.load(row: r, db)
                }
                let resource = resources[s.resourceID]
                return ManagerView.Item(id: s.id, resourceName: resource?.name ?? "#\(s.resourceID)", channel: s.channel,
                                        maskedContact: SubscriptionManager.mask(s.contact, channel: s.channel), status: s.status,
                                        categories: s.categories, availableCategories: resource?.categories ?? [],
                                        canUnsubscribe: s.status == .subscribed || s.status == .unconfirmed,
                                        canResubscribe: s.status == .unsubscribed)
            }
            return ManagerView(database: database, profileID: profile.profileID, status: profile.status,
                               fields: SubscriptionManager.shownFields(catalogue, profile), editableFields: database.smEditFields,
                               subscriptions: items)
        }
    }

    /// Unsubscribes (`subscribe` false) or subscribes again one of the profile's subscriptions.
    public func setSubscribed(token: String, subscriptionID: Int64, _ subscribe: Bool) throws {
        try change(token, subscriptionID: subscriptionID) { writer, rowID, profileID, found in
            if subscribe && found.status == .subscribed || !subscribe && found.status == .unsubscribed { return }
            if subscribe && found.status != .unsubscribed {
                throw ValidationError(field: "subscription", "This subscription cannot be turned back on here.")
            }
            if !subscribe && found.status != .subscribed && found.status != .unconfirmed {
                throw ValidationError(field: "subscription", "This subscription is not active.")
            }
            try writer.subscribe(rowID: rowID, profileID: profileID, SubscriptionChange(
                resourceID: found.resourceID, channel: found.channel.rawValue, contact: found.contact, provider: found.provider,
                status: subscribe ? .subscribed : .unsubscribed, includeUnsafe: subscribe))
        }
    }

    /// The categories the subscriber wants of one subscription (checked against the resource's categories).
    public func setCategories(token: String, subscriptionID: Int64, _ categories: [String]) throws {
        guard categories.count <= 200 else { throw ValidationError(field: "categories", "Too many categories.") }
        try change(token, subscriptionID: subscriptionID) { writer, rowID, profileID, found in
            var unique: [String] = []
            for c in categories where !unique.contains(c) { unique.append(c) }
            try writer.subscribe(rowID: rowID, profileID: profileID, SubscriptionChange(
                resourceID: found.resourceID, channel: found.channel.rawValue, contact: found.contact, provider: found.provider,
                categories: unique))
        }
    }

    /// Unsubscribes from everything (the global status), or comes back from that.
    public func setGlobal(token: String, subscribed: Bool) throws {
        try change(token) { writer, row, _ in
            let current = ProfileStatus(rawValue: row.int("status") ?? 0) ?? .subscribed
            if subscribed {
                guard current == .unsubscribed else { return }
                try writer.update(row, [:], status: .subscribed)
            } else {
                guard current != .unsubscribed else { return }
                try writer.update(row, [:], status: .unsubscribed)
            }
        }
    }

    /// The subscriber's own values of the fields shown to them, where the database allows it. A field not shown
    /// is refused by name; an empty value clears (unless the field is required).
    public func updateFields(token: String, _ values: [String: String]) throws {
        try change(token) { writer, row, _ in
            guard try writer.db.queryOne(DatabaseStore.byID, [writer.databaseID]).map(ProfileDatabase.init(row:))?.smEditFields == true else {
                throw ValidationError(field: "fields", "These details cannot be changed here.")
            }
            let shown = Set(SubscriptionManager.shownKeys(writer.catalogue))
            var inputs: [String: FieldValueInput] = [:]
            for (key, value) in values {
                guard shown.contains(key) else { throw ValidationError(field: "fields", "\(key) cannot be changed here.") }
                inputs[key] = .text(value)
            }
            do {
                try writer.update(row, inputs)
            } catch let error as ValidationError where error.fieldErrors["email"]?.hasPrefix("Another profile") == true {
                // Whether an address belongs to another customer is not the subscriber's to learn.
                throw ValidationError(field: "email", "This email cannot be used here.")
            }
        }
    }

    /// A change to one live subscription of the link's profile (another profile's id is no such subscription).
    private func change(_ token: String, subscriptionID: Int64,
                        _ body: (ProfileWriter, Int64, String, Subscription) throws -> Void) throws {
        try change(token) { writer, row, profileID in
            let rowID = row.int64("id") ?? 0
            guard let found = try writer.db.queryOne("""
                SELECT * FROM \(Subscriptions.table(writer.databaseID)) WHERE id = ? AND profile = ? AND deleted = 0
                """, [subscriptionID, rowID]).map(Subscription.init(row:)) else {
                throw ValidationError(field: "subscription", "No such subscription.")
            }
            try body(writer, rowID, profileID, found)
        }
    }

    /// One change in one transaction, by the subscriber (no actor), with the profile's row as it is now.
    private func change(_ token: String, _ body: (ProfileWriter, Row, String) throws -> Void) throws {
        guard let (databaseID, profileID) = try links.managerTarget(token) else {
            throw ValidationError(field: "link", "This link is not valid.")
        }
        let now = clock.now()
        try pool.write { db in
            let writer = try ProfileWriter.open(db, databaseID: databaseID, actor: nil, origin: .subscriber, now: now)
            guard let row = try db.queryOne(Profiles.select(databaseID) + " WHERE profile_id = ?", [profileID]) else {
                throw ValidationError(field: "link", "This link is not valid.")
            }
            do {
                try body(writer, row, profileID)
            } catch let refusal as UnsafeStatusRefusal {
                throw ValidationError(field: "subscription", refusal.message)
            } catch let suppressed as SuppressedContact {
                throw ValidationError(field: "subscription", suppressed.message)
            }
        }
    }

    // MARK: What is shown

    static func shownKeys(_ catalogue: Profiles.Catalogue) -> [String] {
        StandardField.all.filter { catalogue.standard[$0.key]?.showInSM == true }.map(\.key)
            + catalogue.custom.filter(\.showInSM).map(\.name)
    }

    static func shownFields(_ catalogue: Profiles.Catalogue, _ profile: Profile) -> [ManagerView.Field] {
        let standard = StandardField.all.filter { catalogue.standard[$0.key]?.showInSM == true }.map { field in
            let kind: String
            switch field.kind {
            case .typed(let type): kind = type.rawValue
            case .email: kind = "email"
            case .phones: kind = "line"
            }
            let value = field.kind == .email ? ProfileIdentity.shownEmail(profile.email, profileID: profile.profileID)
                : profile.values[field.key] ?? ""
            return ManagerView.Field(key: field.key, label: field.label, value: value, kind: kind, options: field.options)
        }
        let custom = catalogue.custom.filter(\.showInSM).map { field in
            ManagerView.Field(key: field.name, label: field.name, value: profile.values[field.name] ?? "", kind: field.type.rawValue,
                              options: field.options)
        }
        return standard + custom
    }

    /// A contact with most of it hidden: enough for its owner to know it, not enough for anyone who sees the page.
    public static func mask(_ contact: String, channel: Channel) -> String {
        func hide(_ text: Substring, keepStart: Int, keepEnd: Int) -> String {
            let chars = Array(text)
            if chars.count <= keepStart + keepEnd { return String(repeating: "•", count: max(chars.count, 3)) }
            return String(chars.prefix(keepStart)) + String(repeating: "•", count: chars.count - keepStart - keepEnd)
                + String(chars.suffix(keepEnd))
        }
        switch channel {
        case .email:
            guard let at = contact.lastIndex(of: "@") else { return hide(Substring(contact), keepStart: 1, keepEnd: 0) }
            let local = contact[..<at]
            return hide(local, keepStart: 1, keepEnd: local.count > 6 ? 1 : 0) + String(contact[at...])
        case .sms, .whatsapp, .viber:
            return hide(Substring(contact), keepStart: 2, keepEnd: 2)
        case .push, .telegram_bot:
            return hide(Substring(contact), keepStart: 2, keepEnd: 2)
        }
    }
}

// MARK: Double opt-in

/// What a confirmation link leads to.
public struct ConfirmationView: Sendable {
    public enum State: Sendable, Equatable {
        /// Unconfirmed: the subscriber may confirm.
        case waiting
        case confirmed
        /// Unsubscribed, deleted or otherwise moved on since the link was sent.
        case notConfirmable
        case expired
        case invalid
    }
    public let state: State
    public let database: ProfileDatabase?
    public let resourceName: String
    public let channel: Channel?
    public let maskedContact: String

    static func bare(_ state: State, _ database: ProfileDatabase? = nil) -> ConfirmationView {
        ConfirmationView(state: state, database: database, resourceName: "", channel: nil, maskedContact: "")
    }
}

extension SubscriptionManager {
    /// The state of the subscription a confirmation link names.
    public func confirmation(token: String) throws -> ConfirmationView {
        switch try links.confirmationTarget(token) {
        case .invalid:
            return .bare(.invalid)
        case .expired(let databaseID):
            return .bare(.expired, try pool.read { try $0.queryOne(DatabaseStore.byID, [databaseID]).map(ProfileDatabase.init(row:)) })
        case .valid(let databaseID, let subscriptionID, let mark):
            return try pool.read { db in try SubscriptionManager.confirmationView(databaseID, subscriptionID, mark, db) }
        }
    }

    /// The subscriber confirms: an unconfirmed subscription becomes subscribed, as their own interaction (history,
    /// trigger events `subscription_updated` and `subscription_confirmed`). Confirming twice changes nothing.
    @discardableResult
    public func confirm(token: String) throws -> ConfirmationView {
        guard case .valid(let databaseID, let subscriptionID, let mark) = try links.confirmationTarget(token) else {
            return try confirmation(token: token)
        }
        let now = clock.now()
        return try pool.write { db in
            let view = try SubscriptionManager.confirmationView(databaseID, subscriptionID, mark, db)
            guard view.state == .waiting,
                  let row = try db.queryOne("SELECT * FROM \(Subscriptions.table(databaseID)) WHERE id = ?", [subscriptionID]),
                  let profileID = try db.scalar("SELECT profile_id FROM \(ProfileTable.name(databaseID)) WHERE id = ?",
                                                [row.int64("profile") ?? 0]).string else { return view }
            let found = Subscription(row: row)
            let writer = try ProfileWriter.open(db, databaseID: databaseID, actor: nil, origin: .subscriber, now: now)
            var change = SubscriptionChange(resourceID: found.resourceID, channel: found.channel.rawValue, contact: found.contact,
                                            provider: found.provider, status: .subscribed)
            change.confirming = true
            do {
                try writer.subscribe(rowID: row.int64("profile") ?? 0, profileID: profileID, change)
            } catch is SuppressedContact, is ValidationError {
                // Suppressed since, or its resource detached from the database: the link can no longer confirm.
                return ConfirmationView(state: .notConfirmable, database: view.database, resourceName: view.resourceName,
                                        channel: view.channel, maskedContact: view.maskedContact)
            }
            try writer.trigger(profileID, "subscription_confirmed", .object([
                "resource_id": .int(found.resourceID), "channel": .string(found.channel.rawValue), "subscription_id": .int(found.id)]))
            return try SubscriptionManager.confirmationView(databaseID, subscriptionID, mark, db)
        }
    }

    static func confirmationView(_ databaseID: Int64, _ subscriptionID: Int64, _ mark: String, _ db: Connection) throws -> ConfirmationView {
        guard let database = try db.queryOne(DatabaseStore.byID, [databaseID]).map(ProfileDatabase.init(row:)) else { return .bare(.invalid) }
        guard let found = try db.queryOne("SELECT * FROM \(Subscriptions.table(databaseID)) WHERE id = ?", [subscriptionID])
            .map(Subscription.init(row:)), SubscriberLinks.contactMark(found.contact) == mark else { return .bare(.notConfirmable, database) }
        let resource = try db.queryOne(ResourceStore.byID, [found.resourceID])?.string("name") ?? ""
        let state: ConfirmationView.State = found.deleted ? .notConfirmable
            : found.status == .unconfirmed ? .waiting : found.status == .subscribed ? .confirmed : .notConfirmable
        return ConfirmationView(state: state, database: database, resourceName: resource, channel: found.channel,
                                maskedContact: mask(found.contact, channel: found.channel))
    }
}
