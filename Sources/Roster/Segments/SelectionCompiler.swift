import Foundation
import Store

/// What a selection may refer to in one database: its field catalogue, its resources, its static segments.
/// Column names in the SQL come only from here (built from integer ids), never from the request.
public struct SelectionContext: Sendable {
    public let databaseID: Int64
    let custom: [Int64: CustomField]
    let resources: [Int64: Resource]
    let staticSegments: Set<Int64>
    /// "Now", for relative dates ("within the last N days").
    let now: Int64
    /// The store's SQL, for the few functions the two stores spell differently.
    let dialect: Dialect

    public init(databaseID: Int64, custom: [CustomField], resources: [Resource], staticSegments: Set<Int64>, now: Int64,
                dialect: Dialect = Dialect(.sqlite)) {
        self.databaseID = databaseID
        self.dialect = dialect
        self.custom = Dictionary(custom.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.resources = Dictionary(resources.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.staticSegments = staticSegments
        self.now = now
    }

    static func load(_ databaseID: Int64, now: Int64, _ db: Connection) throws -> SelectionContext {
        let resources = try db.query(DatabaseStore.attachedResources, [databaseID]).map { try ResourceStore.load(row: $0, db) }
        let statics = Set(try db.query(SegmentStore.staticIDs, [databaseID]).compactMap { $0.int64("id") })
        return SelectionContext(databaseID: databaseID, custom: try Databases.fields(databaseID, db), resources: resources, staticSegments: statics, now: now,
                                 dialect: db.dialect)
    }

    var table: String { ProfileTable.name(databaseID) }
    var today: Int { Int(now / 86_400) }
}

/// A selection compiled to parameterised SQL over `profiles_<id> AS p`.
public struct CompiledSelection: Sendable {
    /// The rules' condition ("TRUE" when there are none; SQLite and PostgreSQL both read TRUE and FALSE).
    public let rules: String
    public let rulesParams: [SQLValue]
    /// The range's condition ("TRUE" for 0–100%).
    public let range: String
    public let rangeParams: [SQLValue]
    public let limit: Int?
    public let table: String

    /// Profiles matching range and rules, before the limit.
    public var whereClause: String { "(\(range)) AND (\(rules))" }
    public var whereParams: [SQLValue] { rangeParams + rulesParams }
}

/// How many profiles a selection takes at each of its steps.
public struct SelectionCounts: Sendable, Equatable {
    /// Matching the rules in the whole database.
    public let matchingRules: Int
    /// Inside the range and matching the rules.
    public let inRange: Int
    /// What the selection finally takes (the limit applied).
    public let selected: Int
}

/// Turns rules into SQL. Every value is bound; every identifier comes from the context.
/// A rule that does not fit (unknown field, operator of another type, bad value) is refused with a message
/// keyed `rule:<path>` (path = child indexes from the root, e.g. `1.0`), so the builder shows it beside the rule.
public enum SelectionCompiler {
    public static func compile(_ selection: Selection, _ context: SelectionContext) throws -> CompiledSelection {
        var errors: [String: String] = [:]
        if selection.rangeFrom < 0 || selection.rangeTo > 100 || selection.rangeFrom >= selection.rangeTo {
            errors["range"] = "A range goes from 0 to 100%, and its start is below its end."
        }
        if let limit = selection.limit, limit < 0 { errors["limit"] = "The limit is a whole number, 0 or more (0 means none)." }
        if selection.rules.ruleCount > RuleNode.maxRules { errors["rules"] = "At most \(RuleNode.maxRules) rules." }
        var params: [SQLValue] = []
        let sql = compile(selection.rules, path: [], context, &params, &errors, depth: 0)
        if !errors.isEmpty { throw ValidationError(errors) }
        var range = "TRUE"
        var rangeParams: [SQLValue] = []
        if selection.hasRange {
            range = "p.range_bucket >= ? AND p.range_bucket < ?"
            rangeParams = [.integer(Int64(selection.rangeFrom * 100)), .integer(Int64(selection.rangeTo * 100))]
        }
        let limit = selection.limit.flatMap { $0 > 0 ? $0 : nil }
        return CompiledSelection(rules: sql, rulesParams: params, range: range, rangeParams: rangeParams, limit: limit, table: context.table)
    }

    public static func key(_ path: [Int]) -> String { "rule:" + path.map(String.init).joined(separator: ".") }
    static func label(_ path: [Int]) -> String { "Rule " + path.map { String($0 + 1) }.joined(separator: ".") }

    static func compile(_ node: RuleNode, path: [Int], _ context: SelectionContext, _ params: inout [SQLValue], _ errors: inout [String: String], depth: Int) -> String {
        switch node {
        case .group(let join, let children):
            if children.isEmpty {
                if !path.isEmpty { errors[key(path)] = "\(label(path)): this group is empty; add a rule to it or remove it." }
                return "TRUE"
            }
            if depth >= RuleNode.maxDepth { errors[key(path)] = "\(label(path)): groups nest at most \(RuleNode.maxDepth) deep." }
            let parts = children.enumerated().map { compile($0.element, path: path + [$0.offset], context, &params, &errors, depth: depth + 1) }
            return "(" + parts.joined(separator: join == .and ? " AND " : " OR ") + ")"
        case .rule(let rule):
            do {
                let (sql, values) = try compileRule(rule, context)
                params += values
                return sql
            } catch let error as RuleError {
                errors[key(path)] = "\(label(path)): \(error.message)"
                return "FALSE"
            } catch {
                errors[key(path)] = "\(label(path)): \(error)"
                return "FALSE"
            }
        }
    }

    struct RuleError: Error { let message: String; init(_ m: String) { message = m } }

    /// A field a rule can look at: its column and value kind.
    struct FieldTarget {
        let column: String
        let label: String
        let kind: RuleOperators.Kind
        let type: FieldType?
        let options: [String]
        let isEmail: Bool
        let isPhones: Bool
    }

    static func fieldTarget(_ subject: String, _ context: SelectionContext) throws -> FieldTarget? {
        if subject.hasPrefix("field:") {
            guard let field = StandardField.named(String(subject.dropFirst(6))) else { throw RuleError("there is no standard field \(subject.dropFirst(6)).") }
            switch field.kind {
            case .typed(let type):
                return FieldTarget(column: "p." + field.column, label: field.label, kind: RuleOperators.kind(of: type), type: type, options: field.options, isEmail: false, isPhones: false)
            case .email:
                return FieldTarget(column: "p.email", label: field.label, kind: .text, type: .line, options: [], isEmail: true, isPhones: false)
            case .phones:
                return FieldTarget(column: "p.phones", label: field.label, kind: .tags, type: .tags, options: [], isEmail: false, isPhones: true)
            }
        }
        if subject.hasPrefix("custom:") {
            guard let id = Int64(subject.dropFirst(7)), let field = context.custom[id] else {
                throw RuleError("it uses a custom field that was deleted; remove the rule or pick another field.")
            }
            return FieldTarget(column: "p." + field.column, label: field.name, kind: RuleOperators.kind(of: field.type), type: field.type, options: field.options, isEmail: false, isPhones: false)
        }
        return nil
    }

    /// The kind of a rule's subject (for the builder's operator list); nil for an unknown subject.
    public static func kind(of subject: String, _ context: SelectionContext) -> RuleOperators.Kind? {
        if let target = try? fieldTarget(subject, context) { return target.kind }
        switch subject {
        case "status": return .status
        case "event": return .event
        case "last_interaction": return .lastInteraction
        case "segment": return .segment
        case "suppressed": return .suppression
        default: return subject.hasPrefix("subscription:") ? .subscription : nil
        }
    }

    /// Items of a list value: one per line, or separated by commas.
    public static func listItems(_ text: String) -> [String] {
        let separator: Character = text.contains("\n") ? "\n" : ","
        var seen: [String] = []
        for part in text.split(separator: separator) {
            let item = part.trimmed
            if !item.isEmpty && !seen.contains(item) { seen.append(item) }
        }
        return seen
    }

    static func days(_ text: String) throws -> Int {
        guard let n = Int(text.trimmed), (1...36_500).contains(n) else { throw RuleError("enter a number of days from 1 to 36,500.") }
        return n
    }

    /// A date typed in the builder → its day, "YYYY-MM-DD".
    static func day(_ text: String) throws -> String {
        switch FieldType.parseDate(text.trimmed) {
        case .success(let normalized): return String(normalized.prefix(10))
        case .failure(let e): throw RuleError("the date \(e.reason).")
        }
    }

    /// "YYYY-MM-DD" + n days.
    static func shift(_ day: String, by n: Int) -> String {
        let parts = day.split(separator: "-").compactMap { Int($0) }
        let number = UTCTime.days(year: parts[0], month: parts[1], day: parts[2]) + n
        return UTCTime.day(Int64(number) * 86_400)
    }

    static func dayFromToday(_ context: SelectionContext, _ n: Int) -> String { UTCTime.day(Int64(context.today + n) * 86_400) }
    /// The start (UTC midnight) of the day `n` days from today. "Within the last N days" is every moment since the
    /// start of the day N days ago, for dates, the last interaction and history events alike.
    static func dayStart(_ context: SelectionContext, _ n: Int) -> Int64 { Int64(context.today + n) * 86_400 }

    static func compileRule(_ rule: Rule, _ context: SelectionContext) throws -> (String, [SQLValue]) {
        if let target = try fieldTarget(rule.subject, context) {
            guard RuleOperators.operators(target.kind).contains(where: { $0.op == rule.op }) else {
                throw RuleError("“\(rule.op)” does not apply to \(target.label) (\(target.type?.label ?? "field")).")
            }
            return try compileField(rule, target, context)
        }
        switch rule.subject {
        case "status":
            let statuses = try listItems(rule.value).map { text -> ProfileStatus in
                guard let s = ProfileStatus(text: text) else { throw RuleError("\(text) is not one of the seven statuses.") }
                return s
            }
            if statuses.isEmpty { throw RuleError("choose at least one status.") }
            let marks = statuses.map { _ in "?" }.joined(separator: ", ")
            let values = statuses.map { SQLValue.integer(Int64($0.rawValue)) }
            switch rule.op {
            case "in": return ("p.status IN (\(marks))", values)
            case "not_in": return ("p.status NOT IN (\(marks))", values)
            default: throw RuleError("“\(rule.op)” does not apply to the global status.")
            }
        case "event":
            let days = try self.days(rule.value2)
            let since = SQLValue.integer(dayStart(context, -days))
            let type = rule.value.trimmed
            var sql = "SELECT 1 FROM \(ProfileTable.historyName(context.databaseID)) h WHERE h.profile = p.id AND h.at >= ?"
            var values = [since]
            if !type.isEmpty && type != "any" {
                guard HistoryEvent.all.contains(type) else { throw RuleError("\(type) is not an event type.") }
                // Unary +: the probe must use the (profile, at) index, never walk every event of the type.
                sql += " AND \(context.dialect.unindexed("h.type")) = ?"
                values.append(.text(type))
            }
            switch rule.op {
            case "had": return ("EXISTS (\(sql))", values)
            case "had_no": return ("NOT EXISTS (\(sql))", values)
            default: throw RuleError("“\(rule.op)” does not apply to the action history.")
            }
        case "last_interaction":
            let column = "p.last_interaction_at"
            switch rule.op {
            case "before":
                let d = try day(rule.value)
                return ("(\(column) IS NULL OR \(column) < ?)", [.integer(dayStart(d))])
            case "after":
                let d = try day(rule.value)
                return ("\(column) >= ?", [.integer(dayStart(d) + 86_400)])
            case "within_days":
                return ("\(column) >= ?", [.integer(dayStart(context, -(try days(rule.value))))])
            case "more_than_days":
                return ("(\(column) IS NULL OR \(column) < ?)", [.integer(dayStart(context, -(try days(rule.value))))])
            default: throw RuleError("“\(rule.op)” does not apply to the last interaction.")
            }
        case "suppressed":
            // The suppression lists' own condition (one place): the profile's email or one of its live subscriptions'
            // contacts is on a list that applies to this database.
            let subscription = "EXISTS (SELECT 1 FROM subscriptions_\(context.databaseID) s WHERE s.profile = p.id AND s.deleted = 0 AND "
                + Suppressions.suppressedSQL("s", databaseID: context.databaseID, context.dialect) + ")"
            let email = Suppressions.suppressedSQL(channel: "'email'", contact: context.dialect.plainText("p.email"),
                                                   databaseID: context.databaseID, context.dialect)
            let sql = "(\(subscription) OR \(email))"
            switch rule.op {
            case "has": return (sql, [])
            case "has_no": return ("NOT \(sql)", [])
            default: throw RuleError("“\(rule.op)” does not apply to suppression lists.")
            }
        case "segment":
            guard let id = Int64(rule.value.trimmed), context.staticSegments.contains(id) else {
                throw RuleError("it refers to a static segment that no longer exists (or belongs to another database).")
            }
            let sql = "SELECT 1 FROM \(SegmentStore.membersTable(context.databaseID)) m WHERE m.segment_id = ? AND m.profile = p.id"
            switch rule.op {
            case "in": return ("EXISTS (\(sql))", [.integer(id)])
            case "not_in": return ("NOT EXISTS (\(sql))", [.integer(id)])
            default: throw RuleError("“\(rule.op)” does not apply to segment membership.")
            }
        default:
            guard rule.subject.hasPrefix("subscription:") else { throw RuleError("there is nothing called \(rule.subject) to select by.") }
            let parts = rule.subject.split(separator: ":").map(String.init)
            guard parts.count == 3, let rid = Int64(parts[1]), let resource = context.resources[rid] else {
                throw RuleError("it uses a resource that is no longer attached to this database.")
            }
            var sql = "SELECT 1 FROM subscriptions_\(context.databaseID) s WHERE s.profile = p.id AND s.resource_id = ? AND s.deleted = 0"
            var values: [SQLValue] = [.integer(rid)]
            if parts[2] != "any" {
                guard let channel = Channel(rawValue: parts[2]), resource.channels.contains(channel) else {
                    throw RuleError("\(resource.name) has no \(parts[2]) channel.")
                }
                sql += " AND s.channel = ?"
                values.append(.text(channel.rawValue))
            }
            let statuses = try listItems(rule.value).map { text -> ProfileStatus in
                guard let s = ProfileStatus(text: text) else { throw RuleError("\(text) is not one of the seven statuses.") }
                return s
            }
            if !statuses.isEmpty {
                // Unary +: without statistics SQLite may pick the (resource, channel, status) index for this
                // correlated probe and walk thousands of subscriptions per profile; the profile index is the right one.
                sql += " AND \(context.dialect.unindexed("s.status")) IN (\(statuses.map { _ in "?" }.joined(separator: ", ")))"
                values += statuses.map { .integer(Int64($0.rawValue)) }
            }
            let category = rule.value2.trimmed
            if !category.isEmpty {
                guard resource.categories.contains(category) else { throw RuleError("\(resource.name) has no category \(category).") }
                sql += " AND EXISTS (SELECT 1 FROM \(context.dialect.jsonElements("s.categories")) WHERE je.value = ?)"
                values.append(.text(category))
            }
            switch rule.op {
            case "has": return ("EXISTS (\(sql))", values)
            case "has_no": return ("NOT EXISTS (\(sql))", values)
            default: throw RuleError("“\(rule.op)” does not apply to subscriptions.")
            }
        }
    }

    static func dayStart(_ day: String) -> Int64 {
        let parts = day.split(separator: "-").compactMap { Int($0) }
        return Int64(UTCTime.days(year: parts[0], month: parts[1], day: parts[2])) * 86_400
    }

    /// A typed comparison value for a field, judged like any input of that field.
    static func typedValue(_ text: String, _ target: FieldTarget) throws -> SQLValue {
        let trimmed = text.trimmed
        if trimmed.isEmpty { throw RuleError("enter a value to compare with.") }
        if target.isEmail { return .text(trimmed.lowercased()) }
        guard let type = target.type else { return .text(trimmed) }
        switch type.parse(type == .line ? text : trimmed, options: target.options) {
        case .success(let value): return value
        case .failure(let e): throw RuleError("the value \(trimmed) \(e.reason).")
        }
    }

    static func compileField(_ rule: Rule, _ target: FieldTarget, _ context: SelectionContext) throws -> (String, [SQLValue]) {
        // A profile without an email has the placeholder `<profile id>@localhost` (a domain no real address can have):
        // it has no email, so every comparison reads it as empty (NULL), and "is empty" finds it.
        let email = context.dialect.plainText(target.column)
        let placeholder = "substr(\(email), length(\(email)) - 9) = '@localhost'"
        let c = target.isEmail ? "(CASE WHEN \(placeholder) THEN NULL ELSE \(email) END)" : target.column
        // Emptiness: no value; for lists, none or [].
        let empty: String = target.isEmail ? placeholder : (target.kind == .tags ? "(\(c) IS NULL OR \(c) = '[]')" : "\(c) IS NULL")
        if target.isEmail && rule.op == "eq" && !rule.caseInsensitive {
            // Equality on the column itself keeps the email index; the placeholder never equals a real address.
            return ("(\(target.column) = ? AND NOT \(placeholder))", [try typedValue(rule.value, target)])
        }
        switch rule.op {
        case "empty": return (empty, [])
        case "not_empty": return ("NOT \(empty)", [])
        default: break
        }
        switch target.kind {
        case .date:
            // Dates are stored as UTC RFC 3339 text, so day bounds compare as strings (and can use an index).
            switch rule.op {
            case "eq": let d = try day(rule.value); return ("(\(c) >= ? AND \(c) < ?)", [.text(d), .text(shift(d, by: 1))])
            case "ne": let d = try day(rule.value); return ("(\(c) IS NULL OR \(c) < ? OR \(c) >= ?)", [.text(d), .text(shift(d, by: 1))])
            case "gt": return ("\(c) >= ?", [.text(shift(try day(rule.value), by: 1))])
            case "lt": return ("\(c) < ?", [.text(try day(rule.value))])
            case "between":
                let a = try day(rule.value), b = try day(rule.value2)
                if a > b { throw RuleError("the first date is after the second.") }
                return ("(\(c) >= ? AND \(c) < ?)", [.text(a), .text(shift(b, by: 1))])
            case "within_days":
                let n = try days(rule.value)
                return ("(\(c) >= ? AND \(c) < ?)", [.text(dayFromToday(context, -n)), .text(dayFromToday(context, 1))])
            case "more_than_days":
                return ("\(c) < ?", [.text(dayFromToday(context, -(try days(rule.value))))])
            default: break
            }
        case .number:
            switch rule.op {
            case "eq": return ("\(c) = ?", [try typedValue(rule.value, target)])
            case "ne": return (context.dialect.isDistinct(c, "?"), [try typedValue(rule.value, target)])
            case "gt": return ("\(c) > ?", [try typedValue(rule.value, target)])
            case "lt": return ("\(c) < ?", [try typedValue(rule.value, target)])
            case "between":
                let a = try typedValue(rule.value, target), b = try typedValue(rule.value2, target)
                return ("\(c) BETWEEN ? AND ?", [a, b])
            default: break
            }
        case .text, .choice:
            let ci = rule.caseInsensitive && target.kind == .text
            // SQLite's lower() folds ASCII letters only; the same rule is documented for the builder.
            let col = ci ? context.dialect.asciiLower(c) : c
            func v(_ text: String) throws -> SQLValue {
                let value = try typedValue(text, target)
                if ci, case .text(let s) = value { return .text(asciiLowercased(s)) }
                return value
            }
            switch rule.op {
            case "eq": return ("\(col) = ?", [try v(rule.value)])
            case "ne": return ("(\(c) IS NULL OR \(col) <> ?)", [try v(rule.value)])
            case "contains": return ("\(context.dialect.position(of: "?", in: col)) > 0", [try v(rule.value)])
            case "not_contains": return ("(\(c) IS NULL OR \(context.dialect.position(of: "?", in: col)) = 0)", [try v(rule.value)])
            case "starts": let x = try v(rule.value); return ("substr(\(col), 1, length(?)) = ?", [x, x])
            case "ends":
                // Counted from the start on both stores (a negative start counts from the end only in SQLite).
                let x = try v(rule.value)
                return ("(length(\(c)) >= length(?) AND substr(\(col), length(\(c)) - length(?) + 1) = ?)", [x, x, x])
            case "in":
                let items = try listItems(rule.value).map { try v($0) }
                if items.isEmpty { throw RuleError("enter at least one value.") }
                return ("\(col) IN (\(items.map { _ in "?" }.joined(separator: ", ")))", items)
            default: break
            }
        case .boolean:
            switch rule.op {
            case "is_true": return ("\(c) = 1", [])
            case "is_false": return ("\(c) = 0", [])
            default: break
            }
        case .ip:
            switch rule.op {
            case "eq": return ("\(c) = ?", [try typedValue(rule.value, target)])
            case "ne": return (context.dialect.isDistinct(c, "?"), [try typedValue(rule.value, target)])
            case "in_cidr":
                guard let (low, high) = cidr(rule.value.trimmed) else { throw RuleError("\(rule.value) is not a range like 10.0.0.0/8.") }
                return ("\(c) BETWEEN ? AND ?", [.integer(Int64(low)), .integer(Int64(high))])
            default: break
            }
        case .tags:
            var items = listItems(rule.value)
            if target.isPhones {
                items = try items.map { item in
                    guard let phone = PhoneNumber.normalize(item) else { throw RuleError("\(item) is not a phone number.") }
                    return phone
                }
            }
            if items.isEmpty { throw RuleError("enter at least one value.") }
            let marks = items.map { _ in "?" }.joined(separator: ", ")
            let values = items.map { SQLValue.text($0) }
            let elements = context.dialect.jsonElements(c)
            let any = "EXISTS (SELECT 1 FROM \(elements) WHERE je.value IN (\(marks)))"
            switch rule.op {
            case "any": return (any, values)
            case "none": return ("NOT \(any)", values)
            case "all":
                return ("(SELECT COUNT(DISTINCT je.value) FROM \(elements) WHERE je.value IN (\(marks))) = ?", values + [.integer(Int64(items.count))])
            default: break
            }
        case .object, .array:
            guard rule.op == "key_eq" else { break }
            let key = rule.value2.trimmed
            guard !key.isEmpty, key.utf8.count <= 64, key.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }) else {
                throw RuleError("the key must be letters, digits or _ (up to 64).")
            }
            return context.dialect.jsonKeyEquals(c, key: key, value: jsonComparable(rule.value), array: target.kind == .array)
        default: break
        }
        throw RuleError("“\(rule.op)” does not apply to \(target.label).")
    }

    /// The value a key must equal: a whole number matches JSON numbers, true/false match JSON booleans (1/0 in
    /// SQLite), anything else matches JSON strings exactly.
    public static func jsonComparable(_ text: String) -> SQLValue {
        let t = text.trimmed
        if let i = Int64(t) { return .integer(i) }
        if t == "true" { return .integer(1) }
        if t == "false" { return .integer(0) }
        return .text(text)
    }

    public static func asciiLowercased(_ s: String) -> String {
        String(decoding: s.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    /// "10.0.0.0/8" → the first and last address as numbers.
    public static func cidr(_ text: String) -> (UInt32, UInt32)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard let address = parts.first.flatMap({ FieldType.parseIPv4(String($0)) }) else { return nil }
        var bits = 32
        if parts.count == 2 {
            guard let b = Int(parts[1]), (0...32).contains(b) else { return nil }
            bits = b
        } else if parts.count > 2 { return nil }
        let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
        return (address & mask, (address & mask) | ~mask)
    }
}
