import HTTP
import Roster

/// The rule builder's form, which works without JavaScript: the tree travels as one row per node, named by its
/// path (`r` is the root group, `r.1.0` the first child of its second child). Buttons named `action` change the
/// tree on the server (add a rule or a group to a group, remove a node) and the page comes back with the counts.
public enum SegmentBuilder {
    /// The tree the form describes. Unknown, malformed or orphaned rows are dropped; a missing root is an empty AND
    /// group. A path is `r` and up to `maxDepth + 1` small numbers (`r.`, `r..1`, `r.x` are not paths), and at most
    /// `maxNodes` rows are read, so any body costs time in proportion to its size, never to its square.
    static let maxNodes = 2 * RuleNode.maxRules + 50

    public static func tree(from form: FormData) -> RuleNode {
        var kinds: [String: Bool] = [:]  // path → is a group
        var children: [String: [(index: Int, path: String)]] = [:]
        for path in form.all("node") where kinds.count < maxNodes {
            guard kinds[path] == nil, let numbers = parsePath(path) else { continue }
            kinds[path] = form["kind_\(path)"] == "group"
            if let last = numbers.last {
                let parent = (["r"] + numbers.dropLast().map(String.init)).joined(separator: ".")
                children[parent, default: []].append((last, path))
            }
        }
        func build(_ path: String, depth: Int) -> RuleNode {
            if path != "r" && kinds[path] == false {
                return .rule(Rule(subject: form["subject_\(path)"] ?? "", op: form["op_\(path)"] ?? "", value: form["value_\(path)"] ?? "",
                                  value2: form["value2_\(path)"] ?? "", caseInsensitive: form["ci_\(path)"] != nil))
            }
            let join = RuleJoin(rawValue: form["join_\(path)"] ?? "and") ?? .and
            if depth > RuleNode.maxDepth + 1 { return .group(join, []) }
            let ordered = (children[path] ?? []).sorted { $0.index < $1.index }
            return .group(join, ordered.map { build($0.path, depth: depth + 1) })
        }
        return build("r", depth: 0)
    }

    /// `r.1.0` → [1, 0]; nil for anything else.
    static func parsePath(_ path: String) -> [Int]? {
        guard path.utf8.count <= 64 else { return nil }
        let parts = path.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.first == "r", parts.count <= RuleNode.maxDepth + 2 else { return nil }
        var numbers: [Int] = []
        for part in parts.dropFirst() {
            guard (1...4).contains(part.utf8.count), part.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(part) else { return nil }
            numbers.append(n)
        }
        return numbers
    }

    /// Applies a button: `add_rule:<path>`, `add_group:<path>`, `remove:<path>`.
    /// A selection in words: "City equals “Moscow” and (…); range 0–50%; at most 1,000 profiles (the first created)".
    static func words(_ app: WebApp, databaseID: Int64, _ selection: Selection) throws -> String {
        let subjects = Dictionary(try subjects(app, databaseID: databaseID).map { ($0.value, $0.label) }, uniquingKeysWith: { a, _ in a })
        let context = try? app.services.segments.context(databaseID: databaseID)
        // Groups inside the root are bracketed; the root itself is not.
        func words(_ node: RuleNode, top: Bool = false) -> String {
            switch node {
            case .group(let join, let children):
                if children.isEmpty { return "every profile" }
                let inner = children.map { words($0) }.joined(separator: join == .and ? " and " : " or ")
                return children.count > 1 && !top ? "(\(inner))" : inner
            case .rule(let r):
                let kind = context.flatMap { SelectionCompiler.kind(of: r.subject, $0) }
                let op = kind.flatMap { RuleOperators.operators($0).first { $0.op == r.op }?.label } ?? r.op
                let values = [r.value, r.value2].filter { !$0.isEmpty }.joined(separator: " / ")
                return "\(subjects[r.subject] ?? r.subject) \(op)\(values.isEmpty ? "" : " “\(values)”")"
            }
        }
        var text = words(selection.rules, top: true)
        if selection.hasRange { text += "; range \(selection.rangeFrom)–\(selection.rangeTo)%" }
        if let limit = selection.limit { text += "; at most \(View.count(limit)) profiles (the first created)" }
        return text
    }

