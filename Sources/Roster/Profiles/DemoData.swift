import Foundation
import Store

/// Realistic demo profiles for trying Roster and for benchmarks: names, emails, phones, all seven statuses in
/// believable proportions, subscriptions in several resources and channels, a few custom fields of each type,
/// and history spread over the last 18 months. Deterministic for a given seed.
public struct DemoData {
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {  // SplitMix64
            state &+= 0x9E3779B97F4A7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    }

    static let firstNames = ["Anna", "Boris", "Clara", "Dmitri", "Elena", "Felix", "Greta", "Hugo", "Irina", "Jonas", "Katya", "Leon", "Maria", "Nikolai", "Olga", "Pavel", "Quinn", "Rosa", "Sergei", "Tanja", "Ulrich", "Vera", "Wanda", "Yuri", "Zoe"]
    static let lastNames = ["Ivanova", "Müller", "Schmidt", "Petrov", "Novak", "Rossi", "García", "Kowalski", "Smirnov", "Dubois", "Jensen", "O'Brien", "Nowak", "Fischer", "Volkov"]
    static let cities = [("Germany", "Berlin"), ("Germany", "Munich"), ("Russia", "Moscow"), ("Russia", "Kazan"), ("France", "Lyon"), ("Spain", "Madrid"), ("Italy", "Milan"), ("Poland", "Warsaw")]
    /// Out of 100: subscribed 70, unsubscribed 10, unconfirmed 8, hard bounced 4, suspended 3, invalid 3, complainer 2.
    static let statusWeights: [(ProfileStatus, Int)] = [(.subscribed, 70), (.unsubscribed, 10), (.unconfirmed, 8), (.hardBounced, 4), (.suspended, 3), (.invalid, 3), (.complainer, 2)]

    let pool: DatabasePool
    let clock: Clock

    public init(pool: DatabasePool, clock: Clock = .system) {
        self.pool = pool
        self.clock = clock
    }

