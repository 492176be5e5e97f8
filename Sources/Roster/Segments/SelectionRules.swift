import Foundation

/// How the rules of a group combine.
public enum RuleJoin: String, Sendable, CaseIterable {
    case and, or
}

/// One condition. `subject` names what it looks at:
/// - `field:<key>` a standard field (`_fname`, `email`, `phones`, …), `custom:<id>` a custom field (by id, so a
///   renamed field keeps its rules; a deleted one is reported);
/// - `status` the global status; `subscription:<resource id>:<channel or any>`; `event` the action history;
///   `last_interaction`; `segment` membership of a static segment; `suppressed` a contact on a suppression list.
/// `value` and `value2` hold what the operator needs (a value, a list, a bound, a key, a number of days).
public struct Rule: Sendable, Equatable {
    public var subject: String
    public var op: String
    public var value: String
    public var value2: String
    public var caseInsensitive: Bool

    public init(subject: String, op: String, value: String = "", value2: String = "", caseInsensitive: Bool = false) {
        self.subject = subject
        self.op = op
        self.value = value
        self.value2 = value2
        self.caseInsensitive = caseInsensitive
    }
}

/// A tree of rules: groups joined by AND or OR, nested to any depth (the builder allows four levels).
public indirect enum RuleNode: Sendable, Equatable {
    case group(RuleJoin, [RuleNode])
    case rule(Rule)

    public static let empty = RuleNode.group(.and, [])
    public static let maxDepth = 4
    public static let maxRules = 200

    public var isEmptyGroup: Bool { if case .group(_, let c) = self { return c.isEmpty } else { return false } }

    /// The number of rules (not groups) in the tree.
    public var ruleCount: Int {
        switch self {
        case .rule: return 1
        case .group(_, let children): return children.reduce(0) { $0 + $1.ruleCount }
        }
    }

    // MARK: JSON, as stored with a segment and sent by the builder.

    public var json: JSONValue {
        switch self {
        case .group(let join, let children):
            return .object(["join": .string(join.rawValue), "rules": .array(children.map(\.json))])
        case .rule(let r):
            var o: [String: JSONValue] = ["subject": .string(r.subject), "op": .string(r.op)]
            if !r.value.isEmpty { o["value"] = .string(r.value) }
            if !r.value2.isEmpty { o["value2"] = .string(r.value2) }
            if r.caseInsensitive { o["ci"] = .bool(true) }
            return .object(o)
        }
    }

    public init?(json: JSONValue, depth: Int = 0) {
        guard case .object(let o) = json, depth <= RuleNode.maxDepth else { return nil }
        if case .array(let items)? = o["rules"] {
            guard let join = RuleJoin(rawValue: o["join"]?.stringValue ?? "and") else { return nil }
            var children: [RuleNode] = []
            for item in items {
                guard let child = RuleNode(json: item, depth: depth + 1) else { return nil }
                children.append(child)
            }
            self = .group(join, children)
        } else {
            guard let subject = o["subject"]?.stringValue, let op = o["op"]?.stringValue else { return nil }
            var ci = false
            if case .bool(let b)? = o["ci"] { ci = b }
            self = .rule(Rule(subject: subject, op: op, value: o["value"]?.stringValue ?? "", value2: o["value2"]?.stringValue ?? "", caseInsensitive: ci))
        }
    }
}

/// What a segment, a bulk update or an export selects: rules, then a stable percentage range, then a total limit.
///
/// Order (the spec's): the range applies first, to the whole database, by each profile's stable bucket
/// (0…9999, from a hash of its id); the rules select within it; the limit then keeps the first N in creation order.
public struct Selection: Sendable, Equatable {
    public var rules: RuleNode
    /// Percent, 0…100, `from < to`. 0–100 is the whole database.
    public var rangeFrom: Int
    public var rangeTo: Int
    /// nil: no limit (0 or empty in the form).
    public var limit: Int?

