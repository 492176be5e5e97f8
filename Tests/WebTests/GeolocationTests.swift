import Foundation
import GeoLocation
import HTTP
import Roster
@testable import Web
import XCTest

/// Location from IP, from the and the spec's sentences: when an IP arrives (the tracked `_ip`, the
/// registration `_regip`, an event with an IP) the matching location fields are filled from Debian's packaged GeoIP
/// database; on by default for API imports, an option chosen before a file import; a marketer's own values are
/// never overwritten.
final class GeolocationTests: XCTestCase {
    /// Known addresses of the packaged country database (geoip-database): a German one, whose country has one time
    /// zone; a US one (several zones: none is guessed); private and malformed ones (nothing).
    func testThePackagedDatabaseKnowsTheTestAddresses() throws {
        let db = try XCTUnwrap(GeoIPDatabase(), "geoip-database is installed by make test")
        XCTAssertEqual(db.locate("85.214.0.1"), IPLocation(countryCode: "DE", country: "Germany", timeZone: "Europe/Berlin"))
        XCTAssertEqual(db.locate("8.8.8.8"), IPLocation(countryCode: "US", country: "United States", timeZone: nil))
        for bad in ["10.0.0.1", "127.0.0.1", "", "1.2.3", "999.1.1.1", "85.214.0.1 ", "::1", String(repeating: "1", count: 5000)] {
            XCTAssertNil(db.locate(bad), bad)
        }
    }

    struct World {
        let app: WebApp
        let b: Browser
        let db: ProfileDatabase
        let token: String
    }

    func makeWorld() throws -> World {
        let (b, app) = try signIn(.admin)
        let admin = try XCTUnwrap(try app.accounts.user(email: "admin@example.com"))
        let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
        return World(app: app, b: b, db: db, token: try app.services.apiTokens.create(name: "s", databaseIDs: [db.id], by: admin.id).token)
    }

    func api(_ w: World, _ path: String, _ json: String) -> Response {
        w.app.handle(Request(method: "POST", target: "/api/v1.1/profiles/\(path)", headers: ["Content-Type": "application/json"],
                             body: Array(json.utf8)))
    }

    func values(_ w: World, _ email: String) throws -> [String: String] {
        let page = try w.app.services.profiles.list(databaseID: w.db.id, { var q = ProfileQuery(); q.search = email; return q }())
        return try XCTUnwrap(page.profiles.first { $0.email == email }).values
    }

    func testAPIImportsFillEmptyLocationFieldsByDefault() throws {
        let w = try makeWorld()
        let r = api(w, "import_batch", """
            {"token":"\(w.token)","db_id":\(w.db.id),"data":[
             {"email":"ann@example.com","_ip":"85.214.0.1","_regip":"8.8.8.8"},
             {"email":"bob@example.com","_ip":"85.214.0.1","_country":"Deutschland"},
             {"email":"cat@example.com","_ip":"10.0.0.1"}]}
            """)
        XCTAssertEqual(r.status, 200, r.bodyText)
        let ann = try values(w, "ann@example.com")
        XCTAssertEqual(ann["_country"], "Germany")
        XCTAssertEqual(ann["_timezone"], "Europe/Berlin")
        XCTAssertEqual(ann["_regcountry"], "United States")
        XCTAssertEqual(ann["_region"] ?? "", "", "the country database has no regions")
        XCTAssertEqual(try values(w, "bob@example.com")["_country"], "Deutschland", "a value given alongside wins")
        XCTAssertEqual(try values(w, "bob@example.com")["_timezone"], "Europe/Berlin")
        XCTAssertEqual(try values(w, "cat@example.com")["_country"] ?? "", "", "a private address says nothing")
        // Turned off for a request.
        _ = api(w, "import_batch", """
            {"token":"\(w.token)","db_id":\(w.db.id),"detect_location":false,"data":[{"email":"dan@example.com","_ip":"85.214.0.1"}]}
            """)
        XCTAssertEqual(try values(w, "dan@example.com")["_country"] ?? "", "")
    }

    func testAMarketersValueIsNeverOverwrittenAndEventsBringAddresses() throws {
        let w = try makeWorld()
        let eve = try w.app.services.profiles.create(databaseID: w.db.id, ProfileInput(values: ["email": "eve@example.com", "_country": "Narnia"]),
                                                     actor: nil)
        _ = eve
        _ = api(w, "update_batch", """
            {"token":"\(w.token)","db_id":\(w.db.id),"data":[{"email":"eve@example.com","_ip":"8.8.8.8"}]}
            """)
        XCTAssertEqual(try values(w, "eve@example.com")["_country"], "Narnia")
        XCTAssertEqual(try values(w, "eve@example.com")["_ip"], "8.8.8.8")
        // An event with the customer's address sets the latest action's IP and the location it gives.
        _ = try w.app.services.profiles.create(databaseID: w.db.id, ProfileInput(values: ["email": "fay@example.com"]), actor: nil)
        let event = api(w, "events", """
            {"token":"\(w.token)","db_id":\(w.db.id),"data":[{"email":"fay@example.com","type":"opened","ip":"85.214.0.1"}]}
            """)
        XCTAssertEqual(event.status, 200, event.bodyText)
        XCTAssertTrue(event.bodyText.contains("\"error\":0,\"error_text\":\"Successful operation\",\"profile_id\""), event.bodyText)
        XCTAssertEqual(try values(w, "fay@example.com")["_ip"], "85.214.0.1")
        XCTAssertEqual(try values(w, "fay@example.com")["_country"], "Germany")
        let bad = api(w, "events", """
            {"token":"\(w.token)","db_id":\(w.db.id),"data":[{"email":"fay@example.com","type":"opened","ip":"not an ip"}]}
            """)
        XCTAssertFalse(bad.bodyText.contains("\"error\":0,\"error_text\":\"Successful operation\",\"profile_id\""), bad.bodyText)
    }

    func testFileImportsFillOnlyWhenChosen() throws {
        let w = try makeWorld()
        let (type, body) = multipartBody([("csrf_token", w.b.csrfToken)], file: ("file", "people.csv", "email,ip\r\n"))
        let mapping = w.b.send(Request(method: "POST", target: "/databases/\(w.db.id)/import",
                                       headers: w.b.cookieHeader.merging(["Content-Type": type]) { a, _ in a }, body: body))
        XCTAssertTrue(mapping.bodyText.contains("Fill empty country and time zone from the IP columns"), "an option chosen before the import")
        for (email, chosen) in [("gus@example.com", true), ("hal@example.com", false)] {
            var fields = [("column_0", "email"), ("column_1", "_ip"), ("match", "email"), ("existing", "update")]
            if chosen { fields.append(("detect_location", "1")) }
            XCTAssertNotNil(try importThroughPages(w.b, databaseID: w.db.id, csv: "email,ip\r\n\(email),85.214.0.1\r\n", fields))
            XCTAssertEqual(try values(w, email)["_country"] ?? "", chosen ? "Germany" : "", email)
        }
    }
}
