import Foundation
@testable import Roster
import Secrets
import Store
import XCTest

final class ProfilesTests: XCTestCase {
    func setUpDatabase() throws -> (DatabasePool, Databases, Profiles, ProfileDatabase) {
        let pool = try makePool()
        let databases = Databases(pool: pool)
        let db = try databases.create(DatabaseInput(name: "D"))
        try databases.addField(to: db.id, FieldInput(name: "plan", type: "enum", options: "basic,pro", defaultValue: "basic"))
        try databases.addField(to: db.id, FieldInput(name: "score", type: "number"))
        try databases.updateStandardSettings(db.id, ["_country": .init(defaultValue: "DE"), "_lname": .init(required: true)])
        return (pool, databases, Profiles(pool: pool), db)
    }

    /// The field catalogue is cached per database and checked against `catalogue_version`, which triggers bump on
    /// any change to custom fields or standard settings, whoever makes it: another service instance (another
    /// process, in production) or plain SQL.
    func testCachedCatalogueFollowsEveryKindOfFieldChange() throws {
        let (pool, _, profiles, db) = try setUpDatabase()
        let elsewhere = Databases(pool: pool)   // its own cache, as another process would have
        let cached = Databases(pool: pool)
        let p = try profiles.create(databaseID: db.id, ProfileInput(values: ["_lname": "Lee", "score": "5"]), actor: nil)
        XCTAssertEqual(try cached.fields(of: db.id).map(\.name), ["plan", "score"])
        XCTAssertEqual(try profiles.get(databaseID: db.id, profileID: p.profileID)?.values["score"], "5")

        let version = { try pool.read { try $0.scalar("SELECT catalogue_version FROM databases WHERE id = ?", [db.id]).int64 ?? -1 } }
        var last = try version()
        func bumped(_ what: String) throws {
            let now = try version()
            XCTAssertGreaterThan(now, last, what)
            last = now
        }
        let size = try elsewhere.addField(to: db.id, FieldInput(name: "shoe_size", type: "line"))
        try bumped("adding a field")
        XCTAssertEqual(try cached.fields(of: db.id).map(\.name), ["plan", "score", "shoe_size"])
        XCTAssertNotNil(try profiles.get(databaseID: db.id, profileID: p.profileID)?.values["shoe_size"])

        try pool.write { try $0.run("UPDATE custom_fields SET name = 'size_eu' WHERE id = ?", [size.id]) }
        try bumped("renaming by SQL")
        XCTAssertEqual(try cached.fields(of: db.id).map(\.name), ["plan", "score", "size_eu"])
        XCTAssertNotNil(try profiles.get(databaseID: db.id, profileID: p.profileID)?.values["size_eu"])

        try elsewhere.deleteField(size.id)
        try bumped("deleting a field")
        XCTAssertEqual(try cached.fields(of: db.id).map(\.name), ["plan", "score"])
        XCTAssertNil(try profiles.get(databaseID: db.id, profileID: p.profileID)?.values["size_eu"])

        try elsewhere.updateStandardSettings(db.id, ["_country": .init(defaultValue: "FR")])
        try bumped("changing standard settings")
        XCTAssertEqual(try cached.standardSettings(of: db.id)["_country"]?.defaultValue, "FR")
        try pool.write { try $0.run("DELETE FROM standard_field_settings WHERE database_id = ?", [db.id]) }
        try bumped("deleting standard settings by SQL")
        XCTAssertNil(try cached.standardSettings(of: db.id)["_country"])
        XCTAssertEqual(try profiles.create(databaseID: db.id, ProfileInput(values: [:]), actor: nil).values["_country"], "",
                       "no default any more, and no required last name either")
    }

    func testCreateAppliesDefaultsChecksRequiredAndRecordsHistory() throws {
        let (_, _, profiles, db) = try setUpDatabase()
        XCTAssertThrowsError(try profiles.create(databaseID: db.id, ProfileInput(values: ["_fname": "Ann", "score": "1.5", "_bdate": "2024-02-30"], status: "nope"), actor: nil)) {
            let fields = ($0 as? ValidationError)?.fieldErrors ?? [:]
            XCTAssertEqual(Set(fields.keys), ["_lname", "score", "_bdate", "status"])
        }
        let p = try profiles.create(databaseID: db.id, ProfileInput(values: ["_fname": "Ann", "_lname": "Lee", "email": "ANN@example.com", "phones": "+7 900 000-00-00"]), actor: nil)
        XCTAssertEqual(p.email, "ann@example.com")
        XCTAssertEqual(p.values["_country"], "DE", "standard default")
        XCTAssertEqual(p.values["plan"], "basic", "custom default")
        XCTAssertEqual(p.values["phones"], "+79000000000")
        XCTAssertEqual(p.profileID.count, 24)
        XCTAssertEqual(p.md5, Secrets.md5Hex(p.profileID))
        XCTAssertEqual(Secrets.md5Hex("abc"), "900150983cd24fb0d6963f7d28e17f72")
        XCTAssertEqual(Secrets.xxh64Hex(""), "ef46db3751d8e999")
        XCTAssertThrowsError(try profiles.create(databaseID: db.id, ProfileInput(values: ["_lname": "X", "email": "ann@EXAMPLE.com"]), actor: nil)) {
            XCTAssertNotNil(($0 as? ValidationError)?.fieldErrors["email"])
        }
        let noEmail = try profiles.create(databaseID: db.id, ProfileInput(values: ["_lname": "X"]), actor: nil)
        XCTAssertEqual(noEmail.email, "\(noEmail.profileID)@localhost")
        let history = try profiles.history(databaseID: db.id, rowID: p.rowID, type: nil, since: nil)
        XCTAssertEqual(history.map(\.type), ["created"])
    }

