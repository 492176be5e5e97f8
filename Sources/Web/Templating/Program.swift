/// A template linked for rendering: its layout chain, blocks and includes resolved at start-up into one flat list of
/// steps with jumps. Rendering walks the list instead of the parsed tree: the tree retained every node, child list and
/// text it passed, which was a third of a page's rendering time; here a step is a few integers and every text run is
/// a slice of one buffer.
final class Program: Sendable {
    enum Op: UInt8, Sendable {
        /// Copies `text[a ..< a + b]`.
        case text
        /// Prints the value at `paths[a]` escaped (`raw`: as is).
        case output, raw
        /// Goes on when `tests[a]` holds, else jumps to `b`.
        case branch
        /// Jumps to `a`.
        case jump
        /// Starts a loop over `paths[a]` with `variables[c]`; an empty list jumps to `b` (the `else` part).
        case loop
        /// Ends one pass: back to `b` for the next item, or past the `else` part to `c`.
        case next
        /// Binds `it` to `paths[a]` for an `include … with`; `unbind` drops it.
        case bind, unbind
    }

    struct Step: Sendable {
        var op: Op
        var a: Int32 = 0
        var b: Int32 = 0
        var c: Int32 = 0
        var line: Int32 = 0
        /// Index in `files`: errors name the file the step came from.
        var file: Int32 = 0
    }

    /// A dotted name, as `keys[start ..< start + count]`: integers, so reading one retains nothing.
    struct Path: Sendable {
        var start: Int32
        var count: Int32
    }

    /// An `if`: `left` is a path; `right` a path or, when `literal`, an index in `literals`.
    struct Test: Sendable {
        var negated: Bool
        var left: Int32
        /// nil: truthiness; true: `==`; false: `!=`.
        var equal: Bool?
        var right: Int32 = 0
        var literal = false
    }

    let name: String
    let steps: [Step]
    let text: [UInt8]
    let keys: [String]
    let paths: [Path]
    let tests: [Test]
    let literals: [String]
    let variables: [String]
    let files: [String]

    init(name: String, linker: Linker) {
        self.name = name
        steps = linker.steps
        text = linker.text
        var keys: [String] = []
        paths = linker.paths.list.map { path in
            defer { keys += path }
            return Path(start: Int32(keys.count), count: Int32(path.count))
        }
        self.keys = keys
        tests = linker.tests
        literals = linker.literals.list
        variables = linker.variables.list
        files = linker.files.list
    }

    /// The path's name as written, for error messages.
    func describe(_ path: Path) -> String {
        keys[Int(path.start) ..< Int(path.start + path.count)].joined(separator: ".")
    }

    /// Links `name` with everything it extends and includes. A chain deeper than 32 stops loading: includes are
    /// resolved here, whatever the conditions around them, so a template cannot include itself even behind an `if`.
    static func link(_ name: String, in templates: [String: Template]) throws(TemplateError) -> Program {
        var linker = Linker(templates: templates)
        if let template = templates[name] { try linker.link(template, overrides: [:], depth: 1) }
        return Program(name: name, linker: linker)
    }
}

/// Builds a `Program`: emits steps for nodes, and places jump targets once the code they skip is emitted.
struct Linker {
    /// A block's content as a child gave it, with the file it came from.
    typealias Overrides = [String: (nodes: [TemplateNode], file: Int32)]

    let templates: [String: Template]
    var steps: [Program.Step] = []
    var text: [UInt8] = []
    var paths = Interned<[String]>()
    var tests: [Program.Test] = []
    var literals = Interned<String>()
    var variables = Interned<String>()
    var files = Interned<String>()
    /// The first step no jump lands on: text may be appended to the step before it only from here on.
    private var mergeFrom = 0

    init(templates: [String: Template]) { self.templates = templates }

