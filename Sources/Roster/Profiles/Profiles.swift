import Foundation
import Secrets
import Store
import Synchronization

/// One profile as pages see it: identifiers, status, and every field's value as a person reads it.
public struct Profile: Sendable {
    public let rowID: Int64
    public let profileID: String
    public let email: String
    public let status: ProfileStatus
    /// Standard field key or custom field name → the value as typed back ("" when empty).
    public let values: [String: String]
    public let createdAt: Int64
    public let updatedAt: Int64
    public let lastInteractionAt: Int64?
    public let version: Int64

    /// The profile's own addresses, to offer as a subscription's contact: its email (not the placeholder a profile
    /// without one gets) and each of its phones.
    public var contacts: [String] {
        let phones = (values["phones"] ?? "").split(whereSeparator: { $0 == "," || $0 == ";" || $0 == "\n" })
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shown = ProfileIdentity.shownEmail(email, profileID: profileID)
        return (shown.isEmpty ? [] : [shown]) + phones
    }

    /// The profile id's MD5, hex (a second identifier some integrations use).
    public var md5: String { Secrets.md5Hex(profileID) }
    /// The profile id's XXH64, hex.
    public var xxh: String { Secrets.xxh64Hex(profileID) }
}

/// What a person typed into the profile form: field key or name → text.
public struct ProfileInput: Sendable {
    public var values: [String: String]
    public var status: String
    public init(values: [String: String], status: String = "subscribed") {
        self.values = values
        self.status = status
    }
}

public struct ProfileQuery: Sendable {
    public enum Sort: String, Sendable { case created, activity }
    public var search = ""
    public var status: ProfileStatus?
    public var sort: Sort = .created
    /// Keyset cursor: the sort key and row id of the last row of the previous page.
    public var after: (key: Int64, id: Int64)?
    public var limit = 50
    /// The field keys to read (the list shows a few); nil reads every field.
    public var fields: Set<String>?
    public init() {}
}

public struct ProfilePage: Sendable {
    public let profiles: [Profile]
    public let next: (key: Int64, id: Int64)?
}

/// Edit conflict: someone saved the profile after this form was opened.
public struct EditConflict: Error, Sendable {
    public let current: Profile
}

public struct HistoryEntry: Sendable {
    public let at: Int64
    public let type: String
    public let actorEmail: String?
    public let details: String
}

/// Profiles of one database: create, read, edit with conflict detection, delete, list with keyset pages.
public final class Profiles: Sendable {
    let pool: DatabasePool
    let clock: Clock
    /// Counts for the list header, kept a few seconds: counting a million rows on every page view would cost
    /// more than the page. Writes through this object drop the database's entries at once.
    private let countCache = ReadMostly<[String: (count: Int, expires: Int64)]>([:])
    static let countTTL: Int64 = 10

    let catalogues: CatalogueCache

    public init(pool: DatabasePool, clock: Clock = .system, catalogues: CatalogueCache = CatalogueCache()) {
        self.pool = pool
        self.clock = clock
        self.catalogues = catalogues
    }

    /// A database's fields as they are in this transaction, read from the tables (writes use this).
    static func catalogue(_ databaseID: Int64, _ db: Connection) throws -> Catalogue {
        Catalogue(custom: try Databases.fields(databaseID, db), standard: try Databases.standardSettings(databaseID, db))
    }

    typealias ReadColumn = (key: String, column: String, display: @Sendable (SQLValue) -> String)

    /// Every field's column and how to read it back (kept in each `Catalogue`).
    static func readColumns(custom: [CustomField]) -> [ReadColumn] {
        var columns: [ReadColumn] = []
        for field in StandardField.all {
            switch field.kind {
            case .typed(let type): columns.append((field.key, field.column, { type.display($0) }))
            case .email: columns.append((field.key, field.column, { $0.string ?? "" }))
            case .phones: columns.append((field.key, field.column, { FieldType.tags.display($0) }))
            }
        }
        for field in custom { columns.append((field.name, field.column, { field.type.display($0) })) }
        return columns
    }

    static func profile(_ row: Row, _ columns: [ReadColumn]) -> Profile {
        var values: [String: String] = [:]
        values.reserveCapacity(columns.count)
        var hint = 0  // the catalogue lists columns in table order, as `SELECT *` returns them
        for c in columns {
            if let index = row.index(of: c.column, from: hint) {
                values[c.key] = c.display(row.values[index])
                hint = index + 1
            } else {
                values[c.key] = c.display(.null)
            }
        }
        return Profile(rowID: row.int64("id") ?? 0, profileID: row.string("profile_id") ?? "", email: row.string("email") ?? "",
                       status: ProfileStatus(rawValue: row.int("status") ?? 0) ?? .subscribed, values: values,
                       createdAt: row.int64("created_at") ?? 0, updatedAt: row.int64("updated_at") ?? 0,
                       lastInteractionAt: row.int64("last_interaction_at"), version: row.int64("version") ?? 1)
    }

