import Foundation
@testable import Roster
import Store
import XCTest

/// The spec's request examples, byte for byte, against a database set up to match them: db_id 1, resource 28
/// with the categories and the subscription field they use, the token "abcdefghijklmnqrstuvwxyz".
final class BatchAPISpecTests: XCTestCase {
    static let jsonExample = """
        {
        "token": "abcdefghijklmnqrstuvwxyz",
        "db_id": 1,
        "matching": "custom",
        "field_name": "Custom_ID",
        "skip_triggers": true,
        "data": [
        {
        "_fname": "Lala",
        "_lname": "Doe",
        "Custom_ID": 77,
        "email": "example@example.com",
        "subscriptions": [
        {
        "channel": "email",
        "email_data": {
        "email": "example@example.com"
        },
        "resource_id": 28,
        "custom_fields": {
        "custom_field": "test value"
        },
        "cats": [
        "category_1",
        "category_2"
        ]
        }
        ]
        },
        {
        "_fname": "Victor",
        "Custom_ID": 88,
        "email": "example@example.com"
        }
        ]
        }
        """

    static let xmlExample = """
        <xml>
        <token>abcdefghijklmnqrstuvwxyz</token>
        <db_id>1</db_id>
        <matching>custom</matching>
        <field_name>Custom_ID</field_name>
        <skip_triggers>true</skip_triggers>
        <data>
        <_fname>Lala</_fname>
        <_lname>Doe</_lname>
        <Custom_ID>77</Custom_ID>
        <email>example@example.com</email>
        <subscriptions array='true'>
        <channel>email</channel>
        <email_data>
        <email>example@example.com</email>
        </email_data>
        <resource_id>28</resource_id>
        <custom_fields>
        <custom_field>test value</custom_field>
        </custom_fields>
        <cats>category_1</cats>
        <cats>category_2</cats>
        </subscriptions>
        </data>
        <data>
        <_fname>Alex</_fname>
        <Custom_ID>345</Custom_ID>
        <email>example@example.com</email>
        </data>
        </xml>
        """

    struct Setup {
        let pool: DatabasePool
        let api: BatchAPI
        let profiles: Profiles
    }

