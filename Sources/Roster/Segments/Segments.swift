import Foundation
import Store
import Synchronization

public enum SegmentKind: String, Sendable, CaseIterable {
    case dynamic, `static`
    public var label: String { self == .dynamic ? "Dynamic" : "Static" }
}

public struct Segment: Sendable {
    public let id: Int64
    public let databaseID: Int64
    public let name: String
    public let kind: SegmentKind
    /// The stored selection (dynamic segments); empty rules for static ones.
    public let selection: Selection
    public let createdAt: Int64
    public let updatedAt: Int64

    init(row: Row) {
        id = row.int64("id") ?? 0
        databaseID = row.int64("database_id") ?? 0
        name = row.string("name") ?? ""
        kind = SegmentKind(rawValue: row.string("kind") ?? "") ?? .dynamic
        selection = JSONValue.parse(row.string("selection") ?? "").flatMap(Selection.init(json:)) ?? Selection()
        createdAt = row.int64("created_at") ?? 0
        updatedAt = row.int64("updated_at") ?? 0
    }
}

public struct SegmentInput: Sendable {
    public var name: String
    public var kind: SegmentKind
    public var selection: Selection
    public init(name: String, kind: SegmentKind = .dynamic, selection: Selection = Selection()) {
        self.name = name
        self.kind = kind
        self.selection = selection
    }
}

enum SegmentStore {
    static let insert = NamedQuery("segments.insert", """
        INSERT INTO segments (database_id, name, kind, selection, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
        """)
    static let byID = NamedQuery("segments.byID", "SELECT * FROM segments WHERE id = ?")
    static let all = NamedQuery("segments.all", "SELECT * FROM segments ORDER BY database_id, name COLLATE NOCASE, id")
    static let ofDatabase = NamedQuery("segments.ofDatabase", "SELECT * FROM segments WHERE database_id = ? ORDER BY name COLLATE NOCASE, id")
    static let update = NamedQuery("segments.update", "UPDATE segments SET name = ?, selection = ?, updated_at = ? WHERE id = ?")
    static let delete = NamedQuery("segments.delete", "DELETE FROM segments WHERE id = ?")
    static let staticIDs = NamedQuery("segments.staticIDs", "SELECT id FROM segments WHERE database_id = ? AND kind = 'static'")
    static let nameTaken = NamedQuery("segments.nameTaken", "SELECT 1 FROM segments WHERE database_id = ? AND name = ? COLLATE NOCASE AND id <> ?")
    static var queries: [NamedQuery] { [insert, byID, all, ofDatabase, update, delete, staticIDs, nameTaken] }

    static func membersTable(_ databaseID: Int64) -> String { "segment_members_\(databaseID)" }

    /// Members of the database's static segments; a deleted profile leaves every segment with it (ON DELETE CASCADE).
    static func createMembers(_ databaseID: Int64, _ dialect: Dialect) -> [String] {
        let t = membersTable(databaseID)
        let integer = dialect.type(.integer)
        return [
            """
            CREATE TABLE IF NOT EXISTS \(t) (
                segment_id \(integer) NOT NULL,
                profile    \(integer) NOT NULL REFERENCES \(ProfileTable.name(databaseID))(id) ON DELETE CASCADE,
                added_at   \(integer) NOT NULL,
                PRIMARY KEY (segment_id, profile)
            )\(dialect.withoutRowID)
            """,
            "CREATE INDEX IF NOT EXISTS \(t)_profile ON \(t)(profile)",
        ]
    }
}

/// Segments: saved selections (dynamic) and fixed sets of profiles (static), with their counts and members.
public final class Segments: Sendable {
    let pool: DatabasePool
    let clock: Clock
    /// Counts shown on the segment list, kept a few seconds (counting a million profiles per segment per view
    /// would cost more than the page). Keyed by segment id and its last change.
    private let countCache = Mutex<[String: (SelectionCounts, Int64)]>([:])

    let catalogues: CatalogueCache

    public init(pool: DatabasePool, clock: Clock = .system, catalogues: CatalogueCache = CatalogueCache()) {
        self.pool = pool
        self.clock = clock
        self.catalogues = catalogues
    }

    public func list(databaseID: Int64? = nil) throws -> [Segment] {
        try pool.read { db in
            if let databaseID { return try db.query(SegmentStore.ofDatabase, [databaseID]).map(Segment.init(row:)) }
            return try db.query(SegmentStore.all).map(Segment.init(row:))
        }
    }

