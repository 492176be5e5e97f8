/// Decoded `application/x-www-form-urlencoded` data (a query string or a form body). Keys may repeat.
public struct FormData: Sendable, Equatable {
    public private(set) var pairs: [(String, String)]
    /// The first position of each key: a lookup costs the same with ten fields or ten thousand.
    private var first: [String: Int] = [:]

    /// More fields than any page sends (the rule builder's largest tree is a few thousand); a body with more is
    /// refused (strict) or cut (lenient) instead of costing time in proportion to an attacker's patience.
    public static let maxPairs = 20_000

    public init(pairs: [(String, String)] = []) {
        self.pairs = []
        for (k, v) in pairs.prefix(FormData.maxPairs) { append(k, v) }
    }

    public static func == (a: FormData, b: FormData) -> Bool {
        a.pairs.count == b.pairs.count && zip(a.pairs, b.pairs).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    /// Decodes `a=1&b=x+y&c=%C3%A9`. Returns nil for malformed percent escapes or invalid UTF-8,
    /// so a broken body is reported rather than half-read.
    public init?(strict text: String) {
        self.pairs = []
        for part in text.split(separator: "&", omittingEmptySubsequences: true) {
            if pairs.count >= FormData.maxPairs { return nil }
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let rawKey = kv.first, let key = FormData.decode(rawKey) else { return nil }
            let value: String
            if kv.count > 1 {
                guard let v = FormData.decode(kv[1]) else { return nil }
                value = v
            } else {
                value = ""
            }
            append(key, value)
        }
    }

    /// Lenient decoding for query strings: malformed pairs are dropped.
    public init(urlEncoded text: String) {
        self.pairs = []
        for part in text.split(separator: "&", omittingEmptySubsequences: true) {
            if pairs.count >= FormData.maxPairs { break }
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let rawKey = kv.first, let key = FormData.decode(rawKey) else { continue }
            let value = kv.count > 1 ? FormData.decode(kv[1]) : ""
            if let value { append(key, value) }
        }
    }

    public subscript(_ key: String) -> String? { first[key].map { pairs[$0].1 } }

    public func all(_ key: String) -> [String] { pairs.filter { $0.0 == key }.map(\.1) }

    public mutating func append(_ key: String, _ value: String) {
        if first[key] == nil { first[key] = pairs.count }
        pairs.append((key, value))
    }

    public var isEmpty: Bool { pairs.isEmpty }

    /// `+` is a space (unless `plusIsSpace` is false, as in a path); `%XX` is a byte; the bytes must be UTF-8.
    static func decode(_ text: Substring, plusIsSpace: Bool = true) -> String? {
        // Most names, values and paths need no decoding: no byte copy, no validation pass beyond the scan.
        if !text.utf8.contains(where: { $0 == UInt8(ascii: "%") || ($0 == UInt8(ascii: "+") && plusIsSpace) }) {
            return String(text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+") where plusIsSpace: bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let hi = iterator.next().flatMap(hexValue), let lo = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(hi << 4 | lo)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// A request path with its `%XX` escapes decoded (`+` stays `+`); nil when an escape is malformed or the bytes
    /// are not UTF-8.
    public static func decodePath(_ path: String) -> String? { decode(Substring(path), plusIsSpace: false) }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Encodes for a query string or form body.
    public var encoded: String {
        pairs.map { FormData.encode($0.0) + "=" + FormData.encode($0.1) }.joined(separator: "&")
    }

    public static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "): out += "+"
            default:
                let hex = "0123456789ABCDEF"
                out += "%" + String(hex[hex.index(hex.startIndex, offsetBy: Int(byte >> 4))]) + String(hex[hex.index(hex.startIndex, offsetBy: Int(byte & 15))])
            }
        }
        return out
    }
}
