/// Calendar arithmetic for UTC timestamps without Foundation's formatters, which are slow to create and not
/// safe to share between threads. Days-from-civil and civil-from-days after Howard Hinnant's algorithms.
public enum UTCTime {
    public struct Parts: Sendable, Equatable {
        public let year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int
    }

    /// Days since 1970-01-01 for a proleptic Gregorian date.
    public static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static func parts(_ seconds: Int64) -> Parts {
        let s = Int(seconds)
        var days = s / 86_400
        var rest = s % 86_400
        if rest < 0 { rest += 86_400; days -= 1 }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return Parts(year: year, month: month, day: day, hour: rest / 3600, minute: rest % 3600 / 60, second: rest % 60)
    }

    static func pad(_ n: Int, _ width: Int) -> String {
        let text = String(n)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    /// Appends `n` zero-padded to `width` digits. Pages print a time per history row and the request log one per
    /// line: digits straight into bytes, without a String per part.
    static func append(_ n: Int, _ width: Int, to out: inout [UInt8]) {
        guard n >= 0 else { out.append(contentsOf: pad(n, width).utf8); return }
        var digits = 1, rest = n / 10
        while rest > 0 { digits += 1; rest /= 10 }
        for _ in digits..<max(digits, width) { out.append(UInt8(ascii: "0")) }
        var divisor = 1
        for _ in 1..<digits { divisor *= 10 }
        var value = n
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8(value / divisor))
            value %= divisor
            divisor /= 10
        }
    }

    /// Builds a short text from its parts: `parts` appends to the bytes.
    static func text(_ parts: (inout [UInt8]) -> Void) -> String {
        var out = [UInt8]()
        out.reserveCapacity(32)
        parts(&out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Three numbers, the first `width` digits and the others two, with `separator` between them (or none): the
    /// date part (`2026-11-23`) and the clock part (`14:05:09`) of a time.
    static func appendTriple(_ first: Int, width: Int, _ second: Int, _ third: Int, separator: UInt8?,
                             to out: inout [UInt8]) {
        append(first, width, to: &out)
        if let separator { out.append(separator) }
        append(second, 2, to: &out)
        if let separator { out.append(separator) }
        append(third, 2, to: &out)
    }

    static func appendDay(_ p: Parts, separator: UInt8?, to out: inout [UInt8]) {
        appendTriple(p.year, width: 4, p.month, p.day, separator: separator, to: &out)
    }

    static func appendClock(_ p: Parts, separator: UInt8?, to out: inout [UInt8]) {
        appendTriple(p.hour, width: 2, p.minute, p.second, separator: separator, to: &out)
    }

    /// `2026-11-23`
    public static func day(_ seconds: Int64) -> String {
        let p = parts(seconds)
        return text { appendDay(p, separator: UInt8(ascii: "-"), to: &$0) }
    }

    /// `2026-11-23 14:05:09 UTC`
    public static func time(_ seconds: Int64) -> String {
        let p = parts(seconds)
        return text { out in
            appendDay(p, separator: UInt8(ascii: "-"), to: &out)
            out.append(UInt8(ascii: " "))
            appendClock(p, separator: UInt8(ascii: ":"), to: &out)
            out.append(contentsOf: " UTC".utf8)
        }
    }

    /// `20261123-140509`: sortable, and safe in a file name.
    public static func compactStamp(_ seconds: Int64) -> String {
        let p = parts(seconds)
        return text { out in
            appendDay(p, separator: nil, to: &out)
            out.append(UInt8(ascii: "-"))
            appendClock(p, separator: nil, to: &out)
        }
    }

    /// RFC 3339 with milliseconds: `2019-08-22T00:00:00.000Z`
    public static func rfc3339(milliseconds: Int64) -> String {
        var seconds = milliseconds / 1000
        var ms = milliseconds % 1000
        if ms < 0 { ms += 1000; seconds -= 1 }
        let p = parts(seconds)
        return text { out in
            appendDay(p, separator: UInt8(ascii: "-"), to: &out)
            out.append(UInt8(ascii: "T"))
            appendClock(p, separator: UInt8(ascii: ":"), to: &out)
            out.append(UInt8(ascii: "."))
            append(Int(ms), 3, to: &out)
            out.append(UInt8(ascii: "Z"))
        }
    }

    /// `1,234,567`
    public static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
}
