import Foundation
import HTTP
import Roster
@testable import Web
import XCTest

final class ImportPagesTests: XCTestCase {

    func makeDatabase(_ app: WebApp) throws -> ProfileDatabase {
        let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
        _ = try app.services.databases.addField(to: db.id, FieldInput(name: "age", type: "number"))
        return db
    }

    func upload(_ b: Browser, _ db: ProfileDatabase, _ csv: String, spooled: Bool = false) throws -> Response {
        let (type, body) = multipartBody([("csrf_token", b.csrfToken)], file: ("file", "people <1>.csv", csv))
        var request = Request(method: "POST", target: "/databases/\(db.id)/import", headers: b.cookieHeader.merging(["Content-Type": type]) { a, _ in a }, body: body)
        if spooled {
            // As the FastCGI server hands over a large upload: the body is in a file, not in memory.
            let path = (b.app.services.uploadDirectory as NSString).appendingPathComponent("body-test-\(UUID().uuidString)")
            FileManager.default.createFile(atPath: path, contents: Data(body))
            request.body = []
            request.bodyFile = path
        }
        return b.send(request)
    }

    func hidden(_ name: String, in html: String) -> String {
        guard let r = html.range(of: "name=\"\(name)\" value=\"") else { return "" }
        return String(html[r.upperBound...].prefix { $0 != "\"" })
    }

    func testUploadMapStartAndSeeCountsAndFailedRows() throws {
        let (b, app) = try signIn(.editor)
        let db = try makeDatabase(app)
        XCTAssertTrue(b.get("/databases/\(db.id)").bodyText.contains("/databases/\(db.id)/import"))
        XCTAssertEqual(b.get("/databases/\(db.id)/import").status, 200)
        let mapping = try upload(b, db, "email;age;<b>x</b>\r\na@x.io;30;1\r\nbroken;2;3\r\n", spooled: true)
        XCTAssertEqual(mapping.status, 200, mapping.bodyText)
        let html = mapping.bodyText
        XCTAssertTrue(html.contains("&lt;b&gt;x&lt;/b&gt;"), "column names are escaped")
        XCTAssertTrue(html.contains("people &lt;1&gt;.csv"))
        XCTAssertTrue(html.contains("semicolon"))
        let upload = hidden("upload", in: html)
        XCTAssertEqual(upload.count, 32)
        let refused = b.post("/databases/\(db.id)/import/start", [("csrf_token", b.csrfToken), ("upload", upload), ("filename", "people.csv"),
                                                                 ("column_0", "email"), ("column_1", "no_such_field"), ("column_2", ""), ("match", "email"), ("existing", "update")])
        XCTAssertEqual(refused.status, 422)
        XCTAssertTrue(refused.bodyText.contains("no_such_field is not a field of this database."), refused.bodyText)
        XCTAssertEqual(try app.services.tasks.recent().count, 0)
        let started = b.post("/databases/\(db.id)/import/start", [("csrf_token", b.csrfToken), ("upload", upload), ("filename", "people.csv"),
                                                                 ("column_0", "email"), ("column_1", "age"), ("column_2", ""), ("match", "email"), ("existing", "update")])
        XCTAssertEqual(started.status, 303, started.bodyText)
        let taskPath = try XCTUnwrap(started.header("Location"))
        app.services.tasks.runUntilIdle()
        let page = b.get(taskPath).bodyText
        XCTAssertTrue(page.contains("Done"), page)
        XCTAssertTrue(page.contains("failed.csv"), page)
        let failed = b.get(taskPath + "/failed.csv")
        XCTAssertEqual(failed.status, 200)
        let csv = try String(contentsOfFile: try XCTUnwrap(failed.bodyFile), encoding: .utf8)
        XCTAssertTrue(csv.contains("3,") && csv.contains("broken"), csv)
        XCTAssertEqual(try app.services.profiles.count(databaseID: db.id, search: "", status: nil), 1)
    }

    func testBadFilesAreExplainedOnTheUploadPage() throws {
        let (b, app) = try signIn(.editor)
        let db = try makeDatabase(app)
        let empty = try upload(b, db, "")
        XCTAssertEqual(empty.status, 422)
        XCTAssertTrue(empty.bodyText.contains("The file is empty."))
        let binary = try upload(b, db, "GIF89a\u{0}\u{1}\u{2}")
        XCTAssertEqual(binary.status, 422)
        XCTAssertTrue(binary.bodyText.contains("not CSV text"))
        let gone = b.post("/databases/\(db.id)/import/start", [("csrf_token", b.csrfToken), ("upload", "0123456789abcdef0123456789abcdef")])
        XCTAssertEqual(gone.status, 422)
        XCTAssertTrue(gone.bodyText.contains("Upload the file again"))
    }

    func testViewersCannotImport() throws {
        let (b, app) = try signIn(.viewer)
        let db = try makeDatabase(app)
        XCTAssertEqual(b.get("/databases/\(db.id)/import").status, 403)
        XCTAssertEqual(try upload(b, db, "email\na@x.io\n").status, 403)
        XCTAssertFalse(b.get("/databases/\(db.id)").bodyText.contains("/import\""))
    }
}