    static func apply(_ action: String, to tree: RuleNode) -> RuleNode {
        let parts = action.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return tree }
        guard let target = parsePath(parts[1]) else { return tree }
        // A new rule starts as "email is not empty": complete, so the count stays meaningful while it is edited.
        let blank = Rule(subject: "field:email", op: "not_empty")
        func edit(_ node: RuleNode, _ path: ArraySlice<Int>) -> RuleNode? {
            guard case .group(let join, var children) = node else { return node }
            if path.isEmpty {
                switch parts[0] {
                case "add_rule": children.append(.rule(blank))
                case "add_group": children.append(.group(.or, [.rule(blank)]))
                default: break
                }
                return .group(join, children)
            }
            guard let index = path.first, children.indices.contains(index) else { return node }
            if path.count == 1 && parts[0] == "remove" {
                children.remove(at: index)
                return .group(join, children)
            }
            if let changed = edit(children[index], path.dropFirst()) { children[index] = changed }
            return .group(join, children)
        }
        return edit(tree, target[...]) ?? tree
    }

    /// What the subject menu offers in this database.
    static func subjects(_ app: WebApp, databaseID: Int64) throws -> [(value: String, label: String, group: String)] {
        var items: [(String, String, String)] = []
        for field in StandardField.all { items.append(("field:" + field.key, field.label, "Standard fields")) }
        for field in try app.services.databases.fields(of: databaseID) { items.append(("custom:\(field.id)", "\(field.name) (\(field.type.label))", "Custom fields")) }
        items.append(("status", "Global status", "Profile"))
        items.append(("last_interaction", "Last interaction", "Profile"))
        items.append(("event", "Action history", "Profile"))
        for resource in try app.services.databases.attachedResources(databaseID) {
            items.append(("subscription:\(resource.id):any", "\(resource.name) — any channel", "Subscriptions"))
            for channel in resource.channels { items.append(("subscription:\(resource.id):\(channel.rawValue)", "\(resource.name) — \(channel.label)", "Subscriptions")) }
        }
        items.append(("segment", "Static segment membership", "Segments"))
        items.append(("suppressed", "Suppression lists", "Subscriptions"))
        return items
    }

    /// What the value boxes mean for an operator, shown beside them.
    static func hint(_ kind: RuleOperators.Kind?, _ op: String) -> (value: String?, value2: String?) {
        switch (kind, op) {
        case (_, "empty"), (_, "not_empty"), (.boolean?, _), (.suppression?, _): return (nil, nil)
        case (_, "between"): return ("from", "to")
        case (_, "within_days"), (_, "more_than_days"): return ("days", nil)
        case (_, "in"), (_, "not_in"):
            if kind == .segment { return ("static segment", nil) }
            return (kind == .status ? "statuses, separated by commas" : "values, one per line or separated by commas", nil)
        case (.tags?, _): return ("tags, separated by commas", nil)
        case (.ip?, "in_cidr"): return ("range, e.g. 10.0.0.0/8", nil)
        case (.object?, _), (.array?, _): return ("value", "key")
        case (.subscription?, _): return ("statuses (optional, commas)", "category (optional)")
        case (.event?, _): return ("event type, or any", "in the last N days")
        case (.lastInteraction?, "before"), (.lastInteraction?, "after"): return ("date, e.g. 2026-01-31", nil)
        case (.date?, _): return ("date, e.g. 2026-01-31", nil)
        default: return ("value", nil)
        }
    }

    /// One row per node for the template, in tree order, with its depth for indentation and its error.
    static func rows(_ tree: RuleNode, context: SelectionContext, subjects: [(value: String, label: String, group: String)],
                     staticSegments: [Segment], errors: [String: String]) -> [TemplateValue] {
        var rows: [TemplateValue] = []
        func walk(_ node: RuleNode, _ path: [Int], depth: Int) {
            let name = (["r"] + path.map(String.init)).joined(separator: ".")
            let error = TemplateValue(errors[SelectionCompiler.key(path)])
            switch node {
            case .group(let join, let children):
                rows.append(["is_group": true, "path": .string(name), "depth": .int(depth), "is_root": .bool(path.isEmpty),
                             "and": .bool(join == .and), "or": .bool(join == .or), "error": error,
                             "can_nest": .bool(depth < RuleNode.maxDepth - 1), "label": .string(path.isEmpty ? "Profiles matching" : "Group")])
                for (i, child) in children.enumerated() { walk(child, path + [i], depth: depth + 1) }
            case .rule(let rule):
                let kind = SelectionCompiler.kind(of: rule.subject, context)
                let ops = kind.map(RuleOperators.operators) ?? []
                let op = ops.contains(where: { $0.op == rule.op }) ? rule.op : (ops.first?.op ?? "")
                let hint = hint(kind, op)
                rows.append(["is_group": false, "path": .string(name), "depth": .int(depth), "error": error,
                             "subjects": .list(subjects.map { ["value": .string($0.value), "label": .string($0.label), "group": .string($0.group),
                                                              "selected": .bool($0.value == rule.subject)] }),
                             "unknown_subject": .bool(kind == nil || !subjects.contains { $0.value == rule.subject }),
                             "subject": .string(rule.subject),
                             "ops": .list(ops.map { ["value": .string($0.op), "label": .string($0.label), "selected": .bool($0.op == op)] }),
                             "value": .string(rule.value), "value2": .string(rule.value2), "ci": .bool(rule.caseInsensitive),
                             "show_ci": .bool(kind == .text && ["eq", "ne", "contains", "not_contains", "starts", "ends"].contains(op)),
                             "value_hint": TemplateValue(hint.value), "value2_hint": TemplateValue(hint.value2),
                             "segment_choice": .bool(kind == .segment),
                             "segments": .list(staticSegments.map { ["id": .string(String($0.id)), "name": .string($0.name), "selected": .bool(String($0.id) == rule.value)] })])
            }
        }
        walk(tree, [], depth: 0)
        return rows
    }
}