    public func get(_ id: Int64) throws -> Segment? {
        try pool.read { try $0.queryOne(SegmentStore.byID, [id]).map(Segment.init(row:)) }
    }

    public func context(databaseID: Int64) throws -> SelectionContext {
        try pool.read { try SelectionContext.load(databaseID, now: clock.now(), $0) }
    }

    /// Compiles a selection against the database's current catalogue (throws the rule errors): see `ProfileSelection`.
    public func compile(databaseID: Int64, _ selection: Selection) throws -> CompiledSelection {
        try pool.read { try ProfileSelection(databaseID: databaseID, narrowing: selection).compile($0, now: clock.now()) }
    }

    func validate(_ input: SegmentInput, databaseID: Int64, id: Int64, _ db: Connection) throws {
        var errors: [String: String] = [:]
        let name = input.name.trimmed
        if name.isEmpty { errors["name"] = "Enter a name." }
        if name.count > 200 { errors["name"] = "A name has at most 200 characters." }
        if try db.queryOne(SegmentStore.nameTaken, [databaseID, name, id]) != nil { errors["name"] = "This database already has a segment called \(name)." }
        if input.kind == .dynamic {
            do { _ = try ProfileSelection(databaseID: databaseID, narrowing: input.selection).compile(db, now: clock.now()) }
            catch let error as ValidationError { errors.merge(error.fieldErrors) { a, _ in a } }
        }
        if !errors.isEmpty { throw ValidationError(errors) }
    }

    public func create(databaseID: Int64, _ input: SegmentInput, actor: Int64?) throws -> Segment {
        let now = clock.now()
        let id = try pool.write { db -> Int64 in
            guard try db.queryOne(DatabaseStore.byID, [databaseID]) != nil else { throw ValidationError(field: "database", "Choose a database.") }
            try validate(input, databaseID: databaseID, id: 0, db)
            try db.run(SegmentStore.insert, [databaseID, input.name.trimmed, input.kind.rawValue, input.selection.json.canonical, actor, now, now])
            return try db.lastInsertedID()
        }
        return try readBack(try get(id), "segment")
    }

    public func update(_ id: Int64, _ input: SegmentInput) throws {
        guard let segment = try get(id) else { throw ValidationError(field: "segment", "No such segment.") }
        try pool.write { db in
            try validate(SegmentInput(name: input.name, kind: segment.kind, selection: input.selection), databaseID: segment.databaseID, id: id, db)
            try db.run(SegmentStore.update, [input.name.trimmed, segment.kind == .dynamic ? input.selection.json.canonical : "{}", clock.now(), id])
        }
    }

    /// Deletes a segment (a static one with its member list; the profiles stay).
    public func delete(_ id: Int64) throws {
        guard let segment = try get(id) else { throw ValidationError(field: "segment", "No such segment.") }
        try pool.write { db in
            if segment.kind == .static {
                try db.run("DELETE FROM \(SegmentStore.membersTable(segment.databaseID)) WHERE segment_id = ?", [id])
            }
            try db.run(SegmentStore.delete, [id])
        }
    }

    // MARK: Counting and listing what a selection takes

    public func counts(databaseID: Int64, _ selection: Selection) throws -> SelectionCounts {
        let compiled = try compile(databaseID: databaseID, selection)
        return try pool.read { try Segments.counts(compiled, selection.hasRange, $0) }
    }

    static func counts(_ c: CompiledSelection, _ hasRange: Bool, _ db: Connection) throws -> SelectionCounts {
        let inRange = try db.prepare("SELECT COUNT(*) FROM \(c.table) p WHERE \(c.whereClause)").query(c.whereParams).first?[0].int ?? 0
        var matching = inRange
        if hasRange {
            matching = try db.prepare("SELECT COUNT(*) FROM \(c.table) p WHERE \(c.rules)").query(c.rulesParams).first?[0].int ?? 0
        }
        return SelectionCounts(matchingRules: matching, inRange: inRange, selected: c.limit.map { min($0, inRange) } ?? inRange)
    }

