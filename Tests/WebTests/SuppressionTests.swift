import Foundation
import HTTP
import Roster
@testable import Web
import XCTest

/// Suppression lists from the issue's sentences: lists of emails, phones and whole email domains, global or
/// attached to chosen databases; a subscription to a suppressed contact is not created or made subscribed by any
/// way in (form, API, import, bulk, subscription manager), refused with that reason and counted; lists are filled
/// by hand, by CSV upload and (when the setting is on) by hard bounces and complaints; the profile page marks
/// suppressed contacts.
final class SuppressionTests: XCTestCase {
    struct World {
        let app: WebApp
        let b: Browser
        let db: ProfileDatabase
        let other: ProfileDatabase
        let news: Resource
        let apiToken: String
        let global: SuppressionList
        let shopOnly: SuppressionList
    }

    func makeWorld() throws -> World {
        let (b, app) = try signIn(.admin)
        let admin = try XCTUnwrap(try app.accounts.user(email: "admin@example.com"))
        let news = try app.services.resources.create(ResourceInput(name: "News", channels: ["email", "sms"]))
        let db = try app.services.databases.create(DatabaseInput(name: "Shop", resourceIDs: [news.id]))
        let other = try app.services.databases.create(DatabaseInput(name: "Other", resourceIDs: [news.id]))
        // A global list and one attached to Shop only, made through the pages.
        XCTAssertEqual(b.post("/settings/suppression-lists", [("csrf_token", b.csrfToken), ("name", "Global"), ("scope", "global"),
                                                              ("auto_bounces", "1")]).status, 303)
        XCTAssertEqual(b.post("/settings/suppression-lists", [("csrf_token", b.csrfToken), ("name", "Shop only"), ("scope", "chosen"),
                                                              ("databases", String(db.id))]).status, 303)
        let lists = try app.services.suppressions.lists()
        let global = try XCTUnwrap(lists.first { $0.name == "Global" })
        let shopOnly = try XCTUnwrap(lists.first { $0.name == "Shop only" })
        XCTAssertEqual(shopOnly.databaseIDs, [db.id])
        // Filled by hand: an email, a whole domain, a phone; a bad line is reported and the rest kept.
        let added = b.post("/settings/suppression-lists/\(global.id)/entries", [
            ("csrf_token", b.csrfToken), ("entries", "Blocked@Example.com\n@spam.example\n+7 (900) 111-22-33\nnot a contact\n"),
        ])
        XCTAssertEqual(added.status, 422)
        XCTAssertTrue(added.bodyText.contains("Added 3;"), added.bodyText)
        XCTAssertTrue(added.bodyText.contains("Line 4"))
        // By CSV upload, its first column.
        let csv = "email,reason\r\nshop-only@example.com,asked\r\n"
        let (type, body) = multipartBody([("csrf_token", b.csrfToken)], file: ("file", "list.csv", csv))
        let upload = b.send(Request(method: "POST", target: "/settings/suppression-lists/\(shopOnly.id)/entries",
                                    headers: b.cookieHeader.merging(["Content-Type": type]) { a, _ in a }, body: body))
        XCTAssertTrue(upload.bodyText.contains("Added 1;"), upload.bodyText)
        let token = try app.services.apiTokens.create(name: "script", databaseIDs: [db.id, other.id], by: admin.id).token
        return World(app: app, b: b, db: db, other: other, news: news, apiToken: token, global: global, shopOnly: shopOnly)
    }

    func profile(_ w: World, _ email: String, in database: ProfileDatabase? = nil) throws -> Profile {
        try w.app.services.profiles.create(databaseID: (database ?? w.db).id, ProfileInput(values: ["email": email]), actor: nil)
    }

    func subscriptions(_ w: World, _ p: Profile, in database: ProfileDatabase? = nil) throws -> [Subscription] {
        try w.app.services.subscriptions.list(databaseID: (database ?? w.db).id, profileRowID: p.rowID)
    }

