import Foundation
@testable import Roster
import Store
import XCTest

final class SubscriptionsTests: XCTestCase {
    struct Setup {
        let pool: DatabasePool
        let subs: Subscriptions
        let db: ProfileDatabase
        let resource: Resource
        let other: Resource
        let profile: Profile
    }

    func makeSetup(increasePriority: Bool = false) throws -> Setup {
        let pool = try makePool()
        let resources = Resources(pool: pool)
        let resource = try resources.create(ResourceInput(name: "News", channels: ["email", "sms", "push", "telegram_bot"], categories: "Sales\nTips", increasePriority: increasePriority))
        let other = try resources.create(ResourceInput(name: "Other", channels: ["email"]))
        let db = try Databases(pool: pool).create(DatabaseInput(name: "D", resourceIDs: [resource.id, other.id]))
        let profile = try Profiles(pool: pool).create(databaseID: db.id, ProfileInput(values: ["email": "p@example.com"]), actor: nil)
        return Setup(pool: pool, subs: Subscriptions(pool: pool), db: db, resource: resource, other: other, profile: profile)
    }

    func add(_ s: Setup, _ contact: String, status: String = "subscribed", priority: Int? = nil, resource: Int64? = nil) throws -> Int64 {
        try s.subs.add(databaseID: s.db.id, profileRowID: s.profile.rowID,
                       SubscriptionInput(resourceID: resource ?? s.resource.id, channel: "email", contact: contact, status: status, priority: priority), actor: nil)
    }

    func contacts(_ s: Setup) throws -> Set<String> {
        Set(try s.subs.list(databaseID: s.db.id, profileRowID: s.profile.rowID).map(\.contact))
    }

    func testChannelContactsAreValidated() throws {
        let s = try makeSetup()
        func attempt(_ channel: String, _ contact: String, provider: String = "") -> Bool {
            (try? s.subs.add(databaseID: s.db.id, profileRowID: s.profile.rowID,
                             SubscriptionInput(resourceID: s.resource.id, channel: channel, contact: contact, provider: provider), actor: nil)) != nil
        }
        XCTAssertTrue(attempt("email", "a@example.com"))
        XCTAssertFalse(attempt("email", "not-an-email"))
        XCTAssertTrue(attempt("sms", "+7 (900) 000-00-00"))
        XCTAssertFalse(attempt("sms", "call me"))
        XCTAssertFalse(attempt("push", "abc"), "push needs a provider")
        XCTAssertTrue(attempt("push", "abc", provider: "Firefox"))
        XCTAssertTrue(attempt("telegram_bot", "123456"))
        XCTAssertFalse(attempt("telegram_bot", "@name"))
        XCTAssertFalse(attempt("viber", "+79000000000"), "the resource has no viber channel")
        XCTAssertThrowsError(try s.subs.add(databaseID: s.db.id, profileRowID: s.profile.rowID,
                                            SubscriptionInput(resourceID: s.resource.id, channel: "email", contact: "c@example.com", categories: ["Nope"]), actor: nil))
        XCTAssertThrowsError(try s.subs.add(databaseID: s.db.id, profileRowID: s.profile.rowID,
                                            SubscriptionInput(resourceID: 999, channel: "email", contact: "c@example.com"), actor: nil))
    }

    func testPriorityForNewSubscriptions() throws {
        let plain = try makeSetup()
        _ = try add(plain, "a@example.com")
        _ = try add(plain, "b@example.com")
        XCTAssertEqual(try plain.subs.list(databaseID: plain.db.id, profileRowID: plain.profile.rowID).map(\.priority), [0, 1], "without the option a new one goes last")
        let first = try makeSetup(increasePriority: true)
        _ = try add(first, "a@example.com")
        _ = try add(first, "b@example.com")
        let list = try first.subs.list(databaseID: first.db.id, profileRowID: first.profile.rowID)
        XCTAssertEqual(list.first { $0.contact == "b@example.com" }?.priority, 0, "with the option the new one goes first")
        XCTAssertEqual(list.first { $0.contact == "a@example.com" }?.priority, 1)
        _ = try add(first, "c@example.com", priority: 5)
        XCTAssertEqual(try first.subs.list(databaseID: first.db.id, profileRowID: first.profile.rowID).first { $0.contact == "b@example.com" }?.priority, 0,
                       "an explicit priority leaves the others unchanged")
    }

    /// Fills the resource's email channel to its 20 with ordinary subscriptions, then adds the ones under test.
    func fill(_ s: Setup, ordinary: Int) throws {
        for i in 0..<ordinary { _ = try add(s, "ok\(i)@example.com", priority: 1) }
    }

