import Foundation
import HTTP
import Roster
@testable import Web
import XCTest

/// The requests that used to end the process or cost it minutes, each sent the way an attacker did.
final class HostileInputTests: XCTestCase {
    func testAHugeHistoryPeriodIsTheDefaultPeriodNotATrap() throws {
        let (b, app) = try signIn(.viewer)
        let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
        let p = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "a@example.com"]), actor: nil)
        for days in ["9223372036854775807", "-9223372036854775808", "-1", "99999999999999999999", "7%00", ""] {
            let r = b.get("/databases/\(db.id)/profiles/\(p.profileID)?days=\(days)&type=%E2%80%AEnope")
            XCTAssertEqual(r.status, 200, "days=\(days)")
        }
    }

    func testMalformedRuleBuilderPathsAreDroppedNotTrapped() throws {
        let (b, app) = try signIn(.editor)
        let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
        for paths in [["r", "r.", "r.0"], ["r", "r..0"], ["r", "r.x"], ["r.-1"], ["r", "r.99999999999999999999"], ["r", String(repeating: "r.0", count: 50)]] {
            var fields: [(String, String)] = [("csrf_token", b.csrfToken), ("database", String(db.id)), ("name", "S"), ("action", "count:r")]
            for path in paths { fields += [("node", path), ("kind_\(path)", "rule"), ("subject_\(path)", "field:email"), ("op_\(path)", "not_empty")] }
            let r = b.post("/segments/new", fields)
            XCTAssertLessThan(r.status, 500, "\(paths)")
        }
        let form = FormData(pairs: [("node", "r"), ("node", "r."), ("node", "r.0"), ("kind_r.0", "rule"), ("node", "r.0.x")])
        XCTAssertEqual(SegmentBuilder.tree(from: form).ruleCount, 1, "only r.0 is a real path")
        XCTAssertEqual(SegmentBuilder.apply("remove:r.", to: .group(.and, [.rule(Rule(subject: "x", op: "y"))])).ruleCount, 1)
    }

    func testManyBuilderRowsCostTimeInProportionToTheirNumber() throws {
        // 18,000 rows: each is read once; beyond the builder's own limit they are dropped.
        var pairs: [(String, String)] = []
        for i in 0..<9_000 { pairs += [("node", "r.\(i)"), ("kind_r.\(i)", "rule")] }
        let form = FormData(pairs: [("node", "r")] + pairs)
        XCTAssertEqual(form["kind_r.8999"], "rule", "a lookup finds the last key as fast as the first")
        let tree = SegmentBuilder.tree(from: form)
        XCTAssertLessThanOrEqual(tree.ruleCount, SegmentBuilder.maxNodes)
        XCTAssertNil(FormData(strict: Array(repeating: "a=1", count: FormData.maxPairs + 1).joined(separator: "&")),
                     "a body with more fields than any page sends is refused")
    }

    func testNoticesComeFromTheServerNotTheURL() throws {
        let (b, app) = try signIn(.viewer)
        let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
        let segment = try app.services.segments.create(databaseID: db.id, SegmentInput(name: "Fixed", kind: .static), actor: nil)
        let page = b.get("/segments/\(segment.id)?notice=Your+account+is+suspended.+Call+%2B1+555&done=joined&n=-5&from=\(segment.id)").bodyText
        XCTAssertFalse(page.contains("suspended"))
        XCTAssertFalse(page.contains("joined from"), "a negative count is no notice")
        XCTAssertTrue(b.get("/segments/\(segment.id)?done=joined&n=3&from=\(segment.id)").bodyText.contains("3 profiles joined from Fixed."))
    }

    func testSignInNeverRedirectsAway() {
        for next in ["/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example", "/\u{202E}x",
                     "/\n/evil.example", "/ /evil.example", String(repeating: "/a", count: 2000)] {
            XCTAssertEqual(LoginPage.safeNext(next), "/databases", next)
        }
        XCTAssertEqual(LoginPage.safeNext("/segments/3?after=10"), "/segments/3?after=10")
    }

    // MARK: Uploads

    /// A large upload as the FastCGI server hands it over: spooled to a file, the request pointing at it.
    func spooled(_ b: Browser, _ target: String, fields: [(String, String)], file: (String, String, String)?, cut: Bool = false) throws -> Response {
        let (type, body) = multipartBody(fields, file: file)
        let path = try temporaryFolder("roster-spool").appendingPathComponent("body").path
        let bytes = cut ? Array(body.prefix(body.count - 20)) : body
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        var request = Request(method: "POST", target: target, headers: b.cookieHeader.merging(["Content-Type": type]) { a, _ in a })
        request.bodyFile = path
        if let refusal = b.app.admit(request, bodyLength: bytes.count) { return refusal }
        return b.send(request)
    }

    func uploads(_ app: WebApp) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: app.services.uploadDirectory)) ?? []).sorted()
    }

    func testNoUploadIsStoredWithoutSessionRoleAndCSRF() throws {
        let (editor, app) = try signIn(.editor)
        let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
        let csv = "email\r\n" + String(repeating: "someone@example.com\r\n", count: 1000)
        let target = "/databases/\(db.id)/import"
        let before = uploads(app)

        let anonymous = Browser(app)
        XCTAssertEqual(try spooled(anonymous, target, fields: [("csrf_token", "x")], file: ("file", "a.csv", csv)).status, 401)
        XCTAssertNotNil(app.admit(Request(method: "POST", target: target), bodyLength: 100_000_000), "refused before the body is read")

        let viewer = Browser(app)
        try app.services.accounts.createUser(email: "v@example.com", name: "", role: .viewer, password: "password for viewer")
        XCTAssertEqual(viewer.login("v@example.com", "password for viewer").status, 303)
        XCTAssertEqual(try spooled(viewer, target, fields: [("csrf_token", viewer.csrfToken)], file: ("file", "a.csv", csv)).status, 403)

        XCTAssertEqual(try spooled(editor, target, fields: [("csrf_token", "forged")], file: ("file", "a.csv", csv)).status, 403)
        XCTAssertEqual(try spooled(editor, target, fields: [], file: ("file", "a.csv", csv)).status, 403, "no token before the file")
        XCTAssertEqual(try spooled(editor, target, fields: [("csrf_token", editor.csrfToken)], file: ("file", "a.csv", csv), cut: true).status, 400)
        XCTAssertEqual(uploads(app), before, "nothing was left in the upload folder")

        let accepted = try spooled(editor, target, fields: [("csrf_token", editor.csrfToken)], file: ("file", "a.csv", csv))
        XCTAssertEqual(accepted.status, 200, "the mapping form")
        XCTAssertEqual(uploads(app).filter { $0.hasPrefix("part-") }, [], "the part was moved to its upload, not left behind")
    }

    func testTaskFilesBelongToTheirLauncherAndHeadWritesNothing() throws {
        let (editor, app) = try signIn(.editor)
        let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
        _ = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "a@example.com"]), actor: nil)
        let started = editor.post("/databases/\(db.id)/export", [("csrf_token", editor.csrfToken), ("fields", "email")])
        XCTAssertEqual(started.status, 303)
        app.services.tasks.runUntilIdle()
        let task = try XCTUnwrap(app.services.tasks.recent().first)
        XCTAssertEqual(editor.get("/tasks/\(task.id)/download").status, 200, "the launcher downloads it")

        let other = Browser(app)
        try app.services.accounts.createUser(email: "e2@example.com", name: "", role: .editor, password: "password for e2")
        XCTAssertEqual(other.login("e2@example.com", "password for e2").status, 303)
        XCTAssertEqual(other.get("/tasks/\(task.id)/download").status, 403, "another editor does not")

        let exports = app.services.export.directory
        let files = { ((try? FileManager.default.contentsOfDirectory(atPath: exports)) ?? []).sorted() }
        let before = files()
        let head = editor.send(Request(method: "HEAD", target: "/tasks/\(task.id)/changes.csv", headers: editor.cookieHeader))
        XCTAssertLessThan(head.status, 500)
        XCTAssertEqual(files(), before, "HEAD writes no change log")
    }

    func testAHeaderOfSeparatorsIsRefusedNotSplitIntoMillionsOfFields() throws {
        let (b, app) = try signIn(.editor)
        let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
        let csv = String(repeating: ",", count: 3_000_000) + "\r\nx\r\n"
        let r = try spooled(b, "/databases/\(db.id)/import", fields: [("csrf_token", b.csrfToken)], file: ("file", "commas.csv", csv))
        XCTAssertEqual(r.status, 422)
        XCTAssertTrue(r.bodyText.contains("columns"), String(r.bodyText.prefix(2000)))
        XCTAssertEqual(uploads(app).filter { !$0.hasPrefix(".") }, [], "the refused upload is not kept")
    }
}