    /// The segment's counts: a static segment's members, or what a dynamic one selects now. nil with a message
    /// when the saved rules no longer fit the database (a deleted field, a detached resource).
    public func counts(_ segment: Segment, cached: Bool = false) -> Result<SelectionCounts, ValidationError> {
        let key = "\(segment.id)|\(segment.updatedAt)"
        let now = clock.now()
        if cached, let hit = countCache.withLock({ $0[key] }), hit.1 > now { return .success(hit.0) }
        do {
            let counts: SelectionCounts
            if segment.kind == .static {
                let n = try pool.read { db -> Int in
                    return try db.scalar("SELECT COUNT(*) FROM \(SegmentStore.membersTable(segment.databaseID)) WHERE segment_id = ?", [segment.id]).int ?? 0
                }
                counts = SelectionCounts(matchingRules: n, inRange: n, selected: n)
            } else {
                counts = try self.counts(databaseID: segment.databaseID, segment.selection)
            }
            countCache.withLock { cache in
                if cache.count > 1000 { cache.removeAll() }
                cache[key] = (counts, now + 10)
            }
            return .success(counts)
        } catch let error as ValidationError {
            return .failure(error)
        } catch {
            return .failure(ValidationError(field: "segment", "\(error)"))
        }
    }

    /// The id of the last profile a limited selection takes (creation order), so that paging and tasks stop
    /// there; nil when there is no limit.
    static func limitBoundary(_ c: CompiledSelection, _ db: Connection) throws -> Int64? {
        guard let limit = c.limit else { return nil }
        let row = try db.prepare("SELECT p.id FROM \(c.table) p WHERE \(c.whereClause) ORDER BY p.id LIMIT 1 OFFSET ?").query(c.whereParams + [.integer(Int64(limit - 1))]).first
        return row?.int64("id") ?? Int64.max
    }

    /// Row ids of the selected profiles after `after`, in creation order, at most `count`; `upTo` bounds a limited selection.
    static func ids(_ c: CompiledSelection, after: Int64, upTo: Int64?, count: Int, _ db: Connection) throws -> [Int64] {
        try db.prepare("SELECT p.id FROM \(c.table) p WHERE \(c.whereClause) AND p.id > ? AND p.id <= ? ORDER BY p.id LIMIT ?")
            .query(c.whereParams + [.integer(after), .integer(upTo ?? Int64.max), .integer(Int64(count))]).compactMap { $0.int64("id") }
    }

    /// A page of the segment's members in creation order, after a row id.
    public func members(_ segment: Segment, after: Int64, limit: Int = 50) throws -> (profiles: [Profile], next: Int64?) {
        try pool.read { db in
            let columns = try catalogues.catalogue(segment.databaseID, db).columns
            let rows: [Row]
            let table = ProfileTable.name(segment.databaseID)
            if segment.kind == .static {
                rows = try db.prepare("SELECT p.* FROM \(table) p JOIN \(SegmentStore.membersTable(segment.databaseID)) m ON m.profile = p.id WHERE m.segment_id = ? AND p.id > ? ORDER BY p.id LIMIT ?")
                    .query([segment.id, after, limit + 1])
            } else {
                let c = try ProfileSelection(databaseID: segment.databaseID, narrowing: segment.selection).compile(db, now: clock.now())
                let bound = try Segments.limitBoundary(c, db) ?? Int64.max
                rows = try db.prepare("SELECT p.* FROM \(table) p WHERE \(c.whereClause) AND p.id > ? AND p.id <= ? ORDER BY p.id LIMIT ?")
                    .query(c.whereParams + [.integer(after), .integer(bound), .integer(Int64(limit + 1))])
            }
            let page = rows.prefix(limit).map { Profiles.profile($0, columns) }
            return (Array(page), rows.count > limit ? page.last?.rowID : nil)
        }
    }

    // MARK: Static segment membership

    func requireStatic(_ segmentID: Int64, databaseID: Int64? = nil) throws -> Segment {
        guard let segment = try get(segmentID), segment.kind == .static, databaseID == nil || segment.databaseID == databaseID else {
            throw ValidationError(field: "segment", "Choose a static segment of this database.")
        }
        return segment
    }

