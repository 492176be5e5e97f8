import Foundation
import Store

/// Exports a database's profiles to a CSV file, as a background task.
///
/// RFC 4180: comma-separated, CRLF line ends, fields quoted when they hold a comma, quote or line break, quotes
/// doubled. Text cells that begin with `=`, `+`, `-`, `@`, tab or carriage return get a leading `'` so that a
/// spreadsheet does not run them as formulas (numbers and dates are written as they are).
/// The file is written chunk by chunk; each chunk's rows and the file's committed size are recorded in the same
/// transaction, and a resumed task first cuts the file back to that size, so no row appears twice.
public struct ExportProfilesTask: TaskHandler {
    public static let kind = "export_profiles"
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func path(for taskID: Int64) -> String { (directory as NSString).appendingPathComponent("export-\(taskID).csv") }

    /// A column of the export: a standard field key or a custom field name.
    struct Column {
        let header: String
        let sqlColumn: String
        let type: FieldType?
    }

    static func columns(_ task: TaskRecord, _ db: Connection) throws -> [Column] {
        guard let databaseID = task.databaseID else { return [] }
        let custom = try Databases.fields(databaseID, db)
        var wanted: [String] = []
        if case .array(let items)? = task.parameters["fields"] {
            wanted = items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
        }
        var columns = [Column(header: "profile_id", sqlColumn: "profile_id", type: .line), Column(header: "status", sqlColumn: "status", type: .number)]
        for key in wanted {
            if let standard = StandardField.named(key) {
                let type: FieldType? = { if case .typed(let t) = standard.kind { return t } else { return nil } }()
                columns.append(Column(header: standard.key, sqlColumn: standard.column, type: type))
            } else if let field = custom.first(where: { $0.name == key }) {
                columns.append(Column(header: field.name, sqlColumn: field.column, type: field.type))
            }
        }
        return columns
    }

    /// The selection of a segment's export (its rules, or a static segment's members); nil for a whole database.
    static func selection(_ task: TaskRecord, _ db: Connection) throws -> ProfileSelection? {
        guard let id = task.int64Parameter("segment_id"), let databaseID = task.databaseID else { return nil }
        guard try db.queryOne(SegmentStore.byID, [id]) != nil else { throw ValidationError(field: "task", "The segment was deleted.") }
        return ProfileSelection(databaseID: databaseID, segmentID: id)
    }

    public func prepare(_ task: TaskRecord, _ db: Connection) throws -> (total: Int, parameters: [String: JSONValue]) {
        guard let databaseID = task.databaseID, try db.queryOne(DatabaseStore.byID, [databaseID]) != nil else {
            throw ValidationError(field: "task", "The database no longer exists.")
        }
        var maxID = try db.scalar("SELECT COALESCE(MAX(id), 0) FROM \(ProfileTable.name(databaseID))").int64 ?? 0
        var total = try db.scalar("SELECT COUNT(*) FROM \(ProfileTable.name(databaseID)) WHERE id <= ?", [maxID]).int ?? 0
        var frozen = false
        if let selection = try ExportProfilesTask.selection(task, db) {
            // A segment's export: the profiles its selection takes now, frozen as the task's targets, so rules
            // relative to today, or a segment edited mid-way, cannot change what the file holds.
            total = try TaskTargets.freeze(selection, taskID: task.id, now: Clock.system.now(), db)
            frozen = true
        }
        try createFile(for: task.id)
        return (total, ["max_id": .int(maxID), "targets": .bool(frozen)])
    }

