import HTTP
import Roster
@testable import Web
import XCTest

final class SettingsUsersTests: XCTestCase {
    func signedIn(_ role: Role) throws -> (Browser, Accounts) {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "admin@example.com", name: "", role: .admin, password: "admin password 1")
        if role != .admin {
            try accounts.createUser(email: "\(role.rawValue)@example.com", name: "", role: role, password: "user password 1")
        }
        let browser = Browser(app)
        let r = role == .admin ? browser.login("admin@example.com", "admin password 1") : browser.login("\(role.rawValue)@example.com", "user password 1")
        precondition(r.status == 303)
        return (browser, accounts)
    }

    func testAdminAddsAUserAndBadInputIsShownBesideItsField() throws {
        let (browser, accounts) = try signedIn(.admin)
        let token = Browser.csrf(in: browser.get("/settings"))
        let bad = browser.post("/settings/users", [("csrf_token", token), ("email", "not-an-email"), ("name", "Bob <b>"), ("role", "editor"), ("password", "short")])
        XCTAssertEqual(bad.status, 422)
        let html = bad.bodyText
        XCTAssertTrue(html.contains("This is not an email address"))
        XCTAssertTrue(html.contains("at least 10 characters."))
        XCTAssertTrue(html.contains("value=\"not-an-email\""), "what the user typed is shown again")
        XCTAssertTrue(html.contains("value=\"Bob &lt;b&gt;\""))
        XCTAssertEqual(try accounts.listUsers().count, 1, "nothing written")

        let ok = browser.post("/settings/users", [("csrf_token", token), ("email", "bob@example.com"), ("name", "Bob"), ("role", "editor"), ("password", "bob password 1")])
        XCTAssertEqual(ok.status, 303)
        XCTAssertEqual(try accounts.user(email: "bob@example.com")?.role, .editor)
        XCTAssertTrue(browser.get("/settings?done=user-created").bodyText.contains("The user was added."))

        let dup = browser.post("/settings/users", [("csrf_token", token), ("email", "BOB@example.com"), ("name", ""), ("role", "viewer"), ("password", "bob password 2")])
        XCTAssertEqual(dup.status, 422)
        XCTAssertTrue(dup.bodyText.contains("already exists"))

        let role = browser.post("/settings/users", [("csrf_token", token), ("email", "eve@example.com"), ("name", ""), ("role", "root"), ("password", "eve password 1")])
        XCTAssertEqual(role.status, 422)
        XCTAssertNil(try accounts.user(email: "eve@example.com"))
    }

    func testEditorsAndViewersCannotManageUsers() throws {
        for role in [Role.editor, .viewer] {
            let (browser, accounts) = try signedIn(role)
            let settings = browser.get("/settings")
            XCTAssertFalse(settings.bodyText.contains("Add a user"), "\(role) sees no user management")
            let token = Browser.csrf(in: settings)
            let forged = browser.post("/settings/users", [("csrf_token", token), ("email", "x@example.com"), ("name", ""), ("role", "admin"), ("password", "xxxxxxxxxxxx")])
            XCTAssertEqual(forged.status, 403)
            XCTAssertNil(try accounts.user(email: "x@example.com"))
            let admin = try XCTUnwrap(accounts.user(email: "admin@example.com"))
            XCTAssertEqual(browser.post("/settings/users/\(admin.id)/role", [("csrf_token", token), ("role", "viewer")]).status, 403)
            XCTAssertEqual(browser.post("/settings/users/\(admin.id)/delete", [("csrf_token", token)]).status, 403)
            XCTAssertEqual(try accounts.user(email: "admin@example.com")?.role, .admin)
        }
    }

    func testTheLastAdminCannotBeDemotedAndNobodyDeletesThemselves() throws {
        let (browser, accounts) = try signedIn(.admin)
        let token = Browser.csrf(in: browser.get("/settings"))
        let me = try XCTUnwrap(accounts.user(email: "admin@example.com"))
        let demote = browser.post("/settings/users/\(me.id)/role", [("csrf_token", token), ("role", "editor")])
        XCTAssertEqual(demote.status, 422)
        XCTAssertTrue(demote.bodyText.contains("only admin"))
        XCTAssertEqual(browser.post("/settings/users/\(me.id)/delete", [("csrf_token", token)]).status, 422)
        XCTAssertEqual(browser.post("/settings/users/9999/delete", [("csrf_token", token)]).status, 404)
    }

    func testAdminChangesRoleResetsPasswordAndDeletes() throws {
        let (browser, accounts) = try signedIn(.admin)
        let bob = try accounts.createUser(email: "bob@example.com", name: "", role: .viewer, password: "bob password 1")
        let bobBrowser = Browser(browser.app)
        XCTAssertEqual(bobBrowser.login("bob@example.com", "bob password 1").status, 303)
        let token = Browser.csrf(in: browser.get("/settings"))
        XCTAssertEqual(browser.post("/settings/users/\(bob.id)/role", [("csrf_token", token), ("role", "editor")]).status, 303)
        XCTAssertEqual(try accounts.user(id: bob.id)?.role, .editor)
        XCTAssertEqual(browser.post("/settings/users/\(bob.id)/password", [("csrf_token", token), ("password", "new bob password")]).status, 303)
        XCTAssertEqual(bobBrowser.get("/databases").status, 303, "a reset password signs the user out everywhere")
        XCTAssertEqual(Browser(browser.app).login("bob@example.com", "new bob password").status, 303)
        XCTAssertEqual(browser.post("/settings/users/\(bob.id)/delete", [("csrf_token", token)]).status, 303)
        XCTAssertNil(try accounts.user(id: bob.id))
    }

    func testChangingYourOwnPasswordNeedsTheCurrentOneAndKeepsThisSession() throws {
        let (browser, accounts) = try signedIn(.viewer)
        let other = Browser(browser.app)
        other.login("viewer@example.com", "user password 1")
        let token = Browser.csrf(in: browser.get("/settings"))
        let wrong = browser.post("/settings/password", [("csrf_token", token), ("current_password", "nope"), ("password", "fresh password 2"), ("password_confirm", "fresh password 2")])
        XCTAssertEqual(wrong.status, 422)
        XCTAssertTrue(wrong.bodyText.contains("current password is not right"))
        let mismatch = browser.post("/settings/password", [("csrf_token", token), ("current_password", "user password 1"), ("password", "fresh password 2"), ("password_confirm", "fresh password 3")])
        XCTAssertEqual(mismatch.status, 422)
        let ok = browser.post("/settings/password", [("csrf_token", token), ("current_password", "user password 1"), ("password", "fresh password 2"), ("password_confirm", "fresh password 2")])
        XCTAssertEqual(ok.status, 303)
        XCTAssertEqual(browser.get("/settings").status, 200, "this session stays")
        XCTAssertEqual(other.get("/settings").status, 303, "other sessions end")
        _ = accounts
    }
}
