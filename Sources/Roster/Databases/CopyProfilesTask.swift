import Foundation
import Store

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
        for id in [source, target] where try db.queryOne(DatabaseStore.byID, [id]) == nil {
            throw ValidationError(field: "task", "Database \(id) no longer exists.")
        }
        let maxID = try db.scalar("SELECT COALESCE(MAX(id), 0) FROM \(ProfileTable.name(source))").int64 ?? 0
        let total = try db.scalar("SELECT COUNT(*) FROM \(ProfileTable.name(source)) WHERE id <= ?", [maxID]).int ?? 0
        return (total, ["max_id": .int(maxID)])
    }

    public func runChunk(_ task: TaskRecord, limit: Int, _ db: Connection) throws -> ChunkOutcome {
        guard let source = task.databaseID, let target = task.int64Parameter("target_database_id") else {
            throw ValidationError(field: "task", "The task lacks its source or target database.")
        }
        let maxID = task.int64Parameter("max_id") ?? 0
        let sourceFields = try Databases.fields(source, db)
        let targetFields = Dictionary(try Databases.fields(target, db).map { ($0.name.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
        let mapping = sourceFields.compactMap { field in targetFields[field.name.lowercased()].map { (field, $0) } }
        let standardColumns = StandardField.all.filter { $0.column.hasPrefix("s_") }.map(\.column)
        let selectColumns = (["id", "profile_id", "email", "phones", "status"] + standardColumns + mapping.map { $0.0.column })
            .joined(separator: ", ")
        let rows = try db.prepare("SELECT \(selectColumns) FROM \(ProfileTable.name(source)) WHERE id > ? AND id <= ? ORDER BY id LIMIT ?")
            .query([task.cursor, maxID, limit])

        let emailTaken = try db.prepare("SELECT 1 FROM \(ProfileTable.name(target)) WHERE email = ?")
        var outcome = ChunkOutcome(cursor: task.cursor)
        // Every copy goes through the profile write path: the target's types, required fields and defaults apply.
        let writer = try ProfileWriter.open(db, databaseID: target, actor: task.createdBy, origin: .copy, now: clock.now(), skipTriggers: true,
                                            taskID: task.id)
        let standard = StandardField.all.filter { $0.kind != .email }
        for row in rows {
            outcome.cursor = row.int64("id") ?? outcome.cursor
            outcome.processed += 1
            let sourceProfileID = row.string("profile_id") ?? ""
            var inputs: [String: FieldValueInput] = [:]
            let email = row.string("email") ?? ""
            if email != ProfileIdentity.placeholderEmail(sourceProfileID) {
                if !(try emailTaken.query([email]).isEmpty) {
                    outcome.skipped += 1
                    continue
                }
                inputs["email"] = .text(email)
            }
            for field in standard {
                let value = row[field.column]
                if value == .null { continue }
                switch field.kind {
                case .typed(let type): inputs[field.key] = .text(type.display(value))
                case .phones: inputs[field.key] = .text(FieldType.tags.display(value))
                case .email: break
                }
            }
            for (from, to) in mapping where row[from.column] != .null {
                inputs[to.name] = .text(from.type.display(row[from.column]))
            }
            let status = ProfileStatus(rawValue: row.int("status") ?? 0) ?? .subscribed
            do {
                try db.run("SAVEPOINT copy_profile")
                try writer.create(inputs, status: status, details: ["from_database": .int(source), "from_profile_id": .string(sourceProfileID)])
                try db.run("RELEASE copy_profile")
                outcome.added += 1
            } catch let error as ValidationError {
                try db.run("ROLLBACK TO copy_profile")
                try db.run("RELEASE copy_profile")
                outcome.failed += 1
                outcome.message = "Last failure: profile \(sourceProfileID): \(error.fieldErrors.sorted { $0.key < $1.key }.map(\.value).joined(separator: " "))"
            }
        }
        outcome.finished = rows.count < limit
        return outcome
    }
}
