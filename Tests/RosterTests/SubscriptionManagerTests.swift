import Foundation
@testable import Roster
import Secrets
import Store
import XCTest

/// The subscription manager from the sentences: an unguessable signed link per profile, revocable by a new
/// key; the fields marked "shown in subscription manager" (editable where the database allows); each subscription
/// with its contact partly masked; unsubscribe or resubscribe per resource and channel, categories, unsubscribe from
/// everything; every change the customer's own interaction with history and trigger events.
final class SubscriptionManagerTests: XCTestCase {
    struct World {
        let clock = ManualClock()
        let pool: DatabasePool
        let manager: SubscriptionManager
        let databases: Databases
        let db: ProfileDatabase
        let resource: Resource
        let profile: Profile
        let token: String
        let news: Int64, sms: Int64, bounced: Int64

        init(editable: Bool = false) throws {
            Secrets.initialize()
            pool = try makePool()
            let links = SubscriberLinks(pool: pool, clock: clock.clock)
            manager = SubscriptionManager(pool: pool, links: links, clock: clock.clock)
            databases = Databases(pool: pool, clock: clock.clock)
            resource = try Resources(pool: pool).create(ResourceInput(name: "News", channels: ["email", "sms"], categories: "Sales\nTips"))
            db = try databases.create(DatabaseInput(name: "Shop", smTitle: "Shop letters", smLanguage: "ru", smEditFields: editable,
                                                    resourceIDs: [resource.id]))
            try databases.updateStandardSettings(db.id, ["_fname": StandardFieldSetting(showInSM: true)])
            _ = try databases.addField(to: db.id, FieldInput(name: "shoe_size", type: "number", showInSM: true))
            _ = try databases.addField(to: db.id, FieldInput(name: "score", type: "number"))
            profile = try Profiles(pool: pool, clock: clock.clock).create(databaseID: db.id, ProfileInput(values: [
                "email": "anna.petrova@example.com", "_fname": "Anna", "_lname": "Petrova", "shoe_size": "38", "score": "7"]), actor: nil)
            let subs = Subscriptions(pool: pool, clock: clock.clock)
            let (databaseID, rowID, resourceID) = (db.id, profile.rowID, resource.id)
            let add = { (channel: String, contact: String, status: String) throws -> Int64 in
                try subs.add(databaseID: databaseID, profileRowID: rowID,
                             SubscriptionInput(resourceID: resourceID, channel: channel, contact: contact, status: status), actor: nil)
            }
            news = try add("email", "anna.petrova@example.com", "subscribed")
            sms = try add("sms", "+79001234567", "subscribed")
            bounced = try add("email", "old@example.com", "hard_bounced")
            token = try links.managerToken(databaseID: db.id, profileID: profile.profileID)
            clock.advance(3600)
        }

        func subscription(_ id: Int64) throws -> Row? {
            try pool.read { try $0.queryOne("SELECT * FROM subscriptions_\(db.id) WHERE id = ?", [id]) }
        }
        func history() throws -> [Row] {
            try pool.read { try $0.query("SELECT * FROM history_\(db.id) WHERE profile = ? ORDER BY id", [profile.rowID]) }
        }
        func triggers() throws -> [String] {
            try pool.read { try $0.query("SELECT type FROM trigger_events WHERE profile_id = ? ORDER BY id", [profile.profileID]) }
                .compactMap { $0.string("type") }
        }
        func lastInteraction() throws -> Int64 {
            try pool.read { try $0.scalar("SELECT last_interaction_at FROM profiles_\(db.id) WHERE id = ?", [profile.rowID]).int64 ?? 0 }
        }
    }

