import Foundation
import Store

/// What a suppression list holds: an email address, a whole email domain, or a phone number.
public enum SuppressionKind: String, CaseIterable, Sendable {
    case email, domain, phone
}

public struct SuppressionList: Sendable, Equatable {
    public let id: Int64
    public let name: String
    /// Applies to every database; otherwise to `databaseIDs`.
    public let global: Bool
    /// Hard bounces and complaints are added automatically.
    public let autoBounces: Bool
    public let databaseIDs: [Int64]
    public let entries: Int
    public let createdAt: Int64
}

public struct SuppressionEntry: Sendable, Equatable {
    public let id: Int64
    public let kind: SuppressionKind
    public let value: String
    public let reason: String
    public let createdAt: Int64
}

/// A subscription refused because its contact is on a suppression list that applies to the database.
public struct SuppressedContact: Error, Sendable, Equatable {
    public let list: String
    public var message: String { "The contact is on the suppression list “\(list)”." }
}

public struct SuppressionListInput: Sendable {
    public var name: String
    public var global: Bool
    public var autoBounces: Bool
    public var databaseIDs: [Int64]
    public init(name: String, global: Bool = false, autoBounces: Bool = false, databaseIDs: [Int64] = []) {
        self.name = name
        self.global = global
        self.autoBounces = autoBounces
        self.databaseIDs = databaseIDs
    }
}

/// Suppression lists (Settings → Suppression lists) and the one rule every way in obeys: a subscription to a
/// suppressed contact is never created and never made subscribed. Per row, `ProfileWriter` asks `match`; set-based
/// statements use `suppressedSQL`; both read the same tables the same way.
public final class Suppressions: Sendable {
    let pool: DatabasePool
    let clock: Clock
    /// Entries added from one paste or one file.
    public static let maximumEntriesPerAdd = 100_000

    public init(pool: DatabasePool, clock: Clock = .system) {
        self.pool = pool
        self.clock = clock
    }

    // MARK: The rule

