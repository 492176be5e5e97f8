import CPostgres
import Foundation
import StoreCore

/// One connection to PostgreSQL through libpq: the only Swift code that calls `PQ*`.
///
/// Like SQLite's `Connection`, it is used by one thread at a time and is not `Sendable`. Every statement is prepared
/// once per connection (named `r1`, `r2`, …) and run with bound parameters; store code writes `?` placeholders,
/// numbered here for PostgreSQL. Parameters travel as text (blobs as binary bytea); results come back as text and
/// are turned into `SQLValue`s by the column's type, so store code reads integers, reals, text and blobs the same
/// way from either store.
public final class PGConnection {
    private let handle: OpaquePointer
    /// Prepared statements by their text, with the numbered text's parameter count.
    private var prepared: [String: (name: String, parameters: Int)] = [:]
    private var nextStatement = 0
    public static let preparedLimit = 512

    /// Opens `url` (`postgres://user@host/db`, or libpq's `key=value` form; a Unix socket is
    /// `postgres:///db?host=/run/postgresql`). Fails with libpq's reason, never with a crash.
    public init(url: String) throws(PostgresError) {
        guard let conn = PQconnectdb(url) else {
            throw PostgresError(sqlState: "", message: "libpq could not allocate a connection")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = Self.text(PQerrorMessage(conn))
            PQfinish(conn)
            throw PostgresError(sqlState: "08001", message: message.isEmpty ? "cannot connect" : message)
        }
        handle = conn
        // Times and text are the app's business: UTC, UTF-8, and no notices printed on the process's stderr.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        try execute("SET TIME ZONE 'UTC'; SET client_encoding = 'UTF8'")
    }

    deinit { PQfinish(handle) }

    /// The server's version, e.g. 150008 for 15.8.
    public var serverVersion: Int { Int(PQserverVersion(handle)) }