    mutating func link(_ template: Template, overrides: Overrides, depth: Int) throws(TemplateError) {
        if depth > 32 {
            throw TemplateError(file: template.name, line: 0, message: "includes nested more than 32 deep (a cycle?)")
        }
        let file = fileIndex(template.name)
        if let parentName = template.parent, let parent = templates[parentName] {
            // The child's blocks fill the parent's; blocks given further down the chain win.
            var merged = template.blocks.mapValues { (nodes: $0, file: file) }
            for (key, value) in overrides { merged[key] = value }
            try link(parent, overrides: merged, depth: depth + 1)
            return
        }
        try emit(template.nodes, file: file, overrides: overrides, depth: depth)
    }

    private mutating func emit(_ nodes: [TemplateNode], file: Int32, overrides: Overrides,
                               depth: Int) throws(TemplateError) {
        for node in nodes {
            switch node {
            case .text(let bytes):
                appendText(bytes, file: file)
            case .output(let path, let raw, let line):
                append(.init(op: raw ? .raw : .output, a: paths.index(path), line: Int32(line), file: file))
            case .ifBlock(let condition, let thenNodes, let elseNodes):
                tests.append(test(condition))
                let branch = append(.init(op: .branch, a: Int32(tests.count - 1), file: file))
                try emit(thenNodes, file: file, overrides: overrides, depth: depth)
                if elseNodes.isEmpty {
                    steps[branch].b = label()
                } else {
                    let jump = append(.init(op: .jump, file: file))
                    steps[branch].b = label()
                    try emit(elseNodes, file: file, overrides: overrides, depth: depth)
                    steps[jump].a = label()
                }
            case .forBlock(let variable, let path, let body, let empty, let line):
                let loop = append(.init(op: .loop, a: paths.index(path), c: variables.index(variable),
                                        line: Int32(line), file: file))
                let bodyStart = label()
                try emit(body, file: file, overrides: overrides, depth: depth)
                let next = append(.init(op: .next, b: bodyStart, file: file))
                steps[loop].b = label()
                try emit(empty, file: file, overrides: overrides, depth: depth)
                steps[next].c = label()
            case .include(let name, let with, _):
                guard let included = templates[name] else { continue }
                if let with { append(.init(op: .bind, a: paths.index(with), file: file)) }
                try link(included, overrides: overrides, depth: depth + 1)
                if with != nil { append(.init(op: .unbind, file: file)) }
            case .block(let name, let body):
                if let given = overrides[name] {
                    try emit(given.nodes, file: given.file, overrides: overrides, depth: depth + 1)
                } else {
                    try emit(body, file: file, overrides: overrides, depth: depth + 1)
                }
            }
        }
    }

    @discardableResult
    private mutating func append(_ step: Program.Step) -> Int {
        steps.append(step)
        return steps.count - 1
    }

    /// Text right after text (a block's edge, an include's) extends the same step, unless a jump lands between.
    private mutating func appendText(_ bytes: [UInt8], file: Int32) {
        if bytes.isEmpty { return }
        if steps.count > mergeFrom, let last = steps.last, last.op == .text,
           Int(last.a) + Int(last.b) == text.count {
            steps[steps.count - 1].b += Int32(bytes.count)
        } else {
            append(.init(op: .text, a: Int32(text.count), b: Int32(bytes.count), file: file))
        }
        text.append(contentsOf: bytes)
    }

    private mutating func test(_ condition: Condition) -> Program.Test {
        var test = Program.Test(negated: condition.negated, left: paths.index(condition.left))
        if let (equal, right) = condition.comparison {
            test.equal = equal
            switch right {
            case .literal(let text): test.right = literals.index(text); test.literal = true
            case .path(let path): test.right = paths.index(path)
            }
        }
        return test
    }

    /// The index of the next step, as a jump target.
    private mutating func label() -> Int32 {
        mergeFrom = steps.count
        return Int32(steps.count)
    }

    private mutating func fileIndex(_ name: String) -> Int32 { files.index(name) }
}

/// A list that keeps each value once, and says where it stands.
struct Interned<T: Hashable> {
    private(set) var list: [T] = []
    private var positions: [T: Int32] = [:]

    mutating func index(_ value: T) -> Int32 {
        if let found = positions[value] { return found }
        list.append(value)
        positions[value] = Int32(list.count - 1)
        return Int32(list.count - 1)
    }
}
