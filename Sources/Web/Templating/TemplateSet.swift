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
    public func render(_ name: String, _ context: [String: TemplateValue]) throws(TemplateError) -> String {
        guard let template = templates[name] else {
            throw TemplateError(file: name, line: 0, message: "no such template")
        }
        var renderer = Renderer(set: self, scopes: [context])
        var out = ""
        try renderer.renderTemplate(template, overrides: [:], into: &out)
        return out
    }
}

struct Renderer {
    let set: TemplateSet
    var scopes: [[String: TemplateValue]]
    var depth = 0

    mutating func renderTemplate(_ template: Template, overrides: [String: [TemplateNode]], into out: inout String) throws(TemplateError) {
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
        var value: TemplateValue?
        for scope in scopes.reversed() {
            if let found = scope[path[0]] { value = found; break }
        }
        for key in path.dropFirst() {
            guard case .dict(let dict)? = value else { return nil }
            value = dict[key]
        }
        return value
    }

    mutating func render(_ nodes: [TemplateNode], file: String, overrides: [String: [TemplateNode]], into out: inout String) throws(TemplateError) {
        for node in nodes {
            switch node {
            case .text(let text):
                out += text
            case .output(let path, let raw, let line):
                guard let value = lookup(path) else {
                    throw TemplateError(file: file, line: line, message: "missing value \(path.joined(separator: "."))")
                }
                guard let text = value.text else {
                    throw TemplateError(file: file, line: line, message: "\(path.joined(separator: ".")) is a list or dictionary, not text")
                }
                if raw { out += text }
                else if case .trustedHTML = value { out += text }
                else { out += escapeHTML(text) }
            case .ifBlock(let condition, let thenNodes, let elseNodes):
                try render(evaluate(condition) ? thenNodes : elseNodes, file: file, overrides: overrides, into: &out)
            case .forBlock(let variable, let path, let body, let empty, let line, let usesLoop):
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
                    if usesLoop {
                        scopes.append([variable: item, "loop": ["index": .int(index), "number": .int(index + 1), "first": .bool(index == 0), "last": .bool(index == items.count - 1)]])
                    } else {
                        scopes.append([variable: item])
                    }
                    defer { scopes.removeLast() }
                    try render(body, file: file, overrides: overrides, into: &out)
                }
            case .include(let name, let with, _):
                guard let template = set.templates[name] else { continue }
                if let with {
                    scopes.append(["it": lookup(with) ?? .null])
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
