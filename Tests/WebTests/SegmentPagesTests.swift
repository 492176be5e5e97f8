import Foundation
import HTTP
import Roster
@testable import Web
import XCTest

final class SegmentPagesTests: XCTestCase {

    /// A database with ten profiles: five in Moscow (two of them VIP), five elsewhere.
    func makeDatabase(_ app: WebApp) throws -> (ProfileDatabase, CustomField) {
        let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
        let vip = try app.services.databases.addField(to: db.id, FieldInput(name: "vip", type: "boolean"))
        for i in 0..<10 {
            _ = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "p\(i)@x.io", "_city": i < 5 ? "Moscow" : "Paris",
                                                                                           "vip": i < 2 ? "true" : "false"]), actor: nil)
        }
        return (db, vip)
    }

    func hiddenValues(_ name: String, in html: String) -> [String] {
        html.components(separatedBy: "name=\"\(name)\" value=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
    }

    func testBuildANestedRuleWithoutJavaScriptSaveAndSeeMembers() throws {
        let (b, app) = try signIn(.editor)
        let (db, vip) = try makeDatabase(app)
        let start = b.get("/segments/new?database=\(db.id)&kind=dynamic")
        XCTAssertEqual(start.status, 200, start.bodyText)
        XCTAssertEqual(hiddenValues("node", in: start.bodyText), ["r"], "a new segment starts with no rule (issue 19, item 4)")
        let t = b.csrfToken
        // Add a nested group to the root: the page comes back with it.
        var fields: [(String, String)] = [("csrf_token", t), ("database", String(db.id)), ("kind", "dynamic"), ("name", "VIP in Moscow <b>"),
                                          ("node", "r"), ("kind_r", "group"), ("join_r", "and"),
                                          ("node", "r.0"), ("kind_r.0", "rule"), ("subject_r.0", "field:_city"), ("op_r.0", "eq"), ("value_r.0", "moscow"), ("ci_r.0", "on"),
                                          ("range_from", "0"), ("range_to", "100"), ("limit", "")]
        let grown = b.post("/segments/new", fields + [("action", "add_group:r")])
        XCTAssertEqual(grown.status, 200)
        XCTAssertEqual(hiddenValues("node", in: grown.bodyText), ["r", "r.0", "r.1", "r.1.0"])
        XCTAssertTrue(grown.bodyText.contains("VIP in Moscow &lt;b&gt;"))
        XCTAssertTrue(grown.bodyText.contains(">5</dd>"), "the count so far: five in Moscow, ignoring case")
        // Fill the nested OR group: vip is true OR email is p9@x.io.
        fields += [("node", "r.1"), ("kind_r.1", "group"), ("join_r.1", "or"),
                   ("node", "r.1.0"), ("kind_r.1.0", "rule"), ("subject_r.1.0", "custom:\(vip.id)"), ("op_r.1.0", "is_true"),
                   ("node", "r.1.1"), ("kind_r.1.1", "rule"), ("subject_r.1.1", "field:email"), ("op_r.1.1", "eq"), ("value_r.1.1", "p4@x.io")]
        let counted = b.post("/segments/new", fields + [("action", "count:r")])
        XCTAssertTrue(counted.bodyText.contains("id=\"selected-count\">3</dd>"), counted.bodyText)
        // A wrong value is pointed at, and nothing is saved.
        var wrong = fields
        wrong[wrong.firstIndex { $0.0 == "op_r.1.0" }!] = ("op_r.1.0", "gt")
        let refused = b.post("/segments/new", wrong + [("action", "save")])
        XCTAssertEqual(refused.status, 422)
        XCTAssertTrue(refused.bodyText.contains("Rule 2.1: “gt” does not apply to vip"), refused.bodyText)
        XCTAssertEqual(try app.services.segments.list().count, 0)
        // Saved with a limit: the first two created.
        let saved = b.post("/segments/new", fields.map { $0.0 == "limit" ? ("limit", "2") : $0 } + [("action", "save")])
        XCTAssertEqual(saved.status, 303, saved.bodyText)
        let page = b.get(try XCTUnwrap(saved.header("Location"))).bodyText
        XCTAssertEqual(page.components(separatedBy: "@x.io</a>").count - 1, 2, page)
        XCTAssertTrue(page.contains("p0@x.io</a>") && page.contains("p1@x.io</a>"))
        XCTAssertTrue(page.contains("VIP in Moscow &lt;b&gt;"))
        let list = b.get("/segments").bodyText
        XCTAssertTrue(list.contains(">2</td>"), list)
        // Removing a rule through its button.
        let shrunk = b.post("/segments/new", fields + [("action", "remove:r.1")])
        XCTAssertEqual(hiddenValues("node", in: shrunk.bodyText), ["r", "r.0"])
    }

    func testStaticSegmentsFromProfilePagesAndFromADynamicSegment() throws {
        let (b, app) = try signIn(.editor)
        let (db, _) = try makeDatabase(app)
        let fixed = try app.services.segments.create(databaseID: db.id, SegmentInput(name: "Picked", kind: .static), actor: nil)
        let moscow = try app.services.segments.create(databaseID: db.id, SegmentInput(name: "Moscow", selection: Selection(rules: .group(.and, [.rule(Rule(subject: "field:_city", op: "eq", value: "Moscow"))]))), actor: nil)
        let p = try XCTUnwrap(app.services.profiles.list(databaseID: db.id, ProfileQuery()).profiles.last)
        let profilePage = b.get("/databases/\(db.id)/profiles/\(p.profileID)").bodyText
        XCTAssertTrue(profilePage.contains("Not in any static segment."))
        XCTAssertEqual(b.post("/databases/\(db.id)/profiles/\(p.profileID)/segments", [("csrf_token", b.csrfToken), ("segment", String(fixed.id))]).status, 303)
        XCTAssertTrue(b.get("/databases/\(db.id)/profiles/\(p.profileID)").bodyText.contains("/segments/\(fixed.id)\">Picked</a>"))
        XCTAssertEqual(try app.services.profiles.history(databaseID: db.id, rowID: p.rowID, type: HistoryEvent.segmentEntered, since: nil).count, 1)
        // Refused: a dynamic segment is not a list to add to.
        XCTAssertEqual(b.post("/databases/\(db.id)/profiles/\(p.profileID)/segments", [("csrf_token", b.csrfToken), ("segment", String(moscow.id))]).status, 422)
        // Everyone in Moscow joins; the one already there is not counted twice.
        let copied = b.post("/segments/\(moscow.id)/copy", [("csrf_token", b.csrfToken), ("target", String(fixed.id))])
        XCTAssertEqual(copied.status, 303)
        XCTAssertTrue(b.get(try XCTUnwrap(copied.header("Location"))).bodyText.contains("4 profiles joined from Moscow."))
        XCTAssertEqual(try app.services.segments.counts(fixed).get().selected, 5)
        // A member leaves from the segment page; the history says so.
        XCTAssertEqual(b.post("/segments/\(fixed.id)/members/\(p.rowID)/remove", [("csrf_token", b.csrfToken)]).status, 303)
        XCTAssertEqual(try app.services.segments.counts(fixed).get().selected, 4)
        XCTAssertEqual(try app.services.profiles.history(databaseID: db.id, rowID: p.rowID, type: HistoryEvent.segmentLeft, since: nil).count, 1)
        // A segment rule on membership, and the segment's export.
        XCTAssertEqual(try app.services.segments.counts(databaseID: db.id, Selection(rules: .group(.and, [.rule(Rule(subject: "segment", op: "not_in", value: String(fixed.id)))]))).selected, 6)
        let export = b.post("/segments/\(fixed.id)/export", [("csrf_token", b.csrfToken)])
        XCTAssertEqual(export.status, 303)
        app.services.tasks.runUntilIdle()
        let taskID = Int64(try XCTUnwrap(export.header("Location")).split(separator: "/").last!)!
        let task = try XCTUnwrap(app.services.tasks.task(taskID))
        XCTAssertEqual(task.state, .done, task.message)
        XCTAssertEqual(task.processed, 4)
        let csv = try String(contentsOfFile: app.services.export.path(for: taskID), encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\r\n").count, 5, csv)
    }

    func testASegmentWhoseFieldWasDeletedSaysSo() throws {
        let (b, app) = try signIn(.admin)
        let (db, vip) = try makeDatabase(app)
        let segment = try app.services.segments.create(databaseID: db.id, SegmentInput(name: "VIPs", selection: Selection(rules: .group(.and, [.rule(Rule(subject: "custom:\(vip.id)", op: "is_true"))]))), actor: nil)
        try app.services.databases.deleteField(vip.id)
        let page = b.get("/segments/\(segment.id)")
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.bodyText.contains("cannot be used until its rules are fixed"), page.bodyText)
        XCTAssertTrue(b.get("/segments").bodyText.contains("rules need fixing"))
        XCTAssertEqual(b.get("/segments/\(segment.id)/edit").status, 200)
    }

    func testViewersSeeSegmentsButCannotChangeThem() throws {
        let (b, app) = try signIn(.viewer)
        let (db, _) = try makeDatabase(app)
        XCTAssertEqual(b.get("/segments/new?database=\(db.id)").status, 403)
        XCTAssertEqual(b.post("/segments/new", [("csrf_token", b.csrfToken), ("database", String(db.id)), ("name", "x"), ("action", "save")]).status, 403)
        XCTAssertFalse(b.get("/segments").bodyText.contains("Create segment"))
        XCTAssertEqual(try app.services.segments.list().count, 0)
    }
}