    public init(rules: RuleNode = .empty, rangeFrom: Int = 0, rangeTo: Int = 100, limit: Int? = nil) {
        self.rules = rules
        self.rangeFrom = rangeFrom
        self.rangeTo = rangeTo
        self.limit = limit
    }

    public var hasRange: Bool { rangeFrom != 0 || rangeTo != 100 }
    /// True when something narrows the selection (the guard of deletion and global unsubscribe).
    public var hasCondition: Bool { rules.ruleCount > 0 || hasRange || (limit ?? 0) > 0 }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["rules": rules.json, "range_from": .int(Int64(rangeFrom)), "range_to": .int(Int64(rangeTo))]
        if let limit { o["limit"] = .int(Int64(limit)) }
        return .object(o)
    }

    public init?(json: JSONValue) {
        guard case .object(let o) = json, let rulesJSON = o["rules"], let rules = RuleNode(json: rulesJSON) else { return nil }
        func int(_ key: String) -> Int? { if case .int(let i)? = o[key] { return Int(i) } else { return nil } }
        // Limit 0 is no limit (spec README), so it is no condition either.
        self.init(rules: rules, rangeFrom: int("range_from") ?? 0, rangeTo: int("range_to") ?? 100, limit: int("limit").flatMap { $0 == 0 ? nil : $0 })
    }
}

/// The operators each kind of subject offers, with the labels the builder shows.
public enum RuleOperators {
    public enum Kind: Sendable {
        case number, date, text, choice, boolean, ip, tags, object, array, status, subscription, event, lastInteraction, segment
        case suppression
    }

    public static func kind(of type: FieldType) -> Kind {
        switch type {
        case .number, .float: return .number
        case .date: return .date
        case .line: return .text
        case .enum: return .choice
        case .boolean: return .boolean
        case .ip: return .ip
        case .tags: return .tags
        case .object: return .object
        case .array: return .array
        }
    }

    public static func operators(_ kind: Kind) -> [(op: String, label: String)] {
        let emptiness = [("empty", "is empty"), ("not_empty", "is not empty")]
        switch kind {
        case .number:
            return [("eq", "="), ("ne", "≠"), ("gt", ">"), ("lt", "<"), ("between", "between (inclusive)")] + emptiness
        case .date:
            return [("eq", "on"), ("ne", "not on"), ("gt", "after"), ("lt", "before"), ("between", "between (inclusive)"),
                    ("within_days", "within the last N days"), ("more_than_days", "more than N days ago")] + emptiness
        case .text:
            return [("eq", "equals"), ("ne", "does not equal"), ("contains", "contains"), ("not_contains", "does not contain"),
                    ("starts", "starts with"), ("ends", "ends with"), ("in", "is one of")] + emptiness
        case .choice:
            return [("eq", "is"), ("ne", "is not"), ("in", "is one of")] + emptiness
        case .boolean:
            return [("is_true", "is true"), ("is_false", "is false")] + emptiness
        case .ip:
            return [("eq", "is"), ("ne", "is not"), ("in_cidr", "is in the range (CIDR)")] + emptiness
        case .tags:
            return [("any", "has any of"), ("all", "has all of"), ("none", "has none of")] + emptiness
        case .object:
            return [("key_eq", "has key = value")] + emptiness
        case .array:
            return [("key_eq", "has an item with key = value")] + emptiness
        case .status:
            return [("in", "is one of"), ("not_in", "is none of")]
        case .subscription:
            return [("has", "has a subscription"), ("has_no", "has no subscription")]
        case .event:
            return [("had", "had an event"), ("had_no", "had no event")]
        case .lastInteraction:
            return [("before", "before the date"), ("after", "after the date"), ("within_days", "within the last N days"),
                    ("more_than_days", "more than N days ago (or never)")]
        case .segment:
            return [("in", "is a member of"), ("not_in", "is not a member of")]
        case .suppression:
            return [("has", "has a suppressed contact"), ("has_no", "has no suppressed contact")]
        }
    }
}
