import Foundation
import Store

/// The ten custom field types, how each is stored in its typed column, and how input is judged.
///
/// Input rules (also in the README):
/// - Surrounding whitespace is trimmed for every type except Line, whose text is kept as typed.
/// - An empty input means "no value" (NULL) for every type.
public enum FieldType: String, Sendable, CaseIterable, Codable {
    case number, float, line, date, boolean, `enum`, ip, tags, object, array

    public var label: String {
        switch self {
        case .number: return "Number"
        case .float: return "Float"
        case .line: return "Line"
        case .date: return "Date"
        case .boolean: return "Boolean"
        case .enum: return "Enum"
        case .ip: return "IP (IPv4)"
        case .tags: return "Tags"
        case .object: return "Object"
        case .array: return "Array of objects"
        }
    }

    /// The SQLite column type of the per-database profile table.
    /// What a value of this type is stored as (the dialect names the column type).
    public var columnKind: ColumnKind {
        switch self {
        case .number, .boolean, .ip: return .integer
        case .float: return .real
        case .line, .date, .enum, .tags, .object, .array: return .text
        }
    }

    public static let maxLineBytes = 65_536
    public static let maxJSONBytes = 262_144
    public static let maxTagBytes = 255
    public static let maxObjectDepth = 5

    /// Judges a value typed by a person (form, CSV cell). Returns the value to store, or the reason it is refused.
    /// `options` are the enum's choices.
    public func parse(_ input: String, options: [String] = []) -> Result<SQLValue, FieldValueError> {
        if self == .line {
            if input.isEmpty { return .success(.null) }
            if input.utf8.count > FieldType.maxLineBytes { return .failure(.init("is longer than \(FieldType.maxLineBytes / 1024) KB")) }
            return .success(.text(input))
        }
        let text = input.trimmed
        if text.isEmpty { return .success(.null) }
        switch self {
        case .number:
            guard text.utf8.count <= 21, let value = Int64(text.hasPrefix("+") ? String(text.dropFirst()) : text) else {
                if text.allSatisfy({ $0.isNumber || $0 == "-" || $0 == "+" }) && text.contains(where: \.isNumber) {
                    return .failure(.init("is outside the 64-bit integer range (±9223372036854775807)"))
                }
                return .failure(.init("is not a whole number"))
            }
            return .success(.integer(value))
        case .float:
            guard FieldType.looksLikeDecimal(text), let value = Double(text) else {
                return .failure(.init("is not a number (use a dot for decimals, e.g. 12.5)"))
            }
            guard value.isFinite else { return .failure(.init("is too large for a float")) }
            return .success(.real(value == 0 ? 0 : value))
        case .date:
            return FieldType.parseDate(text).map { .text($0) }
        case .boolean:
            switch text.lowercased() {
            case "true", "yes", "1", "on": return .success(.integer(1))
            case "false", "no", "0", "off": return .success(.integer(0))
            default: return .failure(.init("is not true or false"))
            }
        case .enum:
            guard options.contains(text) else {
                return .failure(.init("is not one of the options (\(options.prefix(10).joined(separator: ", ")))"))
            }
            return .success(.text(text))
        case .ip:
            guard let value = FieldType.parseIPv4(text) else { return .failure(.init("is not an IPv4 address like 192.168.0.1")) }
            return .success(.integer(Int64(value)))
        case .tags:
            let tags = FieldType.splitTags(text)
            if let long = tags.first(where: { $0.utf8.count > FieldType.maxTagBytes }) {
                return .failure(.init("has a tag longer than \(FieldType.maxTagBytes) bytes (\(long.prefix(20))…)"))
            }
            return .success(tags.isEmpty ? .null : .text(JSONValue.array(tags.map { .string($0) }).canonical))
        case .object, .array:
            if text.utf8.count > FieldType.maxJSONBytes { return .failure(.init("is larger than \(FieldType.maxJSONBytes / 1024) KB")) }
            guard let json = JSONValue.parse(text) else { return .failure(.init("is not valid JSON")) }
            return validate(json: json)
        case .line:
            return .success(.text(input))
        }
    }

