import Foundation

/// Every template under one folder, parsed at start-up. A syntax error or a reference to a missing
/// template stops start-up with the file and line.
public struct TemplateSet: Sendable {
    let templates: [String: Template]
    /// Every template linked as a page would render it (see `Program`).
    let programs: [String: Program]

    public init(templates: [String: Template]) throws(TemplateError) {
        self.templates = templates
        for template in templates.values {
            for ref in template.referencedTemplates where templates[ref.name] == nil {
                throw TemplateError(file: template.name, line: ref.line, message: "refers to \"\(ref.name)\", which does not exist")
            }
        }
        var programs: [String: Program] = [:]
        for name in templates.keys.sorted() { programs[name] = try Program.link(name, in: templates) }
        self.programs = programs
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
        guard let program = programs[name] else {
            throw TemplateError(file: name, line: 0, message: "no such template")
        }
        var renderer = Renderer(program: program, root: context)
        var out: [UInt8] = []
        out.reserveCapacity(16 << 10)  // most pages fit: no regrowth while rendering
        try renderer.run(into: &out)
        return out
    }
}

/// A name bound while rendering: a loop's variable (with its list and pass) or an include's `it`.
struct Frame {
    let name: String
    var value: TemplateValue
    /// A loop's list and the pass it is at; empty for `it`.
    var items: [TemplateValue] = []
    var index = 0
    var isLoop = false
}

/// Runs a linked template's steps against the view model.
struct Renderer {
    let program: Program
    let root: TemplateDict
    /// The program's tables, held here so reading them retains nothing per step.
    private let steps: [Program.Step]
    private let keys: [String]
    private let paths: [Program.Path]
    /// Innermost last. Names are compared in place: copying a whole scope out per lookup (the tree renderer's
    /// enum of scopes) retained its payload every time.
    private var frames: [Frame] = []

    init(program: Program, root: TemplateDict) {
        self.program = program
        self.root = root
        steps = program.steps
        keys = program.keys
        paths = program.paths
    }

    mutating func run(into out: inout [UInt8]) throws(TemplateError) {
        let text = program.text
        var pc = 0
        while pc < steps.count {
            let step = steps[pc]
            pc += 1
            switch step.op {
            case .text:
                text.withUnsafeBufferPointer { text in
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: text[Int(step.a) ..< Int(step.a + step.b)]))
                }
            case .output, .raw:
                let path = paths[Int(step.a)]
                guard let value = lookup(path) else { throw error(step, "missing value \(program.describe(path))") }
                switch value {
                case .string(let text):
                    if step.op == .raw { appendUTF8(text, to: &out) } else { appendEscapedHTML(text, to: &out) }
                case .trustedHTML(let html): appendUTF8(html, to: &out)
                case .int(let number): out.append(contentsOf: String(number).utf8)
                case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
                case .null: break
                case .list, .dict:
                    throw error(step, "\(program.describe(path)) is a list or dictionary, not text")
                }
            case .branch:
                if !evaluate(program.tests[Int(step.a)]) { pc = Int(step.b) }
            case .jump:
                pc = Int(step.a)
            case .loop:
                let path = paths[Int(step.a)]
                guard let value = lookup(path) else { throw error(step, "missing list \(program.describe(path))") }
                let items: [TemplateValue]
                switch value {
                case .list(let list): items = list
                case .null: items = []
                default: throw error(step, "\(program.describe(path)) is not a list")
                }
                if items.isEmpty {
                    pc = Int(step.b)
                } else {
                    frames.append(Frame(name: program.variables[Int(step.c)], value: items[0], items: items,
                                        isLoop: true))
                }
            case .next:
                let last = frames.count - 1
                let position = frames[last].index + 1
                if position < frames[last].items.count {
                    frames[last].index = position
                    frames[last].value = frames[last].items[position]
                    pc = Int(step.b)
                } else {
                    frames.removeLast()
                    pc = Int(step.c)
                }
            case .bind:
                frames.append(Frame(name: "it", value: lookup(paths[Int(step.a)]) ?? .null))
            case .unbind:
                frames.removeLast()
            }
        }
    }

    private func error(_ step: Program.Step, _ message: String) -> TemplateError {
        let file = program.files.indices.contains(Int(step.file)) ? program.files[Int(step.file)] : program.name
        return TemplateError(file: file, line: Int(step.line), message: message)
    }

    func lookup(_ path: Program.Path) -> TemplateValue? {
        let start = Int(path.start), end = Int(path.start + path.count)
        let first = keys[start]
        var value: TemplateValue?
        var index = frames.count - 1
        while index >= 0 {
            if frames[index].name == first { value = frames[index].value; break }
            if frames[index].isLoop && first == "loop" {
                let position = frames[index].index, count = frames[index].items.count
                value = ["index": .int(position), "number": .int(position + 1), "first": .bool(position == 0),
                         "last": .bool(position == count - 1)]
                break
            }
            index -= 1
        }
        if index < 0 { value = root[first] }
        var next = start + 1
        while next < end {
            guard case .dict(let object)? = value else { return nil }
            value = object[keys[next]]
            next += 1
        }
        return value
    }

    func evaluate(_ test: Program.Test) -> Bool {
        let left = lookup(paths[Int(test.left)]) ?? .null
        var result: Bool
        if let equal = test.equal {
            let right: TemplateValue = test.literal ? .string(program.literals[Int(test.right)])
                : lookup(paths[Int(test.right)]) ?? .null
            let same = left.text != nil && left.text == right.text
            result = equal ? same : !same
        } else {
            result = left.isTruthy
        }
        return test.negated ? !result : result
    }
}