    func testTheLinkIsSignedAndANewKeyVoidsIt() throws {
        let w = try World()
        XCTAssertNotNil(try w.manager.view(token: w.token))
        XCTAssertFalse(w.token.contains(w.profile.profileID), "the profile id is not readable in the link")
        // Any change to the token, another profile's id with this signature, or garbage: not a link.
        var altered = Array(w.token)
        altered[altered.count - 1] = altered[altered.count - 1] == "0" ? "1" : "0"
        let payload = Secrets.base64URL(Array("\(w.db.id) someone-else".utf8))
        let signature = w.token.split(separator: ".")[1]
        for bad in [String(altered), payload + "." + signature, "", ".", "x.y", String(repeating: "a", count: 5000), w.token + "."] {
            XCTAssertNil(try w.manager.view(token: bad), bad)
        }
        XCTAssertThrowsError(try w.manager.setGlobal(token: String(altered), subscribed: false))
        let saved = SubscriberLinks.configuration
        defer { SubscriberLinks.configuration = saved }
        SubscriberLinks.configuration.publicURL = "https://news.example.com"
        let url = try w.manager.links.managerURL(databaseID: w.db.id, profileID: w.profile.profileID)
        XCTAssertEqual(url, "https://news.example.com/s/" + w.token)
        try w.manager.links.rotate()
        XCTAssertNil(try w.manager.view(token: w.token), "a new key voids every earlier link")
        let fresh = try w.manager.links.managerToken(databaseID: w.db.id, profileID: w.profile.profileID)
        XCTAssertNotEqual(fresh, w.token)
        XCTAssertNotNil(try w.manager.view(token: fresh))
    }

    func testThePageShowsOnlyTheFieldsMarkedForItAndMasksContacts() throws {
        let w = try World()
        let view = try XCTUnwrap(try w.manager.view(token: w.token))
        XCTAssertEqual(view.database.smTitle, "Shop letters")
        XCTAssertEqual(view.database.smLanguage, "ru")
        XCTAssertEqual(view.fields.map(\.key), ["_fname", "shoe_size"], "last name and score are not marked")
        XCTAssertEqual(view.fields.map(\.value), ["Anna", "38"])
        XCTAssertEqual(view.subscriptions.count, 3)
        for item in view.subscriptions {
            XCTAssertFalse(item.maskedContact.contains("anna.petrova"), item.maskedContact)
            XCTAssertFalse(item.maskedContact.contains("9001234567"), item.maskedContact)
        }
        XCTAssertEqual(view.subscriptions.first { $0.id == w.news }?.maskedContact, "a••••••••••a@example.com")
        XCTAssertEqual(view.subscriptions.first { $0.id == w.sms }?.maskedContact, "+7••••••••67")
        XCTAssertEqual(view.subscriptions.first { $0.id == w.news }?.availableCategories, ["Sales", "Tips"])
    }

    func testUnsubscribingIsTheCustomersOwnInteraction() throws {
        let w = try World()
        let before = try w.lastInteraction()
        try w.manager.setSubscribed(token: w.token, subscriptionID: w.news, false)
        XCTAssertEqual(try w.subscription(w.news)?.int("status"), ProfileStatus.unsubscribed.rawValue)
        XCTAssertEqual(try w.subscription(w.sms)?.int("status"), ProfileStatus.subscribed.rawValue, "only that resource and channel")
        let event = try XCTUnwrap(try w.history().last)
        XCTAssertEqual(event.string("type"), HistoryEvent.unsubscribed)
        XCTAssertTrue(event.string("details")?.contains("\"how\":\"subscriber\"") ?? false, event.string("details") ?? "")
        XCTAssertNil(event.int64("actor"), "no marketer did it")
        XCTAssertGreaterThan(try w.lastInteraction(), before, "an interaction moves the last interaction")
        XCTAssertEqual(try w.triggers().last, "subscription_updated")

        // Back again: the subscriber's own earlier choice can be undone by them.
        try w.manager.setSubscribed(token: w.token, subscriptionID: w.news, true)
        XCTAssertEqual(try w.subscription(w.news)?.int("status"), ProfileStatus.subscribed.rawValue)
        // An undeliverable address is a fact, not a choice: not offered, and refused if asked.
        let view = try XCTUnwrap(try w.manager.view(token: w.token))
        XCTAssertEqual(view.subscriptions.first { $0.id == w.bounced }?.canResubscribe, false)
        let events = try w.history().count
        XCTAssertThrowsError(try w.manager.setSubscribed(token: w.token, subscriptionID: w.bounced, true)) { error in
            XCTAssertNotNil((error as? ValidationError)?.fieldErrors["subscription"])
        }
        XCTAssertEqual(try w.subscription(w.bounced)?.int("status"), ProfileStatus.hardBounced.rawValue)
        XCTAssertEqual(try w.history().count, events, "a refusal writes nothing")
        // Another profile's subscription id through this link is no such subscription.
        XCTAssertThrowsError(try w.manager.setSubscribed(token: w.token, subscriptionID: 999_999, false))
    }