    /// Judges a value that arrived as JSON (API, structure file). Strings go through `parse`.
    public func validate(json: JSONValue, options: [String] = []) -> Result<SQLValue, FieldValueError> {
        switch (self, json) {
        case (_, .null): return .success(.null)
        case (.object, .object):
            if let problem = ObjectRules.check(object: json, depth: 1) { return .failure(problem) }
            return .success(.text(json.canonical))
        case (.object, _): return .failure(.init("must be a JSON object"))
        case (.array, .array(let items)):
            if let problem = ObjectRules.check(array: items) { return .failure(problem) }
            return .success(.text(json.canonical))
        case (.array, _): return .failure(.init("must be a JSON array of objects"))
        case (.tags, .array(let items)):
            var tags: [String] = []
            for item in items {
                guard case .string(let s) = item else { return .failure(.init("tags must be strings")) }
                let tag = s.trimmingCharacters(in: .whitespaces)
                if tag.contains(where: { FieldType.tagSeparators.contains($0) }) {
                    return .failure(.init("a tag cannot contain , | or ; (\(tag))"))
                }
                if !tag.isEmpty && !tags.contains(tag) { tags.append(tag) }
            }
            return .success(tags.isEmpty ? .null : .text(JSONValue.array(tags.map { .string($0) }).canonical))
        case (.number, .int(let i)): return .success(.integer(i))
        case (.number, .double(let d)):
            guard d.isFinite, d == d.rounded(.towardZero), let i = Int64(exactly: d) else { return .failure(.init("is not a whole number")) }
            return .success(.integer(i))
        case (.float, .int(let i)): return .success(.real(Double(i)))
        case (.float, .double(let d)):
            // JSON numbers beyond a double's range (1e309) parse as infinity: the same refusal as typed text.
            guard d.isFinite else { return .failure(.init("is too large for a float")) }
            return .success(.real(d == 0 ? 0 : d))
        case (.boolean, .bool(let b)): return .success(.integer(b ? 1 : 0))
        case (_, .string(let s)): return parse(s, options: options)
        case (.line, .int(let i)): return .success(.text(String(i)))
        case (.line, .double(let d)): return .success(.text(String(d)))
        default: return .failure(.init("has the wrong type for a \(label) field"))
        }
    }

