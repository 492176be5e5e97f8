import Foundation

/// One record of a CSV file, or the reason it could not be read.
public enum CSVRecord: Equatable, Sendable {
    case fields([String])
    case malformed(String)
}

/// Reads RFC 4180 CSV from a file, record by record, without holding the file in memory.
///
/// Comma or semicolon separated; fields may be quoted, with doubled quotes inside and line breaks inside;
/// CRLF or LF line ends; a UTF-8 byte-order mark at the start is skipped; blank lines are skipped.
/// A bad record never stops the reader: it is returned as `.malformed` with the reason, and reading carries on
/// at the next line. `offset` after each record is where the next one starts, so a task can stop after any
/// record and resume there.
public final class CSVReader {
    /// A record longer than this is refused (and skipped to the next line end) rather than buffered.
    public static let maxRecordBytes = 1 << 20
    /// More columns than any import maps (500): a line of separators is refused, not split into millions of fields.
    public static let maxFields = 2_000

    public let delimiter: UInt8
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var position = 0
    private var atEOF = false
    /// Byte offset in the file of `buffer[0]`.
    private var bufferStart: Int64
    /// Physical line (1-based) where the next record starts.
    public private(set) var line: Int

    /// The byte offset in the file where the next record starts.
    public var offset: Int64 { bufferStart + Int64(position) }

    public init(path: String, delimiter: UInt8, offset: Int64 = 0, line: Int = 1) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ValidationError(field: "file", "The uploaded file is gone.") }
        self.handle = handle
        self.delimiter = delimiter
        self.bufferStart = offset
        self.line = line
        try handle.seek(toOffset: UInt64(offset))
        if offset == 0 {
            fill()
            if buffer.count >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF { position = 3 }
        }
    }

    deinit { try? handle.close() }

    /// Refills the buffer keeping the unread part; false at end of file.
    @discardableResult
    private func fill() -> Bool {
        if atEOF { return false }
        if position > 0 {
            buffer.removeFirst(position)
            bufferStart += Int64(position)
            position = 0
        }
        let chunk = handle.readData(ofLength: 256 << 10)
        if chunk.isEmpty { atEOF = true; return false }
        buffer.append(contentsOf: chunk)
        return true
    }

    @inline(__always) private func peek(_ ahead: Int = 0) -> UInt8? {
        while position + ahead >= buffer.count {
            if !fill() { return nil }
        }
        return buffer[position + ahead]
    }

    /// The next record; nil at the end of the file.
    public func next() -> CSVRecord? {
        // Blank lines between records are not records.
        while let b = peek(), b == 10 || b == 13 {
            if b == 10 { line += 1 }
            position += 1
        }
        guard peek() != nil else { return nil }
        var fields: [String] = []
        var field: [UInt8] = []
        var size = 0
        var problem: String?
        let startLine = line
        while true {
            // Start of a field.
            if peek() == UInt8(ascii: "\"") {
                position += 1
                var closed = false
                while let b = peek() {
                    position += 1
                    size += 1
                    if size > CSVReader.maxRecordBytes { break }
                    if b == UInt8(ascii: "\"") {
                        if peek() == UInt8(ascii: "\"") { field.append(b); position += 1; continue }
                        closed = true
                        break
                    }
                    if b == 10 { line += 1 }
                    field.append(b)
                }
                if size > CSVReader.maxRecordBytes {
                    return skipLong(startLine)
                }
                if !closed {
                    return .malformed("A quoted field is never closed (a \" is missing).")
                }
                // After the closing quote: a separator, a line end or the end of the file.
                if let b = peek(), b != delimiter, b != 10, b != 13 {
                    problem = problem ?? "Text after a closing quote (a quote inside a quoted field must be doubled)."
                    while let b = peek(), b != delimiter, b != 10, b != 13 { position += 1; size += 1 }
                }
            } else {
                while let b = peek(), b != delimiter, b != 10, b != 13 {
                    position += 1
                    size += 1
                    if size > CSVReader.maxRecordBytes { return skipLong(startLine) }
                    field.append(b)
                }
            }
            if let text = String(validating: field, as: UTF8.self) {
                fields.append(text)
            } else {
                problem = problem ?? "Column \(fields.count + 1): not valid UTF-8 text (save the file as UTF-8)."
                fields.append("")
            }
            field.removeAll(keepingCapacity: true)
            guard let b = peek() else { break }
            position += 1
            if b == delimiter {
                // Separators count toward the record's size, and the fields toward their limit.
                size += 1
                if size > CSVReader.maxRecordBytes || fields.count >= CSVReader.maxFields { return skipLong(startLine) }
                continue
            }
            if b == 13 {
                if peek() == 10 { position += 1 }
                line += 1
                break
            }
            if b == 10 { line += 1; break }
        }
        if let problem { return .malformed(problem) }
        return .fields(fields)
    }

    /// Skips the rest of an over-long record up to the next line end.
    private func skipLong(_ startLine: Int) -> CSVRecord {
        while let b = peek() {
            position += 1
            if b == 10 { line += 1; break }
        }
        return .malformed("The row is longer than \(CSVReader.maxRecordBytes >> 20) MiB or has more than \(CSVReader.maxFields) columns.")
    }

    /// Guesses the separator from the header line: the one of `,` and `;` that occurs more often outside quotes.
    public static func detectDelimiter(path: String) -> UInt8 {
        guard let handle = FileHandle(forReadingAtPath: path) else { return UInt8(ascii: ",") }
        defer { try? handle.close() }
        let head = handle.readData(ofLength: 64 << 10)
        var commas = 0, semicolons = 0, quoted = false
        for b in head {
            if b == UInt8(ascii: "\"") { quoted.toggle() }
            if quoted { continue }
            if b == 10 { break }
            if b == UInt8(ascii: ",") { commas += 1 }
            if b == UInt8(ascii: ";") { semicolons += 1 }
        }
        return semicolons > commas ? UInt8(ascii: ";") : UInt8(ascii: ",")
    }

    /// True when the start of the file holds bytes no text file has (NUL, most control characters): an image,
    /// an archive or a spreadsheet in a binary format.
    public static func looksBinary(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return true }
        defer { try? handle.close() }
        let head = handle.readData(ofLength: 8 << 10)
        return head.contains { $0 == 0 || ($0 < 32 && $0 != 9 && $0 != 10 && $0 != 13 && $0 != 12) }
    }
}
