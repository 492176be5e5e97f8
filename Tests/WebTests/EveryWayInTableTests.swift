import Foundation
import HTTP
import Roster
import Secrets
import Store
@testable import Web
import XCTest

/// The same field values sent through every way in — the profile form, the batch API in JSON and in XML, a CSV
/// import, a bulk task launched from its page, and the `roster bulk` command — must end the same way: an accepted
/// value reads back the same everywhere, a refused one is refused everywhere with a message naming the field, and a
/// refusal writes nothing. The expected outcomes come from the field types in managing-databases.md and the README,
/// not from the code.
final class EveryWayInTableTests: XCTestCase {
    enum Expect: Equatable {
        /// The value as the profile page shows it afterwards.
        case accepted(String)
        case refused
    }

    struct Case {
        let field: String
        /// The label an error message names the field by (custom fields: their name).
        let label: String
        let value: String
        let expect: Expect
    }

    static let cases: [Case] = [
        Case(field: "score", label: "score", value: "12.5", expect: .accepted("12.5")),
        Case(field: "score", label: "score", value: "1e309", expect: .refused),
        Case(field: "score", label: "score", value: "twelve", expect: .refused),
        Case(field: "age", label: "age", value: "42", expect: .accepted("42")),
        Case(field: "age", label: "age", value: "9223372036854775808", expect: .refused),
        Case(field: "age", label: "age", value: "4.5", expect: .refused),
        // A date without a time of day reads as a date (issue 19: a birthday is not a date-time); it is stored in full.
        Case(field: "since", label: "since", value: "2024-02-29", expect: .accepted("2024-02-29")),
        Case(field: "since", label: "since", value: "2024-02-30", expect: .refused),
        Case(field: "vip", label: "vip", value: "true", expect: .accepted("true")),
        Case(field: "vip", label: "vip", value: "maybe", expect: .refused),
        Case(field: "plan", label: "plan", value: "gold", expect: .accepted("gold")),
        Case(field: "plan", label: "plan", value: "platinum", expect: .refused),
        Case(field: "_bdate", label: "Birthday", value: "1990-05-17", expect: .accepted("1990-05-17")),
        Case(field: "_sex", label: "Gender", value: "unknown", expect: .refused),
        Case(field: "phones", label: "Phones", value: "+7 900 123-45-67", expect: .accepted("+79001234567")),
        Case(field: "phones", label: "Phones", value: "call me", expect: .refused),
        Case(field: "_regip", label: "Reg. IP", value: "300.1.1.1", expect: .refused),
        Case(field: "_fname", label: "First name", value: "Zoë", expect: .accepted("Zoë")),
    ]

    enum Way: String, CaseIterable { case form, apiJSON, apiXML, csvImport, bulkTask, cli }

    struct World {
        let app: WebApp
        let browser: Browser
        let db: ProfileDatabase
        let token: String
        let dataDir: URL
    }

    func makeWorld() throws -> World {
        Secrets.initialize()
        let dir = try temporaryFolder("roster-table")
        let pool = try DatabasePool(path: dir.appendingPathComponent("roster.sqlite").path, migrations: Schema.migrations, queries: Schema.queries)
        let services = Services.make(pool: pool, exportDirectory: dir.appendingPathComponent("exports").path)
        let app = WebApp(services: services, templates: try TemplateSet.load(directory: projectTemplatesDirectory()))
        let admin = try services.accounts.createUser(email: "admin@example.com", name: "", role: .admin, password: "password for admin")
        let browser = Browser(app)
        XCTAssertEqual(browser.login("admin@example.com", "password for admin").status, 303)
        let db = try services.databases.create(DatabaseInput(name: "Shop"))
        _ = try services.databases.addField(to: db.id, FieldInput(name: "score", type: "float"))
        _ = try services.databases.addField(to: db.id, FieldInput(name: "age", type: "number"))
        _ = try services.databases.addField(to: db.id, FieldInput(name: "since", type: "date"))
        _ = try services.databases.addField(to: db.id, FieldInput(name: "vip", type: "boolean"))
        _ = try services.databases.addField(to: db.id, FieldInput(name: "plan", type: "enum", options: "basic,gold"))
        let token = try services.apiTokens.create(name: "table", databaseIDs: [db.id], by: admin.id).token
        return World(app: app, browser: browser, db: db, token: token, dataDir: dir)
    }

    /// What one way did: the value read back (nil: the profile is unchanged) and any refusal messages.
    struct Outcome: Equatable {
        var readBack: String?
        var refusal: String?
    }

