import Foundation

/// One machine-readable line per event on standard error (journald under systemd), in logfmt:
/// `ts=2026-12-02T19:40:01.123Z level=info msg=request method=GET route=/databases/:id status=200 ms=3.1`.
/// Off until `serve` turns it on, so tests and one-shot commands keep their output to what they print themselves.
public enum Log {
    nonisolated(unsafe) private static var enabled = false
    private static let lock = NSLock()

    /// Called once by `serve`, before any thread logs.
    public static func enable() { enabled = true }
    public static var isEnabled: Bool { enabled }

    public static func info(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) {
        write("info", message, fields)
    }

    public static func error(_ message: String, _ fields: KeyValuePairs<String, String> = [:]) {
        write("error", message, fields)
    }

    /// One logfmt line. Values with spaces, quotes, `=` or control characters are quoted and escaped, so a value sent
    /// by a client (a path, say) can never forge a second line or a second field.
    static func line(_ level: String, _ message: String, _ fields: KeyValuePairs<String, String>, at date: Date) -> String {
        String(decoding: lineBytes(level, message, fields, at: date), as: UTF8.self)
    }

    /// The line as the bytes written: every request logs one, so it is built in one buffer.
    static func lineBytes(_ level: String, _ message: String, _ fields: KeyValuePairs<String, String>,
                          at date: Date) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(192)
        out.append(contentsOf: "ts=".utf8)
        out.append(contentsOf: timestamp(date).utf8)
        out.append(contentsOf: " level=".utf8)
        out.append(contentsOf: level.utf8)
        out.append(contentsOf: " msg=".utf8)
        out.append(contentsOf: quote(message).utf8)
        for (key, value) in fields {
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: key.utf8)
            out.append(UInt8(ascii: "="))
            out.append(contentsOf: quote(value).utf8)
        }
        out.append(UInt8(ascii: "\n"))
        return out
    }

    public static func quote(_ value: String) -> String {
        // On bytes: every byte of a plain value is printable ASCII (a multi-byte character is quoted anyway).
        let plain = !value.isEmpty && value.utf8.allSatisfy { b in
            b > 0x20 && b < 0x7F && b != UInt8(ascii: "\"") && b != UInt8(ascii: "=") && b != UInt8(ascii: "\\")
        }
        if plain { return value }
        // logfmt's quoted values are JSON strings; at most 2,000 characters of a client's value are kept.
        return JSONValue.quote(String(String.UnicodeScalarView(value.unicodeScalars.prefix(2000))), escapingInvisible: true)
    }

    private static func write(_ level: String, _ message: String, _ fields: KeyValuePairs<String, String>) {
        guard enabled else { return }
        let bytes = lineBytes(level, message, fields, at: Date())
        // One write(2) per line: lines from different threads never interleave.
        lock.lock()
        defer { lock.unlock() }
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(2, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    /// RFC 3339 in UTC with milliseconds, without Foundation's formatters (slow, and locked, on Linux).
    private static func timestamp(_ date: Date) -> String {
        UTCTime.rfc3339(milliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }

    /// `12.3`: milliseconds with one decimal, without `String(format:)` (a request logs one of these).
    public static func milliseconds(_ seconds: Double) -> String {
        let tenths = Int64((max(0, seconds) * 10_000).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}
