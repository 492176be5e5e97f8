import Foundation
import Store

/// Where a change comes from. It decides whether the change's history events are customer interactions (see
/// `EventRules`), and it is written in each event's details as `how`.
public enum ChangeOrigin: String, Sendable {
    /// A marketer inside Roster: the profile and subscription forms, bulk tasks, the copy task, the CLI.
    case form, bulk, copy, cli
    /// The customer's side or the outside world: the batch API and its events, file imports, and the subscriber's
    /// own choices in the subscription manager.
    case api, `import`, subscriber

    public var isCustomerSide: Bool {
        switch self {
        case .api, .import, .subscriber: return true
        case .form, .bulk, .copy, .cli: return false
        }
    }
}

/// The rules about history events, in one place: which are customer interactions (they move a profile's last
/// interaction, which deletion by inactivity reads) and which make a profile "engaged" (a database with engaged
/// profiles cannot be deleted).
public enum EventRules {
    /// A marketer's own changes: an audit trail, not an interaction (spec README: "unsubscribe all inactive clients
    /// at once" must not make them active). From the customer's side the same events are interactions.
    static let marketerAudit: Set<String> = [
        HistoryEvent.fieldChanged, HistoryEvent.statusChanged, HistoryEvent.subscriptionAdded,
        HistoryEvent.subscriptionChanged, HistoryEvent.subscriptionDeleted, HistoryEvent.unsubscribed,
    ]

    public static func isInteraction(_ type: String, origin: ChangeOrigin) -> Bool {
        origin.isCustomerSide || !marketerAudit.contains(type)
    }

    /// Everything beyond creation and plain edits of fields or the global status engages a profile: a subscription
    /// (from anyone), a mailing event, a promo code, a static segment.
    public static func engages(_ type: String) -> Bool {
        type != HistoryEvent.created && type != HistoryEvent.fieldChanged && type != HistoryEvent.statusChanged
    }

    /// The SQL list of the types that do not engage (for the database-deletion guard).
    static let notEngagingSQL = "('\(HistoryEvent.created)', '\(HistoryEvent.fieldChanged)', '\(HistoryEvent.statusChanged)')"
}

/// A value as an entry point received it: typed text (forms, files, the CLI) or a JSON value (the API).
public enum FieldValueInput: Sendable, Equatable {
    case text(String)
    case json(JSONValue)

    var isEmpty: Bool {
        switch self {
        case .text(let s): return s.trimmed.isEmpty
        case .json(let v):
            if case .null = v { return true }
            if case .string(let s) = v { return s.trimmed.isEmpty }
            return false
        }
    }
}

/// What a subscription change asks for. nil means "as it is" (for a new subscription: subscribed, the resource's
/// priority rule, no categories).
public struct SubscriptionChange: Sendable {
    public var resourceID: Int64
    public var channel: String
    public var contact: String
    public var provider: String
    public var status: ProfileStatus?
    public var priority: Int?
    public var categories: [String]?
    public var fields: [String: JSONValue]
    /// Allows moving a subscription out of an unsafe status into subscribed (bulk option "include unsafe").
    public var includeUnsafe: Bool
    /// The subscriber followed the confirmation link: the only change that makes a double opt-in subscription
    /// subscribed (`SubscriptionManager.confirm`).
    var confirming = false

    public init(resourceID: Int64, channel: String, contact: String, provider: String = "", status: ProfileStatus? = nil,
                priority: Int? = nil, categories: [String]? = nil, fields: [String: JSONValue] = [:], includeUnsafe: Bool = false) {
        self.resourceID = resourceID
        self.channel = channel
        self.contact = contact
        self.provider = provider
        self.status = status
        self.priority = priority
        self.categories = categories
        self.fields = fields
        self.includeUnsafe = includeUnsafe
    }
}

public enum SubscribeOutcome: Sendable, Equatable {
    case added(Int64)
    /// `wasDeleted`: the subscription was deleted and is back.
    case updated(Int64, before: ProfileStatus, wasDeleted: Bool)
    /// The subscription exists and already is what was asked.
    case unchanged(Int64)
}

/// A change refused by the unsafe-statuses rule: the subscription stays as it is.
public struct UnsafeStatusRefusal: Error, Sendable {
    public let current: ProfileStatus
    public var message: String {
        "The subscription is \(current.name); an unsafe status (unsubscribed, complainer, hard bounced, invalid) is never "
            + "moved back to subscribed unless “include unsafe statuses” is chosen."
    }
}

