import Foundation
import HTTP
import Roster
@testable import Web
import XCTest

/// Scheduling a bulk update from its form, the schedule's page (edit, pause, resume, delete) and the Tasks page's list.
final class SchedulePagesTests: XCTestCase {
    func fields(_ b: Browser, _ extra: [(String, String)]) -> [(String, String)] {
        [("csrf_token", b.csrfToken), ("node", "r"), ("kind_r", "group"), ("join_r", "and"), ("range_from", "0"), ("range_to", "100"),
         ("limit", "2"), ("bulk_action", "update_fields"), ("field_0", "score"), ("mode_0", "set"), ("value_0", "7"), ("action", "schedule")] + extra
    }

    func testAnEditorSchedulesAnUpdateAndManagesTheSchedule() throws {
        let (b, app) = try signIn(.editor)
        let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
        _ = try app.services.databases.addField(to: db.id, FieldInput(name: "score", type: "number"))
        let form = b.get("/databases/\(db.id)/bulk-update").bodyText
        XCTAssertTrue(form.contains("value=\"schedule\""), "the form offers scheduling")

        let bad = b.post("/databases/\(db.id)/bulk-update", fields(b, [("schedule_recurrence", "daily"), ("schedule_time", "25:00"),
                                                                        ("schedule_zone", "UTC")]))
        XCTAssertEqual(bad.status, 422)
        XCTAssertTrue(bad.bodyText.contains("Enter the time as HH:MM"), bad.bodyText)
        XCTAssertEqual(try app.services.schedules.list().count, 0)

        let made = b.post("/databases/\(db.id)/bulk-update", fields(b, [
            ("schedule_title", "Weekly scores"), ("schedule_recurrence", "weekly"), ("schedule_weekday", "3"), ("schedule_time", "06:45"),
            ("schedule_zone", "Europe/Paris")]))
        XCTAssertEqual(made.status, 303, made.bodyText)
        let path = try XCTUnwrap(made.header("Location"))
        let page = b.get(path).bodyText
        XCTAssertTrue(page.contains("every Wednesday at 06:45 (Europe/Paris)"), page)
        XCTAssertTrue(page.contains("Set score to “7”"), "it says what it will do")
        let tasks = b.get("/tasks").bodyText
        XCTAssertTrue(tasks.contains("Weekly scores") && tasks.contains(path), "listed with its next run on the Tasks page")

        XCTAssertEqual(b.post(path + "/pause", []).status, 403, "no CSRF token, no change")
        XCTAssertEqual(b.post(path + "/pause", [("csrf_token", b.csrfToken)]).status, 303)
        XCTAssertTrue(b.get(path).bodyText.contains("Paused"))
        XCTAssertEqual(b.post(path + "/resume", [("csrf_token", b.csrfToken)]).status, 303)
        let edited = b.post(path, [("csrf_token", b.csrfToken), ("schedule_title", "Daily scores"), ("schedule_recurrence", "daily"),
                                   ("schedule_time", "05:00"), ("schedule_zone", "UTC")])
        XCTAssertEqual(edited.status, 303, edited.bodyText)
        XCTAssertTrue(b.get(path).bodyText.contains("every day at 05:00 (UTC)"))
        let refused = b.post(path, [("csrf_token", b.csrfToken), ("schedule_title", "x"), ("schedule_recurrence", "monthly"),
                                    ("schedule_day", "32"), ("schedule_time", "05:00"), ("schedule_zone", "UTC")])
        XCTAssertEqual(refused.status, 422)
        XCTAssertTrue(refused.bodyText.contains("Choose a day of the month"))

        // Another editor may look, not change; a viewer neither.
        try app.services.accounts.createUser(email: "other@example.com", name: "", role: .editor, password: "password for other")
        let other = Browser(app)
        XCTAssertEqual(other.login("other@example.com", "password for other").status, 303)
        XCTAssertEqual(other.get(path).status, 200)
        XCTAssertEqual(other.post(path + "/pause", [("csrf_token", other.csrfToken)]).status, 403)
        XCTAssertEqual(other.post(path + "/delete", [("csrf_token", other.csrfToken)]).status, 403)

        XCTAssertEqual(b.post(path + "/delete", [("csrf_token", b.csrfToken)]).status, 303)
        XCTAssertEqual(b.get(path).status, 404)
        XCTAssertEqual(b.get("/schedules/abc").status, 404)
    }
}
