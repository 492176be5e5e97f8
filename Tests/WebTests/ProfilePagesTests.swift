import HTTP
import Roster
@testable import Web
import XCTest

final class ProfilePagesTests: XCTestCase {
    func setUp(_ role: Role) throws -> (Browser, WebApp, ProfileDatabase) {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "u@example.com", name: "", role: role, password: "user password 1")
        let b = Browser(app)
        b.login("u@example.com", "user password 1")
        let db = try app.services.databases.create(DatabaseInput(name: "Customers"))
        try app.services.databases.addField(to: db.id, FieldInput(name: "score", type: "number"))
        try app.services.databases.addField(to: db.id, FieldInput(name: "vip", type: "boolean"))
        return (b, app, db)
    }

    func testEditorCreatesViewsAndEditsAProfile() throws {
        let (b, app, db) = try setUp(.editor)
        let form = b.get("/databases/\(db.id)/profiles/new")
        XCTAssertEqual(form.status, 200)
        let t = Browser.csrf(in: form)
        let bad = b.post("/databases/\(db.id)/profiles", [("csrf_token", t), ("status", "subscribed"), ("f_email", "ann@example.com"), ("f_score", "12.5"), ("f__fname", "<script>x</script>")])
        XCTAssertEqual(bad.status, 422)
        XCTAssertTrue(bad.bodyText.contains("score is not a whole number."), "the error is beside its field")
        XCTAssertTrue(bad.bodyText.contains("value=\"&lt;script&gt;x&lt;/script&gt;\""))
        XCTAssertEqual(try app.services.profiles.count(databaseID: db.id, search: "", status: nil), 0)
        let ok = b.post("/databases/\(db.id)/profiles", [("csrf_token", t), ("status", "subscribed"), ("f_email", "ann@example.com"), ("f_score", "12"), ("f_vip", "true"), ("f__fname", "<script>x</script>")])
        XCTAssertEqual(ok.status, 303)
        let path = String(try XCTUnwrap(ok.header("Location")).split(separator: "?")[0])
        let page = b.get(path).bodyText
        XCTAssertTrue(page.contains("ann@example.com") && page.contains("&lt;script&gt;x&lt;/script&gt;"))
        XCTAssertFalse(page.contains("<script>x</script>"))
        XCTAssertTrue(page.contains(">Created<") && page.contains("Profile created."), "history shows the creation in words")
        let p = try XCTUnwrap(app.services.profiles.list(databaseID: db.id, ProfileQuery()).profiles.first)
        XCTAssertTrue(page.contains(p.md5) && page.contains(p.xxh))

        let edit = b.get(path + "/edit")
        let saved = b.post(path, [("csrf_token", t), ("version", String(p.version)), ("status", "unsubscribed"), ("f_email", "ann@example.com"), ("f_score", "13"), ("f_vip", "true"), ("f__fname", "Ann")])
        XCTAssertEqual(edit.status, 200)
        XCTAssertEqual(saved.status, 303)
        XCTAssertEqual(try app.services.profiles.get(databaseID: db.id, profileID: p.profileID)?.status, .unsubscribed)
    }

    func testAConcurrentEditIsShownAsAConflict() throws {
        let (b, app, db) = try setUp(.editor)
        let p = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "a@example.com", "score": "1"]), actor: nil)
        let t = Browser.csrf(in: b.get("/settings"))
        // Someone else saves first.
        try app.services.profiles.update(databaseID: db.id, profileID: p.profileID, ProfileInput(values: ["score": "2"]), expectedVersion: p.version, actor: nil)
        let late = b.post("/databases/\(db.id)/profiles/\(p.profileID)", [("csrf_token", t), ("version", String(p.version)), ("status", "subscribed"), ("f_email", "a@example.com"), ("f_score", "99")])
        XCTAssertEqual(late.status, 409)
        XCTAssertTrue(late.bodyText.contains("Someone saved this profile after you opened it"))
        XCTAssertTrue(late.bodyText.contains("<td>2</td><td>99</td>"), late.bodyText)
        XCTAssertEqual(try app.services.profiles.get(databaseID: db.id, profileID: p.profileID)?.values["score"], "2", "not overwritten")
    }

    func testListPagesWithKeysetLinksAndFilters() throws {
        let (b, app, db) = try setUp(.viewer)
        for i in 0..<60 {
            try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "p\(i)@example.com"], status: i % 10 == 0 ? "complainer" : "subscribed"), actor: nil)
        }
        let first = b.get("/databases/\(db.id)/profiles").bodyText
        XCTAssertTrue(first.contains("60 matching profiles"))
        XCTAssertTrue(first.contains("p59@example.com") && !first.contains("p9@example.com<"))
        let next = try XCTUnwrap(first.range(of: "href=\"/databases/\(db.id)/profiles?sort=created&amp;after=").map { first[$0.lowerBound...].dropFirst(6).prefix { $0 != "\"" } })
        let second = b.get(String(next).replacingOccurrences(of: "&amp;", with: "&")).bodyText
        XCTAssertTrue(second.contains("p9@example.com") && !second.contains("p59@example.com"))
        XCTAssertTrue(b.get("/databases/\(db.id)/profiles?status=complainer").bodyText.contains("6 matching profiles"))
        XCTAssertTrue(b.get("/databases/\(db.id)/profiles?q=p7%40example.com").bodyText.contains("1 matching profile."))
        // A viewer reads but cannot change.
        let t = Browser.csrf(in: b.get("/settings"))
        XCTAssertEqual(b.post("/databases/\(db.id)/profiles", [("csrf_token", t), ("status", "subscribed")]).status, 403)
        XCTAssertFalse(first.contains("+ New profile"))
    }

    func testOnlyAdminsDeleteProfiles() throws {
        let (b, app, db) = try setUp(.editor)
        let p = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: [:]), actor: nil)
        let t = Browser.csrf(in: b.get("/settings"))
        XCTAssertEqual(b.post("/databases/\(db.id)/profiles/\(p.profileID)/delete", [("csrf_token", t)]).status, 403)
        try app.services.accounts.createUser(email: "adm@example.com", name: "", role: .admin, password: "admin password 1")
        let admin = Browser(app)
        admin.login("adm@example.com", "admin password 1")
        let at = Browser.csrf(in: admin.get("/settings"))
        XCTAssertEqual(admin.post("/databases/\(db.id)/profiles/\(p.profileID)/delete", [("csrf_token", at)]).status, 303)
        XCTAssertEqual(admin.get("/databases/\(db.id)/profiles/\(p.profileID)").status, 404)
    }
}