    public func runChunk(_ task: TaskRecord, limit: Int, _ db: Connection) throws -> ChunkOutcome {
        guard let databaseID = task.databaseID else { throw ValidationError(field: "task", "The task has no database.") }
        let columns = try ExportProfilesTask.columns(task, db)
        var text = ""
        if task.outputBytes == 0 {
            text += columns.map { ExportProfilesTask.cell($0.header, neutralize: true) }.joined(separator: ",") + "\r\n"
        }
        let select = "SELECT p.id, \(columns.map { "p." + $0.sqlColumn }.joined(separator: ", "))"
        let rows: [Row]
        var outcome = ChunkOutcome(cursor: task.cursor)
        // "targets" records how the task was prepared. A segment export prepared by an older build has no frozen
        // targets, and reading it as a whole-database export would write every profile: it stops instead.
        if task.int64Parameter("segment_id") != nil && task.parameters["targets"] == nil {
            throw ValidationError(field: "task", "This segment export was started by an older version of Roster; start it again.")
        }
        if case .bool(true)? = task.parameters["targets"] {
            // A segment's frozen targets; a profile deleted since the start is counted as processed, not written.
            let ids = try TaskTargets.next(taskID: task.id, after: task.cursor, limit: limit, db)
            // The targets drive the loop (CROSS JOIN fixes the order): each chunk reads its own profiles by row id.
            rows = try db.prepare(select + " FROM task_targets t \(db.dialect.orderedJoin) \(ProfileTable.name(databaseID)) p ON p.id = t.profile WHERE t.task_id = ? AND t.profile > ? AND t.profile <= ? ORDER BY t.profile")
                .query([task.id, task.cursor, ids.last ?? task.cursor])
            outcome.cursor = ids.last ?? task.cursor
            outcome.processed = ids.count
            outcome.finished = ids.count < limit
        } else {
            rows = try db.prepare(select + " FROM \(ProfileTable.name(databaseID)) p WHERE p.id > ? AND p.id <= ? ORDER BY p.id LIMIT ?")
                .query([task.cursor, task.int64Parameter("max_id") ?? 0, limit])
            outcome.cursor = rows.last?.int64("id") ?? task.cursor
            outcome.processed = rows.count
            outcome.finished = rows.count < limit
        }
        for row in rows {
            outcome.added += 1
            text += columns.map { column -> String in
                let value = row[column.sqlColumn]
                let shown = column.type.map { $0.display(value) } ?? (value.string ?? "")
                let textual = column.type.map { [.line, .enum, .tags, .object, .array].contains($0) } ?? true
                return ExportProfilesTask.cell(shown, neutralize: textual)
            }.joined(separator: ",") + "\r\n"
        }
        outcome.outputBytes = try append(text, for: task)
        return outcome
    }

    /// An empty output file, readable only by Roster's user: it holds personal data.
    func createFile(for taskID: Int64) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        FileManager.default.createFile(atPath: path(for: taskID), contents: nil, attributes: [.posixPermissions: 0o600])
    }

    func append(_ text: String, for task: TaskRecord) throws -> Int64 {
        try TaskOutputFile.append(text, to: path(for: task.id), committedBytes: task.outputBytes)
    }

    /// One RFC 4180 cell, neutralised against formula injection when it is text.
    public static func cell(_ value: String, neutralize: Bool) -> String {
        var text = value
        if neutralize, let first = text.unicodeScalars.first, ["=", "+", "-", "@", "\t", "\r"].contains(first) { text = "'" + text }
        // Bytes, not Characters: "\r\n" is one Character in Swift and equals neither "\r" nor "\n".
        if text.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 10 || $0 == 13 }) {
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return text
    }
}

/// The output file of a task (an export, an import's failed rows), written chunk by chunk.
enum TaskOutputFile {
    /// Cuts the file back to what committed chunks wrote (dropping anything a crashed chunk left), appends `text`,
    /// and returns the new size, to be committed with the chunk. Creates the file (0600: personal data) if needed.
    static func append(_ text: String, to path: String, committedBytes: Int64) throws -> Int64 {
        if !FileManager.default.fileExists(atPath: path) {
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: UInt64(committedBytes))
        try handle.seekToEnd()
        if !text.isEmpty { try handle.write(contentsOf: Data(text.utf8)) }
        try handle.synchronize()
        return committedBytes + Int64(text.utf8.count)
    }
}