/// The one way profiles, subscriptions, promo-code attachments and their history are written. Every entry point —
/// the profile and subscription forms, the batch API (JSON and XML), CSV import, bulk tasks, the copy task and the
/// CLI — builds one of these inside its transaction and calls it, so validation, defaults, required fields, the
/// unsafe-statuses rule, the subscription limits, history (actor, interaction), last interaction and trigger
/// events are decided here only.
public struct ProfileWriter {
    let db: Connection
    let databaseID: Int64
    let catalogue: Profiles.Catalogue
    let actor: Int64?
    let origin: ChangeOrigin
    let now: Int64
    var skipTriggers = false
    /// Fill empty location fields from an arriving IP (`Geolocation`): on for the API, chosen for file imports.
    var detectLocation = false
    /// The task this change belongs to (bulk, import, copy): written in history details and trigger rows.
    var taskID: Int64?
    /// Imports count the day's statistics per chunk instead of per event.
    var tally: EventTally?
    /// Every field with its rules, built once per writer (an import writes thousands of rows with one writer).
    let fields: [FieldRef]
    let fieldsByKey: [String: FieldRef]

    init(_ db: Connection, databaseID: Int64, catalogue: Profiles.Catalogue, actor: Int64?, origin: ChangeOrigin, now: Int64,
         skipTriggers: Bool = false, taskID: Int64? = nil, tally: EventTally? = nil) {
        self.tally = tally
        self.fields = ProfileWriter.fieldRefs(catalogue)
        self.fieldsByKey = Dictionary(fields.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        self.db = db
        self.databaseID = databaseID
        self.catalogue = catalogue
        self.actor = actor
        self.origin = origin
        self.now = now
        self.skipTriggers = skipTriggers
        self.taskID = taskID
    }

    /// A writer with the database's catalogue as it is in this transaction.
    static func open(_ db: Connection, databaseID: Int64, actor: Int64?, origin: ChangeOrigin, now: Int64,
                     skipTriggers: Bool = false, taskID: Int64? = nil) throws -> ProfileWriter {
        guard try db.queryOne(DatabaseStore.byID, [databaseID]) != nil else {
            throw ValidationError(field: "database", "No such database.")
        }
        return ProfileWriter(db, databaseID: databaseID, catalogue: try Profiles.catalogue(databaseID, db), actor: actor,
                             origin: origin, now: now, skipTriggers: skipTriggers, taskID: taskID)
    }

    var table: String { ProfileTable.name(databaseID) }
    var subscriptions: String { Subscriptions.table(databaseID) }

    // MARK: Field values

    struct Judged {
        /// column → value, for every field given (nil values are `.null`).
        var values: [String: SQLValue] = [:]
        /// column → field key, in catalogue order.
        var keys: [String: String] = [:]
        var errors: [String: String] = [:]
    }

    /// A field's key, label and column: standard fields by key (`_fname`), custom fields by name.
    struct FieldRef {
        let key: String
        let label: String
        let column: String
        let required: Bool
        let defaultValue: String?
        let parseText: (String) -> Result<SQLValue, FieldValueError>
        let parseJSON: (JSONValue) -> Result<SQLValue, FieldValueError>
        let isEmail: Bool

        /// The value judged by its field, typed text or JSON, from any way in. A NUL character (U+0000) is refused for
        /// every field: PostgreSQL's text cannot hold it, and SQLite would keep a value other tools cut short.
        func judge(_ input: FieldValueInput) -> Result<SQLValue, FieldValueError> {
            let result: Result<SQLValue, FieldValueError>
            switch input {
            case .text(let t): result = parseText(t)
            case .json(let v): result = parseJSON(v)
            }
            if case .success(.text(let stored)) = result, stored.utf8.contains(0) {
                return .failure(FieldValueError("contains a NUL character (U+0000), which cannot be stored"))
            }
            return result
        }
    }


    /// Every field of a catalogue with how it judges typed text and JSON.
    static func fieldRefs(_ catalogue: Profiles.Catalogue) -> [FieldRef] {
        var refs: [FieldRef] = []
        for field in StandardField.all {
            let setting = catalogue.standard[field.key] ?? StandardFieldSetting()
            let json: (JSONValue) -> Result<SQLValue, FieldValueError>
            switch field.kind {
            case .typed(let type): json = { type.validate(json: $0, options: field.options) }
            case .email: json = { v in ProfileWriter.text(v).map { field.parse($0).map(\.value) } ?? .failure(.init("must be text")) }
            case .phones:
                json = { v in
                    if case .array(let items) = v {
                        let parts = items.compactMap(ProfileWriter.text)
                        guard parts.count == items.count else { return .failure(.init("must be a list of phone numbers")) }
                        return field.parse(parts.joined(separator: ", ")).map(\.value)
                    }
                    return ProfileWriter.text(v).map { field.parse($0).map(\.value) } ?? .failure(.init("must be text"))
                }
            }
            refs.append(FieldRef(key: field.key, label: field.label, column: field.column,
                                 required: setting.required && field.kind != .email, defaultValue: setting.defaultValue,
                                 parseText: { field.parse($0).map(\.value) }, parseJSON: json, isEmail: field.kind == .email))
        }
        for field in catalogue.custom {
            refs.append(FieldRef(key: field.name, label: field.name, column: field.column, required: field.required,
                                 defaultValue: field.defaultValue, parseText: { field.type.parse($0, options: field.options) },
                                 parseJSON: { field.type.validate(json: $0, options: field.options) }, isEmail: false))
        }
        return refs
    }

    /// A scalar JSON value as text (numbers as written), nil for objects, arrays and booleans.
    static func text(_ value: JSONValue) -> String? {
        switch value {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return d.isFinite ? String(d) : nil
        case .null: return ""
        default: return nil
        }
    }

    /// Judges every given value by its field's type. Unknown keys are errors. The error of a field is keyed by the
    /// field's key and names it.
    func judge(_ inputs: [String: FieldValueInput]) -> Judged {
        var judged = Judged()
        let byKey = fieldsByKey
        for (key, input) in inputs.sorted(by: { $0.key < $1.key }) {
            guard let ref = byKey[key] else {
                judged.errors[key] = "\(key) is not a field of this database."
                continue
            }
            switch ref.judge(input) {
            case .success(let value):
                judged.values[ref.column] = value
                judged.keys[ref.column] = ref.key
            case .failure(let e): judged.errors[key] = "\(ref.label) \(e.reason)."
            }
        }
        return judged
    }

    /// One field's value judged alone, as it would be on any profile: an empty value clears it, which a required
    /// field refuses. Bulk field updates and `roster field set` judge their values here.
    static func judgeOne(_ key: String, _ input: FieldValueInput, _ catalogue: Profiles.Catalogue) throws -> (ref: FieldRef, value: SQLValue) {
        let refs = fieldRefs(catalogue)
        guard let ref = refs.first(where: { $0.key == key }) else {
            throw ValidationError(field: key, "\(key) is not a field of this database.")
        }
        switch ref.judge(input) {
        case .failure(let e): throw ValidationError(field: key, "\(ref.label) \(e.reason).")
        case .success(let value):
            if value == .null && ref.required { throw ValidationError(field: key, "\(ref.label) is required.") }
            return (ref, value)
        }
    }

    // MARK: Profiles

    /// Creates a profile: every value judged, empty fields take their defaults, required fields must have a value,
    /// the email must be free. Records "created" (an interaction) and returns the row id and profile id.
    @discardableResult
    func create(_ inputs: [String: FieldValueInput], status: ProfileStatus = .subscribed, details: [String: JSONValue] = [:],
                otherErrors: [String: String] = [:]) throws -> (rowID: Int64, profileID: String) {
        let refs = fields
        var judged = judge(inputs)
        judged.errors.merge(otherErrors) { a, _ in a }
        var row: [String: SQLValue] = [:]
        for ref in refs {
            var value = judged.values[ref.column] ?? .null
            if value == .null, let d = ref.defaultValue, !d.trimmed.isEmpty {
                switch ref.parseText(d) {
                case .success(let v): value = v
                case .failure: break  // a default that no longer fits the field is no value
                }
            }
            if value == .null && ref.required && judged.errors[ref.key] == nil {
                judged.errors[ref.key] = "\(ref.label) is required."
            }
            if value != .null { row[ref.column] = value }
        }
        if !judged.errors.isEmpty { throw ValidationError(judged.errors) }
        if detectLocation {
            for (_, column, value) in Geolocation.fill(given: row, current: nil) { row[column] = value }
        }
        let rowID: Int64, profileID: String
        do {
            (rowID, profileID) = try db.recoverable {
                try Profiles.insert(db, databaseID: databaseID, values: row, status: status, now: now)
            }
        } catch let error as any StoreFailure where error.isConstraintViolation {
            // The email's UNIQUE index says so in the same step as the insert (no lookup before every new profile).
            if let email = row["email"], try db.queryOne("SELECT 1 FROM \(table) WHERE email = ?", [email]) != nil {
                throw ValidationError(field: "email", "Another profile in this database has the email \(email.string ?? "").")
            }
            throw error
        }
        try record(rowID, HistoryEvent.created, details)
        return (rowID, profileID)
    }

    /// What an empty value does to an existing profile.
    enum EmptyValues {
        /// Clears the field (forms and the API): refused for a required field.
        case clear
        /// Leaves the field as it is (file imports: an empty cell never overwrites).
        case keep
    }

    /// Changes the given fields (and the global status when not nil) of an existing profile row. Returns the keys
    /// that changed. The email can be changed but never emptied.
    @discardableResult
    func update(_ row: Row, _ inputs: [String: FieldValueInput], status: ProfileStatus? = nil, empty: EmptyValues = .clear,
                details: [String: JSONValue] = [:], otherErrors: [String: String] = [:]) throws -> [String] {
        let refs = fields
        var judged = judge(inputs)
        judged.errors.merge(otherErrors) { a, _ in a }
        let rowID = row.int64("id") ?? 0
        var changes: [String: SQLValue] = [:]
        var changedKeys: [String] = []
        for ref in refs {
            guard let value = judged.values[ref.column] else { continue }
            if value == .null {
                if empty == .keep || ref.isEmail { continue }
                if ref.required && row[ref.column] != .null { judged.errors[ref.key] = "\(ref.label) is required."; continue }
            }
            if value != row[ref.column] {
                changes[ref.column] = value
                changedKeys.append(ref.key)
            }
        }
        if !judged.errors.isEmpty { throw ValidationError(judged.errors) }
        if detectLocation {
            for (key, column, value) in Geolocation.fill(given: judged.values, current: row) where changes[column] == nil {
                changes[column] = value
                changedKeys.append(key)
            }
        }
        if let email = changes["email"],
           try db.queryOne("SELECT 1 FROM \(table) WHERE email = ? AND id <> ?", [email, rowID]) != nil {
            throw ValidationError(field: "email", "Another profile in this database has the email \(email.string ?? "").")
        }
        let current = ProfileStatus(rawValue: row.int("status") ?? 0) ?? .subscribed
        let statusChanged = status != nil && status != current
        if changes.isEmpty && !statusChanged { return [] }
        if let status, statusChanged { changes["status"] = .integer(Int64(status.rawValue)) }
        changes["updated_at"] = .integer(now)
        let keys = changes.keys.sorted()
        try db.prepare("UPDATE \(table) SET \(keys.map { "\($0) = ?" }.joined(separator: ", ")), version = version + 1 WHERE id = ?")
            .execute(keys.map { changes[$0] ?? .null } + [.integer(rowID)])
        let profileID = row.string("profile_id") ?? ""
        if !changedKeys.isEmpty {
            var d = details
            d["fields"] = .array(changedKeys.map { .string($0) })
            try record(rowID, HistoryEvent.fieldChanged, d)
            try trigger(profileID, "field_updated", .object(["fields": .array(changedKeys.map { .string($0) })]))
        }
        if let status, statusChanged {
            var d = details
            d["from"] = .string(current.name)
            d["to"] = .string(status.name)
            try record(rowID, HistoryEvent.statusChanged, d)
            try trigger(profileID, "status_updated", .object(["from": .string(current.name), "status": .string(status.name)]))
        }
        return changedKeys
    }

    // MARK: Subscriptions

    /// Adds a subscription or changes the one with the same resource, channel and contact. Applies the contact
    /// rules of the channel, the unsafe-statuses rule, and the limits (20 per resource and channel, 200 per
    /// profile; an old one is replaced in the spec's order). Only what the change sets is changed.
    @discardableResult
    func subscribe(rowID: Int64, profileID: String, _ change: SubscriptionChange) throws -> SubscribeOutcome {
        guard let resourceRow = try db.queryOne(DatabaseStore.attachedResource, [databaseID, change.resourceID]) else {
            throw ValidationError(field: "resource", "The resource is not attached to this database.")
        }
        let resource = try ResourceStore.load(row: resourceRow, db)
        guard let channel = Channel(rawValue: change.channel), resource.channels.contains(channel) else {
            throw ValidationError(field: "channel", "\(resource.name) has no \(change.channel) channel.")
        }
        var errors: [String: String] = [:]
        var contact = ""
        switch Subscriptions.validateContact(channel, contact: change.contact, provider: change.provider) {
        case .success(let c): contact = c
        case .failure(let e): errors["contact"] = e.reason
        }
        if let p = change.priority, p < 0 || p > 1_000_000 { errors["priority"] = "A priority is a number from 0 to 1,000,000." }
        for category in change.categories ?? [] where !resource.categories.contains(category) {
            errors["categories"] = "\(resource.name) has no category \(category)."
        }
        let fields = try judgeSubscriptionFields(change.fields, resource, &errors)
        if !errors.isEmpty { throw ValidationError(errors) }
        let t = subscriptions
        let scope = "profile = ? AND resource_id = ? AND channel = ?"
        let scopeParams: [any SQLBindable] = [rowID, resource.id, channel.rawValue]
        let event: [String: JSONValue] = ["resource": .int(resource.id), "resource_name": .string(resource.name),
                                          "channel": .string(channel.rawValue), "contact": .string(contact)]
        // The same contact in the same resource and channel is one subscription: change it instead.
        if let existing = try db.queryOne("SELECT * FROM \(t) WHERE \(scope) AND contact = ?", scopeParams + [contact]) {
            let current = Subscription(row: existing)
            var target = change.status ?? (current.deleted ? .subscribed : current.status)
            // Double opt-in: whatever a way in asks, a subscription becomes subscribed only by its confirmation; one
            // coming back (deleted, unsubscribed) waits for a new confirmation like a new one.
            if resource.doubleOptIn && target == .subscribed && !change.confirming && (current.deleted || current.status != .subscribed) {
                target = .unconfirmed
            }
            if target == .subscribed, !change.includeUnsafe, !current.deleted, EventRules.unsafe(current.status) {
                throw UnsafeStatusRefusal(current: current.status)
            }
            if ProfileWriter.activates(from: current.deleted ? nil : current.status, to: target) {
                try refuseIfSuppressed(channel, contact)
            }
            let categories = change.categories ?? current.categories
            let priority = change.priority ?? current.priority
            let provider = change.provider.isEmpty ? current.provider : change.provider
            var merged = current.fields
            for (k, v) in fields { merged[k] = v }
            if !current.deleted && target == current.status && categories == current.categories && priority == current.priority
                && provider == current.provider && merged == current.fields {
                return .unchanged(current.id)
            }
            try db.run("""
                UPDATE \(t) SET status = ?, provider = ?, categories = ?, deleted = 0, updated_at = ?, priority = ?, fields = ?
                WHERE id = ?
                """, [target.rawValue, provider, JSONValue.encodeStrings(categories), now, priority,
                      JSONValue.object(merged).canonical, current.id])
            var d = event
            d["from"] = .string(current.deleted ? "deleted" : current.status.name)
            d["status"] = .string(target.name)
            try record(rowID, target == .unsubscribed ? HistoryEvent.unsubscribed : HistoryEvent.subscriptionChanged, d)
            try trigger(profileID, "subscription_updated", .object(["resource_id": .int(resource.id),
                                                                    "channel": .string(channel.rawValue), "status": .string(target.name)]))
            if target != current.status { try recordBounce(channel, contact, target) }
            if target == .unconfirmed && resource.doubleOptIn && (current.deleted || current.status != .unconfirmed) {
                try requestConfirmation(profileID, subscriptionID: current.id, resource: resource, channel: channel, contact: contact)
            }
            return .updated(current.id, before: current.status, wasDeleted: current.deleted)
        }
        var status = change.status ?? .subscribed
        // Double opt-in: a new subscription, from any way in, waits unconfirmed for the subscriber's confirmation.
        if status == .subscribed && resource.doubleOptIn { status = .unconfirmed }
        // A suppressed contact gets no subscription at all, whatever its status.
        try refuseIfSuppressed(channel, contact)
        // Limits: the narrower scope first (20 per resource and channel), then the profile's 200.
        let inScope = try db.query("SELECT COUNT(*) FROM \(t) WHERE \(scope)", scopeParams).first?[0].int ?? 0
        let inProfile = try db.query("SELECT COUNT(*) FROM \(t) WHERE profile = ?", [rowID]).first?[0].int ?? 0
        var victim: Int64?
        if inScope >= Subscriptions.perResourceChannelLimit {
            victim = try db.query("SELECT id FROM \(t) WHERE \(scope) \(Subscriptions.replacementOrder) LIMIT 1", scopeParams)
                .first?.int64("id")
        } else if inProfile >= Subscriptions.perProfileLimit {
            victim = try db.query("SELECT id FROM \(t) WHERE profile = ? \(Subscriptions.replacementOrder) LIMIT 1", [rowID])
                .first?.int64("id")
        }
        if let victim {
            try db.run("DELETE FROM \(t) WHERE id = ?", [victim])
            try record(rowID, HistoryEvent.subscriptionDeleted, ["replaced_by_limit": .bool(true), "subscription": .int(victim)])
        }
        var priority = change.priority
        if priority == nil {
            if resource.increasePriority {
                try db.run("UPDATE \(t) SET priority = priority + 1 WHERE \(scope)", scopeParams)
                priority = 0
            } else {
                priority = (try db.query("SELECT MAX(priority) + 1 FROM \(t) WHERE \(scope)", scopeParams).first?[0].int) ?? 0
            }
        }
        try db.prepare("""
            INSERT INTO \(t) (profile, resource_id, channel, contact, provider, status, priority, categories, fields, deleted,
                              created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
            """).execute([rowID, resource.id, channel.rawValue, contact, change.provider, status.rawValue, priority ?? 0,
                          JSONValue.encodeStrings(change.categories ?? []), JSONValue.object(fields).canonical, now, now])
        let id = try db.lastInsertedID()
        var d = event
        d["status"] = .string(status.name)
        try record(rowID, HistoryEvent.subscriptionAdded, d)
        try trigger(profileID, "subscription_added", .object(["resource_id": .int(resource.id),
                                                              "channel": .string(channel.rawValue), "status": .string(status.name)]))
        if status == .unconfirmed && resource.doubleOptIn {
            try requestConfirmation(profileID, subscriptionID: id, resource: resource, channel: channel, contact: contact)
        }
        try recordBounce(channel, contact, status)
        return .added(id)
    }

    /// True when a subscription becomes active (subscribed, or unconfirmed and waiting) that was not: new (`from`
    /// nil, or back from deletion), or moved there from another status. The suppression lists refuse exactly these.
    static func activates(from: ProfileStatus?, to: ProfileStatus) -> Bool {
        guard to == .subscribed || to == .unconfirmed else { return false }
        guard let from else { return true }
        if from == to { return false }
        return !(from == .subscribed && to == .unconfirmed)
    }

    func refuseIfSuppressed(_ channel: Channel, _ contact: String) throws {
        if let list = try Suppressions.match(db, databaseID: databaseID, channel: channel, contact: contact) {
            throw SuppressedContact(list: list)
        }
    }

    /// Hard bounces and complaints fill the lists that take them automatically.
    func recordBounce(_ channel: Channel, _ contact: String, _ status: ProfileStatus) throws {
        guard status == .hardBounced || status == .complainer else { return }
        try Suppressions.recordBounce(db, databaseID: databaseID, channel: channel, contact: contact, status: status, now: now)
    }

    /// The trigger event a webhook receiver turns into the confirmation message (Roster sends no mail): it carries
    /// the signed link, good for ROSTER_CONFIRMATION_HOURS.
    func requestConfirmation(_ profileID: String, subscriptionID: Int64, resource: Resource, channel: Channel,
                             contact: String) throws {
        let url = try SubscriberLinks.confirmationURL(databaseID: databaseID, subscriptionID: subscriptionID, contact: contact, now: now, db)
        let expires = now + Int64(SubscriberLinks.configuration.confirmationHours) * 3600
        try trigger(profileID, "confirmation_requested", .object([
            "resource_id": .int(resource.id), "channel": .string(channel.rawValue), "contact": .string(contact),
            "subscription_id": .int(subscriptionID), "confirmation_url": .string(url), "expires_at": .int(expires)]))
    }

    /// Custom subscription fields are judged by their type in the resource; standard channel fields (`_…`) are
    /// short texts or scalars.
    func judgeSubscriptionFields(_ given: [String: JSONValue], _ resource: Resource, _ errors: inout [String: String]) throws
        -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for (name, value) in given.sorted(by: { $0.key < $1.key }) {
            if name.hasPrefix("_") {
                switch value {
                case .string(let s) where s.utf8.count <= 255: fields[name] = .string(s)
                case .int, .bool, .null: fields[name] = value
                case .double(let d) where d.isFinite: fields[name] = value
                default: errors["fields"] = "\(name) is a short text."
                }
            } else if let field = resource.fields.first(where: { $0.name == name }) {
                switch field.type.validate(json: value) {
                case .success(.integer(let i)): fields[name] = field.type == .boolean ? .bool(i != 0) : .int(i)
                case .success(.real(let d)): fields[name] = .double(d)
                case .success(.text(let t)):
                    fields[name] = JSONValue.parse(t).flatMap { [.object, .array, .tags].contains(field.type) ? $0 : nil } ?? .string(t)
                case .success: fields[name] = .null
                case .failure(let e): errors["fields"] = "\(name) \(e.reason)."
                }
            } else {
                errors["fields"] = "\(resource.name) has no subscription field \(name)."
            }
        }
        return fields
    }