    func testEveryWayInRefusesASuppressedContactAndSaysWhy() throws {
        let w = try makeWorld()
        // The form: refused beside the contact, nothing written.
        let ann = try profile(w, "ann@example.com")
        let form = w.b.post("/databases/\(w.db.id)/profiles/\(ann.profileID)/subscriptions", [
            ("csrf_token", w.b.csrfToken), ("target", "\(w.news.id):email"), ("contact", "blocked@example.com"), ("status", "subscribed"),
        ])
        XCTAssertEqual(form.status, 422)
        XCTAssertTrue(form.bodyText.contains("suppression list “Global”"), "the reason names the list")
        // A whole domain, any status.
        XCTAssertThrowsError(try w.app.services.subscriptions.add(databaseID: w.db.id, profileRowID: ann.rowID,
            SubscriptionInput(resourceID: w.news.id, channel: "email", contact: "x@SPAM.example", status: "unsubscribed"), actor: nil))
        // A phone, normalized the same way.
        XCTAssertThrowsError(try w.app.services.subscriptions.add(databaseID: w.db.id, profileRowID: ann.rowID,
            SubscriptionInput(resourceID: w.news.id, channel: "sms", contact: "+79001112233"), actor: nil))
        XCTAssertEqual(try subscriptions(w, ann).count, 0)

        // The API: an error for that item, the others go through.
        let body = """
            {"token":"\(w.apiToken)","db_id":\(w.db.id),"data":[
             {"email":"bob@example.com","subscriptions":[{"resource_id":\(w.news.id),"channel":"email","email_data":{"email":"shop-only@example.com"}}]},
             {"email":"cat@example.com","subscriptions":[{"resource_id":\(w.news.id),"channel":"email","email_data":{"email":"cat@example.com"}}]}]}
            """
        let api = w.app.handle(Request(method: "POST", target: "/api/v1.1/profiles/import_batch", headers: ["Content-Type": "application/json"],
                                       body: Array(body.utf8)))
        XCTAssertEqual(api.status, 200)
        XCTAssertTrue(api.bodyText.contains("suppression list"), api.bodyText)
        XCTAssertTrue(api.bodyText.contains("\"error\":0,\"error_text\":\"Successful operation\",\"profile_id\""), api.bodyText)
        // The list attached to Shop does not apply to Other.
        let dan = try profile(w, "dan@example.com", in: w.other)
        XCTAssertNoThrow(try w.app.services.subscriptions.add(databaseID: w.other.id, profileRowID: dan.rowID,
            SubscriptionInput(resourceID: w.news.id, channel: "email", contact: "shop-only@example.com"), actor: nil))

        // A CSV import subscribing every row: the suppressed row fails with the reason, the other is imported.
        let importTask = try XCTUnwrap(try importThroughPages(w.b, databaseID: w.db.id,
                                                              csv: "email\r\nblocked@example.com\r\neve@example.com\r\n", [
            ("column_0", "email"), ("match", "email"), ("existing", "update"), ("subscribe", "\(w.news.id):email"),
            ("subscription_status", "subscribed"),
        ]))
        XCTAssertEqual(importTask.failed, 1)
        let failed = w.b.get("/tasks/\(importTask.id)/failed.csv")
        let failedText = failed.bodyText.isEmpty
            ? String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: failed.bodyFile ?? ""))) ?? Data(), as: UTF8.self) : failed.bodyText
        XCTAssertTrue(failedText.contains("suppression list"), failedText)

        // A bulk update adding the subscription from each profile's email: the suppressed one is skipped and counted.
        let fay = try profile(w, "fay@spam.example")
        let gus = try profile(w, "gus@example.com")
        XCTAssertEqual(w.b.post("/databases/\(w.db.id)/bulk-update", [
            ("csrf_token", w.b.csrfToken),
            ("node", "r"), ("kind_r", "group"), ("join_r", "or"),
            ("node", "r.0"), ("kind_r.0", "rule"), ("subject_r.0", "field:email"), ("op_r.0", "eq"), ("value_r.0", fay.email),
            ("node", "r.1"), ("kind_r.1", "rule"), ("subject_r.1", "field:email"), ("op_r.1", "eq"), ("value_r.1", gus.email),
            ("range_from", "0"), ("range_to", "100"), ("limit", ""),
            ("bulk_action", "add_subscription"), ("target", "\(w.news.id):email"), ("source", "fields"), ("status", "subscribed"),
            ("action", "launch"),
        ]).status, 303)
        w.app.services.tasks.runUntilIdle()
        let bulk = try XCTUnwrap(try w.app.services.tasks.recent().first)
        XCTAssertEqual(bulk.details["suppressed"], 1, "\(bulk.details)")
        XCTAssertEqual(try subscriptions(w, fay).count, 0)
        XCTAssertEqual(try subscriptions(w, gus).count, 1)
        XCTAssertTrue(w.b.get("/tasks/\(bulk.id)").bodyText.contains("the contact is on a suppression list"))
    }

    func testAnExistingSubscriptionIsNotMadeSubscribedAgain() throws {
        let w = try makeWorld()
        let hal = try profile(w, "hal@example.com")
        let id = try w.app.services.subscriptions.add(databaseID: w.db.id, profileRowID: hal.rowID,
            SubscriptionInput(resourceID: w.news.id, channel: "email", contact: "hal@example.com"), actor: nil)
        try w.app.services.subscriptions.update(databaseID: w.db.id, profileRowID: hal.rowID, subscriptionID: id, status: "unsubscribed",
                                                priority: 0, actor: nil)
        // Suppressed afterwards.
        _ = try w.app.services.suppressions.add(listID: w.shopOnly.id, text: "hal@example.com")
        // The profile page marks it.
        XCTAssertTrue(w.b.get("/databases/\(w.db.id)/profiles/\(hal.profileID)").bodyText.contains("suppressed: Shop only"))
        // The form (with "include unsafe"), the bulk status change and the subscriber's own page all refuse.
        XCTAssertThrowsError(try w.app.services.subscriptions.update(databaseID: w.db.id, profileRowID: hal.rowID, subscriptionID: id,
                                                                     status: "subscribed", priority: 0, includeUnsafe: true, actor: nil))
        let request = BulkRequest(databaseID: w.db.id, selection: Selection(),
                                  action: .updateSubscriptionStatus(resourceID: w.news.id, channel: "email", status: "subscribed", includeUnsafe: true))
        let task = try w.app.services.bulk.start(request, title: "Back", user: try XCTUnwrap(try w.app.accounts.user(email: "admin@example.com")))
        w.app.services.tasks.runUntilIdle()
        let record = try XCTUnwrap(try w.app.services.tasks.task(task))
        XCTAssertEqual(record.details["suppressed"], 1, "\(record.details)")
        XCTAssertEqual(record.updated, 0)
        let link = try w.app.services.links.managerToken(databaseID: w.db.id, profileID: hal.profileID)
        XCTAssertThrowsError(try w.app.services.manager.setSubscribed(token: link, subscriptionID: id, true))
        XCTAssertEqual(try subscriptions(w, hal).first?.status, .unsubscribed)
        // Removed from the list, it can be subscribed again.
        let entry = try XCTUnwrap(try w.app.services.suppressions.entries(listID: w.shopOnly.id, search: "hal").first)
        XCTAssertEqual(w.b.post("/settings/suppression-lists/\(w.shopOnly.id)/entries/\(entry.id)/delete",
                                [("csrf_token", w.b.csrfToken)]).status, 303)
        try w.app.services.manager.setSubscribed(token: link, subscriptionID: id, true)
        XCTAssertEqual(try subscriptions(w, hal).first?.status, .subscribed)
    }

    func testHardBouncesAndComplaintsFillTheListsThatTakeThem() throws {
        let w = try makeWorld()
        let ivy = try profile(w, "ivy@example.com")
        let id = try w.app.services.subscriptions.add(databaseID: w.db.id, profileRowID: ivy.rowID,
            SubscriptionInput(resourceID: w.news.id, channel: "email", contact: "ivy@example.com"), actor: nil)
        try w.app.services.subscriptions.update(databaseID: w.db.id, profileRowID: ivy.rowID, subscriptionID: id, status: "hard_bounced",
                                                priority: 0, actor: nil)
        XCTAssertEqual(try w.app.services.suppressions.entries(listID: w.global.id, search: "ivy").map(\.reason), ["hard_bounced"])
        XCTAssertTrue(try w.app.services.suppressions.entries(listID: w.shopOnly.id, search: "ivy").isEmpty, "that list does not take them")
        // Through the API too (a complaint), and then nothing subscribes that address in this database.
        let body = """
            {"token":"\(w.apiToken)","db_id":\(w.db.id),"data":[{"email":"jo@example.com","subscriptions":[
             {"resource_id":\(w.news.id),"channel":"email","email_data":{"email":"jo@example.com"},"status":"complainer"}]}]}
            """
        _ = w.app.handle(Request(method: "POST", target: "/api/v1.1/profiles/import_batch", headers: ["Content-Type": "application/json"],
                                 body: Array(body.utf8)))
        XCTAssertEqual(try w.app.services.suppressions.entries(listID: w.global.id, search: "jo@").map(\.value), ["jo@example.com"])
        let kim = try profile(w, "kim@example.com")
        XCTAssertThrowsError(try w.app.services.subscriptions.add(databaseID: w.db.id, profileRowID: kim.rowID,
            SubscriptionInput(resourceID: w.news.id, channel: "email", contact: "jo@example.com"), actor: nil))
    }

    func testEntriesAreCheckedAndListsNeedAnAdmin() throws {
        for (text, kind, value) in [("A@B.example", "email", "a@b.example"), ("@Example.ORG", "domain", "example.org"),
                                    ("example.net", "domain", "example.net"), ("8 (900) 123-45-67", "phone", "+89001234567")] {
            guard case .success(let parsed) = Suppressions.parse(text) else { XCTFail(text); continue }
            XCTAssertEqual(parsed.0.rawValue, kind, text)
            XCTAssertEqual(parsed.1, value, text)
        }
        for bad in ["", "a@", "@", "hello world", String(repeating: "a", count: 300) + "@x.example", "12"] {
            if case .success = Suppressions.parse(bad) { XCTFail("accepted \(bad)") }
        }
        let w = try makeWorld()
        let (editor, _) = (Browser(w.app), ())
        try w.app.accounts.createUser(email: "ed@example.com", name: "", role: .editor, password: "editor password 1")
        XCTAssertEqual(editor.login("ed@example.com", "editor password 1").status, 303)
        XCTAssertEqual(editor.post("/settings/suppression-lists", [("csrf_token", editor.csrfToken), ("name", "Mine"), ("scope", "global")]).status, 403)
        XCTAssertEqual(editor.post("/settings/suppression-lists/\(w.global.id)/delete", [("csrf_token", editor.csrfToken)]).status, 403)
        XCTAssertTrue(editor.post("/settings/suppression-lists/\(w.global.id)/entries",
                                  [("csrf_token", editor.csrfToken), ("entries", "late@example.com")]).bodyText.contains("Added 1;"),
                      "editors fill lists")
        // An editor saving the database form leaves its lists as they are (only admins change them).
        XCTAssertEqual(editor.post("/databases/\(w.db.id)", [("csrf_token", editor.csrfToken), ("name", "Shop"), ("sm_language", "en"),
                                                             ("resources", String(w.news.id))]).status, 303)
        XCTAssertEqual(try w.app.services.suppressions.list(id: w.shopOnly.id)?.databaseIDs, [w.db.id])
        let dup = w.b.post("/settings/suppression-lists", [("csrf_token", w.b.csrfToken), ("name", "GLOBAL"), ("scope", "global")])
        XCTAssertEqual(dup.status, 422)
        // The database form attaches lists; a global list is not offered there.
        let formPage = w.b.get("/databases/\(w.other.id)/edit").bodyText
        XCTAssertTrue(formPage.contains("Shop only"))
        XCTAssertFalse(formPage.contains(">  Global<") || formPage.contains("value=\"\(w.global.id)\"> Global"))
        XCTAssertEqual(w.b.post("/databases/\(w.other.id)", [("csrf_token", w.b.csrfToken), ("name", "Other"), ("sm_language", "en"),
                                                             ("resources", String(w.news.id)), ("suppression_lists", String(w.shopOnly.id))]).status, 303)
        XCTAssertEqual(Set(try XCTUnwrap(try w.app.services.suppressions.list(id: w.shopOnly.id)).databaseIDs), [w.db.id, w.other.id])
    }

    /// "Segments can select them": the profiles with a suppressed contact (their email, or a live subscription's
    /// contact), by a list that applies to the database; the others with "has no".
    func testSegmentsSelectProfilesWithSuppressedContacts() throws {
        let w = try makeWorld()
        let byEmail = try profile(w, "blocked@example.com")           // the email itself is listed (Global)
        let byDomain = try profile(w, "someone@spam.example")         // its domain is listed
        let bySubscription = try profile(w, "lea@example.com")
        let id = try w.app.services.subscriptions.add(databaseID: w.db.id, profileRowID: bySubscription.rowID,
            SubscriptionInput(resourceID: w.news.id, channel: "sms", contact: "+79005556677"), actor: nil)
        _ = try w.app.services.suppressions.add(listID: w.shopOnly.id, text: "+7 900 555 66 77")
        let clean = try profile(w, "max@example.com")
        let deleted = try profile(w, "ned@example.com")
        let gone = try w.app.services.subscriptions.add(databaseID: w.db.id, profileRowID: deleted.rowID,
            SubscriptionInput(resourceID: w.news.id, channel: "email", contact: "ned@example.com"), actor: nil)
        try w.app.services.subscriptions.setDeleted(databaseID: w.db.id, profileRowID: deleted.rowID, subscriptionID: gone, deleted: true, actor: nil)
        _ = try w.app.services.suppressions.add(listID: w.shopOnly.id, text: "ned@example.com")
        _ = (id, clean)
        func count(_ op: String, _ database: ProfileDatabase) throws -> Int {
            try w.app.services.segments.counts(databaseID: database.id,
                                               Selection(rules: .group(.and, [.rule(Rule(subject: "suppressed", op: op))]))).matchingRules
        }
        // Ned's email is on "Shop only" too (the profile's own email counts, not only its subscriptions).
        XCTAssertEqual(try count("has", w.db), 4, "blocked@, the spam.example domain, Lea's phone, Ned's email")
        XCTAssertEqual(try count("has_no", w.db), 1, "only Max")
        _ = byEmail; _ = byDomain
        // In the other database only the global list applies.
        _ = try profile(w, "ned@example.com", in: w.other)
        _ = try profile(w, "zed@spam.example", in: w.other)
        XCTAssertEqual(try count("has", w.other), 1)
    }
}