    func testReplacementTakesDeletedFirst() throws {
        let s = try makeSetup()
        try fill(s, ordinary: 18)
        let deleted = try add(s, "deleted@example.com", priority: 1)
        _ = try add(s, "invalid@example.com", status: "invalid", priority: 1)
        try s.subs.setDeleted(databaseID: s.db.id, profileRowID: s.profile.rowID, subscriptionID: deleted, deleted: true, actor: nil)
        _ = try add(s, "new@example.com", priority: 1)
        let now = try contacts(s)
        XCTAssertFalse(now.contains("deleted@example.com"))
        XCTAssertTrue(now.contains("invalid@example.com") && now.contains("new@example.com"))
        XCTAssertEqual(now.count, 20)
    }

    func testReplacementStatusOrder() throws {
        // invalid, then hard bounced, then complainer, then suspended, then unconfirmed.
        let order = ["invalid", "hard_bounced", "complainer", "suspended", "unconfirmed"]
        for (index, status) in order.enumerated() {
            let s = try makeSetup()
            let rest = Array(order[index...])
            try fill(s, ordinary: 20 - rest.count)
            for other in rest { _ = try add(s, "\(other)@example.com", status: other, priority: 1) }
            _ = try add(s, "new@example.com", priority: 1)
            let now = try contacts(s)
            XCTAssertFalse(now.contains("\(status)@example.com"), "\(status) goes first among \(rest)")
            for other in rest.dropFirst() { XCTAssertTrue(now.contains("\(other)@example.com"), "\(other) stays while \(status) goes") }
        }
    }

    func testReplacementThenLowestPriorityThenOldest() throws {
        let s = try makeSetup()
        try fill(s, ordinary: 18)
        _ = try add(s, "low@example.com", priority: 9)
        _ = try add(s, "high@example.com", priority: 0)
        _ = try add(s, "new1@example.com", priority: 1)
        XCTAssertFalse(try contacts(s).contains("low@example.com"), "the lowest priority (highest number) goes")
        _ = try add(s, "new2@example.com", priority: 1)
        XCTAssertFalse(try contacts(s).contains("ok0@example.com"), "then, among equal priorities, the oldest")
        XCTAssertTrue(try contacts(s).contains("high@example.com"))
    }

    func testTheProfileLimitOf200() throws {
        let s = try makeSetup()
        let resources = Resources(pool: s.pool)
        var ids = [s.resource.id, s.other.id]
        for i in 0..<8 { ids.append(try resources.create(ResourceInput(name: "R\(i)", channels: ["email"])).id) }
        try Databases(pool: s.pool).update(s.db.id, DatabaseInput(name: "D", resourceIDs: ids))
        for r in ids { for i in 0..<20 { _ = try add(s, "r\(r)-\(i)@example.com", resource: r) } }
        XCTAssertEqual(try contacts(s).count, 200)
        let broken = try s.subs.list(databaseID: s.db.id, profileRowID: s.profile.rowID).first { $0.resourceID == ids[5] }!
        try s.subs.update(databaseID: s.db.id, profileRowID: s.profile.rowID, subscriptionID: broken.id, status: "hard_bounced", priority: 0, actor: nil)
        let extra = try resources.create(ResourceInput(name: "Extra", channels: ["email"]))
        try Databases(pool: s.pool).update(s.db.id, DatabaseInput(name: "D", resourceIDs: ids + [extra.id]))
        _ = try add(s, "extra@example.com", resource: extra.id)
        let now = try contacts(s)
        XCTAssertEqual(now.count, 200)
        XCTAssertFalse(now.contains(broken.contact), "the hard-bounced one anywhere in the profile made room")
    }

    func testSameContactUpdatesAndDeletedIsRestorable() throws {
        let s = try makeSetup()
        let id = try add(s, "a@example.com")
        try s.subs.setDeleted(databaseID: s.db.id, profileRowID: s.profile.rowID, subscriptionID: id, deleted: true, actor: nil)
        XCTAssertEqual(try s.subs.list(databaseID: s.db.id, profileRowID: s.profile.rowID).first?.deleted, true)
        try s.subs.setDeleted(databaseID: s.db.id, profileRowID: s.profile.rowID, subscriptionID: id, deleted: false, actor: nil)
        XCTAssertEqual(try add(s, "A@example.com", status: "unsubscribed"), id, "the same contact is the same subscription")
        let sub = try XCTUnwrap(s.subs.list(databaseID: s.db.id, profileRowID: s.profile.rowID).first)
        XCTAssertEqual(sub.status, .unsubscribed)
        XCTAssertFalse(sub.deleted)
        let history = try Profiles(pool: s.pool).history(databaseID: s.db.id, rowID: s.profile.rowID, type: nil, since: nil).map(\.type)
        XCTAssertTrue(history.contains("subscription_added") && history.contains("subscription_deleted") && history.contains("subscription_changed"))
    }
}
