import Foundation
import SQLiteStore

/// Copies every profile of one database into another, as a background task.
///
/// Fields are mapped by name: every standard field, and each custom field whose name exists in the target
/// (ignoring case), converted to the target's type. A profile whose email already exists in the target is
/// skipped; one with a value that does not fit the target's field is counted as failed (copied whole or not at all).
/// The set of profiles is frozen when the task starts: profiles added later are not copied.
/// Each copy gets a "created" event in the target's history, saying where it came from.
public struct CopyProfilesTask: TaskHandler {
    public static let kind = "copy_profiles"
    let clock: Clock

    public init(clock: Clock = .system) { self.clock = clock }

    public func prepare(_ task: TaskRecord, _ db: Connection) throws -> (total: Int, parameters: [String: JSONValue]) {
        guard let source = task.databaseID, let target = task.int64Parameter("target_database_id") else {
            throw ValidationError(field: "task", "The task lacks its source or target database.")
        }
        for id in [source, target] where try db.queryOne(DatabaseStore.byID.sql, [id]) == nil {
            throw ValidationError(field: "task", "Database \(id) no longer exists.")
        }
        let maxID = try db.scalar("SELECT COALESCE(MAX(id), 0) FROM \(ProfileTable.name(source))").int64 ?? 0
        let total = try db.scalar("SELECT COUNT(*) FROM \(ProfileTable.name(source)) WHERE id <= ?", [maxID]).int ?? 0
        return (total, ["max_id": .int(maxID)])
    }

    public func runChunk(_ task: TaskRecord, limit: Int, _ db: Connection) throws -> ChunkOutcome {
        let source = task.databaseID!
        let target = task.int64Parameter("target_database_id")!
        let maxID = task.int64Parameter("max_id") ?? 0
        let sourceFields = try Databases.fields(source, db)
        let targetFields = Dictionary(try Databases.fields(target, db).map { ($0.name.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
        let mapping = sourceFields.compactMap { field in targetFields[field.name.lowercased()].map { (field, $0) } }
        let standardColumns = StandardField.all.filter { $0.column.hasPrefix("s_") }.map(\.column)

        let selectColumns = (["id", "profile_id", "email", "phones", "status"] + standardColumns + mapping.map { $0.0.column }).joined(separator: ", ")
        let rows = try db.prepare("SELECT \(selectColumns) FROM \(ProfileTable.name(source)) WHERE id > ? AND id <= ? ORDER BY id LIMIT ?")
            .query([task.cursor, maxID, limit])

        let insertColumns = ["profile_id", "email", "phones", "status", "range_bucket"] + standardColumns
            + ["created_at", "updated_at", "last_interaction_at"] + mapping.map { $0.1.column }
        let insert = try db.prepare("INSERT INTO \(ProfileTable.name(target)) (\(insertColumns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: insertColumns.count).joined(separator: ", ")))")
        let event = try db.prepare(ProfileTable.insertEvent(target))
        let stats = try db.cached(History.bumpStats.sql)
        let emailTaken = try db.prepare("SELECT 1 FROM \(ProfileTable.name(target)) WHERE email = ?")

        var outcome = ChunkOutcome(cursor: task.cursor)
        let now = clock.now()
        for row in rows {
            outcome.cursor = row.int64("id") ?? outcome.cursor
            outcome.processed += 1
            let newID = ProfileIdentity.newProfileID()
            var email = row.string("email") ?? ""
            if email == ProfileIdentity.placeholderEmail(row.string("profile_id") ?? "") { email = ProfileIdentity.placeholderEmail(newID) }
            if !(try emailTaken.query([email]).isEmpty) {
                outcome.skipped += 1
                continue
            }
            var values: [any SQLBindable] = [newID, email, row["phones"], row["status"], ProfileIdentity.rangeBucket(newID)]
            values += standardColumns.map { row[$0] }
            values += [now, now, now]
            var misfit: String?
            for (from, to) in mapping {
                let value = row[from.column]
                if value == .null || (from.type == to.type && from.options == to.options) { values.append(value); continue }
                switch to.type.parse(from.type.display(value), options: to.options) {
                case .success(let converted): values.append(converted)
                case .failure(let e): misfit = "\(to.name) \(e.reason)"
                }
                if misfit != nil { break }
            }
            if let misfit {
                outcome.failed += 1
                outcome.message = "Last failure: profile \(row.string("profile_id") ?? ""): \(misfit)."
                continue
            }
            try insert.execute(values)
            try event.execute([db.lastInsertRowID, now, HistoryEvent.created, task.createdBy,
                               JSONValue.object(["how": .string("copy"), "from_database": .int(source), "from_profile_id": .string(row.string("profile_id") ?? "")]).canonical])
            try stats.execute([target, now, HistoryEvent.created])
            outcome.added += 1
        }
        outcome.finished = rows.count < limit
        return outcome
    }
}
