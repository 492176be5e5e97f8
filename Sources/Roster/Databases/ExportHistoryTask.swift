import Foundation
import Store

/// Exports the action history of a database's profiles to CSV (profile_id, time, type, actor, details), as a
/// background task with the same exactly-once file handling as the profile export.
public struct ExportHistoryTask: TaskHandler {
    public static let kind = "export_history"
    let files: ExportProfilesTask

    public init(files: ExportProfilesTask) { self.files = files }

    public func prepare(_ task: TaskRecord, _ db: Connection) throws -> (total: Int, parameters: [String: JSONValue]) {
        guard let databaseID = task.databaseID, try db.queryOne(DatabaseStore.byID, [databaseID]) != nil else {
            throw ValidationError(field: "task", "The database no longer exists.")
        }
        try files.createFile(for: task.id)
        let table = ProfileTable.historyName(databaseID)
        let maxID = try db.scalar("SELECT COALESCE(MAX(id), 0) FROM \(table)").int64 ?? 0
        let total = try db.scalar("SELECT COUNT(*) FROM \(table) WHERE id <= ?", [maxID]).int ?? 0
        return (total, ["max_id": .int(maxID)])
    }

    public func runChunk(_ task: TaskRecord, limit: Int, _ db: Connection) throws -> ChunkOutcome {
        guard let databaseID = task.databaseID else { throw ValidationError(field: "task", "The task has no database.") }
        let rows = try db.prepare("""
            SELECT h.id, p.profile_id, h.at, h.type, u.email AS actor, h.details FROM \(ProfileTable.historyName(databaseID)) h
            JOIN \(ProfileTable.name(databaseID)) p ON p.id = h.profile LEFT JOIN users u ON u.id = h.actor
            WHERE h.id > ? AND h.id <= ? ORDER BY h.id LIMIT ?
            """).query([task.cursor, task.int64Parameter("max_id") ?? 0, limit])
        var text = task.outputBytes == 0 ? "profile_id,time,type,actor,details\r\n" : ""
        var outcome = ChunkOutcome(cursor: task.cursor)
        for row in rows {
            outcome.cursor = row.int64("id") ?? outcome.cursor
            outcome.processed += 1
            outcome.added += 1
            let time = FieldType.formatDate(Date(timeIntervalSince1970: TimeInterval(row.int64("at") ?? 0)))
            text += [row.string("profile_id") ?? "", time, row.string("type") ?? "", row.string("actor") ?? "", row.string("details") ?? ""]
                .map { ExportProfilesTask.cell($0, neutralize: true) }.joined(separator: ",") + "\r\n"
        }
        outcome.outputBytes = try files.append(text, for: task)
        // Rows past max_id may exist; the chunk is the last when it came back short.
        outcome.finished = rows.count < limit
        return outcome
    }
}
