/// A small, strict XML reader for the batch API's request format, turned into the same `JSONValue` a JSON request
/// gives. It accepts elements, attributes, text, CDATA, the five predefined entities and numeric character
/// references, and refuses any DOCTYPE: with no DTD there are no external entities (XXE) and no entity expansion
/// (billion laughs).
///
/// Mapping: `<xml>` is the root object; each child element becomes a key; a key that repeats, or an element with
/// `array='true'`, becomes an array; an element with only text becomes a string; an empty element an empty string.
public enum XMLRequest {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    static let maxDepth = 32

    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var parser = Parser(bytes: bytes)
        return try parser.document()
    }

    struct Element {
        var name: String
        var isArray = false
        var children: [(String, JSONValue, Bool)] = []
        var text = ""
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func fail(_ message: String) -> Failure { Failure(description: "The XML cannot be read: \(message) (at byte \(i)).") }

        mutating func skipSpace() { while i < bytes.count, [9, 10, 13, 32].contains(bytes[i]) { i += 1 } }

        func starts(_ s: String) -> Bool {
            let u = Array(s.utf8)
            return i + u.count <= bytes.count && Array(bytes[i..<(i + u.count)]) == u
        }

        mutating func document() throws -> JSONValue {
            if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { i = 3 }
            skipSpace()
            while true {
                if starts("<?") { guard let end = find("?>") else { throw fail("unclosed declaration") }; i = end + 2; skipSpace(); continue }
                if starts("<!--") { guard let end = find("-->") else { throw fail("unclosed comment") }; i = end + 3; skipSpace(); continue }
                if starts("<!") { throw fail("DOCTYPE and entity declarations are not accepted") }
                break
            }
            guard starts("<") else { throw fail("no root element") }
            let (root, _) = try self.element(depth: 0)
            skipSpace()
            while starts("<!--") { guard let end = find("-->") else { throw fail("unclosed comment") }; i = end + 3; skipSpace() }
            if i != bytes.count { throw fail("content after the root element") }
            return root
        }

        func find(_ s: String) -> Int? {
            let u = Array(s.utf8)
            var j = i
            while j + u.count <= bytes.count {
                if bytes[j] == u[0] && Array(bytes[j..<(j + u.count)]) == u { return j }
                j += 1
            }
            return nil
        }

        mutating func name() throws -> String {
            let start = i
            while i < bytes.count, !([9, 10, 13, 32, UInt8(ascii: "/"), UInt8(ascii: ">"), UInt8(ascii: "=")].contains(bytes[i])) { i += 1 }
            guard i > start, let text = String(validating: bytes[start..<i], as: UTF8.self) else { throw fail("a name is missing") }
            return text
        }

        /// Parses `<name …>…</name>`; returns the value and whether it asked to be an array.
        mutating func element(depth: Int) throws -> (JSONValue, Bool) {
            guard depth < XMLRequest.maxDepth else { throw fail("nested too deep") }
            i += 1  // <
            var node = Element(name: try name())
            // Attributes.
            while true {
                skipSpace()
                guard i < bytes.count else { throw fail("unclosed tag") }
                if starts("/>") { i += 2; return (node.isArray ? .array([]) : .string(""), node.isArray) }
                if bytes[i] == UInt8(ascii: ">") { i += 1; break }
                let attribute = try name()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "=") else { throw fail("an attribute needs a value") }
                i += 1
                skipSpace()
                guard i < bytes.count, bytes[i] == 34 || bytes[i] == 39 else { throw fail("an attribute value needs quotes") }
                let quote = bytes[i]
                i += 1
                let start = i
                while i < bytes.count, bytes[i] != quote { i += 1 }
                guard i < bytes.count else { throw fail("unclosed attribute value") }
                let value = try decode(Array(bytes[start..<i]))
                i += 1
                if attribute == "array" && value == "true" { node.isArray = true }
            }
            // Content.
            while true {
                guard i < bytes.count else { throw fail("<\(node.name)> is never closed") }
                if starts("</") {
                    i += 2
                    let closing = try name()
                    skipSpace()
                    guard closing == node.name, i < bytes.count, bytes[i] == UInt8(ascii: ">") else { throw fail("</\(closing)> does not close <\(node.name)>") }
                    i += 1
                    break
                }
                if starts("<!--") { guard let end = find("-->") else { throw fail("unclosed comment") }; i = end + 3; continue }
                if starts("<![CDATA[") {
                    guard let end = find("]]>") else { throw fail("unclosed CDATA") }
                    guard let text = String(validating: bytes[(i + 9)..<end], as: UTF8.self) else { throw fail("invalid UTF-8") }
                    node.text += text
                    i = end + 3
                    continue
                }
                if starts("<!") || starts("<?") { throw fail("declarations are not accepted inside elements") }
                if bytes[i] == UInt8(ascii: "<") {
                    let childStart = i
                    i += 1
                    let childName = try name()
                    i = childStart
                    let (value, isArray) = try self.element(depth: depth + 1)
                    node.children.append((childName, value, isArray))
                    continue
                }
                let start = i
                while i < bytes.count, bytes[i] != UInt8(ascii: "<") { i += 1 }
                node.text += try decode(Array(bytes[start..<i]))
            }
            if node.children.isEmpty {
                if node.isArray { return (.array(node.text.trimmed.isEmpty ? [] : [.string(node.text)]), true) }
                return (.string(node.text), false)
            }
            // A name that repeats, or that says array='true', is an array; a single one is its value.
            var values: [String: [JSONValue]] = [:]
            var arrays: Set<String> = []
            for (name, value, isArray) in node.children {
                values[name, default: []].append(value)
                if isArray { arrays.insert(name) }
            }
            var object: [String: JSONValue] = [:]
            for (name, items) in values {
                object[name] = items.count > 1 || arrays.contains(name) ? .array(items) : items[0]
            }
            return (.object(object), node.isArray)
        }

        /// Text with the five predefined entities and numeric references resolved; any other `&name;` is refused.
        func decode(_ raw: [UInt8]) throws -> String {
            guard let text = String(validating: raw, as: UTF8.self) else { throw fail("invalid UTF-8") }
            guard text.contains("&") else { return text }
            var out = ""
            var rest = Substring(text)
            while let amp = rest.firstIndex(of: "&") {
                out += rest[..<amp]
                guard let semi = rest[amp...].firstIndex(of: ";") else { throw fail("a bare & (write &amp;)") }
                let entity = rest[rest.index(after: amp)..<semi]
                switch entity {
                case "lt": out += "<"
                case "gt": out += ">"
                case "amp": out += "&"
                case "quot": out += "\""
                case "apos": out += "'"
                default:
                    if entity.hasPrefix("#x"), let n = UInt32(entity.dropFirst(2), radix: 16), let s = Unicode.Scalar(n) { out.unicodeScalars.append(s) }
                    else if entity.hasPrefix("#"), let n = UInt32(entity.dropFirst()), let s = Unicode.Scalar(n) { out.unicodeScalars.append(s) }
                    else { throw fail("the entity &\(entity); is not allowed (no DTD entities)") }
                }
                rest = rest[rest.index(after: semi)...]
            }
            return out + rest
        }
    }

    /// Writes an answer as XML in the spec's shape: `<xml>`, arrays as repeated elements.
    public static func write(_ value: JSONValue) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>"
        if case .object(let o) = value {
            for (key, item) in o.sorted(by: { keyOrder($0.key, $1.key) }) { element(key, item, &out) }
        }
        return out + "</xml>\n"
    }

    /// error, error_text, then the rest: the order of the spec's examples.
    static func keyOrder(_ a: String, _ b: String) -> Bool {
        let rank = ["error": 0, "error_text": 1, "profile_id": 2, "result": 3]
        return (rank[a] ?? 9, a) < (rank[b] ?? 9, b)
    }

    static func element(_ name: String, _ value: JSONValue, _ out: inout String) {
        switch value {
        case .array(let items): for item in items { element(name, item, &out) }
        case .object(let o):
            out += "<\(name)>"
            for (key, item) in o.sorted(by: { keyOrder($0.key, $1.key) }) { element(key, item, &out) }
            out += "</\(name)>"
        case .null: out += "<\(name)/>"
        case .string(let s): out += "<\(name)>\(escape(s))</\(name)>"
        case .int(let i): out += "<\(name)>\(i)</\(name)>"
        case .double(let d): out += "<\(name)>\(d)</\(name)>"
        case .bool(let b): out += "<\(name)>\(b)</\(name)>"
        }
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