    func testTheSameValuesEndTheSameWayThroughEveryWayIn() throws {
        let w = try makeWorld()
        var checked = 0
        for way in Way.allCases {
            for (i, c) in EveryWayInTableTests.cases.enumerated() {
                let email = "\(way.rawValue.lowercased())-\(i)@example.com"
                let before = try w.app.services.profiles.create(databaseID: w.db.id, ProfileInput(values: ["email": email, "_lname": "Lee"]), actor: nil)
                let refusal = try send(way, c, to: before, w)
                let after = try XCTUnwrap(w.app.services.profiles.get(databaseID: w.db.id, profileID: before.profileID))
                let context = "\(way) \(c.field)=\(c.value)"
                switch c.expect {
                case .accepted(let shown):
                    XCTAssertNil(refusal, "\(context): accepted everywhere")
                    XCTAssertEqual(after.values[c.field], shown, "\(context): reads back the same")
                case .refused:
                    XCTAssertNotNil(refusal, "\(context): refused everywhere")
                    if let refusal {
                        XCTAssertTrue(refusal.lowercased().contains(c.label.lowercased()), "\(context): the refusal names the field: \(refusal)")
                    }
                    XCTAssertEqual(after.values, before.values, "\(context): nothing written on refusal")
                    XCTAssertEqual(after.version, before.version, "\(context): not even the version moves")
                }
                checked += 1
            }
        }
        XCTAssertEqual(checked, Way.allCases.count * EveryWayInTableTests.cases.count)
        print("every-way-in table: \(Way.allCases.count) ways × \(EveryWayInTableTests.cases.count) cases = \(checked) checks")
    }

    /// A required field cannot be emptied on an existing profile by any way that can empty a field; a file import
    /// leaves it alone (empty cells never overwrite, README).
    func testARequiredFieldIsNeverEmptied() throws {
        let w = try makeWorld()
        try w.app.services.databases.updateStandardSettings(w.db.id, ["_lname": StandardFieldSetting(required: true)])
        for way in Way.allCases {
            let p = try w.app.services.profiles.create(databaseID: w.db.id, ProfileInput(values: ["email": "req-\(way)@example.com", "_lname": "Lee"]), actor: nil)
            let refusal = try send(way, Case(field: "_lname", label: "Last name", value: "", expect: .refused), to: p, w)
            let after = try XCTUnwrap(w.app.services.profiles.get(databaseID: w.db.id, profileID: p.profileID))
            XCTAssertEqual(after.values["_lname"], "Lee", "\(way): the required value stays")
            if way == .csvImport {
                XCTAssertNil(refusal, "an empty cell is no change, so the row is not refused")
            } else {
                XCTAssertTrue(refusal?.contains("Last name") == true, "\(way): refused naming the field: \(refusal ?? "nil")")
            }
        }
    }

    // MARK: The ways in

    /// Sends `c` through `way` to profile `p`; returns the refusal text, or nil when accepted.
    func send(_ way: Way, _ c: Case, to p: Profile, _ w: World) throws -> String? {
        switch way {
        case .form: return try viaForm(c, p, w)
        case .apiJSON: return try viaAPI(c, p, w, xml: false)
        case .apiXML: return try viaAPI(c, p, w, xml: true)
        case .csvImport: return try viaImport(c, p, w)
        case .bulkTask: return try viaBulkPage(c, p, w)
        case .cli: return try viaCLI(c, p, w)
        }
    }

    /// The edit form as a browser posts it: every field with its current value, one changed.
    func viaForm(_ c: Case, _ p: Profile, _ w: World) throws -> String? {
        let b = w.browser
        var fields: [(String, String)] = [("csrf_token", b.csrfToken), ("version", String(p.version)), ("status", p.status.name)]
        for (key, value) in p.values.sorted(by: { $0.key < $1.key }) { fields.append(("f_\(key)", key == c.field ? c.value : value)) }
        let r = b.post("/databases/\(w.db.id)/profiles/\(p.profileID)", fields)
        if r.status == 303 { return nil }
        XCTAssertEqual(r.status, 422, "the form refuses with 422")
        return fieldErrors(r.bodyText).joined(separator: " | ")
    }

    func viaAPI(_ c: Case, _ p: Profile, _ w: World, xml: Bool) throws -> String? {
        let body: String
        if xml {
            body = "<xml><token>\(w.token)</token><db_id>\(w.db.id)</db_id><matching>email</matching><data><email>\(p.email)</email>"
                + "<\(c.field)>\(escapeXML(c.value))</\(c.field)></data></xml>"
        } else {
            let item = JSONValue.object(["email": .string(p.email), c.field: .string(c.value)])
            body = JSONValue.object(["token": .string(w.token), "db_id": .int(w.db.id), "matching": .string("email"), "data": .array([item])]).canonical
        }
        let r = w.app.handle(Request(method: "POST", target: "/api/v1.1/profiles/update_batch",
                                     headers: ["Content-Type": xml ? "application/xml" : "application/json"], body: Array(body.utf8)))
        XCTAssertEqual(r.status, 200, r.bodyText)
        let text = r.bodyText
        if xml {
            // One item: its error code and text.
            guard let code = between(text, "<error>", "</error>", last: true) else { XCTFail("no item error code: \(text)"); return "?" }
            return code == "0" ? nil : between(text, "<error_text>", "</error_text>", last: true)
        }
        guard case .object(let o)? = JSONValue.parse(text), case .array(let items)? = o["result"], case .object(let item)? = items.first else {
            XCTFail("no item result: \(text)")
            return "?"
        }
        if case .int(0)? = item["error"] { return nil }
        return item["error_text"]?.stringValue ?? "?"
    }

