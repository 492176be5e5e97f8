import Foundation
import Store

/// `roster copy-store`: moves an installation from its SQLite file to an empty PostgreSQL database, everything at
/// once — users, databases with their per-database tables and custom columns, profiles, subscriptions, history,
/// segments and their members, tasks and their change logs, tokens and idempotency keys, webhooks.
///
/// Rows keep their ids (so profile ids, range buckets and static segment membership are the same on the other side),
/// and PostgreSQL's id sequences continue after the highest id SQLite ever handed out. The source is read on one
/// snapshot and the target written in one transaction: a copy that fails leaves the target as empty as it was.
/// Afterwards every table's row count is compared.
public enum CopyStore {
    public struct Report: Sendable {
        /// Table → rows copied (equal on both sides; a difference throws).
        public var tables: [(name: String, rows: Int)] = []
        public var rows: Int { tables.reduce(0) { $0 + $1.rows } }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Tables that belong to one profile database (`profiles_12`): made on the target by the domain's own DDL.
    static let perDatabasePrefixes: Set<String> = ["profiles", "history", "subscriptions", "relations", "segment_members"]
    /// Rows per INSERT statement, at most (fewer for wide tables: PostgreSQL takes at most 65,535 parameters).
    static let batch = 200

    static let sourceTables = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid"
    static let sourceSequences = "SELECT name, seq FROM sqlite_sequence"
    static let targetColumnTypes = """
        SELECT column_name AS name, data_type AS type FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = ?
        """
    static let targetSequence = "SELECT pg_get_serial_sequence(?, 'id') AS seq"
    static let setSequence = "SELECT setval(CAST(? AS regclass), ?)"

    /// Copies `source` (SQLite) into `target` (PostgreSQL, migrated and empty). `progress` hears about each table.
    public static func copy(from source: DatabasePool, to target: DatabasePool,
                            progress: (String, Int) -> Void = { _, _ in }) throws -> Report {
        guard source.kind == .sqlite, target.kind == .postgres else {
            throw Failure(description: "copy-store copies a SQLite installation into PostgreSQL")
        }
        let occupied = try target.read { db in
            (try db.scalar("SELECT COUNT(*) FROM users").int ?? 0) + (try db.scalar("SELECT COUNT(*) FROM databases").int ?? 0)
        }
        guard occupied == 0 else {
            throw Failure(description: "the PostgreSQL database already holds users or databases; copy into an empty one")
        }
        return try source.read { src in
            let names = try src.query(sourceTables).compactMap { $0.string("name") }
                .filter { !$0.hasPrefix("sqlite_") && $0 != "schema_migrations" }
            let fixed = names.filter { !isPerDatabase($0) }
            let sequences = Dictionary(((try? src.query(sourceSequences)) ?? []).compactMap { row -> (String, Int64)? in
                guard let name = row.string("name"), let seq = row.int64("seq") else { return nil }
                return (name, seq)
            }, uniquingKeysWith: max)
            var report = Report()
            try target.write { dst in
                for table in fixed {
                    guard try dst.scalar(dst.dialect.tableExists, [table]).int == 1 else {
                        throw Failure(description: "the table \(table) has no counterpart on PostgreSQL (a newer SQLite schema?)")
                    }
                    // Made by the first migration on both sides: the target's rows are its own.
                    if table == "schema_migrations" { continue }
                    // Rows a migration seeded on the target (settings rows) give way to the source's.
                    try dst.execute("DELETE FROM \(table)")
                    let rows = try copyTable(table, src, dst)
                    report.tables.append((table, rows))
                    progress(table, rows)
                    // Once the databases and their catalogues are in, their own tables can be made.
                    if table == "custom_fields" { try makePerDatabaseTables(src, dst) }
                }
                if !fixed.contains("custom_fields") { try makePerDatabaseTables(src, dst) }
                for table in names where isPerDatabase(table) {
                    let rows = try copyTable(table, src, dst)
                    report.tables.append((table, rows))
                    progress(table, rows)
                }
                for table in names { try continueSequence(table, after: sequences[table], dst) }
                // Verified inside the transaction: a difference rolls everything back.
                for (table, rows) in report.tables {
                    let source = try src.scalar("SELECT COUNT(*) FROM \(table)").int ?? -1
                    let copied = try dst.scalar("SELECT COUNT(*) FROM \(table)").int ?? -1
                    guard source == copied, copied == rows else {
                        throw Failure(description: "\(table): \(source) rows in SQLite, \(copied) in PostgreSQL")
                    }
                }
            }
            return report
        }
    }

    static func isPerDatabase(_ table: String) -> Bool {
        guard let underscore = table.lastIndex(of: "_") else { return false }
        let digits = table[table.index(after: underscore)...]
        return !digits.isEmpty && digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber)
            && perDatabasePrefixes.contains(String(table[..<underscore]))
    }

