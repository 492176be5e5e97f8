import Foundation
@testable import Roster
import Store
import XCTest

final class ProfileExtrasTests: XCTestCase {
    func testPromoCodesGoToOneProfileEverAndRunOut() throws {
        let pool = try makePool()
        let db = try Databases(pool: pool).create(DatabaseInput(name: "D"))
        let profiles = Profiles(pool: pool)
        let a = try profiles.create(databaseID: db.id, ProfileInput(values: ["email": "a@example.com"]), actor: nil)
        let b = try profiles.create(databaseID: db.id, ProfileInput(values: ["email": "b@example.com"]), actor: nil)
        let loyalty = Loyalty(pool: pool)
        let program = try loyalty.create(name: "P", description: "")
        _ = try loyalty.addCodes(to: program.id, text: "C1\nC2")
        let extras = ProfileExtras(pool: pool)
        XCTAssertEqual(try extras.attachCode(databaseID: db.id, profileID: a.profileID, programID: program.id, actor: nil), "C1")
        let c1 = try XCTUnwrap(extras.codes(databaseID: db.id, profileID: a.profileID).first)
        try extras.detachCode(databaseID: db.id, profileID: a.profileID, codeID: c1.id, actor: nil)
        XCTAssertEqual(try extras.attachCode(databaseID: db.id, profileID: b.profileID, programID: program.id, actor: nil), "C2", "a detached code is not handed out again")
        XCTAssertThrowsError(try extras.attachCode(databaseID: db.id, profileID: a.profileID, programID: program.id, actor: nil)) {
            XCTAssertTrue("\($0)".contains("no free codes"))
        }
        let counts = try XCTUnwrap(loyalty.get(program.id))
        XCTAssertEqual([counts.free, counts.attached, counts.detached], [0, 1, 1])
        XCTAssertThrowsError(try loyalty.delete(program.id))
        let types = try profiles.history(databaseID: db.id, rowID: a.rowID, type: nil, since: nil).map(\.type)
        XCTAssertTrue(types.contains("promo_attached") && types.contains("promo_detached"))
    }

    func testRelationsShowFromBothSidesAndGoWithEitherProfile() throws {
        let pool = try makePool()
        let db = try Databases(pool: pool).create(DatabaseInput(name: "D"))
        let profiles = Profiles(pool: pool)
        let a = try profiles.create(databaseID: db.id, ProfileInput(values: ["email": "a@example.com"]), actor: nil)
        let b = try profiles.create(databaseID: db.id, ProfileInput(values: ["email": "b@example.com"]), actor: nil)
        let extras = ProfileExtras(pool: pool)
        XCTAssertThrowsError(try extras.addRelation(databaseID: db.id, profileID: a.profileID, name: "x", other: "a@example.com", properties: "", actor: nil))
        XCTAssertThrowsError(try extras.addRelation(databaseID: db.id, profileID: a.profileID, name: "x", other: "b@example.com", properties: "bad key=1", actor: nil))
        XCTAssertThrowsError(try extras.addRelation(databaseID: db.id, profileID: a.profileID, name: "x", other: "nobody@example.com", properties: "", actor: nil))
        try extras.addRelation(databaseID: db.id, profileID: a.profileID, name: "recommended by", other: "B@example.com", properties: "source=web\nscore=5", actor: nil)
        let fromA = try extras.relations(databaseID: db.id, profileID: a.profileID)
        XCTAssertEqual(fromA.map(\.otherEmail), ["b@example.com"])
        XCTAssertEqual(fromA.first?.outgoing, true)
        XCTAssertEqual(fromA.first?.properties, #"{"score":"5","source":"web"}"#)
        XCTAssertEqual(try extras.relations(databaseID: db.id, profileID: b.profileID).first?.outgoing, false)
        try profiles.delete(databaseID: db.id, profileID: b.profileID)
        XCTAssertEqual(try extras.relations(databaseID: db.id, profileID: a.profileID).count, 0, "deleting a profile removes its relations")
    }

    func testPersonalDataHoldsEverything() throws {
        let pool = try makePool()
        let resource = try Resources(pool: pool).create(ResourceInput(name: "News", channels: ["email"]))
        let db = try Databases(pool: pool).create(DatabaseInput(name: "D", resourceIDs: [resource.id]))
        let profiles = Profiles(pool: pool)
        let a = try profiles.create(databaseID: db.id, ProfileInput(values: ["email": "a@example.com", "_fname": "Ann \"Q\""]), actor: nil)
        try Subscriptions(pool: pool).add(databaseID: db.id, profileRowID: a.rowID, SubscriptionInput(resourceID: resource.id, channel: "email", contact: "a@example.com"), actor: nil)
        let json = try ProfileExtras(pool: pool).personalData(databaseID: db.id, profile: try XCTUnwrap(profiles.get(databaseID: db.id, profileID: a.profileID)), database: "D")
        guard case .object(let o)? = JSONValue.parse(json) else { return XCTFail(json) }
        XCTAssertEqual(o["profile_id"], .string(a.profileID))
        if case .object(let fields)? = o["fields"] { XCTAssertEqual(fields["_fname"], .string("Ann \"Q\"")) } else { XCTFail() }
        if case .array(let subs)? = o["subscriptions"] { XCTAssertEqual(subs.count, 1) } else { XCTFail() }
        if case .array(let history)? = o["history"] { XCTAssertEqual(history.count, 2) } else { XCTFail() }
    }
}