    func testEditDetectsConflictsAndRecordsChangedFields() throws {
        let (_, _, profiles, db) = try setUpDatabase()
        let p = try profiles.create(databaseID: db.id, ProfileInput(values: ["_lname": "Lee", "email": "a@example.com"]), actor: nil)
        try profiles.update(databaseID: db.id, profileID: p.profileID, ProfileInput(values: ["_lname": "Lee", "score": "7", "email": "a@example.com"], status: "unsubscribed"),
                            expectedVersion: p.version, actor: nil)
        let edited = try XCTUnwrap(profiles.get(databaseID: db.id, profileID: p.profileID))
        XCTAssertEqual(edited.values["score"], "7")
        XCTAssertEqual(edited.status, .unsubscribed)
        XCTAssertEqual(edited.version, p.version + 1)
        // A second editor still holding the old version is stopped, and nothing is written.
        XCTAssertThrowsError(try profiles.update(databaseID: db.id, profileID: p.profileID, ProfileInput(values: ["_lname": "Other"]), expectedVersion: p.version, actor: nil)) {
            XCTAssertEqual(($0 as? EditConflict)?.current.values["score"], "7")
        }
        XCTAssertEqual(try profiles.get(databaseID: db.id, profileID: p.profileID)?.values["_lname"], "Lee")
        let types = try profiles.history(databaseID: db.id, rowID: p.rowID, type: nil, since: nil).map(\.type)
        XCTAssertEqual(Set(types), ["created", "field_changed", "status_changed"])
        let detail = try profiles.history(databaseID: db.id, rowID: p.rowID, type: "field_changed", since: nil).first?.details
        XCTAssertEqual(detail, "{\"fields\":[\"score\"],\"how\":\"form\"}", "the changed fields and where the change came from")
    }

    func testKeysetPagesSearchAndStatusFilter() throws {
        let (_, _, profiles, db) = try setUpDatabase()
        var created: [Profile] = []
        for i in 0..<7 {
            created.append(try profiles.create(databaseID: db.id, ProfileInput(values: ["_fname": i % 2 == 0 ? "O'Brien" : "Smith_\(i)", "_lname": "L", "email": "u\(i)@example.com"],
                                                                   status: i < 3 ? "invalid" : "subscribed"), actor: nil))
        }
        var query = ProfileQuery()
        query.limit = 3
        var seen: [String] = []
        repeat {
            let page = try profiles.list(databaseID: db.id, query)
            seen += page.profiles.map(\.email)
            query.after = page.next
        } while query.after != nil
        XCTAssertEqual(seen, created.reversed().map(\.email), "newest first, each once")
        var byStatus = ProfileQuery()
        byStatus.status = .invalid
        XCTAssertEqual(try profiles.list(databaseID: db.id, byStatus).profiles.count, 3)
        XCTAssertEqual(try profiles.count(databaseID: db.id, search: "", status: .invalid), 3)
        var search = ProfileQuery()
        search.search = "U3@example.com"
        XCTAssertEqual(try profiles.list(databaseID: db.id, search).profiles.map(\.email), ["u3@example.com"])
        search.search = "o'brien"
        XCTAssertEqual(try profiles.list(databaseID: db.id, search).profiles.count, 4)
        search.search = "Smith_"
        XCTAssertEqual(try profiles.count(databaseID: db.id, search: "Smith_", status: nil), 3)
        search.search = "%"
        XCTAssertEqual(try profiles.list(databaseID: db.id, search).profiles.count, 0, "% is a character, not a wildcard")
        search.search = created[0].profileID
        XCTAssertEqual(try profiles.list(databaseID: db.id, search).profiles.count, 1)
        var activity = ProfileQuery()
        activity.sort = .activity
        activity.limit = 4
        let first = try profiles.list(databaseID: db.id, activity)
        activity.after = first.next
        XCTAssertEqual(first.profiles.count + (try profiles.list(databaseID: db.id, activity).profiles.count), 7)
        // A list that reads only some fields (the profile list page): the same pages, with just those values.
        var light = ProfileQuery()
        light.fields = ["_fname", "score"]
        light.sort = .activity
        light.limit = 4
        let lightFirst = try profiles.list(databaseID: db.id, light)
        XCTAssertEqual(lightFirst.profiles.map(\.profileID), first.profiles.map(\.profileID))
        XCTAssertEqual(lightFirst.next?.id, first.next?.id)
        let sample = try XCTUnwrap(lightFirst.profiles.first)
        let full = try XCTUnwrap(first.profiles.first)
        XCTAssertEqual(Set(sample.values.keys), ["_fname", "score"])
        XCTAssertEqual(sample.values["_fname"], full.values["_fname"])
        XCTAssertEqual([sample.email, sample.status.name, String(sample.version)], [full.email, full.status.name, String(full.version)])
        XCTAssertEqual([sample.createdAt, sample.lastInteractionAt], [full.createdAt, full.lastInteractionAt])
    }

    func testDeleteRemovesHistory() throws {
        let (pool, _, profiles, db) = try setUpDatabase()
        let p = try profiles.create(databaseID: db.id, ProfileInput(values: ["_lname": "L"]), actor: nil)
        try profiles.delete(databaseID: db.id, profileID: p.profileID)
        XCTAssertNil(try profiles.get(databaseID: db.id, profileID: p.profileID))
        XCTAssertEqual(try pool.read { try $0.scalar("SELECT COUNT(*) FROM history_\(db.id)").int }, 0)
        XCTAssertThrowsError(try profiles.delete(databaseID: db.id, profileID: p.profileID))
    }
}