    /// Each database's tables as the domain makes them, its custom columns typed, and the indexes the source has.
    static func makePerDatabaseTables(_ src: Connection, _ dst: Connection) throws {
        for database in try dst.query("SELECT id FROM databases ORDER BY id").compactMap({ $0.int64("id") }) {
            for statement in ProfileTable.createStatements(database, dst.dialect) { try dst.execute(statement) }
            let fields = try dst.query("SELECT id, type, indexed FROM custom_fields WHERE database_id = ? ORDER BY id", [database])
            for field in fields {
                guard let id = field.int64("id"), let type = FieldType(rawValue: field.string("type") ?? "") else { continue }
                try dst.execute(ProfileTable.addColumn(database, id, type, dst.dialect))
                if field.bool("indexed") { try dst.execute(ProfileTable.createIndex(database, id)) }
            }
            // Indexes made on demand (matching by a field or by phone in imports and the API).
            let indexes = Set(try src.query(src.dialect.tableIndexes, [ProfileTable.name(database)]).compactMap { $0.string("name") })
            for field in fields {
                guard let id = field.int64("id"), indexes.contains(ProfileTable.indexName(database, id)) else { continue }
                try dst.execute(ProfileTable.createIndex(database, id))
            }
            if indexes.contains("\(ProfileTable.name(database))_phone1") {
                try dst.execute(ProfileTable.createFirstPhoneIndex(database, dst.dialect))
            }
        }
    }

    /// Copies one table's rows (the columns both sides have), `batch` rows per INSERT; returns the rows copied.
    static func copyTable(_ table: String, _ src: Connection, _ dst: Connection) throws -> Int {
        let targetTypes = Dictionary(try dst.query(targetColumnTypes, [table]).compactMap { row -> (String, String)? in
            guard let name = row.string("name"), let type = row.string("type") else { return nil }
            return (name, type)
        }, uniquingKeysWith: { a, _ in a })
        let sourceColumns = try src.query(src.dialect.tableColumns, [table]).compactMap { $0.string("name") }
        let columns = sourceColumns.filter { targetTypes[$0] != nil }
        guard !columns.isEmpty else { return 0 }
        let types = columns.map { targetTypes[$0] ?? "text" }
        let list = columns.map { "\"\($0)\"" }.joined(separator: ", ")
        func insert(_ rows: Int) -> String {
            let one = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
            return "INSERT INTO \(table) (\(list)) VALUES " + Array(repeating: one, count: rows).joined(separator: ", ")
        }
        let batch = max(1, min(CopyStore.batch, 65_535 / columns.count))
        let full = try dst.prepare(insert(batch))
        var pending: [SQLValue] = []
        var pendingRows = 0
        var copied = 0
        let order = columns.contains("id") ? " ORDER BY id" : ""
        try src.prepare("SELECT \(list) FROM \(table)\(order)").forEach { row in
            for (i, type) in types.enumerated() { pending.append(try coerce(row[i], to: type, table: table, column: columns[i])) }
            pendingRows += 1
            if pendingRows == batch {
                try full.execute(pending)
                copied += pendingRows
                pending.removeAll(keepingCapacity: true)
                pendingRows = 0
            }
        }
        if pendingRows > 0 {
            try dst.run(insert(pendingRows), pending)
            copied += pendingRows
        }
        return copied
    }

    /// A SQLite value as the PostgreSQL column's type takes it (SQLite keeps whatever was bound; PostgreSQL does not).
    static func coerce(_ value: SQLValue, to type: String, table: String, column: String) throws -> SQLValue {
        func refuse() -> Failure {
            Failure(description: "\(table).\(column): the value \(value) does not fit PostgreSQL's \(type)")
        }
        switch (type, value) {
        case (_, .null): return .null
        // PostgreSQL's text cannot hold U+0000 (libpq would cut the value there): refused rather than shortened.
        case (_, .text(let t)) where t.utf8.contains(0):
            throw Failure(description: "\(table).\(column): a value contains a NUL character, which PostgreSQL's text cannot hold; "
                          + "remove it in SQLite first")
        case ("bigint", .integer), ("integer", .integer), ("double precision", .real), ("text", .text), ("bytea", .blob):
            return value
        case ("bigint", .real(let d)), ("integer", .real(let d)):
            guard let i = Int64(exactly: d) else { throw refuse() }
            return .integer(i)
        case ("bigint", .text(let s)), ("integer", .text(let s)):
            guard let i = Int64(s) else { throw refuse() }
            return .integer(i)
        case ("double precision", .integer(let i)): return .real(Double(i))
        case ("double precision", .text(let s)):
            guard let d = Double(s) else { throw refuse() }
            return .real(d)
        case ("text", .integer(let i)): return .text(String(i))
        case ("text", .real(let d)): return .text(String(d))
        case ("text", .blob(let b)): return .text(String(decoding: b, as: UTF8.self))
        default: throw refuse()
        }
    }

    /// An id column's sequence continues after the highest id SQLite handed out (AUTOINCREMENT never reuses one,
    /// even after the row is gone), or after the highest id present.
    static func continueSequence(_ table: String, after handedOut: Int64?, _ dst: Connection) throws {
        let columns = try dst.query(dst.dialect.tableColumns, [table]).compactMap { $0.string("name") }
        guard columns.contains("id"), let sequence = try dst.scalar(targetSequence, [table]).string else { return }
        let highest = try dst.scalar("SELECT MAX(id) FROM \(table)").int64 ?? 0
        let next = max(highest, handedOut ?? 0)
        if next > 0 { _ = try dst.query(setSequence, [sequence, next]) }
    }
}