    /// Changes one subscription's status and priority (the subscription form).
    func setSubscription(rowID: Int64, subscriptionID: Int64, status: ProfileStatus, priority: Int, includeUnsafe: Bool) throws {
        if priority < 0 || priority > 1_000_000 { throw ValidationError(field: "priority", "A priority is a number from 0 to 1,000,000.") }
        guard let row = try db.queryOne("SELECT * FROM \(subscriptions) WHERE id = ? AND profile = ?", [subscriptionID, rowID]) else {
            throw ValidationError(field: "subscription", "No such subscription.")
        }
        let current = Subscription(row: row)
        if status == .subscribed, !includeUnsafe, !current.deleted, EventRules.unsafe(current.status) {
            throw UnsafeStatusRefusal(current: current.status)
        }
        if !current.deleted && ProfileWriter.activates(from: current.status, to: status) {
            try refuseIfSuppressed(current.channel, current.contact)
        }
        if status == current.status && priority == current.priority { return }
        try db.run("UPDATE \(subscriptions) SET status = ?, priority = ?, updated_at = ? WHERE id = ?",
                   [status.rawValue, priority, now, subscriptionID])
        try record(rowID, status == .unsubscribed ? HistoryEvent.unsubscribed : HistoryEvent.subscriptionChanged,
                   ["subscription": .int(subscriptionID), "resource": .int(current.resourceID), "channel": .string(current.channel.rawValue),
                    "from": .string(current.status.name), "status": .string(status.name), "priority": .int(Int64(priority))])
        guard status != current.status, let profileID = try profileID(rowID: rowID) else {
            return
        }
        try recordBounce(current.channel, current.contact, status)
        try trigger(profileID, "subscription_updated", .object(["resource_id": .int(current.resourceID),
                                                                "channel": .string(current.channel.rawValue), "status": .string(status.name)]))
        if status == .unconfirmed, let resource = try doubleOptInResource(current.resourceID) {
            try requestConfirmation(profileID, subscriptionID: subscriptionID, resource: resource, channel: current.channel,
                                    contact: current.contact)
        }
    }

