import Foundation
import HTTP
import Roster
@testable import Web
import XCTest

final class BatchAPITests: XCTestCase {
    struct Setup {
        let app: WebApp
        let browser: Browser
        let db: ProfileDatabase
        let resource: Resource
        let token: String
    }

    func makeSetup() throws -> Setup {
        let (b, app) = try signIn(.admin)
        let resource = try app.services.resources.create(ResourceInput(name: "News", channels: ["email", "sms", "push"], categories: "category_1\ncategory_2"))
        let db = try app.services.databases.create(DatabaseInput(name: "Shop", resourceIDs: [resource.id]))
        _ = try app.services.databases.addField(to: db.id, FieldInput(name: "Custom_ID", type: "number"))
        _ = try app.services.databases.addField(to: db.id, FieldInput(name: "labels", type: "tags"))
        _ = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "example@example.com", "Custom_ID": "77", "phones": "+79000000000"]), actor: nil)
        // The token comes from Settings, shown once.
        let page = b.post("/settings/api-tokens", [("csrf_token", Browser.csrf(in: b.get("/settings"))), ("name", "CRM <sync>"), ("databases", String(db.id))])
        XCTAssertEqual(page.status, 200)
        let html = page.bodyText
        guard let r = html.range(of: "<code id=\"new-token\">") else { XCTFail("no token shown"); throw CocoaError(.featureUnsupported) }
        let token = String(html[r.upperBound...].prefix { $0 != "<" })
        XCTAssertTrue(token.hasPrefix("rst_"))
        XCTAssertFalse(b.get("/settings").bodyText.contains(token), "the token is shown only once")
        XCTAssertTrue(b.get("/settings").bodyText.contains("CRM &lt;sync&gt;"))
        return Setup(app: app, browser: b, db: db, resource: resource, token: token)
    }

    func call(_ s: Setup, _ path: String = "update_batch", json: String, headers: [String: String] = [:]) -> (Int, JSONValue?) {
        let target = path.hasPrefix("/") ? path : "/api/v1.1/profiles/\(path)"
        let r = s.app.handle(Request(method: "POST", target: target, headers: ["Content-Type": "application/json"].merging(headers) { $1 }, body: Array(json.utf8)))
        return (r.status, JSONValue.parse(r.bodyText))
    }

    func results(_ answer: JSONValue?) -> [[String: JSONValue]] {
        guard case .object(let o)? = answer, case .array(let items)? = o["result"] else { return [] }
        return items.compactMap { if case .object(let i) = $0 { return i } else { return nil } }
    }

    func profile(_ s: Setup, _ email: String) throws -> Profile? {
        try s.app.services.profiles.list(databaseID: s.db.id, { var q = ProfileQuery(); q.search = email; return q }()).profiles.first
    }

    func testTheSpecsJSONExampleWithCustomMatching() throws {
        let s = try makeSetup()
        let body = """
            {"token": "\(s.token)", "db_id": \(s.db.id), "matching": "custom", "field_name": "Custom_ID", "skip_triggers": true,
             "data": [
              {"_fname": "Lala", "_lname": "Doe", "Custom_ID": 77, "email": "example@example.com",
               "subscriptions": [{"channel": "email", "email_data": {"email": "example@example.com"}, "resource_id": \(s.resource.id), "cats": ["category_1", "category_2"]}]},
              {"_fname": "Victor", "Custom_ID": 88, "email": "example@example.com"}
             ]}
            """
        let (status, answer) = call(s, json: body)
        XCTAssertEqual(status, 200)
        guard case .object(let o)? = answer else { return XCTFail() }
        XCTAssertEqual(o["error"], .int(0))
        XCTAssertEqual(o["error_text"], .string("Successful operation"))
        let items = results(answer)
        XCTAssertEqual(items.count, 2)
        XCTAssertEqual(items[0]["error"], .int(0))
        XCTAssertEqual(items[1]["error"], .int(Int64(BatchAPI.ItemCode.notFound)), "update_batch never creates")
        let p = try XCTUnwrap(profile(s, "example@example.com"))
        XCTAssertEqual(items[0]["profile_id"], .string(p.profileID))
        XCTAssertEqual(p.values["_fname"], "Lala")
        let subs = try s.app.services.subscriptions.list(databaseID: s.db.id, profileRowID: p.rowID)
        XCTAssertEqual(subs.map(\.categories), [["category_1", "category_2"]])
        XCTAssertEqual(try s.app.services.profiles.count(databaseID: s.db.id, search: "", status: nil), 1)
    }

    func testTheSpecsXMLExampleAnswersInXML() throws {
        let s = try makeSetup()
        let xml = """
            <xml>
            <token>\(s.token)</token>
            <db_id>\(s.db.id)</db_id>
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
            <resource_id>\(s.resource.id)</resource_id>
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
        let r = s.app.handle(Request(method: "POST", target: "/api/v1.1/profiles/update_batch", headers: ["Content-Type": "application/xml"], body: Array(xml.utf8)))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("Content-Type"), "application/xml; charset=utf-8")
        let text = r.bodyText
        XCTAssertTrue(text.contains("<xml><error>0</error><error_text>Successful operation</error_text><result><error>0</error><error_text>Successful operation</error_text><profile_id>"), text)
        XCTAssertEqual(text.components(separatedBy: "<result>").count - 1, 2)
        XCTAssertEqual(try profile(s, "example@example.com")?.values["_lname"], "Doe")
        XCTAssertEqual(try s.app.services.subscriptions.list(databaseID: s.db.id, profileRowID: try XCTUnwrap(profile(s, "example@example.com")).rowID).first?.categories, ["category_1", "category_2"])
    }

    func testRequestLevelFaultsChangeNothing() throws {
        let s = try makeSetup()
        let other = try s.app.services.databases.create(DatabaseInput(name: "Other"))
        let item = #"{"email": "example@example.com", "_fname": "X"}"#
        XCTAssertEqual(call(s, json: #"{"token": "rst_wrong", "db_id": \#(s.db.id), "data": [\#(item)]}"#).0, 401)
        XCTAssertEqual(call(s, json: #"{"token": "\#(s.token)", "db_id": \#(other.id), "data": [\#(item)]}"#).0, 404, "outside the token's scope")
        XCTAssertEqual(call(s, json: "{not json").0, 400)
        XCTAssertEqual(call(s, json: #"{"token": "\#(s.token)", "db_id": \#(s.db.id), "matching": "telepathy", "data": [\#(item)]}"#).0, 400)
        XCTAssertEqual(call(s, json: #"{"token": "\#(s.token)", "db_id": \#(s.db.id), "matching": "custom", "data": [\#(item)]}"#).0, 400, "needs field_name")
        let many = Array(repeating: item, count: 10_001).joined(separator: ",")
        let (status, answer) = call(s, json: #"{"token": "\#(s.token)", "db_id": \#(s.db.id), "data": [\#(many)]}"#)
        XCTAssertEqual(status, 413)
        guard case .object(let o)? = answer else { return XCTFail() }
        XCTAssertTrue(o["error_text"]?.stringValue?.contains("10,000") ?? false)
        let evil = """
            <?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>
            <xml><token>\(s.token)</token><db_id>\(s.db.id)</db_id><data><email>example@example.com</email><_fname>&lol2;</_fname></data></xml>
            """
        let r = s.app.handle(Request(method: "POST", target: "/api/v1.1/profiles/update_batch", headers: ["Content-Type": "text/xml"], body: Array(evil.utf8)))
        XCTAssertEqual(r.status, 400)
        XCTAssertTrue(r.bodyText.contains("DOCTYPE"), r.bodyText)
        let external = "<xml><token>\(s.token)</token><db_id>\(s.db.id)</db_id><data><email>example@example.com</email><_fname>&xxe;</_fname></data></xml>"
        XCTAssertEqual(s.app.handle(Request(method: "POST", target: "/api/v1.1/profiles/update_batch", headers: ["Content-Type": "text/xml"], body: Array(external.utf8))).status, 400)
        XCTAssertEqual(try profile(s, "example@example.com")?.values["_fname"], "", "nothing was written")
        // A revoked token stops working.
        let tokenID = try XCTUnwrap(s.app.services.apiTokens.list().first?.id)
        try s.app.services.apiTokens.revoke(tokenID)
        XCTAssertEqual(call(s, json: #"{"token": "\#(s.token)", "db_id": \#(s.db.id), "data": [\#(item)]}"#).0, 401)
    }

    func testEachItemIsAtomicAndSubscriptionsFollowTheRules() throws {
        let s = try makeSetup()
        let r = s.resource.id
        let body = """
            {"token": "\(s.token)", "db_id": \(s.db.id), "data": [
              {"email": "example@example.com", "_fname": "Ann", "Custom_ID": "not a number"},
              {"email": "example@example.com", "_fname": "Bea", "subscriptions": [{"resource_id": \(r), "channel": "sms", "phone": "nonsense"}]},
              {"email": "nobody@example.com", "_fname": "Cy"},
              {"email": "example@example.com", "unknown_field": 1}
            ]}
            """
        let items = results(call(s, json: body).1)
        XCTAssertEqual(items.map { $0["error"] }, [.int(2), .int(4), .int(1), .int(2)])
        XCTAssertTrue(items[0]["error_text"]?.stringValue?.contains("Custom_ID") ?? false)
        XCTAssertTrue(items[3]["error_text"]?.stringValue?.contains("unknown_field") ?? false)
        XCTAssertEqual(try profile(s, "example@example.com")?.values["_fname"], "", "a failed item writes nothing, not even its good fields")
        // skip_invalid_subscriptions: the bad subscription is skipped, the profile updated, the good one added.
        let skipping = """
            {"token": "\(s.token)", "db_id": \(s.db.id), "skip_invalid_subscriptions": true, "data": [
              {"email": "example@example.com", "_fname": "Bea", "subscriptions": [
                 {"resource_id": \(r), "channel": "sms", "phone": "nonsense"},
                 {"resource_id": \(r), "channel": "email", "email": "example@example.com", "status": 4, "priority": 0}]}
            ]}
            """
        XCTAssertEqual(results(call(s, json: skipping).1).first?["error"], .int(0))
        let p = try XCTUnwrap(profile(s, "example@example.com"))
        XCTAssertEqual(p.values["_fname"], "Bea")
        var subs = try s.app.services.subscriptions.list(databaseID: s.db.id, profileRowID: p.rowID)
        XCTAssertEqual(subs.map(\.status), [.unconfirmed])
        XCTAssertEqual(subs.map(\.priority), [0], "0 is a value")
        // -1 leaves status and priority as they are; 0 is subscribed.
        _ = call(s, json: #"{"token": "\#(s.token)", "db_id": \#(s.db.id), "data": [{"email": "example@example.com", "subscriptions": [{"resource_id": \#(r), "channel": "email", "email": "example@example.com", "status": -1, "priority": -1}]}]}"#)
        subs = try s.app.services.subscriptions.list(databaseID: s.db.id, profileRowID: p.rowID)
        XCTAssertEqual(subs.map(\.status), [.unconfirmed])
        _ = call(s, json: #"{"token": "\#(s.token)", "db_id": \#(s.db.id), "data": [{"email": "example@example.com", "subscriptions": [{"resource_id": \#(r), "channel": "email", "email": "example@example.com", "status": "unsubscribed"}]}]}"#)
        let unsafe = call(s, json: #"{"token": "\#(s.token)", "db_id": \#(s.db.id), "data": [{"email": "example@example.com", "subscriptions": [{"resource_id": \#(r), "channel": "email", "email": "example@example.com", "status": 0}]}]}"#)
        XCTAssertEqual(results(unsafe.1).first?["error"], .int(4), "an unsafe status is not made subscribed")
        XCTAssertEqual(try s.app.services.subscriptions.list(databaseID: s.db.id, profileRowID: p.rowID).map(\.status), [.unsubscribed])
    }

    func testMatchingModesAddImportAndIdempotency() throws {
        let s = try makeSetup()
        let p = try XCTUnwrap(profile(s, "example@example.com"))
        func first(_ json: String, _ path: String = "update_batch", headers: [String: String] = [:]) -> [String: JSONValue] {
            results(call(s, path, json: json, headers: headers).1).first ?? [:]
        }
        let base = #""token": "\#(s.token)", "db_id": \#(s.db.id)"#
        XCTAssertEqual(first(#"{\#(base), "matching": "phone", "data": [{"phone": "+7 900 000-00-00", "_fname": "ByPhone"}]}"#)["profile_id"], .string(p.profileID))
        XCTAssertEqual(first(#"{\#(base), "matching": "profile_id", "data": [{"profile_id": "\#(p.profileID)", "_fname": "ById"}]}"#)["error"], .int(0))
        XCTAssertEqual(try profile(s, "example@example.com")?.values["_fname"], "ById")
        XCTAssertEqual(first(#"{\#(base), "matching": "phone", "data": [{"_fname": "x"}]}"#)["error"], .int(5), "the matching's data is missing")
        // add_batch creates only; import_batch creates or updates.
        XCTAssertEqual(first(#"{\#(base), "data": [{"email": "example@example.com"}]}"#, "add_batch")["error"], .int(3))
        let added = first(#"{\#(base), "data": [{"email": "new@example.com", "_fname": "New"}]}"#, "add_batch")
        XCTAssertEqual(added["error"], .int(0))
        XCTAssertEqual(try profile(s, "new@example.com")?.values["_fname"], "New")
        XCTAssertEqual(first(#"{\#(base), "data": [{"email": "new@example.com", "_fname": "Renamed"}]}"#, "import_batch")["error"], .int(0))
        XCTAssertEqual(try profile(s, "new@example.com")?.values["_fname"], "Renamed")
        // A retried request with the same Idempotency-Key returns the first answer and is not applied twice.
        let once = #"{\#(base), "data": [{"email": "twice@example.com"}]}"#
        let a = s.app.handle(Request(method: "POST", target: "/api/v1.1/profiles/add_batch", headers: ["Content-Type": "application/json", "Idempotency-Key": "k-1"], body: Array(once.utf8)))
        let b = s.app.handle(Request(method: "POST", target: "/api/v1.1/profiles/add_batch", headers: ["Content-Type": "application/json", "Idempotency-Key": "k-1"], body: Array(once.utf8)))
        XCTAssertEqual(a.bodyText, b.bodyText)
        XCTAssertEqual(b.header("Idempotency-Replayed"), "true")
        XCTAssertTrue(a.bodyText.contains("\"error\":0"), a.bodyText)
        XCTAssertEqual(try s.app.services.profiles.count(databaseID: s.db.id, search: "twice@example.com", status: nil), 1)
    }

    func testSiblingsReadProfilesDatabasesFieldsAndRecordInteractions() throws {
        let s = try makeSetup()
        let base = #""token": "\#(s.token)", "db_id": \#(s.db.id)"#
        func object(_ path: String, _ json: String) -> (Int, [String: JSONValue]) {
            let (status, answer) = call(s, path, json: json)
            if case .object(let o)? = answer { return (status, o) }
            return (status, [:])
        }
        let (listStatus, list) = object("/api/v1.1/databases/list", #"{"token": "\#(s.token)"}"#)
        XCTAssertEqual(listStatus, 200)
        if case .array(let dbs)? = list["databases"] { XCTAssertEqual(dbs.count, 1, "only the token's databases") } else { XCTFail("\(list)") }
        let (_, fields) = object("/api/v1.1/databases/fields", "{\(base)}")
        if case .array(let items)? = fields["fields"] { XCTAssertTrue(items.contains { if case .object(let f) = $0 { return f["name"] == .string("Custom_ID") && f["type"] == .string("number") } else { return false } }) }
        else { XCTFail("\(fields)") }
        let (_, got) = object("get", #"{\#(base), "email": "example@example.com"}"#)
        guard case .object(let found)? = got["profile"], case .object(let values)? = found["fields"] else { return XCTFail("\(got)") }
        XCTAssertEqual(values["Custom_ID"], .string("77"))
        XCTAssertEqual(object("get", #"{\#(base), "email": "nobody@example.com"}"#).0, 404)
        // Interactions feed the history and the last-interaction time that deletion by inactivity reads.
        let p = try XCTUnwrap(profile(s, "example@example.com"))
        try s.app.services.apiTokens.pool.write { try $0.run("UPDATE profiles_\(s.db.id) SET last_interaction_at = 1 WHERE id = ?", [p.rowID]) }
        let (_, events) = object("events", #"{\#(base), "data": [{"email": "example@example.com", "type": "opened"}, {"email": "example@example.com", "type": "teleported"}]}"#)
        guard case .array(let results)? = events["result"], results.count == 2 else { return XCTFail("\(events)") }
        if case .object(let r0) = results[0] { XCTAssertEqual(r0["error"], .int(0)) }
        if case .object(let r1) = results[1] { XCTAssertEqual(r1["error"], .int(2)) }
        XCTAssertEqual(try s.app.services.profiles.history(databaseID: s.db.id, rowID: p.rowID, type: HistoryEvent.opened, since: nil).count, 1)
        XCTAssertGreaterThan(try XCTUnwrap(profile(s, "example@example.com")?.lastInteractionAt), 1)
    }
}
