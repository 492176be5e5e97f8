import Foundation
import HTTP
import Roster
@testable import Web
import XCTest

final class BulkUpdatePageTests: XCTestCase {

    func makeDatabase(_ app: WebApp) throws -> ProfileDatabase {
        let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
        _ = try app.services.databases.addField(to: db.id, FieldInput(name: "score", type: "number"))
        for i in 0..<8 {
            _ = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "p\(i)@x.io", "_city": i < 3 ? "Moscow" : "Paris"]), actor: nil)
        }
        return db
    }

    func selectionFields() -> [(String, String)] {
        [("node", "r"), ("kind_r", "group"), ("join_r", "and"),
         ("node", "r.0"), ("kind_r.0", "rule"), ("subject_r.0", "field:_city"), ("op_r.0", "eq"), ("value_r.0", "Moscow"),
         ("range_from", "0"), ("range_to", "100"), ("limit", "")]
    }

    func testPreviewThenLaunchAFieldUpdateAndDownloadTheChanges() throws {
        let (b, app) = try signIn(.editor)
        let db = try makeDatabase(app)
        XCTAssertTrue(b.get("/databases/\(db.id)").bodyText.contains("/databases/\(db.id)/bulk-update"))
        let form = b.get("/databases/\(db.id)/bulk-update")
        XCTAssertEqual(form.status, 200)
        XCTAssertFalse(form.bodyText.contains("delete_inactive"), "editors are not offered deletion")
        let fields = [("csrf_token", b.csrfToken)] + selectionFields() + [("bulk_action", "update_fields"), ("field_0", "score"), ("mode_0", "set"), ("value_0", "42")]
        let preview = b.post("/databases/\(db.id)/bulk-update", fields + [("action", "preview")])
        XCTAssertEqual(preview.status, 200, preview.bodyText)
        XCTAssertTrue(preview.bodyText.contains("Selected profiles</dt><dd class=\"big\">3</dd>"), preview.bodyText)
        XCTAssertTrue(preview.bodyText.contains("Will be changed</dt><dd class=\"big\">3</dd>"))
        XCTAssertTrue(preview.bodyText.contains("<td>score</td><td></td><td>42</td>"), "a sample of before → after")
        XCTAssertEqual(try app.services.profiles.list(databaseID: db.id, ProfileQuery()).profiles.filter { $0.values["score"] == "42" }.count, 0, "the preview changed nothing")
        let launched = b.post("/databases/\(db.id)/bulk-update", fields + [("action", "launch")])
        XCTAssertEqual(launched.status, 303, launched.bodyText)
        let taskPath = try XCTUnwrap(launched.header("Location"))
        app.services.tasks.runUntilIdle()
        let page = b.get(taskPath).bodyText
        XCTAssertTrue(page.contains("Done") && page.contains("changes.csv"), page)
        let csv = b.get(taskPath + "/changes.csv")
        XCTAssertEqual(csv.status, 200)
        let text = try String(contentsOfFile: try XCTUnwrap(csv.bodyFile), encoding: .utf8)
        XCTAssertEqual(text.split(separator: "\r\n").count, 4, text)
        XCTAssertTrue(b.get("/tasks").bodyText.contains("Update profile fields: Shop"))
    }

    func testForgedFormsAreRefusedAndCreateNoTask() throws {
        let (b, app) = try signIn(.editor)
        let db = try makeDatabase(app)
        let other = try app.services.databases.create(DatabaseInput(name: "Other"))
        let foreign = try app.services.databases.addField(to: other.id, FieldInput(name: "secret", type: "line"))
        let base = [("csrf_token", b.csrfToken)] + selectionFields()
        let cases: [([(String, String)], String)] = [
            ([("bulk_action", "update_fields"), ("field_0", foreign.name), ("value_0", "x")], "secret is not a field of this database."),
            ([("bulk_action", "delete_inactive")], "Only admins can delete profiles."),
            ([("bulk_action", "subscription_status"), ("target", "999:email"), ("status", "subscribed")], "The resource is not attached to this database."),
            ([("bulk_action", "teleport")], "Choose what to do with the profiles."),
            ([("bulk_action", "update_fields"), ("field_0", "score"), ("value_0", "abc")], "score is not a whole number."),
        ]
        for (extra, message) in cases {
            let r = b.post("/databases/\(db.id)/bulk-update", base + extra + [("action", "launch")])
            XCTAssertEqual(r.status, 422, message)
            XCTAssertTrue(r.bodyText.contains(message), "\(message)\n\(r.bodyText.prefix(2000))")
        }
        let noCondition = b.post("/databases/\(db.id)/bulk-update", [("csrf_token", b.csrfToken), ("node", "r"), ("kind_r", "group"), ("bulk_action", "unsubscribe"), ("action", "launch")])
        XCTAssertEqual(noCondition.status, 422)
        XCTAssertTrue(noCondition.bodyText.contains("needs at least one condition"))
        XCTAssertEqual(b.post("/databases/\(db.id)/bulk-update", Array(base.dropFirst()) + [("bulk_action", "unsubscribe"), ("action", "launch")]).status, 403, "no CSRF token")
        XCTAssertEqual(try app.services.tasks.recent().count, 0)
    }

    func testViewersAreDeniedAndAdminsMayDelete() throws {
        let (viewer, app) = try signIn(.viewer)
        let db = try makeDatabase(app)
        XCTAssertEqual(viewer.get("/databases/\(db.id)/bulk-update").status, 403)
        XCTAssertEqual(viewer.post("/databases/\(db.id)/bulk-update", [("csrf_token", viewer.csrfToken)] + selectionFields() + [("bulk_action", "unsubscribe"), ("action", "launch")]).status, 403)
        let (admin, app2) = try signIn(.admin)
        let db2 = try makeDatabase(app2)
        XCTAssertTrue(admin.get("/databases/\(db2.id)/bulk-update").bodyText.contains("delete_inactive"))
        let launched = admin.post("/databases/\(db2.id)/bulk-update", [("csrf_token", admin.csrfToken)] + selectionFields() + [("bulk_action", "delete_inactive"), ("action", "launch")])
        XCTAssertEqual(launched.status, 303, launched.bodyText)
        app2.services.tasks.runUntilIdle()
        let task = try XCTUnwrap(app2.services.tasks.recent().first)
        XCTAssertEqual(task.state, .done)
        XCTAssertEqual([task.deleted, task.skipped], [0, 3], "profiles created just now have interactions since the cut-off")
    }

    func testFromASegmentsMenu() throws {
        let (b, app) = try signIn(.editor)
        let db = try makeDatabase(app)
        let fixed = try app.services.segments.create(databaseID: db.id, SegmentInput(name: "Picked", kind: .static), actor: nil)
        let p = try XCTUnwrap(app.services.profiles.list(databaseID: db.id, ProfileQuery()).profiles.first)
        try app.services.segments.addMember(segmentID: fixed.id, databaseID: db.id, profileRowID: p.rowID, actor: nil)
        XCTAssertTrue(b.get("/segments/\(fixed.id)").bodyText.contains("/databases/\(db.id)/bulk-update?segment=\(fixed.id)"))
        let form = b.get("/databases/\(db.id)/bulk-update?segment=\(fixed.id)").bodyText
        XCTAssertTrue(form.contains("name=\"segment\" value=\"\(fixed.id)\""))
        XCTAssertTrue(form.contains("Starting from the segment") && form.contains("1 profiles now"), "the segment's own selection, read-only")
        let launched = b.post("/databases/\(db.id)/bulk-update", [("csrf_token", b.csrfToken), ("segment", String(fixed.id)),
                                                                 ("node", "r"), ("kind_r", "group"), ("join_r", "and"),
                                                                 ("node", "r.0"), ("kind_r.0", "rule"), ("subject_r.0", "segment"), ("op_r.0", "in"), ("value_r.0", String(fixed.id)),
                                                                 ("bulk_action", "unsubscribe"), ("action", "launch")])
        XCTAssertEqual(launched.status, 303, launched.bodyText)
        app.services.tasks.runUntilIdle()
        XCTAssertEqual(try app.services.profiles.get(databaseID: db.id, profileID: p.profileID)?.status, .unsubscribed)
        XCTAssertEqual(try app.services.tasks.recent().first?.segmentID, fixed.id)
        XCTAssertTrue(b.get("/tasks").bodyText.contains("› <a href=\"/segments/\(fixed.id)\">Picked</a>"), "the Tasks page names the segment")
    }

    // Issue #17: "The task page says what was asked: the action and its parameters in words (field names, resource and
    // channel names, statuses), the selection (segment, rules in words, range, limit), who launched it".
    func testTheTaskPageSaysWhatWasAskedInWords() throws {
        let (b, app) = try signIn(.editor)
        let db = try makeDatabase(app)
        let news = try app.services.resources.create(ResourceInput(name: "Weekly news", channels: ["email"]))
        try app.services.databases.update(db.id, DatabaseInput(name: "Shop", resourceIDs: [news.id]))
        let fields = [("csrf_token", b.csrfToken)] + selectionFields().filter { $0.0 != "limit" } + [("limit", "2")]
        let launched = b.post("/databases/\(db.id)/bulk-update", fields + [("bulk_action", "update_fields"), ("field_0", "_city"),
                                                                           ("mode_0", "set"), ("value_0", "Oslo"), ("field_1", "score"),
                                                                           ("mode_1", "delete"), ("action", "launch")])
        XCTAssertEqual(launched.status, 303, launched.bodyText)
        let page = b.get(try XCTUnwrap(launched.header("Location"))).bodyText
        XCTAssertTrue(page.contains("Set City to “Oslo”; clear score"), page)
        XCTAssertTrue(page.contains("Moscow"), "the rule in words")
        XCTAssertTrue(page.contains("at most 2 profiles"), "the limit in words")
        XCTAssertTrue(page.contains("launched by editor@example.com"))
        let status = b.post("/databases/\(db.id)/bulk-update", fields + [("bulk_action", "subscription_status"),
                                                                         ("target", "\(news.id):email"), ("status", "unsubscribed"),
                                                                         ("action", "launch")])
        XCTAssertEqual(status.status, 303, status.bodyText)
        let second = b.get(try XCTUnwrap(status.header("Location"))).bodyText
        XCTAssertTrue(second.contains("Change subscriptions to Weekly news — Email to Unsubscribed"), second)
    }
}
