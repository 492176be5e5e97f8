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
public func escapeHTML(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
