/// What a template can show. View models are built from these, so templates never reach into domain types.
public enum TemplateValue: Sendable, Equatable {
    case null
    case string(String)
    case int(Int)
    case bool(Bool)
    case list([TemplateValue])
    case dict([String: TemplateValue])
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
        self = .dict(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension TemplateValue {
    public init(_ value: String?) { self = value.map { .string($0) } ?? .null }
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
    for byte in text.utf8 {
        switch byte {
        case 0x26: out.append(contentsOf: [0x26, 0x61, 0x6D, 0x70, 0x3B])              // &amp;
        case 0x3C: out.append(contentsOf: [0x26, 0x6C, 0x74, 0x3B])                    // &lt;
        case 0x3E: out.append(contentsOf: [0x26, 0x67, 0x74, 0x3B])                    // &gt;
        case 0x22: out.append(contentsOf: [0x26, 0x71, 0x75, 0x6F, 0x74, 0x3B])        // &quot;
        case 0x27: out.append(contentsOf: [0x26, 0x23, 0x33, 0x39, 0x3B])              // &#39;
        default: out.append(byte)
        }
    }
    return String(decoding: out, as: UTF8.self)
}