    func makeSetup() throws -> Setup {
        let pool = try makePool()
        let resources = Resources(pool: pool)
        for i in 1...27 { _ = try resources.create(ResourceInput(name: "Filler \(i)", channels: ["email"])) }
        let resource = try resources.create(ResourceInput(name: "Newsletter", channels: ["email"], categories: "category_1\ncategory_2", fields: "custom_field:line"))
        XCTAssertEqual(resource.id, 28)
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "Customers", resourceIDs: [28]))
        XCTAssertEqual(db.id, 1)
        _ = try databases.addField(to: 1, FieldInput(name: "Custom_ID", type: "number"))
        let profiles = Profiles(pool: pool)
        _ = try profiles.create(databaseID: 1, ProfileInput(values: ["email": "example@example.com", "Custom_ID": "77"]), actor: nil)
        let tokens = APITokens(pool: pool)
        try tokens.register(token: "abcdefghijklmnqrstuvwxyz", name: "spec", databaseIDs: [1])
        return Setup(pool: pool, api: BatchAPI(pool: pool, tokens: tokens, links: SubscriberLinks(pool: pool)), profiles: profiles)
    }

    func testTheJSONExample() throws {
        let s = try makeSetup()
        let (status, body, _) = s.api.handle(mode: .update, body: Array(Self.jsonExample.utf8), xml: false, idempotencyKey: nil)
        XCTAssertEqual(status, 200)
        guard case .object(let o)? = JSONValue.parse(body), case .array(let result)? = o["result"] else { return XCTFail(body) }
        XCTAssertEqual(o["error"], .int(0))
        XCTAssertEqual(o["error_text"], .string("Successful operation"))
        XCTAssertEqual(result.count, 2)
        guard case .object(let first) = result[0], case .object(let second) = result[1] else { return XCTFail(body) }
        XCTAssertEqual(first["error"], .int(0))
        XCTAssertEqual(first["error_text"], .string("Successful operation"))
        XCTAssertEqual(second["error"], .int(Int64(BatchAPI.ItemCode.notFound)), "Custom_ID 88 matches nobody and update_batch creates nothing")
        let p = try XCTUnwrap(s.profiles.get(databaseID: 1, profileID: first["profile_id"]?.stringValue ?? ""))
        XCTAssertEqual([p.values["_fname"], p.values["_lname"]], ["Lala", "Doe"])
        let subs = try Subscriptions(pool: s.pool).list(databaseID: 1, profileRowID: p.rowID)
        XCTAssertEqual(subs.map(\.resourceID), [28])
        XCTAssertEqual(subs.first?.categories, ["category_1", "category_2"])
        XCTAssertEqual(subs.first?.fields, ["custom_field": .string("test value")], "the resource's subscription field is kept")
        XCTAssertEqual(try s.pool.read { try $0.scalar("SELECT COUNT(*) FROM trigger_events").int }, 0, "skip_triggers")
    }

    func testTheXMLExample() throws {
        let s = try makeSetup()
        let (status, body, _) = s.api.handle(mode: .update, body: Array(Self.xmlExample.utf8), xml: true, idempotencyKey: nil)
        XCTAssertEqual(status, 200)
        XCTAssertTrue(body.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml><error>0</error><error_text>Successful operation</error_text><result><error>0</error>"), body)
        XCTAssertEqual(body.components(separatedBy: "<result>").count, 3)
        XCTAssertTrue(body.contains("<result><error>1</error>"), "Alex (345) matches nobody: \(body)")
        let p = try XCTUnwrap(s.profiles.list(databaseID: 1, ProfileQuery()).profiles.first)
        XCTAssertEqual(p.values["_lname"], "Doe")
    }

    func testLimitsAndMalformedBodies() throws {
        let s = try makeSetup()
        func items(_ n: Int) -> [UInt8] {
            let item = #"{"email": "example@example.com", "_fname": "N"}"#
            return Array(#"{"token": "abcdefghijklmnqrstuvwxyz", "db_id": 1, "data": ["#.utf8) + Array(Array(repeating: item, count: n).joined(separator: ",").utf8) + Array("]}".utf8)
        }
        let ok = s.api.handle(mode: .update, body: items(10_000), xml: false, idempotencyKey: nil)
        XCTAssertEqual(ok.status, 200)
        XCTAssertEqual(ok.body.components(separatedBy: "\"error\":0").count - 1, 10_001, "10,000 items answered, each in order")
        let tooMany = s.api.handle(mode: .update, body: items(10_001), xml: false, idempotencyKey: nil)
        XCTAssertEqual(tooMany.status, 413)
        var cut = Array(Self.jsonExample.utf8)
        cut.removeLast()
        XCTAssertEqual(s.api.handle(mode: .update, body: cut, xml: false, idempotencyKey: nil).status, 400, "JSON cut at the last byte")
        var xmlCut = Array(Self.xmlExample.utf8)
        xmlCut.removeLast()
        XCTAssertEqual(s.api.handle(mode: .update, body: xmlCut, xml: true, idempotencyKey: nil).status, 400, "XML cut at the last byte")
        XCTAssertEqual(try s.profiles.list(databaseID: 1, ProfileQuery()).profiles.first?.values["_fname"], "N")
        let big = [UInt8](repeating: 32, count: BatchAPI.maxBytes + 1)
        XCTAssertEqual(s.api.handle(mode: .update, body: big, xml: false, idempotencyKey: nil).status, 413)
        // Wrong tokens are throttled per address.
        for _ in 0..<APITokens.maxFailures {
            XCTAssertEqual(s.api.handle(mode: .update, body: Array(#"{"token": "guess", "db_id": 1, "data": []}"#.utf8), xml: false, idempotencyKey: nil, address: "10.0.0.9").status, 401)
        }
        XCTAssertEqual(s.api.handle(mode: .update, body: items(1), xml: false, idempotencyKey: nil, address: "10.0.0.9").status, 429, "even a good token, from a throttled address")
        XCTAssertEqual(s.api.handle(mode: .update, body: items(1), xml: false, idempotencyKey: nil, address: "10.0.0.10").status, 200)
    }

    func testEachChannelObject() throws {
        let s = try makeSetup()
        let resources = Resources(pool: s.pool)
        let all = try resources.create(ResourceInput(name: "All", channels: Channel.allCases.map(\.rawValue)))
        try s.pool.write { try $0.run("INSERT INTO database_resources (database_id, resource_id) VALUES (1, ?)", [all.id]) }
        let subs = """
            [{"resource_id": \(all.id), "channel": "email", "email": "example@example.com"},
             {"resource_id": \(all.id), "channel": "sms", "phone": "+79000000000"},
             {"resource_id": \(all.id), "channel": "push", "provider": "Firefox", "subscription_id": "abcdefghijklmnqrstuvwxyz"},
             {"resource_id": \(all.id), "channel": "telegram_bot", "cc_data": {"id": 1}},
             {"resource_id": \(all.id), "channel": "whatsapp", "cc_data": {"phone": "+79000000000"}},
             {"resource_id": \(all.id), "channel": "viber", "cc_data": {"phone": "+79000000000"}}]
            """
        let body = #"{"token": "abcdefghijklmnqrstuvwxyz", "db_id": 1, "data": [{"email": "example@example.com", "subscriptions": \#(subs)}]}"#
        let answer = s.api.handle(mode: .update, body: Array(body.utf8), xml: false, idempotencyKey: nil)
        XCTAssertTrue(answer.body.contains("\"error\":0,\"error_text\":\"Successful operation\",\"profile_id\""), answer.body)
        let p = try XCTUnwrap(s.profiles.list(databaseID: 1, ProfileQuery()).profiles.first)
        let list = try Subscriptions(pool: s.pool).list(databaseID: 1, profileRowID: p.rowID)
        XCTAssertEqual(Set(list.map(\.channel)), Set(Channel.allCases))
        XCTAssertEqual(list.first { $0.channel == .push }?.provider, "Firefox")
        XCTAssertEqual(list.first { $0.channel == .telegram_bot }?.contact, "1")
    }

    /// Every matching mode, once finding the profile and once not.
    func testEveryMatchingModeFoundAndNotFound() throws {
        let s = try makeSetup()
        let resources = Resources(pool: s.pool)
        let all = try resources.create(ResourceInput(name: "Channels", channels: ["email", "sms", "push"]))
        try s.pool.write { try $0.run("INSERT INTO database_resources (database_id, resource_id) VALUES (1, ?)", [all.id]) }
        _ = try Databases(pool: s.pool).addField(to: 1, FieldInput(name: "labels", type: "tags"))
        let p = try XCTUnwrap(s.profiles.list(databaseID: 1, ProfileQuery()).profiles.first)
        try s.pool.write { db in
            try db.run("UPDATE profiles_1 SET phones = '[\"+79001112233\"]', c_\(try Databases.fields(1, db).first { $0.name == "labels" }!.id) = '[\"a\",\"b\"]' WHERE id = ?", [p.rowID])
        }
        let subs = Subscriptions(pool: s.pool)
        try subs.add(databaseID: 1, profileRowID: p.rowID, SubscriptionInput(resourceID: all.id, channel: "email", contact: "sub@example.com"), actor: nil)
        try subs.add(databaseID: 1, profileRowID: p.rowID, SubscriptionInput(resourceID: all.id, channel: "sms", contact: "+79005556677"), actor: nil)
        try subs.add(databaseID: 1, profileRowID: p.rowID, SubscriptionInput(resourceID: all.id, channel: "push", contact: "push-id-1", provider: "Firefox"), actor: nil)
        func result(_ matching: String, _ item: String, extra: String = "") -> Int64? {
            let body = #"{"token": "abcdefghijklmnqrstuvwxyz", "db_id": 1, "matching": "\#(matching)", "resource_id": \#(all.id)\#(extra), "data": [\#(item)]}"#
            let (_, text, _) = s.api.handle(mode: .update, body: Array(body.utf8), xml: false, idempotencyKey: nil)
            guard case .object(let o)? = JSONValue.parse(text), case .array(let r)? = o["result"], case .object(let first)? = r.first, case .int(let code)? = first["error"] else { return nil }
            if code == 0 { XCTAssertEqual(first["profile_id"], .string(p.profileID), matching) }
            return code
        }
        let notFound = Int64(BatchAPI.ItemCode.notFound)
        let cases: [(String, String, String, String)] = [
            ("email", #"{"email": "example@example.com"}"#, #"{"email": "nobody@example.com"}"#, ""),
            ("email_profile", #"{"profile_id": "\#(p.profileID)"}"#, #"{"email": "nobody@example.com"}"#, ""),
            ("profile_id", #"{"profile_id": "\#(p.profileID)"}"#, #"{"profile_id": "000000000000000000000000"}"#, ""),
            ("phone", #"{"phone": "+7 900 111 22 33"}"#, #"{"phone": "+79990000000"}"#, ""),
            ("email_phone", #"{"phone": "+79001112233"}"#, #"{"email": "nobody@example.com", "phone": "+79990000000"}"#, ""),
            ("email_sub", #"{"email": "sub@example.com"}"#, #"{"email": "example@example.com"}"#, ""),
            ("phone_sub", #"{"phone": "+79005556677"}"#, #"{"phone": "+79001112233"}"#, ""),
            ("email_phone_sub", #"{"email": "x@example.com", "phone": "+79005556677"}"#, #"{"email": "x@example.com", "phone": "+79990000000"}"#, ""),
            ("push_sub", #"{"subscription_id": "push-id-1"}"#, #"{"subscription_id": "push-id-2"}"#, ""),
            ("custom", #"{"Custom_ID": 77}"#, #"{"Custom_ID": 78}"#, #", "field_name": "Custom_ID""#),
            ("custom", #"{"labels": "b, a"}"#, #"{"labels": "a"}"#, #", "field_name": "labels""#),
            ("custom_sub", #"{"Custom_ID": 77}"#, #"{"Custom_ID": 78}"#, #", "field_name": "Custom_ID""#),
        ]
        for (matching, found, missing, extra) in cases {
            XCTAssertEqual(result(matching, found, extra: extra), 0, "\(matching) finds the profile")
            XCTAssertEqual(result(matching, missing, extra: extra), notFound, "\(matching) finds nobody")
        }
        XCTAssertEqual(result("phone", #"{"email": "example@example.com"}"#), Int64(BatchAPI.ItemCode.matchingData), "the matching's field is missing")
    }
}
