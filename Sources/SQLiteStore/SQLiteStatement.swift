import StoreCore
import CSQLite

/// A prepared statement. Deliberately not Sendable: it belongs to one connection, used on one thread at a time.
public final class SQLiteStatement {
    let handle: OpaquePointer
    public let sql: String
    unowned let connection: SQLiteConnection
    /// When the connection's cache last handed this statement out (it keeps the most recently used).
    var lastUse: UInt64 = 0

    init(connection: SQLiteConnection, sql: String) throws(SQLiteError) {
        self.connection = connection
        self.sql = sql
        var stmt: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let rc = sql.withCString { sqlite3_prepare_v3(connection.handle, $0, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, &tail) }
        guard rc == SQLITE_OK, let stmt else {
            throw connection.error(code: rc, sql: sql)
        }
        // One statement per prepare: trailing SQL would silently be ignored, so refuse it.
        if let tail, tail.pointee != 0 {
            let rest = String(cString: tail)
            if !rest.allSatisfy({ $0.isWhitespace || $0 == ";" }) {
                sqlite3_finalize(stmt)
                throw SQLiteError(extendedCode: SQLITE_MISUSE, message: "more than one statement in one prepare", sql: sql)
            }
        }
        self.handle = stmt
    }

    deinit { sqlite3_finalize(handle) }

    public var parameterCount: Int { Int(sqlite3_bind_parameter_count(handle)) }

    /// Resets the statement and binds the given values to ?1…?N.
    public func bind(_ values: [any SQLBindable]) throws(SQLiteError) {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        guard values.count == parameterCount else {
            throw SQLiteError(extendedCode: SQLITE_RANGE, message: "expected \(parameterCount) parameters, got \(values.count)", sql: sql)
        }
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value.sqlValue {
            case .null: rc = sqlite3_bind_null(handle, index)
            case .integer(let v): rc = sqlite3_bind_int64(handle, index, v)
            case .real(let v): rc = sqlite3_bind_double(handle, index, v)
            case .text(let v):
                let length = Int32(v.utf8.count)
                rc = v.withCString { roster_sqlite3_bind_text_transient(handle, index, $0, length) }
            case .blob(let bytes):
                rc = bytes.withUnsafeBytes { raw in
                    roster_sqlite3_bind_blob_transient(handle, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, Int32(raw.count))
                }
            }
            guard rc == SQLITE_OK else { throw connection.error(code: rc, sql: sql) }
        }
    }

    /// Steps once; returns true while a row is available.
    public func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let err = connection.error(code: rc, sql: sql)
            sqlite3_reset(handle)
            throw err
        }
    }

    public var columnNames: [String] {
        (0..<sqlite3_column_count(handle)).map { String(cString: sqlite3_column_name(handle, $0)) }
    }

    private var resultNames: [String] = []
    private var resultNamesGeneration: Int32 = -1

    /// The result's column names, read once and kept until SQLite re-prepares the statement (after a schema change,
    /// `SELECT *` may have other columns). Call after a step: the re-prepare happens inside `sqlite3_step`.
    var resultColumnNames: [String] {
        let generation = sqlite3_stmt_status(handle, SQLITE_STMTSTATUS_REPREPARE, 0)
        if generation != resultNamesGeneration {
            resultNames = columnNames
            resultNamesGeneration = generation
        }
        return resultNames
    }

    func currentValues(count: Int32) -> [SQLValue] {
        var values: [SQLValue] = []
        values.reserveCapacity(Int(count))
        for i in 0..<count {
            switch sqlite3_column_type(handle, i) {
            case SQLITE_NULL: values.append(.null)
            case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(handle, i)))
            case SQLITE_FLOAT: values.append(.real(sqlite3_column_double(handle, i)))
            case SQLITE_BLOB:
                let n = Int(sqlite3_column_bytes(handle, i))
                if let p = sqlite3_column_blob(handle, i), n > 0 {
                    values.append(.blob(Array(UnsafeRawBufferPointer(start: p, count: n))))
                } else {
                    values.append(.blob([]))
                }
            default:
                if let p = sqlite3_column_text(handle, i) {
                    let n = Int(sqlite3_column_bytes(handle, i))
                    values.append(.text(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)))
                } else {
                    values.append(.text(""))
                }
            }
        }
        return values
    }

    /// Runs the statement with the values and returns every row.
    public func query(_ values: [any SQLBindable] = []) throws(SQLiteError) -> [Row] {
        try bind(values)
        defer { sqlite3_reset(handle) }
        var rows: [Row] = []
        while try step() {
            let names = resultColumnNames
            rows.append(Row(columns: names, values: currentValues(count: Int32(names.count))))
        }
        return rows
    }

    /// Calls `body` for each row without collecting them; for streaming exports and large scans.
    public func forEach(_ values: [any SQLBindable] = [], _ body: (Row) throws -> Void) throws {
        try bind(values)
        defer { sqlite3_reset(handle) }
        while try step() {
            let names = resultColumnNames
            try body(Row(columns: names, values: currentValues(count: Int32(names.count))))
        }
    }

    /// Runs a statement that returns no rows; returns the number of rows it changed.
    @discardableResult
    public func execute(_ values: [any SQLBindable] = []) throws(SQLiteError) -> Int {
        try bind(values)
        defer { sqlite3_reset(handle) }
        while try step() {}
        return Int(sqlite3_changes64(connection.handle))
    }
}