    /// The public id of the profile in row `rowID` (trigger events name profiles by it).
    func profileID(rowID: Int64) throws -> String? {
        try db.scalar("SELECT profile_id FROM \(table) WHERE id = ?", [rowID]).string
    }

    /// The subscription's resource when it asks for double opt-in; nil otherwise.
    func doubleOptInResource(_ resourceID: Int64) throws -> Resource? {
        try ResourceStore.doubleOptInRow(resourceID, db).map { try ResourceStore.load(row: $0, db) }
    }

    /// Marks a subscription deleted (kept, restorable) or restores it.
    func setSubscriptionDeleted(rowID: Int64, subscriptionID: Int64, deleted: Bool) throws {
        if !deleted, let row = try db.queryOne("SELECT * FROM \(subscriptions) WHERE id = ? AND profile = ? AND deleted = 1",
                                               [subscriptionID, rowID]) {
            let current = Subscription(row: row)
            if ProfileWriter.activates(from: nil, to: current.status) { try refuseIfSuppressed(current.channel, current.contact) }
            // Back from deletion is like new: with double opt-in it waits for a confirmation again.
            if current.status == .subscribed || current.status == .unconfirmed,
               let resource = try doubleOptInResource(current.resourceID),
               let profileID = try profileID(rowID: rowID) {
                try db.run("UPDATE \(subscriptions) SET status = ?, deleted = 0, updated_at = ? WHERE id = ?",
                           [ProfileStatus.unconfirmed.rawValue, now, subscriptionID])
                try record(rowID, HistoryEvent.subscriptionChanged, ["subscription": .int(subscriptionID), "restored": .bool(true),
                                                                     "from": .string("deleted"), "status": .string("unconfirmed")])
                try requestConfirmation(profileID, subscriptionID: subscriptionID, resource: resource, channel: current.channel,
                                        contact: current.contact)
                return
            }
        }
        let changed = try db.prepare("UPDATE \(subscriptions) SET deleted = ?, updated_at = ? WHERE id = ? AND profile = ?")
            .execute([deleted, now, subscriptionID, rowID])
        if changed == 0 { throw ValidationError(field: "subscription", "No such subscription.") }
        try record(rowID, deleted ? HistoryEvent.subscriptionDeleted : HistoryEvent.subscriptionChanged,
                   ["subscription": .int(subscriptionID), "restored": .bool(!deleted)])
    }

