import HTTP
import Roster
@testable import Web
import XCTest

final class DatabasePagesTests: XCTestCase {
    func signedIn(_ role: Role) throws -> (Browser, WebApp) { try signIn(role) }


    func multipart(_ fields: [(String, String)], file: (field: String, name: String, content: String)?) -> (String, [UInt8]) {
        multipartBody(fields, file: file)
    }

    func testEditorCreatesADatabaseWithEveryFieldTypeAndSeesErrorsBesideFields() throws {
        let (b, app) = try signedIn(.editor)
        let t = b.csrfToken
        XCTAssertTrue(b.get("/databases").bodyText.contains("No profile databases yet"))
        let bad = b.post("/databases", [("csrf_token", t), ("name", ""), ("description", "<i>d</i>"), ("tags", "a"), ("sm_language", "en")])
        XCTAssertEqual(bad.status, 422)
        XCTAssertTrue(bad.bodyText.contains("Enter a name."))
        XCTAssertTrue(bad.bodyText.contains("&lt;i&gt;d&lt;/i&gt;"), "typed text comes back, escaped")
        let created = b.post("/databases", [("csrf_token", t), ("name", "Customers"), ("description", "Shop"), ("tags", "retail, eu"), ("sm_title", "Hi"), ("sm_language", "de")])
        XCTAssertEqual(created.status, 303)
        let location = try XCTUnwrap(created.header("Location"))
        let dbPath = String(location.split(separator: "?")[0])
        for type in FieldType.allCases {
            let r = b.post("\(dbPath)/fields", [("csrf_token", t), ("name", "f_\(type.rawValue)"), ("type", type.rawValue), ("options", type == .enum ? "basic, pro" : "")])
            XCTAssertEqual(r.status, 303, "\(type): \(r.bodyText.prefix(300))")
        }
        let refused = b.post("\(dbPath)/fields", [("csrf_token", t), ("name", "when"), ("type", "date"), ("default_value", "2024-02-30")])
        XCTAssertEqual(refused.status, 422)
        XCTAssertTrue(refused.bodyText.contains("The default is not a real day"), refused.bodyText)
        XCTAssertTrue(refused.bodyText.contains("value=\"2024-02-30\""))
        let page = b.get(dbPath).bodyText
        for type in FieldType.allCases { XCTAssertTrue(page.contains("f_\(type.rawValue)"), type.rawValue) }
        XCTAssertTrue(page.contains("Customers"))
        let list = b.get("/databases").bodyText
        XCTAssertTrue(list.contains(">Customers</a>") && list.contains("retail"))
        XCTAssertEqual(try app.services.databases.list().first?.fieldCount, 10)
    }

    func testViewerSeesButChangesNothingAndEditorCannotDelete() throws {
        let (viewer, app) = try signedIn(.viewer)
        let db = try app.services.databases.create(DatabaseInput(name: "D"))
        let field = try app.services.databases.addField(to: db.id, FieldInput(name: "x", type: "line"))
        let t = viewer.csrfToken
        XCTAssertEqual(viewer.get("/databases/\(db.id)").status, 200)
        XCTAssertFalse(viewer.get("/databases/\(db.id)").bodyText.contains("+ Add field"))
        XCTAssertEqual(viewer.post("/databases", [("csrf_token", t), ("name", "New")]).status, 403)
        XCTAssertEqual(viewer.post("/databases/\(db.id)/fields", [("csrf_token", t), ("name", "y"), ("type", "line")]).status, 403)
        XCTAssertEqual(viewer.post("/databases/\(db.id)/delete", [("csrf_token", t), ("confirm_name", "D")]).status, 403)
        XCTAssertEqual(viewer.post("/resources", [("csrf_token", t), ("name", "R"), ("channels", "email")]).status, 403)
        XCTAssertEqual(try app.services.databases.list().count, 1)

        let editor = Browser(app)
        try app.services.accounts.createUser(email: "ed@example.com", name: "", role: .editor, password: "editor password")
        editor.login("ed@example.com", "editor password")
        let et = editor.csrfToken
        XCTAssertEqual(editor.get("/databases/\(db.id)/delete").status, 403)
        XCTAssertEqual(editor.post("/databases/\(db.id)/delete", [("csrf_token", et), ("confirm_name", "D")]).status, 403)
        XCTAssertEqual(editor.post("/databases/\(db.id)/fields/\(field.id)/delete", [("csrf_token", et)]).status, 403)
        XCTAssertNotNil(try app.services.databases.field(field.id))
    }

