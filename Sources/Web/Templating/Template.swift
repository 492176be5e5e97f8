/// A small template language, parsed once at start-up.
///
///     {{ user.email }}              escaped output (a missing key is an error, so typos are caught)
///     {{{ chart }}}                 raw output: the only way to print unescaped text
///     {# a comment #}
///     {% if x %} … {% else %} … {% end %}       also `if not x`, `if x == "lit"`, `if x != y`
///     {% for item in items %} … {% else %} shown when empty {% end %}
///     {% include "partials/nav.html" %}        also `with path`: the value is `it` inside

///     {% extends "layout.html" %} with {% block name %} … {% end %} in child and parent
public struct TemplateError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let line: Int
    public let message: String
    public var description: String { "\(file):\(line): \(message)" }
}

indirect enum TemplateNode: Sendable {
    /// Kept as UTF-8 bytes: rendering copies it as is, once per page.
    case text([UInt8])
    case output(path: [String], raw: Bool, line: Int)
    case ifBlock(Condition, then: [TemplateNode], otherwise: [TemplateNode])
    case forBlock(variable: String, path: [String], body: [TemplateNode], empty: [TemplateNode], line: Int)
    /// `{% include "x.html" with path %}` binds the path's value to `it` inside the included template.
    case include(name: String, with: [String]?, line: Int)
    case block(name: String, body: [TemplateNode])
}

enum Operand: Sendable {
    case path([String])
    case literal(String)
}

struct Condition: Sendable {
    var negated: Bool
    var left: [String]
    var comparison: (equal: Bool, right: Operand)?
}

public struct Template: Sendable {
    public let name: String
    let nodes: [TemplateNode]
    let parent: String?
    /// Blocks this template defines, by name (used when a child extends a layout).
    let blocks: [String: [TemplateNode]]

    /// Parses `source`; every error names the file and line.
    public init(name: String, source: String) throws(TemplateError) {
        self.name = name
        var parser = TemplateParser(file: name, source: source)
        let parsed = try parser.parseDocument()
        self.nodes = parsed.nodes
        self.parent = parsed.parent
        var blocks: [String: [TemplateNode]] = [:]
        Template.collectBlocks(parsed.nodes, into: &blocks)
        self.blocks = blocks
    }

    static func collectBlocks(_ nodes: [TemplateNode], into blocks: inout [String: [TemplateNode]]) {
        for node in nodes {
            switch node {
            case .block(let name, let body):
                blocks[name] = body
                collectBlocks(body, into: &blocks)
            case .ifBlock(_, let a, let b):
                collectBlocks(a, into: &blocks); collectBlocks(b, into: &blocks)
            case .forBlock(_, _, let body, let empty, _):
                collectBlocks(body, into: &blocks); collectBlocks(empty, into: &blocks)
            default: break
            }
        }
    }

    var referencedTemplates: [(name: String, line: Int)] {
        var refs: [(String, Int)] = []
        func walk(_ nodes: [TemplateNode]) {
            for node in nodes {
                switch node {
                case .include(let name, _, let line): refs.append((name, line))
                case .ifBlock(_, let a, let b): walk(a); walk(b)
                case .forBlock(_, _, let body, let empty, _): walk(body); walk(empty)
                case .block(_, let body): walk(body)
                default: break
                }
            }
        }
        walk(nodes)
        if let parent { refs.append((parent, 1)) }
        return refs
    }
}

struct TemplateParser {
    let file: String
    let source: [Character]
    var position = 0
    var line = 1

    init(file: String, source: String) {
        self.file = file
        self.source = Array(source)
    }

    enum Terminator { case end, elseTag }

    mutating func parseDocument() throws(TemplateError) -> (nodes: [TemplateNode], parent: String?) {
        var parent: String?
        let (nodes, terminator) = try parseNodes(inside: nil, parent: &parent)
        if terminator != nil { throw error("unexpected {% end %} or {% else %} with no open block") }
        return (nodes, parent)
    }

    func error(_ message: String, at line: Int? = nil) -> TemplateError {
        TemplateError(file: file, line: line ?? self.line, message: message)
    }

    func starts(with text: String) -> Bool {
        var i = position
        for c in text {
            guard i < source.count, source[i] == c else { return false }
            i += 1
        }
        return true
    }

    mutating func advance(_ count: Int) {
        for _ in 0..<count where position < source.count {
            if source[position] == "\n" { line += 1 }
            position += 1
        }
    }