    /// Runs one or more statements without parameters (schema, SET, BEGIN): the simple-query protocol.
    public func execute(_ sql: String) throws(PostgresError) {
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result, sql: sql)
    }

    /// Runs a query. `prepared`: keep it prepared on this connection (named queries of fixed tables). Statements on
    /// the per-database tables go unprepared: adding a custom field changes `SELECT *`'s columns, and a plan cached
    /// before that fails ("cached plan must not change result type") on this host and on every other.
    public func query(_ sql: String, _ values: [any SQLBindable] = [], prepared: Bool = true) throws(PostgresError) -> [Row] {
        let result = try run(statement: sql, values, prepared: prepared)
        defer { PQclear(result) }
        return Self.rows(of: result)
    }

    public func queryOne(_ sql: String, _ values: [any SQLBindable] = [], prepared: Bool = true) throws(PostgresError) -> Row? {
        try query(sql, values, prepared: prepared).first
    }

    public func scalar(_ sql: String, _ values: [any SQLBindable] = [], prepared: Bool = true) throws(PostgresError) -> SQLValue {
        try queryOne(sql, values, prepared: prepared)?.values.first ?? .null
    }

    /// Runs a statement and returns how many rows it changed.
    @discardableResult
    public func run(_ sql: String, _ values: [any SQLBindable] = [], prepared: Bool = true) throws(PostgresError) -> Int {
        let result = try run(statement: sql, values, prepared: prepared)
        defer { PQclear(result) }
        return Int(Self.text(PQcmdTuples(result))) ?? 0
    }

    public var isInTransaction: Bool { PQtransactionStatus(handle) != PQTRANS_IDLE }

    /// Whether the connection still answers (a server restart or a network cut leaves it bad).
    public var isHealthy: Bool { PQstatus(handle) == CONNECTION_OK }

    public enum TransactionKind: String, Sendable {
        /// Reads and writes; rows it locks stay locked until the end.
        case readWrite = "BEGIN"
        /// One snapshot for every statement inside, as a page's reads need; refuses writes.
        case snapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    }

    /// Runs `body` in a transaction: commits when it returns, rolls back and rethrows when it throws.
    public func inTransaction<T>(_ kind: TransactionKind = .readWrite, _ body: (PGConnection) throws -> T) throws -> T {
        try execute(kind.rawValue)
        do {
            let result = try body(self)
            try execute("COMMIT")
            return result
        } catch {
            if isInTransaction { try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Prepares every query once, so a typo in SQL stops start-up instead of failing a user's request.
    public func verify(_ queries: [NamedQuery]) throws(PostgresError) {
        for query in queries {
            do {
                _ = try statement(query.text(for: .postgres))
            } catch let error {
                throw PostgresError(sqlState: error.sqlState, message: "named query \(query.name): \(error.message)", sql: query.text(for: .postgres))
            }
        }
    }

    public var preparedCount: Int { prepared.count }

    // MARK: Statements

    private func statement(_ sql: String) throws(PostgresError) -> (name: String, parameters: Int) {
        if let found = prepared[sql] { return found }
        if prepared.count >= Self.preparedLimit {
            // Rare (statements are a fixed set, plus one per dynamic table): start the cache again.
            try execute("DEALLOCATE ALL")
            prepared.removeAll(keepingCapacity: true)
        }
        nextStatement += 1
        let name = "r\(nextStatement)"
        let numbered = Placeholders.numbered(sql)
        let result = PQprepare(handle, name, numbered.sql, 0, nil)
        defer { PQclear(result) }
        try check(result, sql: sql)
        let entry = (name: name, parameters: numbered.count)
        prepared[sql] = entry
        return entry
    }

    /// Text goes to libpq as C strings, which end at the first NUL: a value holding U+0000 would be stored cut
    /// short without a word. PostgreSQL's text cannot hold it anyway, so it is refused before anything is sent.
    static func refuseNUL(_ values: [any SQLBindable], sql: String) throws(PostgresError) {
        for value in values {
            if case .text(let text) = value.sqlValue, text.utf8.contains(0) {
                throw PostgresError(sqlState: "22021", message: "a text value contains a NUL character (U+0000), which PostgreSQL "
                                    + "cannot store", sql: sql)
            }
        }
    }

    private func run(statement sql: String, _ values: [any SQLBindable], prepared: Bool) throws(PostgresError) -> OpaquePointer? {
        try Self.refuseNUL(values, sql: sql)
        let result: OpaquePointer?
        if prepared {
            let statement = try statement(sql)
            guard values.count == statement.parameters else {
                throw PostgresError(sqlState: "07001", message: "\(values.count) values for \(statement.parameters) placeholders", sql: sql)
            }
            result = Self.withParameters(values) { count, pointers, lengths, formats in
                PQexecPrepared(handle, statement.name, count, pointers, lengths, formats, 0)
            }
        } else {
            let numbered = Placeholders.numbered(sql)
            guard values.count == numbered.count else {
                throw PostgresError(sqlState: "07001", message: "\(values.count) values for \(numbered.count) placeholders", sql: sql)
            }
            // Numbers and blobs say their type, so `GREATEST(x, $1)` or `$1 + $2` need no cast; text stays untyped and
            // takes the type its place asks for (a date, a bigint column compared with '5').
            let types = values.map { Self.parameterType($0.sqlValue) }
            result = Self.withParameters(values) { count, pointers, lengths, formats in
                PQexecParams(handle, numbered.sql, count, types, pointers, lengths, formats, 0)
            }
        }
        do {
            try check(result, sql: sql)
        } catch {
            PQclear(result)
            throw error
        }
        return result
    }

    static func parameterType(_ value: SQLValue) -> Oid {
        switch value {
        case .integer: return TypeOID.int8
        case .real: return TypeOID.float8
        case .blob: return TypeOID.bytea
        case .text, .null: return 0
        }
    }

    /// Calls `body` with libpq's parameter arrays: every value in one buffer (text ones NUL-terminated, blobs as
    /// binary bytea), pinned for the call.
    private static func withParameters<R>(
        _ values: [any SQLBindable],
        _ body: (Int32, [UnsafePointer<CChar>?], [Int32], [Int32]) -> R
    ) -> R {
        var storage: [UInt8] = []
        var offsets: [Int?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        offsets.reserveCapacity(values.count)
        for value in values {
            switch value.sqlValue {
            case .null:
                offsets.append(nil); lengths.append(0); formats.append(0)
            case .blob(let bytes):
                offsets.append(storage.count); lengths.append(Int32(bytes.count)); formats.append(1)
                storage.append(contentsOf: bytes)
            case let other:
                let text = Self.parameterText(other).utf8
                offsets.append(storage.count); lengths.append(Int32(text.count)); formats.append(0)
                storage.append(contentsOf: text)
                storage.append(0)
            }
        }
        storage.append(0)  // never empty, so the base address exists
        return storage.withUnsafeBufferPointer { raw -> R in
            let base = raw.baseAddress.map(UnsafeRawPointer.init)
            let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in
                guard let offset, let base else { return nil }
                return (base + offset).assumingMemoryBound(to: CChar.self)
            }
            return body(Int32(values.count), pointers, lengths, formats)
        }
    }

    /// Runs a query through a cursor and calls `body` for each row, fetching 1,000 rows at a time: an export of a
    /// million profiles never holds them all. `body` may run other statements on this connection between rows.
    /// Outside a transaction, one is opened for the cursor's life (a cursor lives in one).
    public func forEach(_ sql: String, _ values: [any SQLBindable], _ body: (Row) throws -> Void) throws {
        try Self.refuseNUL(values, sql: sql)
        let opened = !isInTransaction
        if opened { try execute("BEGIN") }
        do {
            nextStatement += 1
            let cursor = "roster_cursor_\(nextStatement)"
            let numbered = Placeholders.numbered(sql)
            guard numbered.count == values.count else {
                throw PostgresError(sqlState: "07001", message: "\(values.count) values for \(numbered.count) placeholders", sql: sql)
            }
            let declare = "DECLARE \(cursor) NO SCROLL CURSOR FOR " + numbered.sql
            let types = values.map { Self.parameterType($0.sqlValue) }
            let declared = Self.withParameters(values) { count, pointers, lengths, formats in
                PQexecParams(handle, declare, count, types, pointers, lengths, formats, 0)
            }
            defer { PQclear(declared) }
            try check(declared, sql: sql)
            while true {
                let page = PQexec(handle, "FETCH 1000 FROM \(cursor)")
                defer { PQclear(page) }
                try check(page, sql: sql)
                let rows = Self.rows(of: page)
                for row in rows { try body(row) }
                if rows.count < 1000 { break }
            }
            try execute("CLOSE \(cursor)")
            if opened { try execute("COMMIT") }
        } catch {
            if opened && isInTransaction { try? execute("ROLLBACK") }
            throw error
        }
    }

    /// Text PostgreSQL parses back to the same value: integers in decimal, reals with every digit they need.
    static func parameterText(_ value: SQLValue) -> String {
        switch value {
        case .integer(let number): return String(number)
        case .real(let number):
            if number.isNaN { return "NaN" }
            if number.isInfinite { return number < 0 ? "-Infinity" : "Infinity" }
            return "\(number)"
        case .text(let text): return text
        case .null, .blob: return ""
        }
    }

    private func check(_ result: OpaquePointer?, sql: String?) throws(PostgresError) {
        guard let result else {
            throw PostgresError(sqlState: "", message: Self.text(PQerrorMessage(handle)), sql: sql)
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY: return
        default:
            let state = Self.text(PQresultErrorField(result, Int32(UInt8(ascii: "C"))))
            let primary = Self.text(PQresultErrorField(result, Int32(UInt8(ascii: "M"))))
            let message = primary.isEmpty ? Self.text(PQresultErrorMessage(result)) : primary
            throw PostgresError(sqlState: state, message: message.trimmingCharacters(in: .whitespacesAndNewlines), sql: sql)
        }
    }

    // MARK: Results

    /// Type OIDs from PostgreSQL's catalogue (pg_type), fixed since forever.
    enum TypeOID {
        static let bool: Oid = 16, bytea: Oid = 17, int8: Oid = 20, int2: Oid = 21, int4: Oid = 23, oid: Oid = 26
        static let float4: Oid = 700, float8: Oid = 701, numeric: Oid = 1700
    }

    private static func rows(of result: OpaquePointer?) -> [Row] {
        let rowCount = Int(PQntuples(result)), columnCount = Int(PQnfields(result))
        let names = (0..<columnCount).map { text(PQfname(result, Int32($0))) }
        let types = (0..<columnCount).map { PQftype(result, Int32($0)) }
        var rows: [Row] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<rowCount {
            var values: [SQLValue] = []
            values.reserveCapacity(columnCount)
            for c in 0..<columnCount {
                let (row, column) = (Int32(r), Int32(c))
                if PQgetisnull(result, row, column) != 0 { values.append(.null); continue }
                let length = Int(PQgetlength(result, row, column))
                let bytes = UnsafeRawBufferPointer(start: PQgetvalue(result, row, column), count: length)
                values.append(value(bytes, type: types[c]))
            }
            rows.append(Row(columns: names, values: values))
        }
        return rows
    }

    static func value(_ bytes: UnsafeRawBufferPointer, type: Oid) -> SQLValue {
        let text = String(decoding: bytes, as: UTF8.self)
        switch type {
        case TypeOID.int8, TypeOID.int2, TypeOID.int4, TypeOID.oid:
            return Int64(text).map(SQLValue.integer) ?? .text(text)
        case TypeOID.float4, TypeOID.float8, TypeOID.numeric:
            // A numeric with no fraction (SUM of bigints) reads as an integer, as SQLite's SUM gives one.
            if type == TypeOID.numeric, let whole = Int64(text) { return .integer(whole) }
            switch text {
            case "NaN": return .real(.nan)
            case "Infinity": return .real(.infinity)
            case "-Infinity": return .real(-.infinity)
            default: return Double(text).map(SQLValue.real) ?? .text(text)
            }
        case TypeOID.bool:
            return .integer(text == "t" ? 1 : 0)
        case TypeOID.bytea:
            return .blob(hexBytea(text) ?? Array(text.utf8))
        default:
            return .text(text)
        }
    }

    /// bytea's text output (`\x` then two hex digits a byte), as servers send it since 9.0.
    static func hexBytea(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count >= 2, digits[0] == UInt8(ascii: "\\"), digits[1] == UInt8(ascii: "x"), digits.count % 2 == 0 else {
            return nil
        }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2 - 1)
        var index = 2
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func text(_ pointer: UnsafePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }

    private static func text(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }
}