    static func select(_ databaseID: Int64) -> String { "SELECT * FROM \(ProfileTable.name(databaseID))" }

    public func get(databaseID: Int64, profileID: String) throws -> Profile? {
        try pool.read { db in
            let columns = try catalogues.catalogue(databaseID, db).columns
            return try db.queryOne(Profiles.select(databaseID) + " WHERE profile_id = ?", [profileID]).map { Profiles.profile($0, columns) }
        }
    }

    /// Creates a profile from what a person typed (the profile form, the CLI): see `ProfileWriter.create`.
    @discardableResult
    public func create(databaseID: Int64, _ input: ProfileInput, actor: Int64?, origin: ChangeOrigin = .form) throws -> Profile {
        let now = clock.now()
        let profileID = try pool.write { db -> String in
            let writer = try ProfileWriter.open(db, databaseID: databaseID, actor: actor, origin: origin, now: now)
            let status = ProfileStatus(text: input.status)
            return try writer.create(input.values.mapValues { .text($0) }, status: status ?? .subscribed,
                                     otherErrors: status == nil ? Profiles.statusError : [:]).profileID
        }
        forgetCounts(databaseID)
        guard let profile = try get(databaseID: databaseID, profileID: profileID) else {
            throw ValidationError(field: "profile", "The profile was deleted meanwhile.")
        }
        return profile
    }

    static let statusError = ["status": "Choose one of the seven statuses."]

    /// Inserts a validated profile: a new random profile id, its range bucket, and a placeholder email when it has none.
    static func insert(_ db: Connection, databaseID: Int64, values: [String: SQLValue], status: ProfileStatus, now: Int64) throws -> (rowID: Int64, profileID: String) {
        let profileID = ProfileIdentity.newProfileID()
        var row = values
        if (row["email"] ?? .null) == .null { row["email"] = .text(ProfileIdentity.placeholderEmail(profileID)) }
        row["profile_id"] = .text(profileID)
        row["status"] = .integer(Int64(status.rawValue))
        row["range_bucket"] = .integer(Int64(ProfileIdentity.rangeBucket(profileID)))
        row["created_at"] = .integer(now)
        row["updated_at"] = .integer(now)
        row["last_interaction_at"] = .integer(now)
        let keys = row.keys.sorted()
        try db.run(insertSQL(databaseID, keys), keys.map { row[$0] ?? .null })
        return (try db.lastInsertedID(), profileID)
    }

    /// INSERT statements by table and column list, built once: an import inserts rows of the same shape over and
    /// over, and building the text per row showed in its profile. (The connection caches the compiled statement.)
    private static let insertSQLCache = Mutex<[[String]: String]>([:])

    static func insertSQL(_ databaseID: Int64, _ keys: [String]) -> String {
        let key = [String(databaseID)] + keys
        if let sql = insertSQLCache.withLock({ $0[key] }) { return sql }
        let sql = "INSERT INTO \(ProfileTable.name(databaseID)) (\(keys.joined(separator: ", "))) VALUES (\(keys.map { _ in "?" }.joined(separator: ", ")))"
        insertSQLCache.withLock { cache in
            if cache.count > 512 { cache.removeAll() }
            cache[key] = sql
        }
        return sql
    }

    /// Saves an edit made on `expectedVersion`; if the profile changed since, throws `EditConflict` and writes nothing.
    /// The form sends every field: an empty one clears the value (refused for a required field).
    public func update(databaseID: Int64, profileID: String, _ input: ProfileInput, expectedVersion: Int64, actor: Int64?,
                       origin: ChangeOrigin = .form) throws {
        let now = clock.now()
        try pool.write { db in
            let writer = try ProfileWriter.open(db, databaseID: databaseID, actor: actor, origin: origin, now: now)
            guard let row = try db.queryOne(Profiles.select(databaseID) + " WHERE profile_id = ?", [profileID]) else {
                throw ValidationError(field: "profile", "No such profile.")
            }
            let current = Profiles.profile(row, writer.catalogue.columns)
            if current.version != expectedVersion { throw EditConflict(current: current) }
            let status = ProfileStatus(text: input.status)
            try writer.update(row, input.values.mapValues { .text($0) }, status: status,
                              otherErrors: status == nil ? Profiles.statusError : [:])
            if status != current.status { forgetCounts(databaseID) }
        }
    }

    /// Deletes the profile with its history (ON DELETE CASCADE).
    public func delete(databaseID: Int64, profileID: String) throws {
        let deleted = try pool.write { try $0.run("DELETE FROM \(ProfileTable.name(databaseID)) WHERE profile_id = ?", [profileID]) }
        if deleted == 0 { throw ValidationError(field: "profile", "No such profile.") }
        forgetCounts(databaseID)
    }