    // MARK: Promo codes

    /// Attaches the program's oldest free code; nil when none is left. The status check in the UPDATE makes it
    /// impossible to hand a code out twice, even to two writers racing.
    /// `skipping`: free codes a rolled-back preview chunk already handed out (the preview's later chunks must not
    /// count them as free again).
    func attachFreeCode(rowID: Int64, profileID: String, programID: Int64, skipping: Int = 0) throws -> String? {
        guard let code = try db.queryOne(BulkStore.freeCode, [programID, skipping]) else { return nil }
        guard try db.run(BulkStore.attachCode, [databaseID, profileID, now, code.int64("id") ?? 0]) == 1 else { return nil }
        let text = code.string("code") ?? ""
        try record(rowID, HistoryEvent.promoAttached, ["code": .string(text), "program": .int(programID)])
        try trigger(profileID, "promo_attached", .object(["program_id": .int(programID), "code": .string(text)]))
        return text
    }

    /// Detaches a code: it is never handed out again.
    func detachCode(rowID: Int64, codeID: Int64, code: String) throws {
        try db.run("UPDATE promo_codes SET status = 'detached' WHERE id = ?", [codeID])
        try record(rowID, HistoryEvent.promoDetached, ["code": .string(code)])
    }

    // MARK: History and triggers