    func testAdminDeletesAfterConfirmingTheName() throws {
        let (b, app) = try signedIn(.admin)
        let db = try app.services.databases.create(DatabaseInput(name: "Old list"))
        let t = b.csrfToken
        let confirm = b.get("/databases/\(db.id)/delete").bodyText
        XCTAssertTrue(confirm.contains("0</strong> profiles"), confirm)
        XCTAssertEqual(b.post("/databases/\(db.id)/delete", [("csrf_token", t), ("confirm_name", "old list")]).status, 422)
        XCTAssertNotNil(try app.services.databases.get(db.id))
        XCTAssertEqual(b.post("/databases/\(db.id)/delete", [("csrf_token", t), ("confirm_name", "Old list")]).status, 303)
        XCTAssertNil(try app.services.databases.get(db.id))
        XCTAssertEqual(b.get("/databases/\(db.id)").status, 404)
    }

    func testFieldTypeChangeRefusalIsShownBesideTheType() throws {
        let (b, app) = try signedIn(.editor)
        let db = try app.services.databases.create(DatabaseInput(name: "D"))
        let field = try app.services.databases.addField(to: db.id, FieldInput(name: "code", type: "line"))
        let t = b.csrfToken
        // No profiles: any change converts trivially.
        XCTAssertEqual(b.post("/databases/\(db.id)/fields/\(field.id)", [("csrf_token", t), ("name", "code"), ("type", "number")]).status, 303)
        XCTAssertEqual(try app.services.databases.field(field.id)?.type, .number)
        XCTAssertEqual(b.get("/databases/\(db.id)/fields/999/edit").status, 404)
    }

    func testStructureDownloadAndImportByUpload() throws {
        let (b, app) = try signedIn(.editor)
        let db = try app.services.databases.create(DatabaseInput(name: "Source"))
        try app.services.databases.addField(to: db.id, FieldInput(name: "plan", type: "enum", options: "a,b"))
        let download = b.get("/databases/\(db.id)/structure.json")
        XCTAssertEqual(download.status, 200)
        XCTAssertTrue(download.header("Content-Disposition")?.contains("attachment") ?? false)
        let renamed = download.bodyText.replacingOccurrences(of: "\"Source\"", with: "\"Imported\"")
        let (type, body) = multipart([("csrf_token", b.csrfToken), ("structure", "")], file: ("file", "s.json", renamed))
        let response = b.send(Request(method: "POST", target: "/databases/import", headers: b.cookieHeader.merging(["Content-Type": type]) { a, _ in a }, body: body))
        XCTAssertEqual(response.status, 303, response.bodyText)
        XCTAssertEqual(try app.services.databases.list().map(\.database.name).sorted(), ["Imported", "Source"])
        let (type2, body2) = multipart([("csrf_token", b.csrfToken), ("structure", "{\"format\": \"nope\"}")], file: nil)
        let bad = b.send(Request(method: "POST", target: "/databases/import", headers: b.cookieHeader.merging(["Content-Type": type2]) { a, _ in a }, body: body2))
        XCTAssertEqual(bad.status, 422)
        XCTAssertTrue(bad.bodyText.contains("Missing &quot;name&quot; at the top level."), bad.bodyText)
        let (type3, body3) = multipart([("structure", "{}")], file: nil)
        XCTAssertEqual(b.send(Request(method: "POST", target: "/databases/import", headers: b.cookieHeader.merging(["Content-Type": type3]) { a, _ in a }, body: body3)).status, 403, "multipart POSTs need the CSRF token too")
    }

    func testPromoCodesByPasteAndUpload() throws {
        let (b, app) = try signedIn(.editor)
        let t = b.csrfToken
        XCTAssertEqual(b.post("/loyalty", [("csrf_token", t), ("name", ""), ("description", "")]).status, 422)
        let created = b.post("/loyalty", [("csrf_token", t), ("name", "Summer"), ("description", "")])
        XCTAssertEqual(created.status, 303)
        let path = try XCTUnwrap(created.header("Location"))
        let (type, body) = multipart([("csrf_token", t), ("codes", "A1\nA2\nA1")], file: ("file", "codes.csv", "code,extra\nB1,x\nB2,y\nA2,z\n"))
        let r = b.send(Request(method: "POST", target: path + "/codes", headers: b.cookieHeader.merging(["Content-Type": type]) { a, _ in a }, body: body))
        XCTAssertEqual(r.status, 200)
        XCTAssertTrue(r.bodyText.contains("5 codes added; 2 already in the program"), r.bodyText)
        XCTAssertEqual(try app.services.loyalty.list().first?.free, 5)
    }