    /// Adds one profile to a static segment (recorded in its history). False if it was a member already.
    @discardableResult
    public func addMember(segmentID: Int64, databaseID: Int64, profileRowID: Int64, actor: Int64?) throws -> Bool {
        let segment = try requireStatic(segmentID, databaseID: databaseID)
        let now = clock.now()
        return try pool.write { db in
            let added = try db.run("INSERT INTO \(SegmentStore.membersTable(databaseID)) (segment_id, profile, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                               [segmentID, profileRowID, now])
            if added == 1 {
                try ProfileWriter.open(db, databaseID: databaseID, actor: actor, origin: .form, now: now)
                    .record(profileRowID, HistoryEvent.segmentEntered, ["segment": .int(segmentID), "name": .string(segment.name)])
            }
            return added == 1
        }
    }

    public func removeMember(segmentID: Int64, databaseID: Int64, profileRowID: Int64, actor: Int64?) throws {
        let segment = try requireStatic(segmentID, databaseID: databaseID)
        let now = clock.now()
        try pool.write { db in
            let removed = try db.run("DELETE FROM \(SegmentStore.membersTable(databaseID)) WHERE segment_id = ? AND profile = ?", [segmentID, profileRowID])
            if removed == 0 { throw ValidationError(field: "profile", "The profile is not in this segment.") }
            try ProfileWriter.open(db, databaseID: databaseID, actor: actor, origin: .form, now: now)
                .record(profileRowID, HistoryEvent.segmentLeft, ["segment": .int(segmentID), "name": .string(segment.name)])
        }
    }

    /// Adds everyone a dynamic segment selects now to a static one, in one set-based transaction; returns how many
    /// joined (members already there are not counted twice). Each new member's history records it.
    public func addMembers(to staticID: Int64, from source: Segment, actor: Int64?) throws -> Int {
        let target = try requireStatic(staticID, databaseID: source.databaseID)
        let now = clock.now()
        let databaseID = source.databaseID
        return try pool.write { db in
            let c = try ProfileSelection(databaseID: databaseID, segmentID: source.id).compile(db, now: now)
            let bound = try Segments.limitBoundary(c, db) ?? Int64.max
            let members = SegmentStore.membersTable(databaseID)
            try db.execute("CREATE TEMP TABLE IF NOT EXISTS joining (profile \(db.dialect.type(.integer)) PRIMARY KEY)")
            try db.run("DELETE FROM \(db.dialect.temp("joining"))")
            try db.prepare("""
                INSERT INTO \(db.dialect.temp("joining")) (profile) SELECT p.id FROM \(c.table) p WHERE \(c.whereClause) AND p.id <= ?
                AND NOT EXISTS (SELECT 1 FROM \(members) m WHERE m.segment_id = ? AND m.profile = p.id)
                """).execute(c.whereParams + [.integer(bound), .integer(staticID)])
            let joined = try db.prepare("INSERT INTO \(members) (segment_id, profile, added_at) SELECT ?, profile, ? FROM \(db.dialect.temp("joining"))").execute([staticID, now])
            let details = JSONValue.object(["segment": .int(staticID), "name": .string(target.name), "from_segment": .int(source.id)]).canonical
            try db.prepare("INSERT INTO \(ProfileTable.historyName(databaseID)) (profile, at, type, actor, details) SELECT profile, ?, ?, ?, ? FROM \(db.dialect.temp("joining"))")
                .execute([.integer(now), .text(HistoryEvent.segmentEntered), actor.map { SQLValue.integer($0) } ?? .null, .text(details)])
            if joined > 0 { try db.run(History.bumpStatsBy, [databaseID, now, HistoryEvent.segmentEntered, joined, joined]) }
            // Entering a segment is an interaction and engages the profile (EventRules).
            if EventRules.isInteraction(HistoryEvent.segmentEntered, origin: .form) {
                try db.prepare("UPDATE \(c.table) SET last_interaction_at = \(db.dialect.greatest("COALESCE(last_interaction_at, 0)", "?")) WHERE id IN (SELECT profile FROM \(db.dialect.temp("joining")))")
                    .execute([now])
            }
            if EventRules.engages(HistoryEvent.segmentEntered) {
                try db.prepare("UPDATE \(c.table) SET engaged_at = COALESCE(engaged_at, ?) WHERE id IN (SELECT profile FROM \(db.dialect.temp("joining")))").execute([now])
            }
            try db.run("DELETE FROM \(db.dialect.temp("joining"))")
            return joined
        }
    }

    /// The static segments a profile belongs to.
    public func staticSegments(databaseID: Int64, profileRowID: Int64) throws -> [Segment] {
        try pool.read { db in
            return try db.query("SELECT s.* FROM segments s JOIN \(SegmentStore.membersTable(databaseID)) m ON m.segment_id = s.id WHERE m.profile = ? ORDER BY s.name", [profileRowID])
                .map(Segment.init(row:))
        }
    }
}
