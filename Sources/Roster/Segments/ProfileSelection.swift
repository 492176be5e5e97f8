import Store

/// What a bulk update, its preview, a count, an export and the CLI select — decided here and nowhere else: the
/// profiles of a database, or of one of its segments, narrowed by the rules, range and limit added on top.
///
/// A segment's own selection (its rules, range and limit, or a static segment's members) always applies; the
/// narrowing can only take profiles away from it, so removing rules in a form never widens a segment's update.
public struct ProfileSelection: Sendable, Equatable {
    public var databaseID: Int64
    public var segmentID: Int64?
    /// The rules, range and limit added to the database or the segment.
    public var narrowing: Selection

    public init(databaseID: Int64, segmentID: Int64? = nil, narrowing: Selection = Selection()) {
        self.databaseID = databaseID
        self.segmentID = segmentID
        self.narrowing = narrowing
    }

    /// The segment, checked to belong to the database.
    func segment(_ db: Connection) throws -> Segment? {
        guard let segmentID else { return nil }
        guard let row = try db.queryOne(SegmentStore.byID, [segmentID]), Segment(row: row).databaseID == databaseID else {
            throw ValidationError(field: "segment", "The segment does not exist or belongs to another database.")
        }
        return Segment(row: row)
    }

    /// True when something narrows the selection below the whole database: a rule, a range, a limit above 0 — of
    /// the segment or of the narrowing — or a static segment's membership. Deleting and global unsubscribe need it.
    public func hasCondition(_ db: Connection) throws -> Bool {
        if narrowing.hasCondition { return true }
        guard let segment = try segment(db) else { return false }
        return segment.kind == .static || segment.selection.hasCondition
    }

    /// The selection as SQL: the narrowing's rules and range, within the segment's selection; the narrowing's limit.
    func compile(_ db: Connection, now: Int64) throws -> CompiledSelection {
        let context = try SelectionContext.load(databaseID, now: now, db)
        let own = try SelectionCompiler.compile(narrowing, context)
        guard let segment = try segment(db) else { return own }
        let scope: String
        var scopeParams: [SQLValue]
        switch segment.kind {
        case .static:
            scope = "EXISTS (SELECT 1 FROM \(SegmentStore.membersTable(databaseID)) m WHERE m.segment_id = ? AND m.profile = p.id)"
            scopeParams = [.integer(segment.id)]
        case .dynamic:
            let inner: CompiledSelection
            do { inner = try SelectionCompiler.compile(segment.selection, context) } catch let error as ValidationError {
                throw ValidationError(field: "segment", "The segment \(segment.name) no longer fits the database: "
                                      + error.fieldErrors.values.sorted().joined(separator: " "))
            }
            // The inner query's alias shadows the outer one, so the segment's rules read the inner row.
            let bound = try Segments.limitBoundary(inner, db) ?? Int64.max
            scope = "p.id IN (SELECT p.id FROM \(inner.table) p WHERE \(inner.whereClause) AND p.id <= ?)"
            scopeParams = inner.whereParams + [.integer(bound)]
        }
        return CompiledSelection(rules: "(\(own.rules)) AND \(scope)", rulesParams: own.rulesParams + scopeParams,
                                 range: own.range, rangeParams: own.rangeParams, limit: own.limit, table: own.table)
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["database_id": .int(databaseID), "narrowing": narrowing.json]
        if let segmentID { o["segment_id"] = .int(segmentID) }
        return .object(o)
    }
}
