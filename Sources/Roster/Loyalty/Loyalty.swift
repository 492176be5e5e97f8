import Foundation
import Store

public struct LoyaltyProgram: Sendable, Equatable {
    public let id: Int64
    public let name: String
    public let description: String
    public let createdAt: Int64
    public let free: Int
    public let attached: Int
    public let activated: Int
    /// Taken back from a profile; never handed out again.
    public let detached: Int

    init(row: Row) {
        id = row.int64("id") ?? 0
        name = row.string("name") ?? ""
        description = row.string("description") ?? ""
        createdAt = row.int64("created_at") ?? 0
        free = row.int("free") ?? 0
        attached = row.int("attached") ?? 0
        activated = row.int("activated") ?? 0
        detached = row.int("detached") ?? 0
    }
}

public struct CodeImportResult: Sendable, Equatable {
    public var added = 0
    public var duplicates = 0
    /// Line numbers and reasons of lines that were not codes.
    public var invalid: [(line: Int, reason: String)] = []
    public static func == (a: CodeImportResult, b: CodeImportResult) -> Bool {
        a.added == b.added && a.duplicates == b.duplicates && a.invalid.count == b.invalid.count
    }
}

public enum LoyaltyStore {
    static let programColumns = """
        SELECT p.id, p.name, p.description, p.created_at,
               (SELECT COUNT(*) FROM promo_codes c WHERE c.program_id = p.id AND c.status = 'free') AS free,
               (SELECT COUNT(*) FROM promo_codes c WHERE c.program_id = p.id AND c.status = 'attached') AS attached,
               (SELECT COUNT(*) FROM promo_codes c WHERE c.program_id = p.id AND c.status = 'activated') AS activated,
               (SELECT COUNT(*) FROM promo_codes c WHERE c.program_id = p.id AND c.status = 'detached') AS detached
        FROM loyalty_programs p
        """
    static let all = NamedQuery("loyalty.all", "\(programColumns) ORDER BY p.name COLLATE NOCASE")
    /// Names only, for labels: the code counts of `all` read every program's codes.
    static let names = NamedQuery("loyalty.names", "SELECT id, name FROM loyalty_programs")
    static func names(_ db: Connection) throws -> [Int64: String] {
        var names: [Int64: String] = [:]
        for row in try db.query(LoyaltyStore.names) { if let id = row.int64("id") { names[id] = row.string("name") ?? "" } }
        return names
    }
    static let byID = NamedQuery("loyalty.byID", "\(programColumns) WHERE p.id = ?")
    static let byName = NamedQuery("loyalty.byName", "SELECT id, name FROM loyalty_programs WHERE name = ? COLLATE NOCASE")
    static let insert = NamedQuery("loyalty.insert", "INSERT INTO loyalty_programs (name, description, created_at) VALUES (?, ?, ?)")
    static let delete = NamedQuery("loyalty.delete", "DELETE FROM loyalty_programs WHERE id = ?")
    static let insertCode = NamedQuery("promoCodes.insert", "INSERT INTO promo_codes (program_id, code, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
    static let recentCodes = NamedQuery("promoCodes.recent", """
        SELECT code, status, profile_id, attached_at FROM promo_codes WHERE program_id = ? ORDER BY id DESC LIMIT ?
        """)

    static var queries: [NamedQuery] { [all, names, byID, byName, insert, delete, insertCode, recentCodes] }
}

public final class Loyalty: Sendable {
    let pool: DatabasePool
    let clock: Clock

    public init(pool: DatabasePool, clock: Clock = .system) {
        self.pool = pool
        self.clock = clock
    }

    public static let maxCodeLength = 64

    public func list() throws -> [LoyaltyProgram] {
        try pool.read { try $0.query(LoyaltyStore.all).map(LoyaltyProgram.init(row:)) }
    }

    public func get(_ id: Int64) throws -> LoyaltyProgram? {
        try pool.read { try $0.queryOne(LoyaltyStore.byID, [id]).map(LoyaltyProgram.init(row:)) }
    }

    public func recentCodes(_ id: Int64, limit: Int = 50) throws -> [(code: String, status: String, profileID: String?)] {
        try pool.read { db in
            try db.query(LoyaltyStore.recentCodes, [id, limit]).map { ($0.string("code") ?? "", $0.string("status") ?? "", $0.string("profile_id")) }
        }
    }

    @discardableResult
    public func create(name rawName: String, description rawDescription: String) throws -> LoyaltyProgram {
        let name = rawName.trimmingCharacters(in: .whitespacesAndNewlines)
        let description = rawDescription.trimmingCharacters(in: .whitespacesAndNewlines)
        var errors: [String: String] = [:]
        if name.isEmpty { errors["name"] = "Enter a name." } else if name.count > 200 { errors["name"] = "A name has at most 200 characters." }
        if description.count > 2000 { errors["description"] = "A description has at most 2,000 characters." }
        if !errors.isEmpty { throw ValidationError(errors) }
        let now = clock.now()
        return try pool.write { db in
            if try db.queryOne(LoyaltyStore.byName, [name]) != nil { throw ValidationError(field: "name", "Another program is already called \(name).") }
            try db.run(LoyaltyStore.insert, [name, description, now])
            return LoyaltyProgram(row: try readBack(try db.queryOne(LoyaltyStore.byID, [try db.lastInsertedID()]), "program"))
        }
    }

    /// Adds codes from pasted text or an uploaded text/CSV file: one code per line (in a CSV, the first column).
    /// A code is unique within its program: repeats are counted, not added twice. Bad lines are listed; good ones are added.
    public func addCodes(to programID: Int64, text: String) throws -> CodeImportResult {
        var result = CodeImportResult()
        var codes: [String] = []
        var seen = Set<String>()
        let body = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        for (index, rawLine) in body.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if let cut = line.firstIndex(where: { $0 == "," || $0 == ";" || $0 == "\t" }) { line = String(line[..<cut]) }
            line = line.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
            if line.isEmpty { continue }
            if line.count > Loyalty.maxCodeLength {
                result.invalid.append((index + 1, "longer than \(Loyalty.maxCodeLength) characters")); continue
            }
            if line.contains(where: { $0.isWhitespace || $0.unicodeScalars.contains { $0.properties.generalCategory == .control } }) {
                result.invalid.append((index + 1, "contains spaces or control characters")); continue
            }
            if seen.contains(line) { result.duplicates += 1; continue }
            seen.insert(line)
            codes.append(line)
        }
        let now = clock.now()
        let added = try pool.write { db -> Int in
            guard try db.queryOne(LoyaltyStore.byID, [programID]) != nil else { throw ValidationError(field: "program", "No such program.") }
            var added = 0
            let insert = try db.cached(LoyaltyStore.insertCode)
            for code in codes { added += try insert.execute([programID, code, now]) }
            return added
        }
        result.duplicates += codes.count - added
        result.added = added
        return result
    }

    /// Refused while codes of the program are attached to profiles.
    public func delete(_ id: Int64) throws {
        try pool.write { db in
            guard let program = try db.queryOne(LoyaltyStore.byID, [id]).map(LoyaltyProgram.init(row:)) else {
                throw ValidationError(field: "program", "No such program.")
            }
            if program.attached + program.activated + program.detached > 0 {
                throw ValidationError(field: "program", "\(program.attached + program.activated + program.detached) codes of this program have been given to profiles; the program stays so that they keep their meaning.")
            }
            try db.run(LoyaltyStore.delete, [id])
        }
    }
}
