import Foundation
import Store

public enum Channel: String, Sendable, CaseIterable, Codable {
    case email, sms, push, telegram_bot, whatsapp, viber
    public var label: String {
        switch self {
        case .email: return "Email"
        case .sms: return "SMS"
        case .push: return "Push"
        case .telegram_bot: return "Telegram bot"
        case .whatsapp: return "WhatsApp"
        case .viber: return "Viber"
        }
    }
}

/// A subscription topic: the channels it speaks on, its categories and its custom subscription fields.
public struct Resource: Sendable, Equatable {
    public struct SubscriptionField: Sendable, Equatable, Codable {
        public let name: String
        public let type: FieldType
    }
    public let id: Int64
    public let name: String
    public let description: String
    public let channels: [Channel]
    public let categories: [String]
    public let fields: [SubscriptionField]
    public let increasePriority: Bool
    /// Double opt-in: a new subscription starts unconfirmed until the subscriber follows the confirmation link.
    public let doubleOptIn: Bool
    public let createdAt: Int64
}

public struct ResourceInput: Sendable {
    public var name: String
    public var description: String
    public var channels: [String]
    /// One per line or comma-separated.
    public var categories: String
    /// One `name:type` per line, e.g. `loyalty_level:number`.
    public var fields: String
    public var increasePriority: Bool
    public var doubleOptIn: Bool
    public init(name: String, description: String = "", channels: [String], categories: String = "", fields: String = "",
                increasePriority: Bool = false, doubleOptIn: Bool = false) {
        self.doubleOptIn = doubleOptIn
        self.name = name
        self.description = description
        self.channels = channels
        self.categories = categories
        self.fields = fields
        self.increasePriority = increasePriority
    }
}

public enum ResourceStore {
    static func names(_ db: Connection) throws -> [Int64: String] {
        var names: [Int64: String] = [:]
        for row in try db.query(ResourceStore.names) { if let id = row.int64("id") { names[id] = row.string("name") ?? "" } }
        return names
    }

    static let all = NamedQuery("resources.all", "SELECT * FROM resources ORDER BY name COLLATE NOCASE")
    /// Names only, for labels (history, change logs): no channels, no categories.
    static let names = NamedQuery("resources.names", "SELECT id, name FROM resources")
    static let byID = NamedQuery("resources.byID", "SELECT * FROM resources WHERE id = ?")
    static let byName = NamedQuery("resources.byName", "SELECT * FROM resources WHERE name = ? COLLATE NOCASE")
    static let insert = NamedQuery("resources.insert", """
        INSERT INTO resources (name, description, increase_priority, double_opt_in, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
        """)
    static let update = NamedQuery("resources.update", """
        UPDATE resources SET name = ?, description = ?, increase_priority = ?, double_opt_in = ?, updated_at = ? WHERE id = ?
        """)
    static let delete = NamedQuery("resources.delete", "DELETE FROM resources WHERE id = ?")
    static let channels = NamedQuery("resources.channels", "SELECT channel FROM resource_channels WHERE resource_id = ?")
    static let clearChannels = NamedQuery("resources.clearChannels", "DELETE FROM resource_channels WHERE resource_id = ?")
    static let addChannel = NamedQuery("resources.addChannel", "INSERT INTO resource_channels (resource_id, channel) VALUES (?, ?)")
    static let categories = NamedQuery("resources.categories", "SELECT name FROM resource_categories WHERE resource_id = ? ORDER BY id")
    static let clearCategories = NamedQuery("resources.clearCategories", "DELETE FROM resource_categories WHERE resource_id = ?")
    static let addCategory = NamedQuery("resources.addCategory", "INSERT INTO resource_categories (resource_id, name) VALUES (?, ?)")
    static let fields = NamedQuery("resources.fields", "SELECT name, type FROM resource_fields WHERE resource_id = ? ORDER BY id")
    static let clearFields = NamedQuery("resources.clearFields", "DELETE FROM resource_fields WHERE resource_id = ?")
    static let addField = NamedQuery("resources.addField", "INSERT INTO resource_fields (resource_id, name, type) VALUES (?, ?, ?)")
    static let attachedTo = NamedQuery("resources.attachedTo", """
        SELECT d.id, d.name FROM databases d JOIN database_resources dr ON dr.database_id = d.id WHERE dr.resource_id = ? ORDER BY d.name COLLATE NOCASE
        """)

    static var queries: [NamedQuery] {
        [names, all, byID, byName, insert, update, delete, channels, clearChannels, addChannel, categories, clearCategories, addCategory,
         fields, clearFields, addField, attachedTo]
    }

    /// The resource's row when it asks for double opt-in (its subscriptions wait for a confirmation); nil otherwise.
    static func doubleOptInRow(_ resourceID: Int64, _ db: Connection) throws -> Row? {
        guard let row = try db.queryOne(byID, [resourceID]), row.bool("double_opt_in") else { return nil }
        return row
    }

    static func load(row: Row, _ db: Connection) throws -> Resource {
        let id = row.int64("id") ?? 0
        let channelSet = Set(try db.query(channels, [id]).compactMap { Channel(rawValue: $0.string("channel") ?? "") })
        return Resource(
            id: id, name: row.string("name") ?? "", description: row.string("description") ?? "",
            channels: Channel.allCases.filter { channelSet.contains($0) },
            categories: try db.query(categories, [id]).compactMap { $0.string("name") },
            fields: try db.query(fields, [id]).map { Resource.SubscriptionField(name: $0.string("name") ?? "", type: FieldType(rawValue: $0.string("type") ?? "") ?? .line) },
            increasePriority: row.bool("increase_priority"), doubleOptIn: row.bool("double_opt_in"),
            createdAt: row.int64("created_at") ?? 0)
    }
}

