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
        var out = "ts=\(timestamp(date)) level=\(level) msg=\(quote(message))"
        for (key, value) in fields { out += " \(key)=\(quote(value))" }
        return out + "\n"
    }

    static func quote(_ value: String) -> String {
        let plain = !value.isEmpty && value.unicodeScalars.allSatisfy { s in
            s.value > 0x20 && s.value < 0x7F && s != "\"" && s != "=" && s != "\\"
        }
        if plain { return value }
        var out = "\""
        for s in value.unicodeScalars.prefix(2000) {
            switch s {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if s.value < 0x20 || s.value == 0x7F || (0x80...0x9F).contains(s.value) || (0x202A...0x202E).contains(s.value)
                    || (0x2066...0x2069).contains(s.value) {
                    out += String(format: "\\u%04x", s.value)
                } else {
                    out.unicodeScalars.append(s)
                }
            }
        }
        return out + "\""
    }

    private static func write(_ level: String, _ message: String, _ fields: KeyValuePairs<String, String>) {
        guard enabled else { return }
        let bytes = Array(line(level, message, fields, at: Date()).utf8)
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

    private static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        let millis = Int((date.timeIntervalSince1970 - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), max(0, min(999, millis)))
    }
}