final class SubscriptionPagesTests: XCTestCase {
    func testAddChangeDeleteAndRestoreASubscriptionOnTheProfilePage() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "e@example.com", name: "", role: .editor, password: "editor password")
        let b = Browser(app)
        b.login("e@example.com", "editor password")
        let resource = try app.services.resources.create(ResourceInput(name: "News", channels: ["email", "sms"], categories: "Sales"))
        let db = try app.services.databases.create(DatabaseInput(name: "D", resourceIDs: [resource.id]))
        let p = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "a@example.com"]), actor: nil)
        let path = "/databases/\(db.id)/profiles/\(p.profileID)"
        let page = b.get(path)
        XCTAssertTrue(page.bodyText.contains("News — SMS"))
        let t = Browser.csrf(in: page)
        let bad = b.post(path + "/subscriptions", [("csrf_token", t), ("target", "\(resource.id):sms"), ("contact", "not a phone"), ("status", "subscribed")])
        XCTAssertEqual(bad.status, 422)
        XCTAssertTrue(bad.bodyText.contains("The phone is not a number"))
        XCTAssertTrue(bad.bodyText.contains("value=\"not a phone\""))
        XCTAssertEqual(b.post(path + "/subscriptions", [("csrf_token", t), ("target", "\(resource.id):viber"), ("contact", "+79000000000"), ("status", "subscribed")]).status, 422,
                       "a forged channel the resource lacks")
        XCTAssertEqual(b.post(path + "/subscriptions", [("csrf_token", t), ("target", "\(resource.id):sms"), ("contact", "+7 900 000 00 00"), ("status", "subscribed"), ("categories", "Sales")]).status, 303)
        XCTAssertEqual(b.post(path + "/subscriptions", [("csrf_token", t), ("target", "\(resource.id):email"), ("contact", "a@example.com"), ("status", "unconfirmed"), ("priority", "0")]).status, 303)
        let subs = try app.services.subscriptions.list(databaseID: db.id, profileRowID: p.rowID)
        XCTAssertEqual(subs.count, 2)
        let sms = try XCTUnwrap(subs.first { $0.channel == .sms })
        XCTAssertEqual(sms.contact, "+79000000000")
        XCTAssertEqual(b.post(path + "/subscriptions/\(sms.id)", [("csrf_token", t), ("status", "unsubscribed"), ("priority", "3")]).status, 303)
        XCTAssertEqual(b.post(path + "/subscriptions/\(sms.id)", [("csrf_token", t), ("status", "gone"), ("priority", "3")]).status, 422)
        XCTAssertEqual(b.post(path + "/subscriptions/\(sms.id)/delete", [("csrf_token", t)]).status, 303)
        XCTAssertTrue(b.get(path).bodyText.contains(">deleted<"))
        XCTAssertEqual(b.post(path + "/subscriptions/\(sms.id)/restore", [("csrf_token", t)]).status, 303)
        let after = try XCTUnwrap(app.services.subscriptions.list(databaseID: db.id, profileRowID: p.rowID).first { $0.id == sms.id })
        XCTAssertEqual(after.status, .unsubscribed)
        XCTAssertEqual(after.priority, 3)
        XCTAssertFalse(after.deleted)
        let history = b.get(path + "?days=0").bodyText
        XCTAssertTrue(history.contains("subscription_added") && history.contains("unsubscribed"))
        XCTAssertEqual(b.post(path + "/subscriptions/99999/delete", [("csrf_token", t)]).status, 404)
    }
}

