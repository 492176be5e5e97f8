import Foundation
@testable import Roster
import Store
import XCTest

/// The selection engine against a plain in-memory evaluator of the same rules: thousands of random profiles,
/// hundreds of random rule trees, every operator, NULLs, unicode, LIKE metacharacters and quotes in values.
final class SelectionOracleTests: XCTestCase {
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
        mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
        mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
    }

    static let words = ["O'Brien", "o'brien", "50%", "100%_off", "a_b", "Ünïcödé", "ünïcödé", "東京", "Zoë", "zoe", "ZOE", "plain", "  spaced", "x", "%", "_", "\\", "\"q\"", "Mixed Case"]

    /// A profile as the evaluator sees it.
    struct Person {
        let id: Int64
        let bucket: Int
        let status: Int
        let email: String
        let lastInteraction: Int64?
        var values: [String: SQLValue]   // column → value
        var subscriptions: [(resource: Int64, channel: String, status: Int, categories: [String], deleted: Bool)] = []
        var events: [(type: String, at: Int64)] = []
        var segments: Set<Int64> = []
    }

    struct World {
        let pool: DatabasePool
        let context: SelectionContext
        let fields: [CustomField]
        let resources: [Resource]
        let staticSegment: Int64
        var people: [Person]
        let now: Int64
    }

    static let now: Int64 = 1_790_000_000   // 2026-09-21

    func makeWorld(profiles: Int, seed: UInt64) throws -> World {
        var g = Generator(state: seed)
        let pool = try makePool()
        let clock = Clock { SelectionOracleTests.now }
        let resources = Resources(pool: pool)
        let r1 = try resources.create(ResourceInput(name: "News", channels: ["email", "sms"], categories: "Sales\nTips"))
        let r2 = try resources.create(ResourceInput(name: "Promo", channels: ["email", "push"], categories: "Deals"))
        let databases = Databases(pool: pool, clock: clock)
        let db = try databases.create(DatabaseInput(name: "Oracle", resourceIDs: [r1.id, r2.id]))
        var fields: [CustomField] = []
        for type in FieldType.allCases {
            fields.append(try databases.addField(to: db.id, FieldInput(name: "f_\(type.rawValue)", type: type.rawValue, options: type == .enum ? "gold, silver, bronze" : "")))
        }
        let segments = Segments(pool: pool, clock: clock)
        let staticSegment = try segments.create(databaseID: db.id, SegmentInput(name: "Hand-picked", kind: .static), actor: nil)
        var people: [Person] = []
        let table = ProfileTable.name(db.id)
        try pool.write { conn in
            for i in 0..<profiles {
                let pid = ProfileIdentity.newProfileID()
                var values: [String: SQLValue] = [:]
                for field in fields where g.chance(75) {
                    values[field.column] = Self.randomValue(field.type, &g)
                }
                values["s_fname"] = g.chance(80) ? .text(g.pick(Self.words)) : .null
                values["s_regdate"] = g.chance(60) ? Self.randomValue(.date, &g) : .null
                values["phones"] = g.chance(50) ? .text(JSONValue.encodeStrings(Array(["+79001112233", "+79004445566", "+12025550100"].prefix(g.int(1...3))))) : .null
                let email = g.chance(85) ? "user\(i)@\(g.pick(["example.com", "Example.COM", "mail.ru"]))".lowercased() : ProfileIdentity.placeholderEmail(pid)
                let status = g.int(0...6)
                let last: Int64? = g.chance(85) ? SelectionOracleTests.now - Int64(g.int(0...400)) * 86_400 - Int64(g.int(0...86_399)) : nil
                let columns = ["profile_id", "email", "status", "range_bucket", "created_at", "updated_at", "last_interaction_at"] + values.keys.sorted()
                let bucket = ProfileIdentity.rangeBucket(pid)
                let params: [any SQLBindable] = [pid, email, status, bucket, 1, 1, last.map { SQLValue.integer($0) } ?? .null] + values.keys.sorted().map { values[$0]! }
                try conn.prepare("INSERT INTO \(table) (\(columns.joined(separator: ","))) VALUES (\(columns.map { _ in "?" }.joined(separator: ",")))").execute(params)
                var person = Person(id: try conn.lastInsertedID(), bucket: bucket, status: status, email: email, lastInteraction: last, values: values)
                for _ in 0..<g.int(0...3) {
                    let resource = g.pick([r1, r2])
                    let channel = g.pick(resource.channels).rawValue
                    let cats = resource.categories.filter { _ in g.chance(50) }
                    let sub = (resource: resource.id, channel: channel, status: g.int(0...6), categories: cats, deleted: g.chance(15))
                    try conn.run("INSERT INTO subscriptions_\(db.id) (profile, resource_id, channel, contact, status, categories, deleted, created_at, updated_at) VALUES (?, ?, ?, 'c', ?, ?, ?, 1, 1)",
                                 [person.id, sub.resource, sub.channel, sub.status, JSONValue.encodeStrings(sub.categories), sub.deleted])
                    person.subscriptions.append(sub)
                }
                for _ in 0..<g.int(0...3) {
                    let event = (type: g.pick([HistoryEvent.opened, HistoryEvent.clicked, HistoryEvent.sent, HistoryEvent.goal]), at: SelectionOracleTests.now - Int64(g.int(0...200)) * 86_400)
                    try conn.run(ProfileTable.insertEvent(db.id), [person.id, event.at, event.type, SQLValue.null, "{}"])
                    person.events.append(event)
                }
                if g.chance(20) {
                    try conn.run("INSERT INTO \(SegmentStore.membersTable(db.id)) (segment_id, profile, added_at) VALUES (?, ?, 1)", [staticSegment.id, person.id])
                    person.segments.insert(staticSegment.id)
                }
                people.append(person)
            }
        }
        let context = try segments.context(databaseID: db.id)
        return World(pool: pool, context: context, fields: fields, resources: [r1, r2], staticSegment: staticSegment.id, people: people, now: SelectionOracleTests.now)
    }

    static func randomValue(_ type: FieldType, _ g: inout Generator) -> SQLValue {
        switch type {
        case .number: return .integer(Int64(g.int(-50...50)))
        case .float: return .real(Double(g.int(-500...500)) / 10)
        case .line: return .text(g.pick(words) + (g.chance(30) ? " " + g.pick(words) : ""))
        case .date:
            let day = Int64(g.int(20_000...20_600))
            return .text(UTCTime.rfc3339(milliseconds: (day * 86_400 + Int64(g.int(0...86_399))) * 1000))
        case .boolean: return .integer(Int64(g.int(0...1)))
        case .enum: return .text(g.pick(["gold", "silver", "bronze"]))
        case .ip: return .integer(Int64(g.pick([0x0A000001, 0x0A0000FF, 0xC0A80001, 0xC0A80101, 0x08080808] as [UInt32])))
        case .tags:
            let tags = ["vip", "new", "Vip", "50%", "o'brien"].filter { _ in g.chance(35) }
            return tags.isEmpty ? .null : .text(JSONValue.encodeStrings(tags))
        case .object:
            var o: [String: JSONValue] = [:]
            if g.chance(70) { o["tier"] = g.pick([.string("gold"), .string("5"), .int(5), .bool(true), .string("O'Brien")]) }
            if g.chance(50) { o["n"] = .int(Int64(g.int(0...3))) }
            return .text(JSONValue.object(o).canonical)
        case .array:
            let items = (0..<g.int(0...3)).map { _ in JSONValue.object(["sku": g.pick([.string("A1"), .string("B2"), .int(7)])]) }
            return .text(JSONValue.array(items).canonical)
        }
    }

    // MARK: Random rules, always well-formed

    func randomRule(_ w: World, _ g: inout Generator) -> Rule {
        let subjects = w.fields.map { "custom:\($0.id)" } + ["field:_fname", "field:email", "field:phones", "field:_regdate", "status", "event", "last_interaction", "segment",
                                                             "subscription:\(w.resources[0].id):email", "subscription:\(w.resources[0].id):any", "subscription:\(w.resources[1].id):push"]
        let subject = g.pick(subjects)
        let kind = SelectionCompiler.kind(of: subject, w.context)!
        let op = g.pick(RuleOperators.operators(kind)).op
        var rule = Rule(subject: subject, op: op)
        let type = w.fields.first { "custom:\($0.id)" == subject }?.type
        func day() -> String { UTCTime.day(Int64(g.int(20_000...20_600)) * 86_400) }
        switch kind {
        case .number:
            rule.value = type == .float ? String(Double(g.int(-500...500)) / 10) : String(g.int(-50...50))
            rule.value2 = type == .float ? String(Double(g.int(0...500)) / 10) : String(g.int(0...50))
        case .date:
            rule.value = ["within_days", "more_than_days"].contains(op) ? String(g.int(1...900)) : day()
            let a = rule.value
            rule.value2 = day()
            if op == "between", rule.value2 < a { rule.value2 = a }
        case .text:
            if subject == "field:email" {
                rule.value = g.pick(["user1@example.com", "USER2@EXAMPLE.COM", "example", "mail.ru", "user1"])
            } else {
                rule.value = op == "in" ? [g.pick(Self.words), g.pick(Self.words)].joined(separator: "\n") : g.pick(Self.words)
            }
            if rule.value.trimmed.isEmpty { rule.value = "x" }
            rule.caseInsensitive = g.chance(50)
        case .choice: rule.value = op == "in" ? "gold, bronze" : g.pick(["gold", "silver", "bronze"])
        case .boolean, .suppression: break
        case .ip: rule.value = op == "in_cidr" ? g.pick(["10.0.0.0/24", "192.168.0.0/16", "8.8.8.8/32", "0.0.0.0/0"]) : g.pick(["10.0.0.1", "8.8.8.8"])
        case .tags: rule.value = subject == "field:phones" ? g.pick(["+79001112233", "+1 202 555 0100"]) : [g.pick(["vip", "new", "Vip", "50%", "o'brien"]), g.pick(["vip", "new"])].joined(separator: ", ")
        case .object, .array:
            rule.value2 = g.pick(["tier", "n", "sku", "missing"])
            rule.value = g.pick(["gold", "5", "true", "A1", "7", "O'Brien", "1"])
        case .status: rule.value = [g.pick(ProfileStatus.allCases).name, g.pick(ProfileStatus.allCases).name].joined(separator: ", ")
        case .subscription:
            rule.value = g.chance(50) ? [g.pick(ProfileStatus.allCases).name].joined() : ""
            if g.chance(30) { rule.value2 = subject.hasSuffix(":push") ? "Deals" : g.pick(["Sales", "Tips"]) }
        case .event:
            rule.value = g.pick(["any", HistoryEvent.opened, HistoryEvent.clicked, HistoryEvent.goal])
            rule.value2 = String(g.int(1...250))
        case .lastInteraction:
            rule.value = ["before", "after"].contains(op) ? UTCTime.day(SelectionOracleTests.now - Int64(g.int(0...400)) * 86_400) : String(g.int(1...400))
        case .segment: rule.value = String(w.staticSegment)
        }
        return rule
    }

    func randomTree(_ w: World, _ g: inout Generator, depth: Int) -> RuleNode {
        let count = g.int(1...3)
        let children = (0..<count).map { _ -> RuleNode in
            depth < 3 && g.chance(30) ? randomTree(w, &g, depth: depth + 1) : .rule(randomRule(w, &g))
        }
        return .group(g.chance(50) ? .and : .or, children)
    }

    // MARK: The evaluator: the rules' meaning, written plainly.

    static func lower(_ s: String) -> String { SelectionCompiler.asciiLowercased(s) }
    static func bytesContain(_ hay: String, _ needle: String) -> Bool {
        let h = Array(hay.utf8), n = Array(needle.utf8)
        if n.isEmpty { return true }
        if n.count > h.count { return false }
        for i in 0...(h.count - n.count) where Array(h[i..<(i + n.count)]) == n { return true }
        return false
    }
    static func number(_ v: SQLValue) -> Double? {
        switch v { case .integer(let i): return Double(i); case .real(let d): return d; default: return nil }
    }

    func matches(_ node: RuleNode, _ p: Person, _ w: World) -> Bool {
        switch node {
        case .group(let join, let children):
            if children.isEmpty { return true }
            return join == .and ? children.allSatisfy { matches($0, p, w) } : children.contains { matches($0, p, w) }
        case .rule(let r):
            return matches(r, p, w)
        }
    }

    func matches(_ r: Rule, _ p: Person, _ w: World) -> Bool {
        let today = Int(w.now / 86_400)
        func dayString(_ offset: Int) -> String { UTCTime.day(Int64(today + offset) * 86_400) }
        func dayStart(_ d: String) -> Int64 { SelectionCompiler.dayStart(d) }
        switch r.subject {
        case "status":
            let set = SelectionCompiler.listItems(r.value).compactMap { ProfileStatus(text: $0)?.rawValue }
            return r.op == "in" ? set.contains(p.status) : !set.contains(p.status)
        case "event":
            // README: "within the last N days" counts UTC days and includes today.
            let since = Int64(today - Int(r.value2)!) * 86_400
            let had = p.events.contains { $0.at >= since && (r.value == "any" || $0.type == r.value) }
            return r.op == "had" ? had : !had
        case "last_interaction":
            switch r.op {
            case "before": return p.lastInteraction.map { $0 < dayStart(r.value) } ?? true
            case "after": return p.lastInteraction.map { $0 >= dayStart(r.value) + 86_400 } ?? false
            case "within_days": return p.lastInteraction.map { Int($0 / 86_400) >= today - Int(r.value)! } ?? false
            default: return p.lastInteraction.map { Int($0 / 86_400) < today - Int(r.value)! } ?? true
            }
        case "segment":
            return (r.op == "in") == p.segments.contains(Int64(r.value)!)
        default: break
        }
        if r.subject.hasPrefix("subscription:") {
            let parts = r.subject.split(separator: ":")
            let statuses = SelectionCompiler.listItems(r.value).compactMap { ProfileStatus(text: $0)?.rawValue }
            let has = p.subscriptions.contains { s in
                !s.deleted && s.resource == Int64(parts[1])! && (parts[2] == "any" || s.channel == parts[2])
                    && (statuses.isEmpty || statuses.contains(s.status)) && (r.value2.isEmpty || s.categories.contains(r.value2))
            }
            return r.op == "has" ? has : !has
        }
        // Fields.
        let column: String
        var type: FieldType
        var isEmail = false, isPhones = false
        if r.subject.hasPrefix("custom:") {
            let field = w.fields.first { "custom:\($0.id)" == r.subject }!
            column = field.column
            type = field.type
        } else {
            let f = StandardField.named(String(r.subject.dropFirst(6)))!
            column = f.column
            switch f.kind {
            case .typed(let t): type = t
            case .email: type = .line; isEmail = true
            case .phones: type = .tags; isPhones = true
            }
        }
        // README: a profile with only its `<profile id>@localhost` placeholder has no email.
        let value: SQLValue = isEmail ? (p.email.hasSuffix("@localhost") ? .null : .text(p.email)) : (p.values[column] ?? .null)
        let tags: [String]? = (type == .tags) ? { if case .text(let t) = value { return JSONValue.stringList(t) } else { return nil } }() : nil
        let isEmpty: Bool = isEmail ? p.email.hasSuffix("@localhost") : (type == .tags ? (tags ?? []).isEmpty : value == .null)
        if r.op == "empty" { return isEmpty }
        if r.op == "not_empty" { return !isEmpty }
        switch type {
        case .number, .float:
            guard let x = Self.number(value) else { return r.op == "ne" }
            let a = Double(r.value.trimmed)!
            switch r.op {
            case "eq": return x == a
            case "ne": return x != a
            case "gt": return x > a
            case "lt": return x < a
            default: return x >= a && x <= Double(r.value2.trimmed)!
            }
        case .date:
            guard case .text(let stored) = value else { return r.op == "ne" }
            let d = String(stored.prefix(10))
            switch r.op {
            case "eq": return d == r.value
            case "ne": return d != r.value
            case "gt": return d > r.value
            case "lt": return d < r.value
            case "between": return d >= r.value && d <= r.value2
            case "within_days": return d >= dayString(-Int(r.value)!) && d <= dayString(0)
            default: return d < dayString(-Int(r.value)!)
            }
        case .line, .enum:
            guard case .text(var s) = value else { return ["ne", "not_contains"].contains(r.op) }
            var needle = isEmail ? r.value.trimmed.lowercased() : (type == .line ? r.value : r.value.trimmed)
            var list = SelectionCompiler.listItems(r.value)
            if r.caseInsensitive && type == .line { s = Self.lower(s); needle = Self.lower(needle); list = list.map(Self.lower) }
            // The email column compares without ASCII case (its collation), and emails are stored lower-case.
            if isEmail && (r.op == "eq" || r.op == "ne" || r.op == "in") { s = Self.lower(s); needle = Self.lower(needle); list = list.map(Self.lower) }
            switch r.op {
            case "eq": return s == needle
            case "ne": return s != needle
            case "contains": return Self.bytesContain(s, needle)
            case "not_contains": return !Self.bytesContain(s, needle)
            case "starts": return s.utf8.starts(with: needle.utf8)
            case "ends": return Array(s.utf8).reversed().starts(with: Array(needle.utf8).reversed())
            default: return list.contains(s)
            }
        case .boolean:
            return r.op == "is_true" ? value == .integer(1) : value == .integer(0)
        case .ip:
            guard case .integer(let ip) = value else { return r.op == "ne" }
            switch r.op {
            case "eq": return ip == Int64(FieldType.parseIPv4(r.value)!)
            case "ne": return ip != Int64(FieldType.parseIPv4(r.value)!)
            default:
                let (lo, hi) = SelectionCompiler.cidr(r.value)!
                return ip >= Int64(lo) && ip <= Int64(hi)
            }
        case .tags:
            let have = Set(tags ?? [])
            let wanted = SelectionCompiler.listItems(r.value).map { isPhones ? PhoneNumber.normalize($0)! : $0 }
            switch r.op {
            case "any": return wanted.contains { have.contains($0) }
            case "none": return !wanted.contains { have.contains($0) }
            default: return wanted.allSatisfy { have.contains($0) }
            }
        case .object, .array:
            guard case .text(let text) = value, let json = JSONValue.parse(text) else { return false }
            let want = SelectionCompiler.jsonComparable(r.value)
            func equal(_ v: JSONValue?) -> Bool {
                switch (v, want) {
                case (.int(let i)?, .integer(let j)): return i == j
                case (.bool(let b)?, .integer(let j)): return (b ? 1 : 0) == j
                case (.string(let s)?, .text(let t)): return s == t
                default: return false
                }
            }
            if case .object(let o) = json { return equal(o[r.value2]) }
            if case .array(let items) = json {
                return items.contains { if case .object(let o) = $0 { return equal(o[r.value2]) } else { return false } }
            }
            return false
        }
    }

    func expected(_ selection: Selection, _ w: World) -> [Int64] {
        let inRange = w.people.filter { $0.bucket >= selection.rangeFrom * 100 && $0.bucket < selection.rangeTo * 100 }
        let matching = inRange.filter { matches(selection.rules, $0, w) }.map(\.id).sorted()
        if let limit = selection.limit, limit > 0 { return Array(matching.prefix(limit)) }
        return matching
    }

    func actual(_ selection: Selection, _ w: World) throws -> [Int64] {
        let compiled = try SelectionCompiler.compile(selection, w.context)
        return try w.pool.read { db in
            let bound = try Segments.limitBoundary(compiled, db)
            return try Segments.ids(compiled, after: 0, upTo: bound, count: 1_000_000, db)
        }
    }

    func testSQLAgreesWithTheInMemoryEvaluator() throws {
        let w = try makeWorld(profiles: 2500, seed: 0x5EED)
        var g = Generator(state: 42)
        var nonTrivial = 0
        for round in 0..<400 {
            var selection = Selection(rules: randomTree(w, &g, depth: 1))
            if g.chance(30) {
                let from = g.int(0...90)
                selection.rangeFrom = from
                selection.rangeTo = g.int((from + 1)...100)
            }
            if g.chance(25) { selection.limit = g.int(0...300) }
            let want = expected(selection, w)
            let got = try actual(selection, w)
            if !want.isEmpty && want.count < w.people.count { nonTrivial += 1 }
            if want != got {
                let missing = Set(want).subtracting(got).prefix(3), extra = Set(got).subtracting(want).prefix(3)
                XCTFail("round \(round): \(selection.json.canonical)\nexpected \(want.count), got \(got.count); missing \(Array(missing)), extra \(Array(extra))")
                return
            }
        }
        XCTAssertGreaterThan(nonTrivial, 200, "most random selections take some profiles but not all")
        // Every operator of every kind came up.
        for rule in (0..<2000).map({ _ in randomRule(w, &g) }) { _ = rule }
    }

    func testRangesAreStableAndDisjoint() throws {
        let w = try makeWorld(profiles: 3000, seed: 7)
        let low = try actual(Selection(rangeFrom: 0, rangeTo: 20), w)
        let high = try actual(Selection(rangeFrom: 80, rangeTo: 100), w)
        let whole = try actual(Selection(), w)
        XCTAssertTrue(Set(low).isDisjoint(with: high))
        XCTAssertEqual(try actual(Selection(rangeFrom: 0, rangeTo: 20), w), low, "the same range selects the same people")
        XCTAssertEqual(whole.count, 3000)
        XCTAssertEqual(Double(low.count) / 3000, 0.2, accuracy: 0.035, "about 20% fall in a 20% range")
        XCTAssertEqual(Double(try actual(Selection(rangeFrom: 10, rangeTo: 50), w).count) / 3000, 0.4, accuracy: 0.04)
        // The limit takes the first N in creation order, inside the range.
        let limited = try actual(Selection(rangeFrom: 0, rangeTo: 20, limit: 25), w)
        XCTAssertEqual(limited, Array(low.prefix(25)))
        XCTAssertEqual(try actual(Selection(limit: 0), w).count, 3000, "limit 0 means none")
    }

    func testBadRulesArePointedAt() throws {
        let w = try makeWorld(profiles: 10, seed: 1)
        let number = w.fields.first { $0.type == .number }!
        func refuse(_ selection: Selection, _ key: String, _ text: String) {
            XCTAssertThrowsError(try SelectionCompiler.compile(selection, w.context)) { error in
                let message = (error as? ValidationError)?.fieldErrors[key] ?? ""
                XCTAssertTrue(message.contains(text), "\(key): \(error)")
            }
        }
        refuse(Selection(rules: .group(.and, [.group(.or, [])])), "rule:0", "empty")
        refuse(Selection(rules: .group(.and, [.rule(Rule(subject: "custom:\(number.id)", op: "contains", value: "1"))])), "rule:0", "does not apply")
        refuse(Selection(rules: .group(.and, [.rule(Rule(subject: "status", op: "in", value: "x")), .group(.or, [.rule(Rule(subject: "custom:\(number.id)", op: "eq", value: "abc"))])])), "rule:1.0", "not a whole number")
        refuse(Selection(rules: .group(.and, [.rule(Rule(subject: "custom:99999", op: "eq", value: "1"))])), "rule:0", "deleted")
        refuse(Selection(rangeFrom: 50, rangeTo: 20), "range", "start is below its end")
        refuse(Selection(rangeFrom: 0, rangeTo: 120), "range", "0 to 100")
        refuse(Selection(limit: -1), "limit", "0 or more")
        refuse(Selection(rules: .group(.and, [.rule(Rule(subject: "segment", op: "in", value: "12345"))])), "rule:0", "no longer exists")
        refuse(Selection(rules: .group(.and, [.rule(Rule(subject: "field:_fname; DROP TABLE users", op: "eq", value: "1"))])), "rule:0", "no standard field")
    }
}
