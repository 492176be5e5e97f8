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

    // 6. "Preview sample and change-log CSV name resources by number … and profiles by id only, and show internal names
    // (_country) instead of labels: use names and labels; add the profile's email to each change-log row."
    func testPreviewSampleAndChangeLogUseNamesLabelsAndEmails() throws {
        let (b, app) = try signIn(.editor)
        let (db, p) = try profileWithContacts(app)
        let news = try XCTUnwrap(app.services.resources.list().first)
        _ = try app.services.subscriptions.add(databaseID: db.id, profileRowID: p.rowID,
                                                SubscriptionInput(resourceID: news.id, channel: "email", contact: "ann@example.com", provider: "",
                                                                  status: "subscribed", priority: nil, categories: []), actor: nil)
        let everyone = [("node", "r"), ("kind_r", "group"), ("join_r", "and"), ("range_from", "0"), ("range_to", "100"), ("limit", "")]
        let preview = b.post("/databases/\(db.id)/bulk-update", [("csrf_token", b.csrfToken)] + everyone
                             + [("bulk_action", "subscription_status"), ("target", "\(news.id):email"), ("status", "unsubscribed"), ("action", "preview")])
        XCTAssertEqual(preview.status, 200, preview.bodyText)
        XCTAssertTrue(preview.bodyText.contains("<td>News — Email (ann@example.com)</td>"), preview.bodyText)
        XCTAssertTrue(preview.bodyText.contains(">ann@example.com</a></td>"), "the profile by its email")
        let fields = b.post("/databases/\(db.id)/bulk-update", [("csrf_token", b.csrfToken)] + everyone
                            + [("bulk_action", "update_fields"), ("field_0", "_country"), ("mode_0", "set"), ("value_0", "Chile"), ("action", "preview")])
        XCTAssertTrue(fields.bodyText.contains("<td>Country</td>"), "the label, not _country")

        let launched = b.post("/databases/\(db.id)/bulk-update", [("csrf_token", b.csrfToken)] + everyone
                              + [("bulk_action", "update_fields"), ("field_0", "_country"), ("mode_0", "set"), ("value_0", "Chile"), ("action", "launch")])
        XCTAssertEqual(launched.status, 303, launched.bodyText)
        app.services.tasks.runUntilIdle()
        let csv = b.get(try XCTUnwrap(launched.header("Location")) + "/changes.csv")
        let text = try String(contentsOfFile: try XCTUnwrap(csv.bodyFile), encoding: .utf8)
        XCTAssertEqual(text, "profile_id,email,field,field_key,before,after\r\n\(p.profileID),ann@example.com,Country,_country,,Chile\r\n")
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

    /// The element whose opening tag contains `marker`, as far as the next `>`: its attributes.
    func tag(_ marker: String, in html: String) -> String {
        guard let at = html.range(of: marker) else { return "" }
        let start = html[..<at.lowerBound].lastIndex(of: "<") ?? at.lowerBound
        let end = html[at.upperBound...].firstIndex(of: ">") ?? html.endIndex
        return String(html[start..<end])
    }

    // 5. "Show the inputs of the chosen action only (with and without JavaScript: a first step can choose the
    // action), the preview next to Launch, and the selection summarised in words above."
    func testTheBulkFormShowsTheChosenActionOnlyThePreviewBesideLaunchAndTheSelectionInWords() throws {
        let (b, app) = try signIn(.editor)
        let (db, _) = try profileWithContacts(app)
        let first = b.get("/databases/\(db.id)/bulk-update").bodyText
        XCTAssertFalse(tag("data-actions=\"update_fields\"", in: first).contains("hidden"), "the default action's inputs show")
        XCTAssertTrue(tag("data-actions=\"add_subscription subscription_status\"", in: first).contains(" hidden"), first)
        XCTAssertTrue(tag("data-actions=\"attach_promo detach_promo\"", in: first).contains(" hidden"))
        XCTAssertFalse(tag("data-field-row=\"0\"", in: first).contains("hidden"), "one field row to start with")
        XCTAssertTrue(tag("data-field-row=\"1\"", in: first).contains(" hidden"), "not five empty rows")
        XCTAssertTrue(first.contains("Profiles: every profile."), first)

        // Without JavaScript: choose the action, then "Show its options".
        let everyone = [("node", "r"), ("kind_r", "group"), ("join_r", "and"), ("range_from", "0"), ("range_to", "50"), ("limit", "")]
        let chosen = b.post("/databases/\(db.id)/bulk-update", [("csrf_token", b.csrfToken)] + everyone
                            + [("bulk_action", "subscription_status"), ("action", "choose")])
        XCTAssertEqual(chosen.status, 200)
        XCTAssertFalse(tag("data-actions=\"add_subscription subscription_status\"", in: chosen.bodyText).contains("hidden"))
        XCTAssertTrue(tag("data-actions=\"update_fields\"", in: chosen.bodyText).contains(" hidden"))
        XCTAssertTrue(tag("data-actions=\"add_subscription\"", in: chosen.bodyText).contains(" hidden"), "'contacts from' is for adding only")
        XCTAssertTrue(chosen.bodyText.contains("Profiles: every profile; range 0–50%."), chosen.bodyText)

        // A chosen field opens the next row; the preview sits right above Launch.
        let previewed = b.post("/databases/\(db.id)/bulk-update", [("csrf_token", b.csrfToken)] + everyone
                               + [("bulk_action", "update_fields"), ("field_0", "_city"), ("mode_0", "set"), ("value_0", "Oslo"), ("action", "preview")])
        let html = previewed.bodyText
        XCTAssertFalse(tag("data-field-row=\"1\"", in: html).contains("hidden"))
        XCTAssertTrue(tag("data-field-row=\"2\"", in: html).contains(" hidden"))
        let preview = try XCTUnwrap(html.range(of: "id=\"preview\""))
        let launch = try XCTUnwrap(html.range(of: "value=\"launch\""))
        let words = try XCTUnwrap(html.range(of: "id=\"selection-words\""))
        XCTAssertTrue(words.lowerBound < preview.lowerBound && preview.lowerBound < launch.lowerBound, "words, preview, then Launch")
    }

    // 8. "An empty database offers no way forward on its page (add a profile, import a file), and attaching a resource
    // is a round trip through another page."
    func testAnEmptyDatabaseOffersAWayForwardAndAttachesAResourceInPlace() throws {
        let (b, app) = try signIn(.editor)
        let db = try app.services.databases.create(DatabaseInput(name: "Empty"))
        let news = try app.services.resources.create(ResourceInput(name: "News", channels: ["email"]))
        let page = b.get("/databases/\(db.id)").bodyText
        XCTAssertTrue(page.contains("This database has no profiles yet"), page)
        XCTAssertTrue(page.contains("href=\"/databases/\(db.id)/import\">Import a CSV file</a>"))
        XCTAssertTrue(page.contains("href=\"/databases/\(db.id)/profiles/new\">Add a profile</a>"))
        XCTAssertTrue(page.contains("<option value=\"\(news.id)\">News</option>"), "attachable resources are offered on the page")
        let attached = b.post("/databases/\(db.id)/resources", [("csrf_token", b.csrfToken), ("resource", String(news.id))])
        XCTAssertEqual(attached.status, 303)
        let after = b.get(try XCTUnwrap(attached.header("Location"))).bodyText
        XCTAssertTrue(after.contains("The resource was attached"), after)
        XCTAssertEqual(try app.services.databases.attachedResources(db.id).map(\.name), ["News"])
        XCTAssertEqual(b.post("/databases/\(db.id)/resources", [("csrf_token", b.csrfToken), ("resource", "999")]).status, 422)
        let (viewer, _) = (Browser(app), ())
        try app.accounts.createUser(email: "v@example.com", name: "", role: .viewer, password: "password for viewer")
        XCTAssertEqual(viewer.login("v@example.com", "password for viewer").status, 303)
        XCTAssertEqual(viewer.post("/databases/\(db.id)/resources", [("csrf_token", viewer.csrfToken), ("resource", String(news.id))]).status, 403)
        _ = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "x@example.com"]), actor: nil)
        XCTAssertFalse(b.get("/databases/\(db.id)").bodyText.contains("This database has no profiles yet"))
    }

    // 9. "The Tasks list's task column wraps heavily; "1 matching profiles"; a birthday shown as a date-time;
    // "minus 1 month(s)"."
    func testTheSmallerWordings() throws {
        let (b, app) = try signIn(.admin)
        let db = try app.services.databases.create(DatabaseInput(name: "Small"))
        let p = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "one@example.com", "_bdate": "1990-05-17"]), actor: nil)
        XCTAssertTrue(b.get("/databases/\(db.id)/profiles").bodyText.contains("1 matching profile."))
        XCTAssertEqual(try app.services.profiles.get(databaseID: db.id, profileID: p.profileID)?.values["_bdate"], "1990-05-17")
        let form = b.get("/databases/\(db.id)/bulk-update").bodyText
        XCTAssertTrue(form.contains("minus 1 month)"), "1 month, not month(s)")
        XCTAssertFalse(form.contains("month(s)"))
        let everyone = [("node", "r"), ("kind_r", "group"), ("join_r", "and"), ("range_from", "0"), ("range_to", "100"), ("limit", "")]
        let launched = b.post("/databases/\(db.id)/bulk-update", [("csrf_token", b.csrfToken)] + everyone
                              + [("bulk_action", "update_fields"), ("field_0", "_city"), ("mode_0", "set"), ("value_0", "Oslo"), ("action", "launch")])
        XCTAssertEqual(launched.status, 303, launched.bodyText)
        app.services.tasks.runUntilIdle()
        let tasks = b.get("/tasks").bodyText
        XCTAssertFalse(tasks.contains(">Added</th>"), "the counts share one Result column")
        XCTAssertTrue(tasks.contains("<td>1 updated</td>"), tasks)
        XCTAssertTrue(tasks.contains("class=\"task-title\""))
    }
}