    /// One page, newest first (by creation or by last activity), continuing after a keyset cursor: no OFFSET,
    /// so a deep page costs what the first one does.
    public func list(databaseID: Int64, _ query: ProfileQuery) throws -> ProfilePage {
        try pool.read { db in
            var columns = try catalogues.catalogue(databaseID, db).columns
            var select = Profiles.select(databaseID)
            if let wanted = query.fields {
                // Only the columns the caller shows: a page of 50 profiles then copies a few values per row, not all.
                columns = columns.filter { wanted.contains($0.key) }
                select = "SELECT id, profile_id, email, status, created_at, updated_at, last_interaction_at, version"
                    + columns.map { ", " + $0.column }.joined() + " FROM \(ProfileTable.name(databaseID))"
            }
            let sortColumn = query.sort == .created ? "id" : "last_interaction_at"
            var conditions: [String] = []
            var params: [any SQLBindable] = []
            let (searchSQL, searchParams) = Profiles.searchCondition(query.search, db.dialect)
            if let searchSQL { conditions.append(searchSQL); params += searchParams }
            if let status = query.status { conditions.append("status = ?"); params.append(status.rawValue) }
            if let after = query.after {
                if query.sort == .created {
                    conditions.append("id < ?"); params.append(after.id)
                } else {
                    conditions.append("(last_interaction_at < ? OR (last_interaction_at = ? AND id < ?))"); params += [after.key, after.key, after.id]
                }
            }
            let whereSQL = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
            let order = query.sort == .created ? " ORDER BY id DESC" : " ORDER BY last_interaction_at DESC, id DESC"
            let rows = try db.query(select + whereSQL + order + " LIMIT ?", params + [query.limit + 1])
            let profiles = rows.prefix(query.limit).map { Profiles.profile($0, columns) }
            var next: (Int64, Int64)?
            if rows.count > query.limit, let last = rows.prefix(query.limit).last {
                next = (last.int64(sortColumn) ?? 0, last.int64("id") ?? 0)
            }
            return ProfilePage(profiles: Array(profiles), next: next)
        }
    }

    public func count(databaseID: Int64, search: String, status: ProfileStatus?) throws -> Int {
        let key = "\(databaseID)|\(status?.rawValue ?? -1)|\(search)"
        let now = clock.now()
        if let hit = countCache.read({ $0[key] }), hit.expires > now { return hit.count }
        let count = try countNow(databaseID: databaseID, search: search, status: status)
        countCache.write { cache in
            if cache.count > 1000 { cache.removeAll() }
            cache[key] = (count, now + Profiles.countTTL)
        }
        return count
    }

    func forgetCounts(_ databaseID: Int64) {
        countCache.write { cache in cache = cache.filter { !$0.key.hasPrefix("\(databaseID)|") } }
    }

    func countNow(databaseID: Int64, search: String, status: ProfileStatus?) throws -> Int {
        try pool.read { db in
            var conditions: [String] = []
            var params: [any SQLBindable] = []
            let (searchSQL, searchParams) = Profiles.searchCondition(search, db.dialect)
            if let searchSQL { conditions.append(searchSQL); params += searchParams }
            if let status { conditions.append("status = ?"); params.append(status.rawValue) }
            let whereSQL = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
            return try db.prepare("SELECT COUNT(*) FROM \(ProfileTable.name(databaseID))" + whereSQL).query(params).first?[0].int ?? 0
        }
    }

    /// Search by email (exact, indexed), profile id (exact, indexed), phone, or name prefix.
    static func searchCondition(_ raw: String, _ dialect: Dialect) -> (String?, [any SQLBindable]) {
        let like = dialect.likeIgnoringCase
        let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { return (nil, []) }
        if text.contains("@") { return ("email = ?", [text.lowercased()]) }
        if text.count == 24, text.allSatisfy({ $0.isHexDigit }) { return ("profile_id = ?", [text.lowercased()]) }
        if let phone = PhoneNumber.normalize(text) { return ("phones \(like) ? ESCAPE '\\'", ["%\"" + phone + "\"%"]) }
        let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
        return ("(s_fname \(like) ? ESCAPE '\\' OR s_lname \(like) ? ESCAPE '\\')", [escaped + "%", escaped + "%"])
    }

    /// The profile's history, newest first, optionally of one type and since a time.
    public func history(databaseID: Int64, rowID: Int64, type: String?, since: Int64?, limit: Int = 200) throws -> [HistoryEntry] {
        try pool.read { db in
            var sql = "SELECT h.at, h.type, u.email AS actor, h.details FROM \(ProfileTable.historyName(databaseID)) h LEFT JOIN users u ON u.id = h.actor WHERE h.profile = ?"
            var params: [any SQLBindable] = [rowID]
            if let type { sql += " AND h.type = ?"; params.append(type) }
            if let since { sql += " AND h.at >= ?"; params.append(since) }
            sql += " ORDER BY h.at DESC, h.id DESC LIMIT ?"
            params.append(limit)
            return try db.query(sql, params).map {
                HistoryEntry(at: $0.int64("at") ?? 0, type: $0.string("type") ?? "", actorEmail: $0.string("actor"), details: $0.string("details") ?? "")
            }
        }
    }
}