    /// The stored value as a person reads it (and types it back).
    public func display(_ value: SQLValue) -> String {
        switch (self, value) {
        case (_, .null): return ""
        case (.boolean, .integer(let i)): return i != 0 ? "true" : "false"
        case (.ip, .integer(let i)): return FieldType.formatIPv4(UInt32(truncatingIfNeeded: i))
        case (.tags, .text(let t)):
            if case .array(let items)? = JSONValue.parse(t) {
                return items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }.joined(separator: ", ")
            }
            return t
        case (.float, .real(let d)):
            return d == d.rounded() && abs(d) < 1e15 ? String(format: "%.1f", d) : String(d)
        case (.date, .text(let t)) where t.hasSuffix("T00:00:00.000Z") && t.utf8.count == 24:
            // A date without a time of day (a birthday) reads as a date; typed back, it is the same value.
            return String(t.prefix(10))
        default: return value.string ?? ""
        }
    }

    static let tagSeparators: Set<Character> = [",", "|", ";"]

    static func splitTags(_ text: String) -> [String] {
        var tags: [String] = []
        for part in text.split(whereSeparator: { tagSeparators.contains($0) }) {
            let tag = part.trimmingCharacters(in: .whitespacesAndNewlines)
            if !tag.isEmpty && !tags.contains(tag) { tags.append(tag) }
        }
        return tags
    }

    static func looksLikeDecimal(_ text: String) -> Bool {
        // Digits with an optional sign, dot and exponent: refuses "nan", "inf", "0x1p3" and "1,5".
        var sawDigit = false
        for (i, c) in text.enumerated() {
            if c.isASCII && c.isNumber { sawDigit = true; continue }
            if (c == "-" || c == "+") && (i == 0 || "eE".contains(Array(text)[i - 1])) { continue }
            if c == "." || c == "e" || c == "E" { continue }
            return false
        }
        return sawDigit
    }

    /// Four decimal octets 0–255 without leading zeros (01.02.03.04 is refused: some read it as octal).
    public static func parseIPv4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  !(part.count > 1 && part.first == "0"), let octet = UInt32(part), octet <= 255 else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    public static func formatIPv4(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)"
    }

    /// RFC 3339: a full date (`2024-02-29`, stored as midnight UTC) or a date-time with an offset
    /// (`2019-08-22T00:00:00.000Z`, `…+03:00`). Stored normalised to UTC with milliseconds, which sorts as text.
    static func parseDate(_ text: String) -> Result<String, FieldValueError> {
        let chars = Array(text.utf8)
        func digits(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= chars.count else { return nil }
            var n = 0
            for c in chars[from..<(from + count)] {
                guard c >= 48 && c <= 57 else { return nil }
                n = n * 10 + Int(c - 48)
            }
            return n
        }
        let bad = FieldValueError("is not an RFC 3339 date like 2019-08-22 or 2019-08-22T10:30:00Z")
        guard chars.count >= 10, let year = digits(0, 4), chars[4] == UInt8(ascii: "-"), let month = digits(5, 2),
              chars[7] == UInt8(ascii: "-"), let day = digits(8, 2) else { return .failure(bad) }
        guard (1...12).contains(month) else { return .failure(.init("has no month \(month)")) }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard day >= 1 && day <= monthDays else {
            return .failure(.init("is not a real day (\(String(format: "%04d-%02d", year, month)) has \(monthDays) days)"))
        }
        var hour = 0, minute = 0, second = 0, millis = 0, offsetMinutes = 0
        if chars.count > 10 {
            guard chars[10] == UInt8(ascii: "T") || chars[10] == UInt8(ascii: "t"), let h = digits(11, 2), chars.count > 13,
                  chars[13] == UInt8(ascii: ":"), let m = digits(14, 2), chars.count > 16, chars[16] == UInt8(ascii: ":"),
                  let s = digits(17, 2) else { return .failure(bad) }
            guard h <= 23, m <= 59, s <= 59 else { return .failure(.init("has a time outside 00:00:00–23:59:59")) }
            hour = h; minute = m; second = s
            var i = 19
            if i < chars.count && chars[i] == UInt8(ascii: ".") {
                i += 1
                let start = i
                var fraction = 0, scale = 0
                while i < chars.count, chars[i] >= 48 && chars[i] <= 57 {
                    if scale < 3 { fraction = fraction * 10 + Int(chars[i] - 48); scale += 1 }
                    i += 1
                }
                guard i > start else { return .failure(bad) }
                while scale < 3 { fraction *= 10; scale += 1 }
                millis = fraction
            }
            guard i < chars.count else { return .failure(.init("needs a time zone (Z or ±hh:mm)")) }
            if chars[i] == UInt8(ascii: "Z") || chars[i] == UInt8(ascii: "z") {
                guard i + 1 == chars.count else { return .failure(bad) }
            } else if chars[i] == UInt8(ascii: "+") || chars[i] == UInt8(ascii: "-") {
                guard i + 6 == chars.count, let oh = digits(i + 1, 2), chars[i + 3] == UInt8(ascii: ":"), let om = digits(i + 4, 2),
                      oh <= 23, om <= 59 else { return .failure(bad) }
                offsetMinutes = (oh * 60 + om) * (chars[i] == UInt8(ascii: "-") ? -1 : 1)
            } else {
                return .failure(bad)
            }
        }
        guard year >= 1 else { return .failure(bad) }
        let seconds = Int64(UTCTime.days(year: year, month: month, day: day)) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
        return .success(UTCTime.rfc3339(milliseconds: seconds * 1000 + Int64(millis)))
    }

    /// An RFC 3339 date or date-time as Unix seconds, with its time of day (a date alone: its UTC midnight).
    static func instant(_ text: String) -> Int64? {
        guard case .success(let normalized) = parseDate(text) else { return nil }
        let chars = Array(normalized.utf8)
        func n(_ from: Int, _ count: Int) -> Int64 {
            guard from + count <= chars.count else { return 0 }
            return chars[from..<(from + count)].reduce(0) { $0 * 10 + Int64($1 &- 48) }
        }
        let day = Int64(UTCTime.days(year: Int(n(0, 4)), month: Int(n(5, 2)), day: Int(n(8, 2)))) * 86_400
        guard chars.count > 10 else { return day }
        return day + n(11, 2) * 3600 + n(14, 2) * 60 + n(17, 2)
    }

    static func formatDate(_ date: Date) -> String {
        UTCTime.rfc3339(milliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }
}

