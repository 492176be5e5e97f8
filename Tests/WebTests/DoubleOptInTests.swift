import Foundation
import HTTP
import Roster
@testable import Web
import XCTest

/// Double opt-in from the sentences: a resource can require confirmation; a new subscription to it, from
/// any way in, starts unconfirmed and emits `confirmation_requested` with a signed URL; the URL shows a confirm
/// button; confirming makes it subscribed with history and a trigger event; links expire; a used link says so.
final class DoubleOptInTests: XCTestCase {
    struct World {
        let app: WebApp
        let b: Browser
        let db: ProfileDatabase
        let letters: Resource
        let plain: Resource
        let apiToken: String
    }

    func makeWorld() throws -> World {
        let (b, app) = try signIn(.admin)
        let admin = try XCTUnwrap(try app.accounts.user(email: "admin@example.com"))
        // Through the resource form: the switch is a checkbox.
        XCTAssertEqual(b.post("/resources", [("csrf_token", b.csrfToken), ("name", "Letters"), ("channels", "email"), ("channels", "sms"),
                                             ("double_opt_in", "on")]).status, 303)
        let letters = try XCTUnwrap(try app.services.resources.list().first { $0.name == "Letters" })
        XCTAssertTrue(letters.doubleOptIn)
        let plain = try app.services.resources.create(ResourceInput(name: "Plain", channels: ["email"]))
        let db = try app.services.databases.create(DatabaseInput(name: "Shop", resourceIDs: [letters.id, plain.id]))
        let token = try app.services.apiTokens.create(name: "script", databaseIDs: [db.id], by: admin.id).token
        return World(app: app, b: b, db: db, letters: letters, plain: plain, apiToken: token)
    }

    func subscription(_ w: World, _ contact: String, resource: Int64? = nil) throws -> Subscription? {
        let row = try w.app.services.pool.read { db in
            try db.queryOne("SELECT profile FROM subscriptions_\(w.db.id) WHERE contact = ? AND resource_id = ?",
                            [contact, resource ?? w.letters.id])
        }
        guard let rowID = row?.int64("profile") else { return nil }
        return try w.app.services.subscriptions.list(databaseID: w.db.id, profileRowID: rowID)
            .first { $0.contact == contact && $0.resourceID == (resource ?? w.letters.id) }
    }

    /// The confirmation URLs requested for a contact, newest last.
    func confirmationURLs(_ w: World, _ contact: String) throws -> [String] {
        try w.app.services.pool.read { db in
            try db.query("SELECT payload FROM trigger_events WHERE type = 'confirmation_requested' ORDER BY id").compactMap { row in
                guard case .object(let o)? = JSONValue.parse(row.string("payload") ?? ""), o["contact"]?.stringValue == contact else { return nil }
                return o["confirmation_url"]?.stringValue
            }
        }
    }

    /// Subscribes `p` to the double opt-in resource with its own email, as the profile page does.
    func subscribeToLetters(_ w: World, _ p: Profile) throws {
        let input = SubscriptionInput(resourceID: w.letters.id, channel: "email", contact: p.email)
        _ = try w.app.services.subscriptions.add(databaseID: w.db.id, profileRowID: p.rowID, input, actor: nil)
    }

    /// The path of the newest confirmation link sent to `contact` (the link without scheme and host).
    func confirmationPath(_ w: World, _ contact: String) throws -> String {
        let url = try XCTUnwrap(try confirmationURLs(w, contact).last)
        return String(url.dropFirst(SubscriberLinks.configuration.publicURL.count))
    }

    func profile(_ w: World, _ email: String) throws -> Profile {
        if let p = try w.app.services.profiles.list(databaseID: w.db.id, { var q = ProfileQuery(); q.search = email; return q }())
            .profiles.first(where: { $0.email == email }) { return p }
        return try w.app.services.profiles.create(databaseID: w.db.id, ProfileInput(values: ["email": email]), actor: nil)
    }

