import Foundation
import Store

public struct AttachedCode: Sendable, Equatable {
    public let id: Int64
    public let program: String
    public let code: String
    public let status: String
    public let attachedAt: Int64?
}

public struct Relation: Sendable, Equatable {
    public let id: Int64
    public let name: String
    /// The other profile, and whether this profile is the one the relation starts from.
    public let otherProfileID: String
    public let otherEmail: String
    public let outgoing: Bool
    public let properties: String
}

/// The rest of the profile page: promo codes attached by hand, relations to other profiles, and the export of
/// a profile's personal data (what a subject-access request needs).
public final class ProfileExtras: Sendable {
    let pool: DatabasePool
    let clock: Clock

    public init(pool: DatabasePool, clock: Clock = .system) {
        self.pool = pool
        self.clock = clock
    }

    static func profileRow(_ databaseID: Int64, _ profileID: String, _ db: Connection) throws -> Int64 {
        guard let id = try db.query("SELECT id FROM \(ProfileTable.name(databaseID)) WHERE profile_id = ?", [profileID]).first?.int64("id") else {
            throw ValidationError(field: "profile", "No such profile.")
        }
        return id
    }

    // MARK: Promo codes

    public func codes(databaseID: Int64, profileID: String) throws -> [AttachedCode] {
        try pool.read { db in
            try db.query("""
                SELECT c.id, p.name AS program, c.code, c.status, c.attached_at FROM promo_codes c JOIN loyalty_programs p ON p.id = c.program_id
                WHERE c.database_id = ? AND c.profile_id = ? ORDER BY c.attached_at DESC, c.id DESC
                """, [databaseID, profileID]).map {
                AttachedCode(id: $0.int64("id") ?? 0, program: $0.string("program") ?? "", code: $0.string("code") ?? "",
                             status: $0.string("status") ?? "", attachedAt: $0.int64("attached_at"))
            }
        }
    }

    /// Attaches the program's oldest free code; a code goes to one profile only, ever.
    @discardableResult
    public func attachCode(databaseID: Int64, profileID: String, programID: Int64, actor: Int64?) throws -> String {
        let now = clock.now()
        return try pool.write { db in
            let row = try ProfileExtras.profileRow(databaseID, profileID, db)
            let writer = try ProfileWriter.open(db, databaseID: databaseID, actor: actor, origin: .form, now: now)
            guard let code = try writer.attachFreeCode(rowID: row, profileID: profileID, programID: programID) else {
                throw ValidationError(field: "program", "This program has no free codes left.")
            }
            return code
        }
    }

    /// Detaches a code from the profile. It is not handed out again.
    public func detachCode(databaseID: Int64, profileID: String, codeID: Int64, actor: Int64?) throws {
        let now = clock.now()
        try pool.write { db in
            let row = try ProfileExtras.profileRow(databaseID, profileID, db)
            guard let code = try db.queryOne("SELECT code FROM promo_codes WHERE id = ? AND database_id = ? AND profile_id = ? AND status IN ('attached', 'activated')",
                                             [codeID, databaseID, profileID])?.string("code") else {
                throw ValidationError(field: "code", "No such code on this profile.")
            }
            try ProfileWriter.open(db, databaseID: databaseID, actor: actor, origin: .form, now: now)
                .detachCode(rowID: row, codeID: codeID, code: code)
        }
    }

    // MARK: Relations

    public func relations(databaseID: Int64, profileID: String) throws -> [Relation] {
        try pool.read { db in
            let row = try ProfileExtras.profileRow(databaseID, profileID, db)
            let t = ProfileTable.name(databaseID)
            return try db.query("""
                SELECT r.id, r.name, r.properties, r.profile = ? AS outgoing, o.profile_id AS other, o.email AS other_email
                FROM relations_\(databaseID) r JOIN \(t) o ON o.id = CASE WHEN r.profile = ? THEN r.related ELSE r.profile END
                WHERE r.profile = ? OR r.related = ? ORDER BY r.id
                """, [row, row, row, row]).map {
                Relation(id: $0.int64("id") ?? 0, name: $0.string("name") ?? "", otherProfileID: $0.string("other") ?? "",
                         otherEmail: $0.string("other_email") ?? "", outgoing: $0.bool("outgoing"), properties: $0.string("properties") ?? "{}")
            }
        }
    }