public struct FieldValueError: Error, Sendable, Equatable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// The rules for Object and Array-of-objects values (managing-databases.md, "Validation in objects and arrays").
///
/// - Keys: Latin letters, digits, `_` and `-` only.
/// - Values: integers, floats, strings, booleans, or objects that follow the same rules ("peer objects nested
///   within other objects"), at most `FieldType.maxObjectDepth` objects deep. No arrays inside objects, no null.
/// - An array holds objects only (never arrays or scalars), and the objects are peers: either every object has
///   the same set of keys (rows of one subtable), or every object has exactly one key (a list of name–value pairs).
///   This is the one rule that fits all of the document's examples: `[{"x":1},{"y":2}]` is valid,
///   `[{"key1":…,"new_key10":…},{"key7":…,"new_key300":…}]` is not.
enum ObjectRules {
    static func validKey(_ key: String) -> Bool {
        !key.isEmpty && key.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == "-" }
    }

    static func check(object: JSONValue, depth: Int) -> FieldValueError? {
        guard case .object(let dict) = object else { return FieldValueError("must be an object") }
        if depth > FieldType.maxObjectDepth {
            return FieldValueError("nests objects more than \(FieldType.maxObjectDepth) levels deep")
        }
        for key in dict.keys.sorted() {
            guard validKey(key) else {
                return FieldValueError("has the key \"\(key)\": keys use only Latin letters, digits, _ and -")
            }
            switch dict[key] ?? .null {
            case .int, .double, .string, .bool: continue
            case .object(let inner): if let problem = check(object: .object(inner), depth: depth + 1) { return problem }
            case .array: return FieldValueError("has an array under \"\(key)\": objects hold numbers, strings, booleans or objects")
            case .null: return FieldValueError("has null under \"\(key)\": leave the key out instead")
            }
        }
        return nil
    }

    static func check(array items: [JSONValue]) -> FieldValueError? {
        var keySets: [Set<String>] = []
        for (index, item) in items.enumerated() {
            guard case .object(let dict) = item else {
                return FieldValueError("item \(index + 1) is not an object: an array of objects holds objects only")
            }
            if let problem = check(object: item, depth: 1) {
                return FieldValueError("item \(index + 1) " + problem.reason)
            }
            keySets.append(Set(dict.keys))
        }
        guard let first = keySets.first else { return nil }
        let sameKeys = keySets.allSatisfy { $0 == first }
        let singleKeys = keySets.allSatisfy { $0.count == 1 }
        if !sameKeys && !singleKeys {
            return FieldValueError("holds objects with different keys: every object needs the same keys (or exactly one key each)")
        }
        return nil
    }
}