    func testCategoriesAreChosenFromTheResources() throws {
        let w = try World()
        try w.manager.setCategories(token: w.token, subscriptionID: w.news, ["Tips"])
        XCTAssertEqual(try w.subscription(w.news)?.string("categories"), "[\"Tips\"]")
        XCTAssertThrowsError(try w.manager.setCategories(token: w.token, subscriptionID: w.news, ["Tips", "Casino"]))
        XCTAssertEqual(try w.subscription(w.news)?.string("categories"), "[\"Tips\"]", "a refused choice changes nothing")
        try w.manager.setCategories(token: w.token, subscriptionID: w.news, [])
        XCTAssertEqual(try w.subscription(w.news)?.string("categories"), "[]")
    }

    func testUnsubscribingFromEverythingIsTheGlobalStatus() throws {
        let w = try World()
        try w.manager.setGlobal(token: w.token, subscribed: false)
        let status = try w.pool.read { try $0.scalar("SELECT status FROM profiles_\(w.db.id) WHERE id = ?", [w.profile.rowID]).int }
        XCTAssertEqual(status, ProfileStatus.unsubscribed.rawValue)
        XCTAssertEqual(try w.history().last?.string("type"), HistoryEvent.statusChanged)
        XCTAssertEqual(try w.triggers().last, "status_updated", "the global status change is a trigger event too")
        let view = try XCTUnwrap(try w.manager.view(token: w.token))
        XCTAssertTrue(view.canResubscribeAll)
        XCTAssertFalse(view.canUnsubscribeAll)
        try w.manager.setGlobal(token: w.token, subscribed: true)
        XCTAssertEqual(try w.manager.view(token: w.token)?.status, .subscribed)
    }

    func testFieldsAreEditableOnlyWhereTheDatabaseAllowsAndAreJudgedLikeEverywhere() throws {
        let locked = try World()
        XCTAssertThrowsError(try locked.manager.updateFields(token: locked.token, ["_fname": "Ann"]))
        let w = try World(editable: true)
        try w.manager.updateFields(token: w.token, ["_fname": "Ann", "shoe_size": "39"])
        let view = try XCTUnwrap(try w.manager.view(token: w.token))
        XCTAssertEqual(view.fields.map(\.value), ["Ann", "39"])
        XCTAssertEqual(try w.history().last?.string("type"), HistoryEvent.fieldChanged)
        XCTAssertThrowsError(try w.manager.updateFields(token: w.token, ["score": "100"]), "a field not shown") { error in
            XCTAssertNotNil((error as? ValidationError)?.fieldErrors["fields"])
        }
        XCTAssertThrowsError(try w.manager.updateFields(token: w.token, ["_fname": "Bo", "shoe_size": "big"])) { error in
            XCTAssertNotNil((error as? ValidationError)?.fieldErrors["shoe_size"])
        }
        XCTAssertEqual(try w.manager.view(token: w.token)?.fields.map(\.value), ["Ann", "39"], "nothing of a refused change")
    }
}
