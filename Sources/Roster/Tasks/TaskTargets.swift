import Store

/// The profiles a task works on, fixed when it starts: the selection's matches at that moment, up to its limit.
/// Profiles that match later are left alone, and ones that stop matching mid-way are still handled as launched,
/// so a task does what its preview and its total said. The runner drops a task's targets when it ends (done,
/// cancelled or failed); an interrupted task keeps them, to resume.
enum TaskTargets {
    static let insert = "INSERT INTO task_targets (task_id, profile) SELECT ?, p.id FROM %@ p WHERE %@ AND p.id <= ?"
    static let next = NamedQuery("taskTargets.next", "SELECT profile FROM task_targets WHERE task_id = ? AND profile > ? ORDER BY profile LIMIT ?")
    static let drop = NamedQuery("taskTargets.drop", "DELETE FROM task_targets WHERE task_id = ?")
    static var queries: [NamedQuery] { [next, drop] }

    /// The row ids a selection takes now, in order (a preview reads them on a read snapshot: no writer waits).
    static func select(_ selection: ProfileSelection, now: Int64, _ db: Connection) throws -> [Int64] {
        let compiled = try selection.compile(db, now: now)
        let bound = try Segments.limitBoundary(compiled, db) ?? Int64.max
        return try db.prepare("SELECT p.id FROM \(compiled.table) p WHERE \(compiled.whereClause) AND p.id <= ? ORDER BY p.id")
            .query(compiled.whereParams + [.integer(bound)]).compactMap { $0.int64("id") }
    }

    /// Writes given row ids as the targets of `taskID` (a preview's chunk).
    static func write(_ ids: ArraySlice<Int64>, taskID: Int64, _ db: Connection) throws {
        let list = JSONValue.array(ids.map { .int($0) }).canonical
        try db.run("INSERT INTO task_targets (task_id, profile) SELECT ?, value FROM (\(db.dialect.integersFromJSONParameter)) v", [taskID, list])
    }

    /// Writes the targets of `taskID`; returns how many.
    static func freeze(_ selection: ProfileSelection, taskID: Int64, now: Int64, _ db: Connection) throws -> Int {
        let compiled = try selection.compile(db, now: now)
        let bound = try Segments.limitBoundary(compiled, db) ?? Int64.max
        let sql = String(format: insert, compiled.table, compiled.whereClause)
        return try db.prepare(sql).execute([.integer(taskID)] + compiled.whereParams + [.integer(bound)])
    }

    /// The next `limit` target row ids after `cursor`, in order.
    static func next(taskID: Int64, after cursor: Int64, limit: Int, _ db: Connection) throws -> [Int64] {
        try db.query(next, [taskID, cursor, limit]).compactMap { $0.int64("profile") }
    }

    static func drop(taskID: Int64, _ db: Connection) throws {
        try db.run(drop, [taskID])
    }
}