    /// Adds "this profile —name→ other profile" (found by email or profile id), with optional `key=value` lines.
    public func addRelation(databaseID: Int64, profileID: String, name rawName: String, other: String, properties: String, actor: Int64?) throws {
        let name = rawName.trimmingCharacters(in: .whitespaces)
        var errors: [String: String] = [:]
        if name.isEmpty || name.count > 100 { errors["relation_name"] = "Name the relation (at most 100 characters), e.g. recommended by." }
        var props: [String: JSONValue] = [:]
        for (i, line) in properties.split(whereSeparator: \.isNewline).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let kv = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, ObjectRules.validKey(kv[0]) else {
                errors["properties"] = "Line \(i + 1): write key=value; keys use Latin letters, digits, _ and -."
                break
            }
            props[kv[0]] = .string(kv[1])
        }
        if props.count > 20 { errors["properties"] = "At most 20 properties." }
        if !errors.isEmpty { throw ValidationError(errors) }
        let now = clock.now()
        try pool.write { db in
            let row = try ProfileExtras.profileRow(databaseID, profileID, db)
            let key = other.trimmingCharacters(in: .whitespaces)
            guard let otherRow = try db.prepare("SELECT id FROM \(ProfileTable.name(databaseID)) WHERE email = ? OR profile_id = ?")
                .query([key.lowercased(), key.lowercased()]).first?.int64("id") else {
                throw ValidationError(field: "other", "No profile in this database has that email or profile id.")
            }
            if otherRow == row { throw ValidationError(field: "other", "A profile cannot be related to itself.") }
            try db.prepare("INSERT INTO relations_\(databaseID) (profile, related, name, properties, created_at) VALUES (?, ?, ?, ?, ?)")
                .execute([row, otherRow, name, JSONValue.object(props).canonical, now])
        }
    }

    public func deleteRelation(databaseID: Int64, profileID: String, relationID: Int64) throws {
        try pool.write { db in
            let row = try ProfileExtras.profileRow(databaseID, profileID, db)
            let n = try db.prepare("DELETE FROM relations_\(databaseID) WHERE id = ? AND (profile = ? OR related = ?)").execute([relationID, row, row])
            if n == 0 { throw ValidationError(field: "relation", "No such relation.") }
        }
    }

    // MARK: Personal data

    /// Everything Roster holds about one profile, as JSON: fields, subscriptions, promo codes, relations, history.
    public func personalData(databaseID: Int64, profile: Profile, database: String) throws -> String {
        let subs = try Subscriptions(pool: pool, clock: clock).list(databaseID: databaseID, profileRowID: profile.rowID)
        let history = try Profiles(pool: pool, clock: clock).history(databaseID: databaseID, rowID: profile.rowID, type: nil, since: nil, limit: 100_000)
        let value: JSONValue = .object([
            "database": .string(database),
            "profile_id": .string(profile.profileID),
            "status": .string(profile.status.name),
            "created_at": .string(UTCTime.rfc3339(milliseconds: profile.createdAt * 1000)),
            "fields": .object(profile.values.filter { !$0.value.isEmpty }.mapValues { .string($0) }),
            "subscriptions": .array(subs.map {
                .object(["resource_id": .int($0.resourceID), "channel": .string($0.channel.rawValue), "contact": .string($0.contact),
                         "status": .string($0.status.name), "priority": .int(Int64($0.priority)), "categories": .array($0.categories.map { .string($0) }),
                         "deleted": .bool($0.deleted)])
            }),
            "promo_codes": .array(try codes(databaseID: databaseID, profileID: profile.profileID).map {
                .object(["program": .string($0.program), "code": .string($0.code), "status": .string($0.status)])
            }),
            "relations": .array(try relations(databaseID: databaseID, profileID: profile.profileID).map {
                .object(["name": .string($0.name), "other_profile_id": .string($0.otherProfileID), "direction": .string($0.outgoing ? "outgoing" : "incoming")])
            }),
            "history": .array(history.map {
                .object(["at": .string(UTCTime.rfc3339(milliseconds: $0.at * 1000)), "type": .string($0.type), "details": JSONValue.parse($0.details) ?? .string($0.details)])
            }),
        ])
        return value.canonical
    }
}