    /// Creates (or reuses) the database and adds `count` profiles. Returns the database.
    @discardableResult
    public func seed(databaseName: String, count: Int, seed: UInt64 = 42, progress: (Int) -> Void = { _ in }) throws -> ProfileDatabase {
        let databases = Databases(pool: pool, clock: clock)
        let resources = Resources(pool: pool, clock: clock)
        func resource(_ name: String, _ channels: [String], _ categories: String) throws -> Resource {
            if let existing = try resources.list().first(where: { $0.name == name }) { return existing }
            return try resources.create(ResourceInput(name: name, channels: channels, categories: categories, increasePriority: true))
        }
        let news = try resource("Newsletter", ["email", "sms"], "Sales\nTips\nEvents")
        let app = try resource("Mobile app", ["push", "telegram_bot", "whatsapp", "viber"], "Orders\nPromotions")
        let db: ProfileDatabase
        if let existing = try databases.list().first(where: { $0.database.name == databaseName })?.database {
            db = existing
        } else {
            db = try databases.create(DatabaseInput(name: databaseName, description: "Demo customers", tags: "demo", resourceIDs: [news.id, app.id]))
            let fields: [FieldInput] = [
                FieldInput(name: "orders", type: "number", indexed: true), FieldInput(name: "lifetime_value", type: "float"),
                FieldInput(name: "favourite_product", type: "line"), FieldInput(name: "last_order", type: "date"),
                FieldInput(name: "vip", type: "boolean"), FieldInput(name: "plan", type: "enum", options: "basic,plus,pro", defaultValue: "basic"),
                FieldInput(name: "signup_ip", type: "ip"), FieldInput(name: "interests", type: "tags"),
                FieldInput(name: "preferences", type: "object"), FieldInput(name: "purchases", type: "array"),
            ]
            for f in fields { try databases.addField(to: db.id, f) }
        }
        let custom = Dictionary(try databases.fields(of: db.id).map { ($0.name, $0.column) }, uniquingKeysWith: { a, _ in a })
        var rng = Generator(state: seed &+ UInt64(db.id))
        let now = clock.now()
        let span: Int64 = 548 * 86_400  // 18 months
        let t = ProfileTable.name(db.id)
        let customColumns = ["orders", "lifetime_value", "favourite_product", "last_order", "vip", "plan", "signup_ip", "interests", "preferences", "purchases"]
            .compactMap { custom[$0] }
        var done = 0
        while done < count {
            let batch = min(5000, count - done)
            try pool.write { db2 in
                let start = (try db2.scalar("SELECT COALESCE(MAX(id), 0) FROM \(t)").int ?? 0) + 1
                let columns = ["profile_id", "email", "phones", "status", "range_bucket", "s_fname", "s_lname", "s_sex", "s_bdate", "s_regdate",
                               "s_country", "s_city", "s_regcountry", "s_regcity", "created_at", "updated_at", "last_interaction_at", "engaged_at"] + customColumns
                let insert = try db2.prepare("INSERT INTO \(t) (\(columns.joined(separator: ","))) VALUES (\(columns.map { _ in "?" }.joined(separator: ",")))")
                let event = try db2.prepare(ProfileTable.insertEvent(db.id))
                let stats = try db2.cached(History.bumpStats)
                let sub = try db2.prepare("""
                    INSERT INTO subscriptions_\(db.id) (profile, resource_id, channel, contact, provider, status, priority, categories, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
                    """)
                for i in 0..<batch {
                    let n = start + i
                    let profileID = ProfileIdentity.newProfileID()
                    let first = rng.pick(DemoData.firstNames), last = rng.pick(DemoData.lastNames)
                    let (country, city) = rng.pick(DemoData.cities)
                    var roll = rng.below(100)
                    var status = ProfileStatus.subscribed
                    for (s, w) in DemoData.statusWeights { if roll < w { status = s; break }; roll -= w }
                    let created = now - Int64(rng.below(Int(span)))
                    let phone = "+49" + String(1_500_000_000 + rng.below(99_999_999))
                    let email = "\(first.lowercased().folding(options: .diacriticInsensitive, locale: nil)).\(n)@example.com"
                    let engaged = rng.below(100) < 60
                    let lastActivity = engaged ? created + Int64(rng.below(Int(now - created) + 1)) : created
                    let birth = String(format: "%04d-%02d-%02dT00:00:00.000Z", 1950 + rng.below(55), 1 + rng.below(12), 1 + rng.below(28))
                    let orders = rng.below(40)
                    var values: [any SQLBindable] = [profileID, email, "[\"\(phone)\"]", status.rawValue, ProfileIdentity.rangeBucket(profileID),
                                                     first, last, rng.below(2) == 0 ? "female" : "male", birth,
                                                     FieldType.formatDate(Date(timeIntervalSince1970: TimeInterval(created))),
                                                     country, city, country, city, created, created, lastActivity, engaged ? SQLValue.integer(lastActivity) : SQLValue.null]
                    if customColumns.count == 10 {
                        values += [orders, Double(orders) * 37.5, rng.pick(["Coffee", "Tea", "Mugs", "Beans", "Grinder"]),
                                   FieldType.formatDate(Date(timeIntervalSince1970: TimeInterval(lastActivity))), rng.below(10) == 0,
                                   rng.pick(["basic", "plus", "pro"]), Int64(0x0A00_0000 + rng.below(0xFFFFFF)),
                                   "[\"\(rng.pick(["coffee", "tea"]))\",\"\(rng.pick(["sales", "news", "events"]))\"]",
                                   "{\"newsletter\":\(rng.below(2) == 0),\"theme\":\"\(rng.pick(["dark", "light"]))\"}",
                                   "[{\"sku\":\"A\(rng.below(100))\",\"qty\":\(1 + rng.below(3))}]"]
                    }
                    try insert.execute(values)
                    let row = try db2.lastInsertedID()
                    try event.execute([row, created, HistoryEvent.created, SQLValue.null, "{\"how\":\"demo\"}"])
                    try stats.execute([db.id, created, HistoryEvent.created])
                    try sub.execute([row, news.id, "email", email, "", status.rawValue, "[\"Sales\"]", created, created])
                    if rng.below(3) == 0 { try sub.execute([row, news.id, "sms", phone, "", rng.below(5) == 0 ? 1 : 0, "[]", created, created]) }
                    if rng.below(4) == 0 { try sub.execute([row, app.id, "push", "sub-\(profileID)", "FCM", 0, "[\"Orders\"]", created, created]) }
                    if engaged {
                        for type in [HistoryEvent.sent, HistoryEvent.opened] {
                            let at = created + Int64(rng.below(Int(lastActivity - created) + 1))
                            try event.execute([row, at, type, SQLValue.null, "{\"campaign\":\"demo\"}"])
                            try stats.execute([db.id, at, type])
                        }
                    }
                }
            }
            done += batch
            progress(done)
        }
        return db
    }
}
