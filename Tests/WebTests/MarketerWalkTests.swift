import Foundation
import HTTP
@testable import Roster
@testable import Web
import XCTest

/// Issue 19, "What a marketer meets first": each item as the issue words it, through the pages.
final class MarketerWalkTests: XCTestCase {
    func selected(_ column: Int, in html: String) -> String {
        guard let select = html.range(of: "name=\"column_\(column)\"") else { return "?" }
        let rest = html[select.upperBound...]
        guard let end = rest.range(of: "</select>") else { return "?" }
        let options = rest[..<end.lowerBound]
        guard let chosen = options.range(of: "\" selected>") else { return "" }
        let before = options[..<chosen.lowerBound]
        guard let start = before.range(of: "value=\"", options: .backwards) else { return "?" }
        return String(before[start.upperBound...])
    }

    // 1. "Recognise the common spellings of every standard field (with _, -, spaces, case, e-mail, mobile,
    // phone_number, birthday/date_of_birth, …), and before launch, list the columns that will not be imported."
    func testImportMappingRecognisesCommonSpellingsAndListsWhatIsLeftOut() throws {
        let (b, app) = try signIn(.editor)
        let db = try app.services.databases.create(DatabaseInput(name: "Walk"))
        let header = "First_Name,Last-Name,E-mail,mobile,Date of Birth,ZIP code,Gender,Favourite colour,phone_number"
        let (type, body) = multipartBody([("csrf_token", b.csrfToken)], file: ("file", "people.csv", header + "\r\nAnn,Lee,a@x.io,+79001234567,1990-01-02,101000,female,red,+79007654321\r\n"))
        let mapping = b.send(Request(method: "POST", target: "/databases/\(db.id)/import", headers: b.cookieHeader.merging(["Content-Type": type]) { a, _ in a },
                                     body: body))
        XCTAssertEqual(mapping.status, 200, mapping.bodyText)
        let html = mapping.bodyText
        XCTAssertEqual((0..<9).map { selected($0, in: html) }, ["_fname", "_lname", "email", "phones", "_bdate", "_zip", "_sex", "", ""])
        XCTAssertTrue(html.contains("Not imported: <strong id=\"unmapped-names\">Favourite colour, phone_number</strong>"), html)

        // The spellings one by one (the second phone column above is left out because phones is taken once).
        for (spelling, key) in [("first name", "_fname"), ("FNAME", "_fname"), ("given_name", "_fname"), ("surname", "_lname"),
                                ("e_mail", "email"), ("Email Address", "email"), ("Phone Number", "phones"), ("cell", "phones"),
                                ("birthday", "_bdate"), ("DOB", "_bdate"), ("postal-code", "_zip"), ("Time Zone", "_timezone"),
                                ("reg. date", "_regdate"), ("status", "status"), ("sex", "_sex"), ("town", "_city")] {
            XCTAssertEqual(ImportColumns.suggest([spelling], custom: []), [key], spelling)
        }
        XCTAssertEqual(ImportColumns.suggest(["colour"], custom: []), [""])
    }

    func profileWithContacts(_ app: WebApp) throws -> (ProfileDatabase, Profile) {
        let news = try app.services.resources.create(ResourceInput(name: "News", channels: ["email", "sms"]))
        let db = try app.services.databases.create(DatabaseInput(name: "Walk", resourceIDs: [news.id]))
        let p = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "ann@example.com", "phones": "+79001112233"]),
                                                 actor: nil)
        return (db, p)
    }

    // 2. "Add a subscription starts with an empty contact although the profile has an email and phones: offer them."
    // 3. "No confirmation after adding a subscription or saving a segment: say what happened."
    // 7. "History shows raw JSON: write each event in words, with names."
    func testAddSubscriptionOffersTheProfilesContactsConfirmsAndShowsHistoryInWords() throws {
        let (b, app) = try signIn(.editor)
        let (db, p) = try profileWithContacts(app)
        let page = b.get("/databases/\(db.id)/profiles/\(p.profileID)").bodyText
        XCTAssertTrue(page.contains("id=\"sub-contact\" name=\"contact\" type=\"text\" value=\"ann@example.com\" list=\"sub-contact-options\""), page)
        XCTAssertTrue(page.contains("<option value=\"ann@example.com\"><option value=\"+79001112233\"></datalist>"), page)

        let news = try XCTUnwrap(app.services.resources.list().first)
        let added = b.post("/databases/\(db.id)/profiles/\(p.profileID)/subscriptions",
                           [("csrf_token", b.csrfToken), ("target", "\(news.id):email"), ("contact", "ann@example.com"), ("status", "subscribed")])
        XCTAssertEqual(added.status, 303)
        let after = b.get(try XCTUnwrap(added.header("Location"))).bodyText
        XCTAssertTrue(after.contains("The subscription was added."), after)
        XCTAssertTrue(after.contains("Subscribed to News — Email (ann@example.com), status Subscribed."), after)
        XCTAssertTrue(after.contains("Profile created."), after)
        XCTAssertFalse(after.contains("{&quot;"), "no raw JSON in the history")
        XCTAssertTrue(after.contains("<option value=\"subscription_added\">Subscription added</option>"), "the filter names types in words")
    }

    // A profile without an email (the placeholder) is not offered its placeholder.
    func testAProfileWithoutEmailOffersOnlyItsPhones() throws {
        let (_, app) = try signIn(.editor)
        let db = try app.services.databases.create(DatabaseInput(name: "Phones only"))
        let p = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["phones": "+79001112233, +79004445566"]), actor: nil)
        XCTAssertEqual(p.contacts, ["+79001112233", "+79004445566"])
    }

    // 3 and 4: "A new segment starts with a preset rule … start empty"; saving says so.
    func testANewSegmentStartsEmptyAndSavingConfirms() throws {
        let (b, app) = try signIn(.editor)
        let (db, _) = try profileWithContacts(app)
        let start = b.get("/segments/new?database=\(db.id)&kind=dynamic").bodyText
        XCTAssertFalse(start.contains("name=\"subject_r.0\""), "no preset rule")
        let saved = b.post("/segments/new", [("csrf_token", b.csrfToken), ("database", String(db.id)), ("kind", "dynamic"), ("name", "Everyone"),
                                             ("node", "r"), ("kind_r", "group"), ("join_r", "and"), ("range_from", "0"), ("range_to", "100"),
                                             ("limit", ""), ("action", "save")])
        XCTAssertEqual(saved.status, 303, saved.bodyText)
        let page = b.get(try XCTUnwrap(saved.header("Location"))).bodyText
        XCTAssertTrue(page.contains("The segment was created."), page)
    }
}