final class ProfileExtraPagesTests: XCTestCase {
    func testPromoRelationsAndPersonalDataFromTheProfilePage() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "e@example.com", name: "", role: .editor, password: "editor password")
        try accounts.createUser(email: "v@example.com", name: "", role: .viewer, password: "viewer password")
        let b = Browser(app)
        b.login("e@example.com", "editor password")
        let db = try app.services.databases.create(DatabaseInput(name: "D"))
        let a = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "a@example.com"]), actor: nil)
        _ = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "<b>@example.com"]), actor: nil)
        let program = try app.services.loyalty.create(name: "Summer", description: "")
        _ = try app.services.loyalty.addCodes(to: program.id, text: "ONLY1")
        let path = "/databases/\(db.id)/profiles/\(a.profileID)"
        let t = Browser.csrf(in: b.get(path))
        XCTAssertEqual(b.post(path + "/promo", [("csrf_token", t), ("program", String(program.id))]).status, 303)
        XCTAssertTrue(b.get(path).bodyText.contains("<code>ONLY1</code>"))
        let empty = b.post(path + "/promo", [("csrf_token", t), ("program", String(program.id))])
        XCTAssertTrue(b.get(empty.header("Location")!).bodyText.contains("That program has no free codes left."))
        XCTAssertEqual(b.post(path + "/relations", [("csrf_token", t), ("relation_name", "friend of"), ("other", "<b>@example.com"), ("properties", "")]).status, 303)
        let page = b.get(path).bodyText
        XCTAssertTrue(page.contains("friend of") && page.contains("&lt;b&gt;@example.com"))
        let data = b.get(path + "/personal-data.json")
        XCTAssertEqual(data.header("Content-Type"), "application/json; charset=utf-8")
        XCTAssertTrue(data.bodyText.contains("\"ONLY1\"") && data.bodyText.contains("friend of"), "\(data.status) \(data.body.count) \(data.bodyText.prefix(300))")
        let viewer = Browser(app)
        viewer.login("v@example.com", "viewer password")
        let vt = Browser.csrf(in: viewer.get("/settings"))
        XCTAssertEqual(viewer.post(path + "/relations", [("csrf_token", vt), ("relation_name", "x"), ("other", "<b>@example.com")]).status, 403)
        XCTAssertEqual(viewer.get(path + "/personal-data.json").status, 200, "viewers read everything")
    }
}