    /// Reads up to `close`, returning the trimmed inner text.
    mutating func readTag(open: String, close: String) throws(TemplateError) -> String {
        let startLine = line
        advance(open.count)
        var inner = ""
        while position < source.count {
            if starts(with: close) {
                advance(close.count)
                return inner.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            inner.append(source[position])
            advance(1)
        }
        throw error("unclosed \(open) — expected \(close)", at: startLine)
    }

    /// Parses nodes until `{% end %}` / `{% else %}` (returned as the terminator) or the end of input.
    mutating func parseNodes(inside opener: String?, parent: inout String?) throws(TemplateError) -> ([TemplateNode], Terminator?) {
        var nodes: [TemplateNode] = []
        var text = ""
        func flush() {
            if !text.isEmpty { nodes.append(.text(Array(text.utf8))); text = "" }
        }
        while position < source.count {
            if starts(with: "{{{") {
                flush()
                let tagLine = line
                let inner = try readTag(open: "{{{", close: "}}}")
                nodes.append(.output(path: try parsePath(inner, line: tagLine), raw: true, line: tagLine))
            } else if starts(with: "{{") {
                flush()
                let tagLine = line
                let inner = try readTag(open: "{{", close: "}}")
                nodes.append(.output(path: try parsePath(inner, line: tagLine), raw: false, line: tagLine))
            } else if starts(with: "{#") {
                flush()
                _ = try readTag(open: "{#", close: "#}")
            } else if starts(with: "{%") {
                flush()
                let tagLine = line
                let inner = try readTag(open: "{%", close: "%}")
                let words = inner.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
                guard let keyword = words.first else { throw error("empty {% %} tag", at: tagLine) }
                switch keyword {
                case "end":
                    guard opener != nil else { throw error("{% end %} with no open block", at: tagLine) }
                    return (nodes, .end)
                case "else":
                    guard opener == "if" || opener == "for" else { throw error("{% else %} outside if or for", at: tagLine) }
                    return (nodes, .elseTag)
                case "if":
                    let condition = try parseCondition(Array(words.dropFirst()), line: tagLine)
                    let (thenNodes, term) = try parseNodes(inside: "if", parent: &parent)
                    var elseNodes: [TemplateNode] = []
                    if term == nil { throw error("{% if %} is never closed with {% end %}", at: tagLine) }
                    if term == .elseTag {
                        let (e, term2) = try parseNodes(inside: "else", parent: &parent)
                        if term2 != .end { throw error("{% if %} is never closed with {% end %}", at: tagLine) }
                        elseNodes = e
                    }
                    nodes.append(.ifBlock(condition, then: thenNodes, otherwise: elseNodes))
                case "for":
                    guard words.count == 4, words[2] == "in", isIdentifier(words[1]) else {
                        throw error("expected {% for name in path %}", at: tagLine)
                    }
                    let path = try parsePath(words[3], line: tagLine)
                    let (body, term) = try parseNodes(inside: "for", parent: &parent)
                    var empty: [TemplateNode] = []
                    if term == nil { throw error("{% for %} is never closed with {% end %}", at: tagLine) }
                    if term == .elseTag {
                        let (e, term2) = try parseNodes(inside: "else", parent: &parent)
                        if term2 != .end { throw error("{% for %} is never closed with {% end %}", at: tagLine) }
                        empty = e
                    }
                    nodes.append(.forBlock(variable: words[1], path: path, body: body, empty: empty, line: tagLine))
                case "include":
                    guard words.count == 2 || (words.count == 4 && words[2] == "with"), let name = unquote(words[1]) else {
                        throw error("expected {% include \"file.html\" %} or {% include \"file.html\" with path %}", at: tagLine)
                    }
                    let with = words.count == 4 ? try parsePath(words[3], line: tagLine) : nil
                    nodes.append(.include(name: name, with: with, line: tagLine))
                case "extends":
                    guard words.count == 2, let name = unquote(words[1]) else { throw error("expected {% extends \"file.html\" %}", at: tagLine) }
                    guard opener == nil, parent == nil else { throw error("{% extends %} must appear once, at the top level", at: tagLine) }
                    parent = name
                case "block":
                    guard words.count == 2, isIdentifier(words[1]) else { throw error("expected {% block name %}", at: tagLine) }
                    let (body, term) = try parseNodes(inside: "block", parent: &parent)
                    if term != .end { throw error("{% block \(words[1]) %} is never closed with {% end %}", at: tagLine) }
                    nodes.append(.block(name: words[1], body: body))
                default:
                    throw error("unknown tag {% \(keyword) %}", at: tagLine)
                }
            } else {
                text.append(source[position])
                advance(1)
            }
        }
        flush()
        return (nodes, nil)
    }

    func isIdentifier(_ word: String) -> Bool {
        guard let first = word.first, first.isLetter || first == "_" else { return false }
        return word.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
    }

    func parsePath(_ text: String, line: Int) throws(TemplateError) -> [String] {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !text.isEmpty, parts.allSatisfy(isIdentifier) else {
            throw error("expected a name like user.email, got \"\(text)\"", at: line)
        }
        return parts
    }

    func unquote(_ word: String) -> String? {
        guard word.count >= 2, word.first == "\"", word.last == "\"" else { return nil }
        return String(word.dropFirst().dropLast())
    }

    func parseCondition(_ words: [String], line: Int) throws(TemplateError) -> Condition {
        var words = words
        var negated = false
        if words.first == "not" {
            negated = true
            words.removeFirst()
        }
        switch words.count {
        case 1:
            return Condition(negated: negated, left: try parsePath(words[0], line: line), comparison: nil)
        case 3 where words[1] == "==" || words[1] == "!=":
            let right: Operand
            if let literal = unquote(words[2]) { right = .literal(literal) } else { right = .path(try parsePath(words[2], line: line)) }
            return Condition(negated: negated, left: try parsePath(words[0], line: line), comparison: (words[1] == "==", right))
        default:
            throw error("expected {% if name %}, {% if not name %} or {% if name == \"text\" %} (literals without spaces)", at: line)
        }
    }
}
