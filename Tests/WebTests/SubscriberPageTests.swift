import Foundation
import HTTP
import Roster
@testable import Web
import XCTest

/// The subscription manager through the real pages: the link from the profile page and the API, the subscriber's
/// page in the database's language, forms bound to the link, and every hostile variation refused without a change.
final class SubscriberPageTests: XCTestCase {
    struct World {
        let app: WebApp
        let marketer: Browser
        let db: ProfileDatabase
        let profile: Profile
        let news: Int64
        let apiToken: String
    }

    func makeWorld(language: String = "ru") throws -> World {
        let (marketer, app) = try signIn(.admin)
        let admin = try XCTUnwrap(try app.accounts.user(email: "admin@example.com"))
        let resource = try app.services.resources.create(ResourceInput(name: "News", channels: ["email"], categories: "Sales\nTips"))
        let db = try app.services.databases.create(DatabaseInput(name: "Shop", smTitle: "", smLanguage: language, smEditFields: true,
                                                                 resourceIDs: [resource.id]))
        try app.services.databases.updateStandardSettings(db.id, ["_fname": StandardFieldSetting(showInSM: true)])
        let profile = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "ann@example.com", "_fname": "Ann"]),
                                                        actor: nil)
        let news = try app.services.subscriptions.add(databaseID: db.id, profileRowID: profile.rowID,
                                                      SubscriptionInput(resourceID: resource.id, channel: "email", contact: "ann@example.com"),
                                                      actor: nil)
        let apiToken = try app.services.apiTokens.create(name: "script", databaseIDs: [db.id], by: admin.id).token
        return World(app: app, marketer: marketer, db: db, profile: profile, news: news, apiToken: apiToken)
    }

    /// The link as the marketer copies it from the profile page, as a path.
    func link(_ w: World) throws -> String {
        let page = w.marketer.get("/databases/\(w.db.id)/profiles/\(w.profile.profileID)").bodyText
        let url = try XCTUnwrap(page.firstMatch(of: /id="manager-url" type="text" readonly value="([^"]+)"/)?.1)
        XCTAssertTrue(url.hasPrefix("http://127.0.0.1:8080/s/"), String(url))
        return String(url.dropFirst("http://127.0.0.1:8080".count))
    }

    func status(_ w: World) throws -> Int? {
        try w.app.services.subscriptions.list(databaseID: w.db.id, profileRowID: w.profile.rowID).first { $0.id == w.news }?.status.rawValue
    }

    func testTheSubscriberUnsubscribesAndComesBackInTheirLanguage() throws {
        let w = try makeWorld()
        let path = try link(w)
        let subscriber = Browser(w.app)
        subscriber.remoteAddress = "203.0.113.9"
        let page = subscriber.get(path)
        XCTAssertEqual(page.status, 200)
        XCTAssertEqual(page.header("Cache-Control"), "no-store")
        XCTAssertEqual(page.header("Referrer-Policy"), "no-referrer")
        let html = page.bodyText
        XCTAssertTrue(html.contains("<html lang=\"ru\">"))
        XCTAssertTrue(html.contains("Ваши подписки"), "the default title in Russian")
        XCTAssertTrue(html.contains("Отписаться от всего"))
        XCTAssertFalse(html.contains("ann@example.com"), "the contact is masked")
        XCTAssertTrue(html.contains("a••@example.com"))
        XCTAssertTrue(subscriber.cookies.isEmpty, "no cookie for subscribers")
        let formToken = try XCTUnwrap(html.firstMatch(of: /name="form_token" value="([0-9a-f]+)"/)?.1)

        // Without the form's token, or with another link's, nothing changes.
        XCTAssertEqual(subscriber.post(path + "/subscriptions/\(w.news)/off", []).status, 403)
        // One character changed (a token that starts with "0" gets a "1": replacing "0" with "0" changed nothing).
        let altered = (formToken.first == "0" ? "1" : "0") + formToken.dropFirst()
        XCTAssertEqual(subscriber.post(path + "/subscriptions/\(w.news)/off", [("form_token", altered)]).status, 403)
        XCTAssertEqual(try status(w), ProfileStatus.subscribed.rawValue)

        let off = subscriber.post(path + "/subscriptions/\(w.news)/off", [("form_token", String(formToken))])
        XCTAssertEqual(off.status, 303)
        XCTAssertEqual(try status(w), ProfileStatus.unsubscribed.rawValue)
        let after = subscriber.get(off.header("Location") ?? "").bodyText
        XCTAssertTrue(after.contains("Сохранено."))
        XCTAssertTrue(after.contains("Подписаться снова"))
        XCTAssertEqual(subscriber.post(path + "/subscriptions/\(w.news)/on", [("form_token", String(formToken))]).status, 303)
        XCTAssertEqual(try status(w), ProfileStatus.subscribed.rawValue)
        XCTAssertEqual(subscriber.post(path + "/subscriptions/\(w.news)/maybe", [("form_token", String(formToken))]).status, 404)

        XCTAssertEqual(subscriber.post(path + "/subscriptions/\(w.news)/categories",
                                       [("form_token", String(formToken)), ("category", "Tips")]).status, 303)
        XCTAssertEqual(try w.app.services.subscriptions.list(databaseID: w.db.id, profileRowID: w.profile.rowID).first?.categories, ["Tips"])
        let refused = subscriber.post(path + "/subscriptions/\(w.news)/categories", [("form_token", String(formToken)), ("category", "<b>Nope")])
        XCTAssertEqual(refused.status, 422)
        XCTAssertTrue(refused.bodyText.contains("&lt;b&gt;Nope"), "the reason is shown, escaped")

        XCTAssertEqual(subscriber.post(path + "/fields", [("form_token", String(formToken)), ("f:_fname", "Anya")]).status, 303)
        XCTAssertEqual(try w.app.services.profiles.get(databaseID: w.db.id, profileID: w.profile.profileID)?.values["_fname"], "Anya")
        XCTAssertEqual(subscriber.post(path + "/fields", [("form_token", String(formToken)), ("f:_lname", "X")]).status, 422)

        XCTAssertEqual(subscriber.post(path + "/everything/off", [("form_token", String(formToken))]).status, 303)
        XCTAssertEqual(try w.app.services.profiles.get(databaseID: w.db.id, profileID: w.profile.profileID)?.status, .unsubscribed)
        // The marketer sees who did it in the history.
        XCTAssertTrue(w.marketer.get("/databases/\(w.db.id)/profiles/\(w.profile.profileID)").bodyText
            .contains("by the subscriber in the subscription manager"))
    }

    func testBrokenAndVoidedLinksAreOneNotFoundPage() throws {
        let w = try makeWorld(language: "en")
        let path = try link(w)
        let subscriber = Browser(w.app)
        for bad in ["/s/nothing", path + "x", "/s/" + String(repeating: "A", count: 4000), "/s/%00.%00", path.replacingOccurrences(of: ".", with: "")] {
            let r = subscriber.get(bad)
            XCTAssertEqual(r.status, 404, bad)
            XCTAssertTrue(r.bodyText.contains("This link is not valid") && r.bodyText.contains("Ссылка недействительна"), bad)
            XCTAssertEqual(subscriber.post(bad + "/everything/off", [("form_token", "x")]).status, 404, bad)
        }
        XCTAssertTrue(subscriber.get(path).bodyText.contains("Your subscriptions"))
        // A form sent as something else than a plain form is refused before anything is read.
        let token = try XCTUnwrap(subscriber.get(path).bodyText.firstMatch(of: /name="form_token" value="([0-9a-f]+)"/)?.1)
        XCTAssertEqual(subscriber.post(path + "/everything/off", [("form_token", String(token))], contentType: "text/plain").status, 415)
        // An admin makes a new key: the old link is void everywhere.
        XCTAssertEqual(w.marketer.post("/settings/subscriber-links/rotate", [("csrf_token", w.marketer.csrfToken)]).status, 303)
        XCTAssertEqual(subscriber.get(path).status, 404)
        XCTAssertEqual(subscriber.post(path + "/everything/off", [("form_token", String(token))]).status, 404)
        XCTAssertEqual(try w.app.services.profiles.get(databaseID: w.db.id, profileID: w.profile.profileID)?.status, .subscribed)
        XCTAssertNotEqual(try link(w), path, "the profile page shows the new link")
    }

    /// Acting through the link is acting as the subscriber: a viewer is not shown it.
    func testViewersAreNotShownTheLink() throws {
        let w = try makeWorld()
        try w.app.accounts.createUser(email: "view@example.com", name: "", role: .viewer, password: "viewer password 1")
        let viewer = Browser(w.app)
        XCTAssertEqual(viewer.login("view@example.com", "viewer password 1").status, 303)
        let page = viewer.get("/databases/\(w.db.id)/profiles/\(w.profile.profileID)")
        XCTAssertEqual(page.status, 200)
        XCTAssertFalse(page.bodyText.contains("/s/"))
    }

    func testTheAPIsProfileReadReturnsTheLink() throws {
        let w = try makeWorld()
        let body = "{\"token\":\"\(w.apiToken)\",\"db_id\":\(w.db.id),\"matching\":\"email\",\"email\":\"ann@example.com\"}"
        let r = w.app.handle(Request(method: "POST", target: "/api/v1.1/profiles/get", headers: ["Content-Type": "application/json"],
                                     body: Array(body.utf8)))
        XCTAssertEqual(r.status, 200, r.bodyText)
        guard case .object(let answer)? = JSONValue.parse(r.bodyText), case .object(let profile)? = answer["profile"],
              let url = profile["subscription_manager_url"]?.stringValue else { return XCTFail(r.bodyText) }
        XCTAssertEqual(String(url.dropFirst("http://127.0.0.1:8080".count)), try link(w))
    }
}