    /// One history event with its actor and origin; an interaction moves the profile's last interaction, and an
    /// engaging event marks the profile engaged (the database-deletion guard reads it).
    func record(_ rowID: Int64, _ type: String, _ details: [String: JSONValue] = [:]) throws {
        var d = details
        d["how"] = d["how"] ?? .string(origin.rawValue)
        if let taskID { d["task"] = .int(taskID) }
        try History.record(db, database: databaseID, profile: rowID, at: now, type: type, actor: actor, details: .object(d),
                           interaction: EventRules.isInteraction(type, origin: origin), tally: tally)
    }

    func trigger(_ profileID: String, _ type: String, _ payload: JSONValue) throws {
        if skipTriggers { return }
        try db.run(BulkStore.insertTrigger, [databaseID, profileID, type, payload.canonical, taskID.map { SQLValue.integer($0) } ?? .null, now])
    }
}

extension EventRules {
    /// Statuses a subscription is never moved out of into "subscribed" unless the marketer includes them explicitly.
    public static let unsafeStatuses: [ProfileStatus] = [.unsubscribed, .complainer, .hardBounced, .invalid]
    public static func unsafe(_ status: ProfileStatus) -> Bool { unsafeStatuses.contains(status) }
    static let unsafeCodesSQL = unsafeStatuses.map { String($0.rawValue) }.joined(separator: ", ")
}