    func testCopyProfilesStartsATaskShownOnTheTasksPage() throws {
        let (b, app) = try signedIn(.editor)
        let a = try app.services.databases.create(DatabaseInput(name: "A"))
        let z = try app.services.databases.create(DatabaseInput(name: "Z"))
        let t = b.csrfToken
        let started = b.post("/databases/\(a.id)/copy", [("csrf_token", t), ("target", String(z.id))])
        XCTAssertEqual(started.status, 303)
        let taskPath = try XCTUnwrap(started.header("Location"))
        XCTAssertTrue(taskPath.hasPrefix("/tasks/"))
        app.services.tasks.runUntilIdle()
        let page = b.get(taskPath).bodyText
        XCTAssertTrue(page.contains("Copy profiles: A → Z"), page)
        XCTAssertTrue(page.contains("Done"), page)
        XCTAssertTrue(b.get("/tasks").bodyText.contains("editor@example.com"))
        XCTAssertEqual(b.post("/databases/\(a.id)/copy", [("csrf_token", t), ("target", String(a.id))]).status, 422, "not into itself")
    }

    func testResourcesPageCreatesAndAttaches() throws {
        let (b, app) = try signedIn(.editor)
        let t = b.csrfToken
        let bad = b.post("/resources", [("csrf_token", t), ("name", "News"), ("fields", "oops")])
        XCTAssertEqual(bad.status, 422)
        XCTAssertTrue(bad.bodyText.contains("Choose at least one channel."))
        XCTAssertEqual(b.post("/resources", [("csrf_token", t), ("name", "News"), ("channels", "email"), ("channels", "sms"), ("categories", "Sales\nTips")]).status, 303)
        let resource = try XCTUnwrap(app.services.resources.list().first)
        XCTAssertEqual(b.post("/databases", [("csrf_token", t), ("name", "C"), ("sm_language", "en"), ("resources", String(resource.id))]).status, 303)
        XCTAssertTrue(b.get("/resources").bodyText.contains("<td>C</td>"))
    }
}

final class ExportPagesTests: XCTestCase {
    func testExportOnlyAcceptsFieldsOfTheDatabaseAndOffersTheFile() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "v@example.com", name: "", role: .viewer, password: "viewer password")
        let b = Browser(app)
        b.login("v@example.com", "viewer password")
        let db = try app.services.databases.create(DatabaseInput(name: "D"))
        try app.services.databases.addField(to: db.id, FieldInput(name: "score", type: "number"))
        let t = Browser.csrf(in: b.get("/databases/\(db.id)/export"))
        let forged = b.post("/databases/\(db.id)/export", [("csrf_token", t), ("fields", "c_1; DROP TABLE users")])
        XCTAssertEqual(forged.status, 422)
        XCTAssertTrue(forged.bodyText.contains("is not a field of this database"))
        XCTAssertEqual(try app.services.tasks.recent().count, 0, "no task created")
        let started = b.post("/databases/\(db.id)/export", [("csrf_token", t), ("fields", "email"), ("fields", "score")])
        XCTAssertEqual(started.status, 303)
        let path = try XCTUnwrap(started.header("Location"))
        // The runner works in the background and may already have finished: then the file is there.
        let early = b.get(path + "/download").status
        let finished = try app.services.tasks.recent().first?.state == .done
        XCTAssertTrue(early == 404 || finished, "not before it is done (\(early))")
        app.services.tasks.runUntilIdle()
        XCTAssertTrue(b.get(path).bodyText.contains("Download the CSV"))
        let file = b.get(path + "/download")
        XCTAssertEqual(file.status, 200)
        XCTAssertEqual(file.header("Content-Type"), "text/csv; charset=utf-8")
        let content = try String(contentsOfFile: try XCTUnwrap(file.bodyFile), encoding: .utf8)
        XCTAssertEqual(content, "profile_id,status,email,score\r\n")
    }
}

final class DatabaseChartsTests: XCTestCase {
    func testTheDatabasePageDrawsStatusChannelAndActivityCharts() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "v@example.com", name: "", role: .viewer, password: "viewer password")
        let b = Browser(app)
        b.login("v@example.com", "viewer password")
        let db = try app.services.databases.create(DatabaseInput(name: "D"))
        let p = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "a@example.com"], status: "complainer"), actor: nil)
        _ = p
        let html = b.get("/databases/\(db.id)").bodyText
        XCTAssertTrue(html.contains("<svg class=\"chart\""))
        XCTAssertTrue(html.contains("aria-label=\"Profiles by global status\""))
        XCTAssertTrue(html.contains(">Complainer</text>") && html.contains(">1</text>"), "labels and counts are text, not only colour")
        XCTAssertTrue(html.contains("History events per month"))
        XCTAssertFalse(html.contains("style="), "no inline styles under the CSP")
    }
}