    /// A one-row CSV matched by email, through the import pages and the task runner.
    func viaImport(_ c: Case, _ p: Profile, _ w: World) throws -> String? {
        let b = w.browser
        let csv = "email,\(c.field)\r\n\(p.email),\(csvCell(c.value))\r\n"
        let (type, body) = multipartBody([("csrf_token", b.csrfToken)], file: ("file", "people.csv", csv))
        let mapping = b.send(Request(method: "POST", target: "/databases/\(w.db.id)/import",
                                     headers: b.cookieHeader.merging(["Content-Type": type]) { a, _ in a }, body: body))
        XCTAssertEqual(mapping.status, 200)
        let started = b.post("/databases/\(w.db.id)/import/start", [
            ("csrf_token", b.csrfToken), ("upload", hidden("upload", in: mapping.bodyText)), ("filename", "people.csv"),
            ("column_0", "email"), ("column_1", c.field), ("match", "email"), ("existing", "update"),
        ])
        XCTAssertEqual(started.status, 303, String(started.bodyText.prefix(800)))
        w.app.services.tasks.runUntilIdle()
        let task = try XCTUnwrap(w.app.services.tasks.recent().first)
        XCTAssertEqual(task.state, .done)
        if task.failed == 0 { return nil }
        let failed = b.get("/tasks/\(task.id)/failed.csv")
        return failed.bodyText.isEmpty ? String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: failed.bodyFile ?? ""))) ?? Data(), as: UTF8.self)
            : failed.bodyText
    }

    /// The bulk form, launched: the profile selected by its email, one field set (an empty value: "delete the value").
    func viaBulkPage(_ c: Case, _ p: Profile, _ w: World) throws -> String? {
        let b = w.browser
        let before = try w.app.services.tasks.recent().count
        let r = b.post("/databases/\(w.db.id)/bulk-update", [
            ("csrf_token", b.csrfToken),
            ("node", "r"), ("kind_r", "group"), ("join_r", "and"),
            ("node", "r.0"), ("kind_r.0", "rule"), ("subject_r.0", "field:email"), ("op_r.0", "eq"), ("value_r.0", p.email),
            ("range_from", "0"), ("range_to", "100"), ("limit", ""),
            ("bulk_action", "update_fields"), ("field_0", c.field), ("mode_0", c.value.isEmpty ? "delete" : "set"), ("value_0", c.value),
            ("action", "launch"),
        ])
        if r.status == 303 {
            w.app.services.tasks.runUntilIdle()
            let task = try XCTUnwrap(w.app.services.tasks.recent().first)
            XCTAssertEqual(task.state, .done, task.message)
            return task.failed == 0 ? nil : task.message
        }
        XCTAssertEqual(r.status, 422)
        XCTAssertEqual(try w.app.services.tasks.recent().count, before, "a refused bulk update starts no task")
        return fieldErrors(r.bodyText).joined(separator: " | ")
    }

    /// `roster bulk` on the same data folder, the profile selected by its email.
    func viaCLI(_ c: Case, _ p: Profile, _ w: World) throws -> String? {
        let selection = JSONValue.object(["rules": .object(["join": .string("and"), "rules": .array([
            .object(["subject": .string("field:email"), "op": .string("eq"), "value": .string(p.email)]),
        ])])]).canonical
        let action = JSONValue.object(["action": .string("update_fields"), "fields": .array([
            .object(["field": .string(c.field), "value": c.value.isEmpty ? .null : .string(c.value)]),
        ])]).canonical
        let (status, output) = try runRoster(["--data", w.dataDir.path, "bulk", "--database", String(w.db.id),
                                              "--selection", selection, "--action", action])
        return status == 0 ? nil : output
    }

    // MARK: Helpers

    func fieldErrors(_ html: String) -> [String] {
        html.components(separatedBy: "<p class=\"field-error\" role=\"alert\"><span aria-hidden=\"true\">⚠</span> ").dropFirst()
            .map { String($0.prefix { $0 != "<" }) }
    }

    func hidden(_ name: String, in html: String) -> String {
        guard let r = html.range(of: "name=\"\(name)\" value=\"") else { return "" }
        return String(html[r.upperBound...].prefix { $0 != "\"" })
    }

    func between(_ text: String, _ open: String, _ close: String, last: Bool) -> String? {
        guard let a = last ? text.range(of: open, options: .backwards) : text.range(of: open),
              let b = text.range(of: close, range: a.upperBound..<text.endIndex) else { return nil }
        return String(text[a.upperBound..<b.lowerBound])
    }

    func escapeXML(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    func csvCell(_ s: String) -> String { s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
}
