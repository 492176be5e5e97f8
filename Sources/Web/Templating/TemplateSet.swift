import Foundation

/// Every template under one folder, parsed at start-up. A syntax error or a reference to a missing
/// template stops start-up with the file and line.
public struct TemplateSet: Sendable {
    let templates: [String: Template]

    public init(templates: [String: Template]) throws(TemplateError) {
        self.templates = templates
        for template in templates.values {
            for ref in template.referencedTemplates where templates[ref.name] == nil {
                throw TemplateError(file: template.name, line: ref.line, message: "refers to \"\(ref.name)\", which does not exist")
            }
        }
    }

    /// Loads every `.html` file under `directory`, named by its relative path (`databases/list.html`).
    public static func load(directory: String) throws -> TemplateSet {
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        guard let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else {
            throw TemplateError(file: directory, line: 0, message: "cannot read the templates folder")
        }
        var templates: [String: Template] = [:]
        for case let url as URL in enumerator where url.pathExtension == "html" {
            let path = url.standardizedFileURL.path
            let name = String(path.dropFirst(root.path.count + 1))
            let source = try String(contentsOfFile: path, encoding: .utf8)
            templates[name] = try Template(name: name, source: source)
        }
        if templates.isEmpty {
            throw TemplateError(file: directory, line: 0, message: "no templates found")
        }
        return try TemplateSet(templates: templates)
    }

    public var names: [String] { templates.keys.sorted() }

    /// Renders a template with the context. A missing key in `{{ }}` or `for` throws, naming file and line.
    public func render(_ name: String, _ context: TemplateDict) throws(TemplateError) -> String {
        String(decoding: try renderBytes(name, context), as: UTF8.self)
    }

    /// The rendered page as UTF-8 bytes, ready to be a response body (no String to byte-array copy).
    public func renderBytes(_ name: String, _ context: TemplateDict) throws(TemplateError) -> [UInt8] {
        guard let template = templates[name] else {
            throw TemplateError(file: name, line: 0, message: "no such template")
        }
        var renderer = Renderer(set: self, scopes: [.object(context)])
        var out: [UInt8] = []
        out.reserveCapacity(16 << 10)  // most pages fit: no regrowth while rendering
        try renderer.renderTemplate(template, overrides: [:], into: &out)
        return out
    }
}

/// What names resolve to while rendering, innermost last.
enum Scope {
    case object(TemplateDict)
    /// `{% include … with path %}` binds `it`.
    case binding(String, TemplateValue)
    /// One pass of a `for` loop: its variable, and `loop.*` built only if the body asks for it.
    case loopItem(variable: String, item: TemplateValue, index: Int, count: Int)
}

struct Renderer {
    let set: TemplateSet
    var scopes: [Scope]
    var depth = 0

    mutating func renderTemplate(_ template: Template, overrides: [String: [TemplateNode]], into out: inout [UInt8]) throws(TemplateError) {
        depth += 1
        defer { depth -= 1 }
        if depth > 32 { throw TemplateError(file: template.name, line: 0, message: "includes nested more than 32 deep (a cycle?)") }
        if let parentName = template.parent, let parent = set.templates[parentName] {
            // The child's blocks fill the parent's; blocks given further down the chain win.
            var merged = template.blocks
            for (key, value) in overrides { merged[key] = value }
            try renderTemplate(parent, overrides: merged, into: &out)
            return
        }
        try render(template.nodes, file: template.name, overrides: overrides, into: &out)
    }

    func lookup(_ path: [String]) -> TemplateValue? {
        let first = path[0]
        var value: TemplateValue?
        var index = scopes.count - 1
        search: while index >= 0 {
            switch scopes[index] {
            case .object(let object):
                if let found = object[first] { value = found; break search }
            case .binding(let name, let bound):
                if name == first { value = bound; break search }
            case .loopItem(let variable, let item, let position, let count):
                if variable == first { value = item; break search }
                if first == "loop" {
                    value = ["index": .int(position), "number": .int(position + 1), "first": .bool(position == 0), "last": .bool(position == count - 1)]
                    break search
                }
            }
            index -= 1
        }
        if path.count == 1 { return value }
        for key in path.dropFirst() {
            guard case .dict(let object)? = value else { return nil }
            value = object[key]
        }
        return value
    }

    mutating func render(_ nodes: [TemplateNode], file: String, overrides: [String: [TemplateNode]], into out: inout [UInt8]) throws(TemplateError) {
        for node in nodes {
            switch node {
            case .text(let bytes):
                out.append(contentsOf: bytes)
            case .output(let path, let raw, let line):
                guard let value = lookup(path) else {
                    throw TemplateError(file: file, line: line, message: "missing value \(path.joined(separator: "."))")
                }
                switch value {
                case .string(let text): if raw { appendUTF8(text, to: &out) } else { appendEscapedHTML(text, to: &out) }
                case .trustedHTML(let html): appendUTF8(html, to: &out)
                case .int(let number): out.append(contentsOf: String(number).utf8)
                case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
                case .null: break
                case .list, .dict:
                    throw TemplateError(file: file, line: line, message: "\(path.joined(separator: ".")) is a list or dictionary, not text")
                }
            case .ifBlock(let condition, let thenNodes, let elseNodes):
                try render(evaluate(condition) ? thenNodes : elseNodes, file: file, overrides: overrides, into: &out)
            case .forBlock(let variable, let path, let body, let empty, let line):
                guard let value = lookup(path) else {
                    throw TemplateError(file: file, line: line, message: "missing list \(path.joined(separator: "."))")
                }
                let items: [TemplateValue]
                switch value {
                case .list(let l): items = l
                case .null: items = []
                default: throw TemplateError(file: file, line: line, message: "\(path.joined(separator: ".")) is not a list")
                }
                if items.isEmpty {
                    try render(empty, file: file, overrides: overrides, into: &out)
                }
                for (index, item) in items.enumerated() {
                    scopes.append(.loopItem(variable: variable, item: item, index: index, count: items.count))
                    defer { scopes.removeLast() }
                    try render(body, file: file, overrides: overrides, into: &out)
                }
            case .include(let name, let with, _):
                guard let template = set.templates[name] else { continue }
                if let with {
                    scopes.append(.binding("it", lookup(with) ?? .null))
                    defer { scopes.removeLast() }
                    try renderTemplate(template, overrides: overrides, into: &out)
                } else {
                    try renderTemplate(template, overrides: overrides, into: &out)
                }
            case .block(let name, let body):
                try render(overrides[name] ?? body, file: file, overrides: overrides, into: &out)
            }
        }
    }

    func evaluate(_ condition: Condition) -> Bool {
        let left = lookup(condition.left) ?? .null
        var result: Bool
        if let (equal, right) = condition.comparison {
            let rightValue: TemplateValue
            switch right {
            case .literal(let s): rightValue = .string(s)
            case .path(let p): rightValue = lookup(p) ?? .null
            }
            let same = left.text != nil && left.text == rightValue.text
            result = equal ? same : !same
        } else {
            result = left.isTruthy
        }
        return condition.negated ? !result : result
    }
}