    /// An entry as typed: `name@example.com` an email, `@example.com` or `example.com` a domain, `+7 900 …` a phone.
    /// Normalized as subscriptions store contacts (emails and domains in lower case, phones as `+` and digits).
    public static func parse(_ raw: String) -> Result<(SuppressionKind, String), FieldValueError> {
        let text = raw.trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return .failure(FieldValueError("Empty.")) }
        if text.utf8.count > 254 { return .failure(FieldValueError("Longer than 254 characters.")) }
        if let at = text.firstIndex(of: "@"), at != text.startIndex {
            if let problem = EmailAddress.problem(text) { return .failure(FieldValueError("This \(problem).")) }
            return .success((.email, text.lowercased()))
        }
        let domain = (text.hasPrefix("@") ? String(text.dropFirst()) : text).lowercased()
        if domain.contains(where: { $0.isLetter }) {
            guard EmailAddress.problem("x@" + domain) == nil else {
                return .failure(FieldValueError("This is not an email, a domain like example.com, or a phone."))
            }
            return .success((.domain, domain))
        }
        guard let phone = PhoneNumber.normalize(text) else {
            return .failure(FieldValueError("This is not an email, a domain like example.com, or a phone."))
        }
        return .success((.phone, phone))
    }

    /// The list that suppresses this subscription contact for this database, or nil. Push and Telegram contacts
    /// are never on a list.
    static func match(_ db: Connection, databaseID: Int64, channel: Channel, contact: String) throws -> String? {
        let values: (String, String, String)
        switch channel {
        case .email:
            let domain = contact.split(separator: "@", omittingEmptySubsequences: false).last.map(String.init) ?? ""
            values = (contact, domain, "")
        case .sms, .whatsapp, .viber: values = ("", "", contact)
        case .push, .telegram_bot: return nil
        }
        return try db.scalar(SuppressionStore.match, [values.0, values.1, values.2, databaseID]).string
    }

    /// The same rule as `match` as an SQL condition on a subscriptions row aliased `alias`: true when its contact is
    /// suppressed for the database.
    static func suppressedSQL(_ alias: String, databaseID: Int64, _ dialect: Dialect) -> String {
        suppressedSQL(channel: "\(alias).channel", contact: "\(alias).contact", databaseID: databaseID, dialect)
    }

    /// The same for any channel and contact expressions (a profile's email: `'email'`, `p.email`).
    /// (A profile's email is case-insensitive text on PostgreSQL, which refuses substring searches: pass it through
    /// `Dialect.plainText`. Subscription contacts are plain text, so `suppressions_value` serves the lookup.)
    static func suppressedSQL(channel: String, contact: String, databaseID: Int64, _ dialect: Dialect) -> String {
        let domain = "substr(\(contact), \(dialect.position(of: "'@'", in: contact)) + 1)"
        return """
            EXISTS (SELECT 1 FROM suppressions x JOIN suppression_lists l ON l.id = x.list_id
                    WHERE (l.global = 1 OR EXISTS (SELECT 1 FROM suppression_list_databases a
                                                   WHERE a.list_id = l.id AND a.database_id = \(databaseID)))
                      AND ((\(channel) = 'email' AND ((x.kind = 'email' AND x.value = \(contact))
                                                   OR (x.kind = 'domain' AND x.value = \(domain))))
                        OR (\(channel) IN ('sms', 'whatsapp', 'viber') AND x.kind = 'phone' AND x.value = \(contact))))
            """
    }

    /// A hard bounce or a complaint: the contact goes on every list that applies and takes them automatically.
    static func recordBounce(_ db: Connection, databaseID: Int64, channel: Channel, contact: String, status: ProfileStatus,
                             now: Int64) throws {
        let kind: SuppressionKind
        switch channel {
        case .email: kind = .email
        case .sms, .whatsapp, .viber: kind = .phone
        case .push, .telegram_bot: return
        }
        try db.run(SuppressionStore.recordBounce, [kind.rawValue, contact, status.name, now, databaseID])
    }

    /// The suppressed contacts of a profile's subscriptions (contact → list name), for the profile page's marks: one
    /// set-based query finds them (usually none), and only those are looked up by name.
    public func suppressed(databaseID: Int64, profileRowID: Int64) throws -> [String: String] {
        try pool.read { db in
            let hits = try db.query("""
                SELECT DISTINCT s.channel, s.contact FROM \(Subscriptions.table(databaseID)) s
                WHERE s.profile = ? AND \(Suppressions.suppressedSQL("s", databaseID: databaseID, db.dialect))
                """, [profileRowID])
            var out: [String: String] = [:]
            for row in hits.prefix(500) {
                guard let channel = Channel(rawValue: row.string("channel") ?? ""), let contact = row.string("contact") else { continue }
                out[contact] = try Suppressions.match(db, databaseID: databaseID, channel: channel, contact: contact)
            }
            return out
        }
    }

    // MARK: Lists

    static func list(_ row: Row, _ db: Connection) throws -> SuppressionList {
        let id = row.int64("id") ?? 0
        return SuppressionList(id: id, name: row.string("name") ?? "", global: row.bool("global"), autoBounces: row.bool("auto_bounces"),
                               databaseIDs: try db.query(SuppressionStore.databases, [id]).compactMap { $0.int64("database_id") },
                               entries: row.int("entries") ?? 0, createdAt: row.int64("created_at") ?? 0)
    }

    public func lists() throws -> [SuppressionList] {
        try pool.read { db in try db.query(SuppressionStore.lists).map { try Suppressions.list($0, db) } }
    }

    public func list(id: Int64) throws -> SuppressionList? {
        try pool.read { db in try db.queryOne(SuppressionStore.list, [id]).map { try Suppressions.list($0, db) } }
    }

    /// The lists attached to a database (the database form).
    public func attached(databaseID: Int64) throws -> [Int64] {
        try pool.read { try $0.query(SuppressionStore.listsOfDatabase, [databaseID]).compactMap { $0.int64("list_id") } }
    }

    func validate(_ input: SuppressionListInput, existingID: Int64?, _ db: Connection) throws -> (String, [Int64]) {
        var errors: [String: String] = [:]
        let name = input.name.trimmingCharacters(in: .whitespacesAndNewlines)
        if name.isEmpty { errors["name"] = "Enter a name." }
        else if name.count > 200 { errors["name"] = "A name has at most 200 characters." }
        else if let other = try db.scalar(SuppressionStore.byName, [name]).int64, other != existingID {
            errors["name"] = "Another list is already called \(name)."
        }
        var ids: [Int64] = []
        for id in input.databaseIDs where !ids.contains(id) {
            guard try db.queryOne(DatabaseStore.byID, [id]) != nil else { errors["databases"] = "Database \(id) does not exist."; break }
            ids.append(id)
        }
        if !errors.isEmpty { throw ValidationError(errors) }
        return (name, input.global ? [] : ids)
    }

    @discardableResult
    public func createList(_ input: SuppressionListInput) throws -> SuppressionList {
        let now = clock.now()
        return try pool.write { db in
            let (name, ids) = try validate(input, existingID: nil, db)
            try db.run(SuppressionStore.insertList, [name, input.global, input.autoBounces, now, now])
            let id = try db.lastInsertedID()
            for database in ids { try db.run(SuppressionStore.attach, [id, database]) }
            return try Suppressions.list(try readBack(try db.queryOne(SuppressionStore.list, [id]), "list"), db)
        }
    }

    public func updateList(_ id: Int64, _ input: SuppressionListInput) throws {
        let now = clock.now()
        try pool.write { db in
            guard try db.queryOne(SuppressionStore.list, [id]) != nil else { throw ValidationError(field: "list", "No such list.") }
            let (name, ids) = try validate(input, existingID: id, db)
            try db.run(SuppressionStore.updateList, [name, input.global, input.autoBounces, now, id])
            try db.run(SuppressionStore.detachAll, [id])
            for database in ids { try db.run(SuppressionStore.attach, [id, database]) }
        }
    }

    public func deleteList(_ id: Int64) throws {
        try pool.write { db in
            guard try db.run(SuppressionStore.deleteList, [id]) == 1 else { throw ValidationError(field: "list", "No such list.") }
        }
    }

    // MARK: Entries

    public struct Added: Sendable, Equatable {
        public var added = 0
        public var already = 0
        /// Up to 20 refused lines with their reasons.
        public var refused: [(line: Int, text: String, reason: String)] = []
        public var refusedCount = 0
        public static func == (a: Added, b: Added) -> Bool {
            a.added == b.added && a.already == b.already && a.refusedCount == b.refusedCount
        }
    }

    /// Adds one entry per line (the first comma- or semicolon-separated cell of each, so a CSV's first column works;
    /// a header line that is not a contact is refused like any other line). All or nothing is not needed here: each
    /// good line is added, each bad one reported.
    public func add(listID: Int64, text: String, reason: String = "added by hand") throws -> Added {
        var result = Added()
        var parsed: [(SuppressionKind, String)] = []
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let cell = line.split(whereSeparator: { $0 == "," || $0 == ";" }).first.map(String.init) ?? ""
            let value = cell.trimmingCharacters(in: CharacterSet(charactersIn: "\" \t\u{FEFF}"))
            if value.isEmpty { continue }
            if parsed.count + result.refusedCount >= Suppressions.maximumEntriesPerAdd {
                throw ValidationError(field: "entries", "At most \(Suppressions.maximumEntriesPerAdd) entries at a time.")
            }
            switch Suppressions.parse(value) {
            case .success(let entry): parsed.append(entry)
            case .failure(let error):
                result.refusedCount += 1
                if result.refused.count < 20 { result.refused.append((index + 1, String(value.prefix(80)), error.reason)) }
            }
        }
        let now = clock.now()
        try pool.write { db in
            guard try db.queryOne(SuppressionStore.list, [listID]) != nil else { throw ValidationError(field: "list", "No such list.") }
            for (kind, value) in parsed {
                if try db.run(SuppressionStore.insertEntry, [listID, kind.rawValue, value, String(reason.prefix(200)), now]) == 1 {
                    result.added += 1
                } else {
                    result.already += 1
                }
            }
        }
        return result
    }

    public func entries(listID: Int64, search: String = "", after: Int64 = 0, limit: Int = 100) throws -> [SuppressionEntry] {
        let pattern = "%" + String(search.lowercased().prefix(100)).replacingOccurrences(of: "%", with: "").replacingOccurrences(of: "_", with: "") + "%"
        return try pool.read { db in
            try db.query(SuppressionStore.entries, [listID, pattern, after, min(max(limit, 1), 500)]).map { row in
                SuppressionEntry(id: row.int64("id") ?? 0, kind: SuppressionKind(rawValue: row.string("kind") ?? "") ?? .email,
                                 value: row.string("value") ?? "", reason: row.string("reason") ?? "", createdAt: row.int64("created_at") ?? 0)
            }
        }
    }

    public func remove(listID: Int64, entryID: Int64) throws {
        try pool.write { db in
            guard try db.run(SuppressionStore.deleteEntry, [entryID, listID]) == 1 else {
                throw ValidationError(field: "entry", "No such entry.")
            }
        }
    }
}