    func testEveryWayInStartsUnconfirmedAndAsksForConfirmation() throws {
        let w = try makeWorld()
        // 1. The profile page's subscription form, asking for "subscribed".
        let ann = try profile(w, "ann@example.com")
        XCTAssertEqual(w.b.post("/databases/\(w.db.id)/profiles/\(ann.profileID)/subscriptions", [
            ("csrf_token", w.b.csrfToken), ("target", "\(w.letters.id):email"), ("contact", "ann@example.com"), ("status", "subscribed"),
        ]).status, 303)
        // 2. The batch API, JSON, with an explicit "subscribed".
        let body = """
            {"token":"\(w.apiToken)","db_id":\(w.db.id),"data":[{"email":"bob@example.com",
             "subscriptions":[{"resource_id":\(w.letters.id),"channel":"email","email_data":{"email":"bob@example.com"},"status":"subscribed"}]}]}
            """
        let api = w.app.handle(Request(method: "POST", target: "/api/v1.1/profiles/import_batch", headers: ["Content-Type": "application/json"],
                                       body: Array(body.utf8)))
        XCTAssertEqual(api.status, 200, api.bodyText)
        XCTAssertTrue(api.bodyText.contains("\"error\":0,\"error_text\":\"Successful operation\",\"profile_id\""), api.bodyText)
        // 3. A CSV import that subscribes every row.
        XCTAssertNotNil(try importThroughPages(w.b, databaseID: w.db.id, csv: "email\r\ncat@example.com\r\n", [
            ("column_0", "email"), ("match", "email"), ("existing", "update"), ("subscribe", "\(w.letters.id):email"),
            ("subscription_status", "subscribed"),
        ]))
        // 4. A bulk update adding the subscription from the profile's email.
        _ = try profile(w, "dan@example.com")
        XCTAssertEqual(w.b.post("/databases/\(w.db.id)/bulk-update", [
            ("csrf_token", w.b.csrfToken),
            ("node", "r"), ("kind_r", "group"), ("join_r", "and"),
            ("node", "r.0"), ("kind_r.0", "rule"), ("subject_r.0", "field:email"), ("op_r.0", "eq"), ("value_r.0", "dan@example.com"),
            ("range_from", "0"), ("range_to", "100"), ("limit", ""),
            ("bulk_action", "add_subscription"), ("target", "\(w.letters.id):email"), ("source", "fields"), ("status", "subscribed"),
            ("action", "launch"),
        ]).status, 303)
        w.app.services.tasks.runUntilIdle()

        for contact in ["ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com"] {
            XCTAssertEqual(try subscription(w, contact)?.status, .unconfirmed, contact)
            let urls = try confirmationURLs(w, contact)
            XCTAssertEqual(urls.count, 1, contact)
            XCTAssertTrue(urls.first?.hasPrefix("http://127.0.0.1:8080/s/confirm/") ?? false, contact)
        }
        // The bulk task's change log says what it wrote (so its undo finds it).
        let task = try XCTUnwrap(try w.app.services.tasks.recent().first)
        let log = w.b.get("/tasks/\(task.id)/changes.csv")
        let text = log.bodyText.isEmpty ? String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: log.bodyFile ?? ""))) ?? Data(), as: UTF8.self)
            : log.bodyText
        XCTAssertTrue(text.contains("unconfirmed"), text)
        // A resource without double opt-in is subscribed at once, and asks nothing.
        _ = try w.app.services.subscriptions.add(databaseID: w.db.id, profileRowID: ann.rowID,
                                                 SubscriptionInput(resourceID: w.plain.id, channel: "email", contact: "ann@example.com"), actor: nil)
        XCTAssertEqual(try subscription(w, "ann@example.com", resource: w.plain.id)?.status, .subscribed)
        XCTAssertEqual(try confirmationURLs(w, "ann@example.com").count, 1)
    }

    func testTheLinkShowsAButtonConfirmsOnceAndExpires() throws {
        let w = try makeWorld()
        let ann = try profile(w, "ann@example.com")
        try subscribeToLetters(w, ann)
        let path = try confirmationPath(w, "ann@example.com")
        let subscriber = Browser(w.app)
        // Showing the page (as a mail scanner would) confirms nothing.
        let page = subscriber.get(path)
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.bodyText.contains("Yes, subscribe me"))
        XCTAssertTrue(page.bodyText.contains("a••@example.com"))
        XCTAssertEqual(try subscription(w, "ann@example.com")?.status, .unconfirmed)
        XCTAssertEqual(subscriber.post(path, []).status, 403, "the button's form carries its token")
        let formToken = try XCTUnwrap(page.bodyText.firstMatch(of: /name="form_token" value="([0-9a-f]+)"/)?.1)
        let done = subscriber.post(path, [("form_token", String(formToken))])
        XCTAssertEqual(done.status, 303)
        XCTAssertTrue(subscriber.get(done.header("Location") ?? "").bodyText.contains("Your subscription is confirmed. Thank you!"))
        XCTAssertEqual(try subscription(w, "ann@example.com")?.status, .subscribed)
        let types = try w.app.services.pool.read { try $0.query("SELECT type FROM trigger_events ORDER BY id").compactMap { $0.string("type") } }
        XCTAssertEqual(Array(types.suffix(2)), ["subscription_updated", "subscription_confirmed"])
        let history = w.b.get("/databases/\(w.db.id)/profiles/\(ann.profileID)?days=0").bodyText
        XCTAssertTrue(history.contains("by the subscriber in the subscription manager"), "the confirmation is the subscriber's own act")
        // Used again: it says so and changes nothing.
        XCTAssertTrue(subscriber.get(path).bodyText.contains("This subscription was already confirmed."))
        let again = subscriber.post(path, [("form_token", String(formToken))])
        XCTAssertEqual(again.status, 200)
        XCTAssertTrue(again.bodyText.contains("already confirmed"))
        XCTAssertEqual(try w.app.services.pool.read { try $0.query("SELECT type FROM trigger_events WHERE type = 'subscription_confirmed'").count }, 1)
        // Forged or altered links are the "not valid" page.
        XCTAssertEqual(subscriber.get(path + "x").status, 404)
        XCTAssertEqual(subscriber.get("/s/confirm/" + String(repeating: "z", count: 3000)).status, 404)
        // A manager token is not a confirmation token (each is signed for its purpose).
        let manager = try w.app.services.links.managerToken(databaseID: w.db.id, profileID: ann.profileID)
        XCTAssertEqual(subscriber.get("/s/confirm/" + manager).status, 404)
    }

    func testAnExpiredLinkConfirmsNothing() throws {
        let clock = ManualTime()
        let (app, accounts) = try makeApp(clock: clock.clock)
        _ = accounts
        let resource = try app.services.resources.create(ResourceInput(name: "Letters", channels: ["email"], doubleOptIn: true))
        let db = try app.services.databases.create(DatabaseInput(name: "Shop", resourceIDs: [resource.id]))
        let p = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "ann@example.com"]), actor: nil)
        let id = try app.services.subscriptions.add(databaseID: db.id, profileRowID: p.rowID,
                                                    SubscriptionInput(resourceID: resource.id, channel: "email", contact: "ann@example.com"), actor: nil)
        let payload = try app.services.pool.read { try $0.scalar("SELECT payload FROM trigger_events WHERE type = 'confirmation_requested'").string }
        guard case .object(let o)? = JSONValue.parse(payload ?? ""), let url = o["confirmation_url"]?.stringValue else { return XCTFail("no request") }
        XCTAssertEqual(o["expires_at"], .int(clock.now + 72 * 3600), "72 hours by default")
        let path = String(url.dropFirst("http://127.0.0.1:8080".count))
        clock.advance(72 * 3600 + 1)
        let subscriber = Browser(app)
        let page = subscriber.get(path)
        XCTAssertEqual(page.status, 410)
        XCTAssertTrue(page.bodyText.contains("This confirmation link has expired."))
        XCTAssertFalse(page.bodyText.contains("Yes, subscribe me"))
        let token = try app.services.links.formToken(for: String(path.dropFirst("/s/confirm/".count)))
        XCTAssertEqual(subscriber.post(path, [("form_token", token)]).status, 410)
        XCTAssertEqual(try app.services.subscriptions.list(databaseID: db.id, profileRowID: p.rowID).first { $0.id == id }?.status, .unconfirmed)
    }

    /// "Any way in" holds for the second request too: only the confirmation makes it subscribed.
    func testOnlyTheConfirmationMakesItSubscribed() throws {
        let w = try makeWorld()
        let item = """
            {"token":"\(w.apiToken)","db_id":\(w.db.id),"data":[{"email":"ann@example.com",
             "subscriptions":[{"resource_id":\(w.letters.id),"channel":"email","email_data":{"email":"ann@example.com"},"status":"subscribed"}]}]}
            """
        for _ in 0..<2 {
            let r = w.app.handle(Request(method: "POST", target: "/api/v1.1/profiles/import_batch", headers: ["Content-Type": "application/json"],
                                         body: Array(item.utf8)))
            XCTAssertEqual(r.status, 200)
        }
        XCTAssertEqual(try subscription(w, "ann@example.com")?.status, .unconfirmed, "asking twice is not confirming")
        // A bulk status change to subscribed skips it, with the reason.
        let admin = try XCTUnwrap(try w.app.accounts.user(email: "admin@example.com"))
        let task = try w.app.services.bulk.start(BulkRequest(databaseID: w.db.id, selection: Selection(), action: .updateSubscriptionStatus(
            resourceID: w.letters.id, channel: "email", status: "subscribed", includeUnsafe: false)), title: "All in", user: admin)
        w.app.services.tasks.runUntilIdle()
        XCTAssertEqual(try w.app.services.tasks.task(task)?.details["awaiting_confirmation"], 1)
        XCTAssertEqual(try subscription(w, "ann@example.com")?.status, .unconfirmed)
        // Off and on again in the subscription manager: it waits for a new confirmation.
        let ann = try profile(w, "ann@example.com")
        let sub = try XCTUnwrap(try subscription(w, "ann@example.com"))
        let link = try w.app.services.links.managerToken(databaseID: w.db.id, profileID: ann.profileID)
        try w.app.services.manager.setSubscribed(token: link, subscriptionID: sub.id, false)
        try w.app.services.manager.setSubscribed(token: link, subscriptionID: sub.id, true)
        XCTAssertEqual(try subscription(w, "ann@example.com")?.status, .unconfirmed)
        XCTAssertEqual(try confirmationURLs(w, "ann@example.com").count, 2, "a new link for the new request")
        // Deleted and restored on the profile page: the same.
        try w.app.services.subscriptions.setDeleted(databaseID: w.db.id, profileRowID: ann.rowID, subscriptionID: sub.id, deleted: true, actor: nil)
        try w.app.services.subscriptions.setDeleted(databaseID: w.db.id, profileRowID: ann.rowID, subscriptionID: sub.id, deleted: false, actor: nil)
        XCTAssertEqual(try subscription(w, "ann@example.com")?.status, .unconfirmed)
        XCTAssertEqual(try confirmationURLs(w, "ann@example.com").count, 3)
    }

    /// SQLite may give a deleted subscription's id to a new one: a link made for one contact never confirms another.
    func testALinkConfirmsOnlyTheContactItWasMadeFor() throws {
        let w = try makeWorld()
        let eve = try profile(w, "eve@example.com")
        try subscribeToLetters(w, eve)
        let path = try confirmationPath(w, "eve@example.com")
        try w.app.services.profiles.delete(databaseID: w.db.id, profileID: eve.profileID)
        let vic = try profile(w, "vic@example.com")
        try subscribeToLetters(w, vic)
        let subscriber = Browser(w.app)
        let page = subscriber.get(path)
        XCTAssertTrue(page.bodyText.contains("can no longer be confirmed"), page.bodyText)
        XCTAssertFalse(page.bodyText.contains("v••@example.com"))
        let token = try w.app.services.links.formToken(for: String(path.dropFirst("/s/confirm/".count)))
        _ = subscriber.post(path, [("form_token", token)])
        XCTAssertEqual(try subscription(w, "vic@example.com")?.status, .unconfirmed)
    }
}

/// A clock the test moves by hand.
final class ManualTime: @unchecked Sendable {
    private let lock = NSLock()
    private var seconds: Int64 = 1_800_000_000
    var now: Int64 { lock.withLock { seconds } }
    var clock: Clock { Clock { [self] in now } }
    func advance(_ by: Int64) { lock.withLock { seconds += by } }
}