public final class Resources: Sendable {
    let pool: DatabasePool
    let clock: Clock

    public init(pool: DatabasePool, clock: Clock = .system) {
        self.pool = pool
        self.clock = clock
    }

    public func list() throws -> [Resource] {
        try pool.read { db in try db.query(ResourceStore.all).map { try ResourceStore.load(row: $0, db) } }
    }

    public func get(_ id: Int64) throws -> Resource? {
        try pool.read { db in try db.queryOne(ResourceStore.byID, [id]).map { try ResourceStore.load(row: $0, db) } }
    }

    public func databases(using id: Int64) throws -> [(id: Int64, name: String)] {
        try pool.read { db in try db.query(ResourceStore.attachedTo, [id]).map { ($0.int64("id") ?? 0, $0.string("name") ?? "") } }
    }

    struct Clean {
        var name: String, description: String, channels: [Channel], categories: [String], fields: [Resource.SubscriptionField], increasePriority: Bool
        var doubleOptIn: Bool
    }

    func validate(_ input: ResourceInput, existingID: Int64?, _ db: Connection) throws -> Clean {
        var errors: [String: String] = [:]
        let name = input.name.trimmingCharacters(in: .whitespacesAndNewlines)
        if name.isEmpty { errors["name"] = "Enter a name." }
        else if name.count > 200 { errors["name"] = "A name has at most 200 characters." }
        else if let row = try db.queryOne(ResourceStore.byName, [name]), row.int64("id") != existingID {
            errors["name"] = "Another resource is already called \(row.string("name") ?? name)."
        }
        var channels: [Channel] = []
        for raw in input.channels {
            guard let channel = Channel(rawValue: raw) else { errors["channels"] = "\(raw) is not a channel."; break }
            if !channels.contains(channel) { channels.append(channel) }
        }
        if channels.isEmpty && errors["channels"] == nil { errors["channels"] = "Choose at least one channel." }
        var categories: [String] = []
        for raw in input.categories.split(whereSeparator: { $0 == "," || $0.isNewline }) {
            let category = raw.trimmingCharacters(in: .whitespaces)
            if category.isEmpty { continue }
            if category.count > 100 { errors["categories"] = "A category name has at most 100 characters."; break }
            if categories.contains(where: { $0.lowercased() == category.lowercased() }) { errors["categories"] = "The category \(category) is listed twice."; break }
            categories.append(category)
        }
        var fields: [Resource.SubscriptionField] = []
        for (index, raw) in input.fields.split(whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let type = FieldType(rawValue: parts[1].lowercased()), type != .enum else {
                errors["fields"] = "Line \(index + 1): write name:type, with a type among number, float, line, date, boolean, ip, tags, object, array."
                break
            }
            if let problem = Databases.validateName(parts[0]) { errors["fields"] = "Line \(index + 1): \(problem)"; break }
            if fields.contains(where: { $0.name.lowercased() == parts[0].lowercased() }) { errors["fields"] = "Line \(index + 1): \(parts[0]) is listed twice."; break }
            fields.append(.init(name: parts[0], type: type))
        }
        let description = input.description.trimmingCharacters(in: .whitespacesAndNewlines)
        if description.count > 2000 { errors["description"] = "A description has at most 2,000 characters." }
        if !errors.isEmpty { throw ValidationError(errors) }
        return Clean(name: name, description: description, channels: channels, categories: categories, fields: fields, increasePriority: input.increasePriority,
                     doubleOptIn: input.doubleOptIn)
    }

    func write(_ id: Int64, _ clean: Clean, _ db: Connection) throws {
        try db.run(ResourceStore.clearChannels, [id])
        for channel in clean.channels { try db.run(ResourceStore.addChannel, [id, channel.rawValue]) }
        try db.run(ResourceStore.clearCategories, [id])
        for category in clean.categories { try db.run(ResourceStore.addCategory, [id, category]) }
        try db.run(ResourceStore.clearFields, [id])
        for field in clean.fields { try db.run(ResourceStore.addField, [id, field.name, field.type.rawValue]) }
    }

    /// A validated resource with its channels, categories and fields: every way a resource is made (the form, a
    /// structure file) comes here.
    func insert(_ clean: Clean, now: Int64, _ db: Connection) throws -> Int64 {
        try db.run(ResourceStore.insert, [clean.name, clean.description, clean.increasePriority, clean.doubleOptIn, now, now])
        let id = try db.lastInsertedID()
        try write(id, clean, db)
        return id
    }

    @discardableResult
    public func create(_ input: ResourceInput) throws -> Resource {
        let now = clock.now()
        return try pool.write { db in
            let id = try insert(try validate(input, existingID: nil, db), now: now, db)
            return try ResourceStore.load(row: try readBack(try db.queryOne(ResourceStore.byID, [id]), "resource"), db)
        }
    }

    public func update(_ id: Int64, _ input: ResourceInput) throws {
        let now = clock.now()
        try pool.write { db in
            guard try db.queryOne(ResourceStore.byID, [id]) != nil else { throw ValidationError(field: "resource", "No such resource.") }
            let clean = try validate(input, existingID: id, db)
            try db.run(ResourceStore.update, [clean.name, clean.description, clean.increasePriority, clean.doubleOptIn, now, id])
            try write(id, clean, db)
        }
    }

    /// Refused while a database uses the resource: its subscriptions would lose their topic.
    public func delete(_ id: Int64) throws {
        try pool.write { db in
            let users = try db.query(ResourceStore.attachedTo, [id]).compactMap { $0.string("name") }
            if !users.isEmpty {
                throw ValidationError(field: "resource", "Detach it from \(users.joined(separator: ", ")) first.")
            }
            try db.run(ResourceStore.delete, [id])
        }
    }
}
