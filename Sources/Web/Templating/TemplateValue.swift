/// What a template can show. View models are built from these, so templates never reach into domain types.
public enum TemplateValue: Sendable, Equatable {
    case null
    case string(String)
    case int(Int)
    case bool(Bool)
    case list([TemplateValue])
    case dict(TemplateDict)
    /// Markup produced by trusted code (e.g. an SVG chart); printed as is even by `{{ }}`.
    case trustedHTML(String)

    var isTruthy: Bool {
        switch self {
        case .null: return false
        case .string(let s): return !s.isEmpty
        case .int(let i): return i != 0
        case .bool(let b): return b
        case .list(let l): return !l.isEmpty
        case .dict(let d): return !d.isEmpty
        case .trustedHTML(let s): return !s.isEmpty
        }
    }

    /// Text for comparisons and output; nil for lists and dictionaries, which have no single text.
    var text: String? {
        switch self {
        case .null: return ""
        case .string(let s): return s
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .trustedHTML(let s): return s
        case .list, .dict: return nil
        }
    }
}

extension TemplateValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: TemplateValue...) { self = .list(elements) }
    public init(dictionaryLiteral elements: (String, TemplateValue)...) {
        self = .dict(TemplateDict(entries: elements))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension TemplateValue {
    public init(_ value: String?) { self = value.map { .string($0) } ?? .null }
}

/// The keys and values of one view-model object.
///
/// A view model has a handful to a few dozen keys, each a short name, and is built once and read a few times per
/// request. For that, an array searched from the front is cheaper than a hashed dictionary: comparing two short
/// (inline) strings is a couple of word compares, while every hashed insert or lookup runs SipHash with a fresh seed.
/// Building and reading these was the largest cost of rendering a page.
public struct TemplateDict: Sendable, Equatable, ExpressibleByDictionaryLiteral, Sequence {
    private var entries: [(String, TemplateValue)]

    public init() { entries = [] }

    public init(dictionaryLiteral elements: (String, TemplateValue)...) { self.init(entries: elements) }

    /// A literal's keys must differ (checked in debug builds, where the tests run): lookups find the first.
    init(entries: [(String, TemplateValue)]) {
        self.entries = entries
        assert(Self.keysAreUnique(entries), "a view-model literal repeats a key: \(entries.map(\.0))")
    }

    public init(_ dictionary: [String: TemplateValue]) {
        entries = dictionary.map { ($0.key, $0.value) }
    }

    private static func keysAreUnique(_ entries: [(String, TemplateValue)]) -> Bool {
        if entries.count < 2 { return true }
        for i in 1..<entries.count {
            for j in 0..<i where entries[i].0 == entries[j].0 { return false }
        }
        return true
    }

    public subscript(key: String) -> TemplateValue? {
        get {
            // Through the buffer, the keys are compared in place: iterating the array copied each entry, value
            // included (a retain and a release per key passed). The length first: it is read inline, while a String
            // comparison of two different keys is a call.
            let length = key.utf8.count
            return entries.withUnsafeBufferPointer { buffer in
                for index in buffer.indices where buffer[index].0.utf8.count == length && buffer[index].0 == key {
                    return buffer[index].1
                }
                return nil
            }
        }
        set {
            if let index = entries.firstIndex(where: { $0.0 == key }) {
                if let newValue { entries[index].1 = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                entries.append((key, newValue))
            }
        }
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }
    public var keys: [String] { entries.map(\.0) }

    /// This object with `other`'s keys added; where both have a key, `other`'s value wins.
    public func merging(_ other: TemplateDict) -> TemplateDict {
        var result = self
        for (key, value) in other.entries { result[key] = value }
        return result
    }

    public func makeIterator() -> IndexingIterator<[(String, TemplateValue)]> { entries.makeIterator() }

    /// Equal when they hold the same keys with equal values, in any order (dictionary semantics).
    public static func == (lhs: TemplateDict, rhs: TemplateDict) -> Bool {
        guard lhs.entries.count == rhs.entries.count else { return false }
        return lhs.entries.allSatisfy { rhs[$0.0] == $0.1 }
    }
}

/// Escapes the five characters that matter in HTML text and attribute values.
/// Works on UTF-8 bytes (every escaped character is ASCII), and returns the text untouched when nothing needs it.
public func escapeHTML(_ text: String) -> String {
    var needs = false
    for byte in text.utf8 where byte == 0x26 || byte == 0x3C || byte == 0x3E || byte == 0x22 || byte == 0x27 {
        needs = true
        break
    }
    if !needs { return text }
    var out = [UInt8]()
    out.reserveCapacity(text.utf8.count + 16)
    appendEscapedHTML(text, to: &out)
    return String(decoding: out, as: UTF8.self)
}

/// Appends `text` to a page being rendered, escaped as `escapeHTML` does: one pass over the contiguous UTF-8,
/// copying the runs between the characters that need escaping.
func appendEscapedHTML(_ text: String, to out: inout [UInt8]) {
    var text = text
    text.withUTF8 { bytes in
        var runStart = 0
        for index in 0..<bytes.count {
            let entity: StaticString
            switch bytes[index] {
            case 0x26: entity = "&amp;"
            case 0x3C: entity = "&lt;"
            case 0x3E: entity = "&gt;"
            case 0x22: entity = "&quot;"
            case 0x27: entity = "&#39;"
            default: continue
            }
            if runStart < index { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index])) }
            entity.withUTF8Buffer { out.append(contentsOf: $0) }
            runStart = index + 1
        }
        if runStart < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...])) }
    }
}

/// Appends `text`'s UTF-8 as one copy from its contiguous storage.
func appendUTF8(_ text: String, to out: inout [UInt8]) {
    var text = text
    text.withUTF8 { out.append(contentsOf: $0) }
}
