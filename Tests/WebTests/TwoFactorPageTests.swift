import Foundation
import HTTP
import Roster
import Secrets
import Synchronization
@testable import Web
import XCTest

/// Two-factor sign-in through the real pages: setup with the QR code's key, the code after the password, recovery
/// codes, the requirement from Settings → Security, and an admin's reset.
final class TwoFactorPageTests: XCTestCase {
    final class Time: Sendable {
        let seconds = Atomic<Int64>(1_800_000_000)
        var clock: Clock { Clock { [self] in seconds.load(ordering: .relaxed) } }
        func advance(_ by: Int64) { seconds.add(by, ordering: .relaxed) }
        func code(_ secret: String) -> String {
            TOTP.code(secret: Secrets.base32Decode(secret) ?? [], step: TOTP.step(at: seconds.load(ordering: .relaxed)))
        }
    }

    struct World {
        let time = Time()
        let app: WebApp
        let accounts: Accounts
        init() throws {
            (app, accounts) = try makeApp(clock: time.clock)
            try accounts.createUser(email: "admin@example.com", name: "", role: .admin, password: "admin password 1")
            try accounts.createUser(email: "ed@example.com", name: "", role: .editor, password: "editor password 1")
        }
        func browser(_ email: String, _ password: String) -> Browser {
            let b = Browser(app)
            XCTAssertEqual(b.login(email, password).status, 303)
            return b
        }
    }

    /// Sets it up through the pages; returns the secret (read from the page, as a person types it) and the codes.
    func enable(_ b: Browser, time: Time) throws -> (String, [String]) {
        let start = b.get("/settings/two-factor")
        XCTAssertTrue(start.bodyText.contains("Set up two-factor sign-in"))
        XCTAssertEqual(b.post("/settings/two-factor/setup", [("csrf_token", Browser.csrf(in: start))]).status, 303)
        let page = b.get("/settings/two-factor").bodyText
        XCTAssertTrue(page.contains("<svg class=\"qr\""), "the QR code is drawn on the server")
        let key = try XCTUnwrap(page.firstMatch(of: /id="totp-secret">([A-Z2-7 ]+)</)?.1)
        let secret = key.replacingOccurrences(of: " ", with: "")
        XCTAssertEqual(Secrets.base32Decode(secret)?.count, 20)
        let csrf = Browser.csrf(in: b.get("/settings/two-factor"))
        let wrong = b.post("/settings/two-factor/confirm", [("csrf_token", csrf), ("code", "12345")])
        XCTAssertEqual(wrong.status, 422)
        XCTAssertTrue(wrong.bodyText.contains("This is not the code the app shows now"))
        let done = b.post("/settings/two-factor/confirm", [("csrf_token", csrf), ("code", time.code(secret))])
        XCTAssertEqual(done.status, 200)
        let codes = done.bodyText.matches(of: /<li><code>([a-z2-7-]{19})<\/code><\/li>/).map { String($0.1) }
        XCTAssertEqual(codes.count, 10)
        XCTAssertTrue(b.get("/settings").bodyText.contains("Two-factor sign-in: <strong>on</strong>"))
        return (secret, codes)
    }

    func testSetUpThenSignInWithPasswordAndCode() throws {
        let w = try World()
        let ed = w.browser("ed@example.com", "editor password 1")
        XCTAssertTrue(ed.get("/settings").bodyText.contains("Two-factor sign-in: off"))
        let (secret, codes) = try enable(ed, time: w.time)
        XCTAssertEqual(ed.post("/logout", [("csrf_token", ed.csrfToken)]).status, 303)

        // The password alone now leads to the code page, not into Roster.
        let b = Browser(w.app)
        let afterPassword = b.login("ed@example.com", "editor password 1")
        XCTAssertEqual(afterPassword.status, 303)
        XCTAssertEqual(afterPassword.header("Location"), "/login/code")
        XCTAssertNil(b.cookies[WebApp.sessionCookie])
        XCTAssertEqual(b.get("/databases").status, 303, "no session yet")
        let form = b.get("/login/code")
        XCTAssertEqual(form.status, 200)
        XCTAssertTrue(form.bodyText.contains("authenticator app"))
        let csrf = Browser.csrf(in: form)
        XCTAssertEqual(b.post("/login/code", [("code", "000000")]).status, 403, "the form needs its CSRF token")
        let wrong = b.post("/login/code", [("csrf_token", csrf), ("code", "000000")])
        XCTAssertEqual(wrong.status, 401)
        XCTAssertTrue(wrong.bodyText.contains("This code is not right"))
        w.time.advance(30)
        let right = b.post("/login/code", [("csrf_token", csrf), ("code", w.time.code(secret))])
        XCTAssertEqual(right.status, 303)
        XCTAssertEqual(right.header("Location"), "/databases")
        XCTAssertEqual(b.get("/databases").status, 200)
        XCTAssertNil(b.cookies[LoginCodePage.challengeCookie], "the pending sign-in is over")

        // A recovery code instead of the app, once.
        let c = Browser(w.app)
        c.login("ed@example.com", "editor password 1")
        let page = c.get("/login/code?next=%2Fsegments")
        XCTAssertEqual(c.post("/login/code", [("csrf_token", Browser.csrf(in: page)), ("code", codes[0]), ("next", "/segments")])
            .header("Location"), "/segments")
        let d = Browser(w.app)
        d.login("ed@example.com", "editor password 1")
        XCTAssertEqual(d.post("/login/code", [("csrf_token", Browser.csrf(in: d.get("/login/code"))), ("code", codes[0])]).status, 401)
        XCTAssertTrue(c.get("/settings/two-factor").bodyText.contains("Recovery codes left: <strong>9</strong>"))
    }

    func testTheCodePageWithoutAPasswordFirstSendsBackToSignIn() throws {
        let w = try World()
        let b = Browser(w.app)
        XCTAssertEqual(b.get("/login/code").header("Location"), "/login")
        let csrf = Browser.csrf(in: b.get("/login"))
        for challenge in ["", "forged", String(repeating: "x", count: 5000)] {
            b.cookies[LoginCodePage.challengeCookie] = challenge.isEmpty ? nil : challenge
            let r = b.post("/login/code", [("csrf_token", csrf), ("code", String(repeating: "9", count: 10_000))])
            XCTAssertEqual(r.status, 401)
            XCTAssertTrue(r.bodyText.contains("Enter your password again"))
        }
    }

    func testTheRequirementSendsUsersToSetupAndAnAdminCanReset() throws {
        let w = try World()
        let admin = w.browser("admin@example.com", "admin password 1")
        let ed = w.browser("ed@example.com", "editor password 1")
        let settings = admin.get("/settings").bodyText
        XCTAssertTrue(settings.contains("Two-factor sign-in is required for"))
        let csrf = admin.csrfToken
        XCTAssertEqual(admin.post("/settings/security", [("csrf_token", csrf), ("two_factor_required", "root")]).status, 422)
        XCTAssertEqual(ed.post("/settings/security", [("csrf_token", ed.csrfToken), ("two_factor_required", "nobody")]).status, 403,
                       "only admins choose")
        XCTAssertEqual(admin.post("/settings/security", [("csrf_token", csrf), ("two_factor_required", "everyone")]).status, 303)

        // Both are sent to the setup from any page, and their POSTs elsewhere are refused.
        let away = ed.get("/databases")
        XCTAssertEqual(away.status, 303)
        XCTAssertEqual(away.header("Location"), "/settings/two-factor?done=required")
        XCTAssertTrue(ed.get("/settings/two-factor?done=required").bodyText.contains("Your role signs in with a second factor"))
        let edCSRF = Browser.csrf(in: ed.get("/settings/two-factor"))
        XCTAssertEqual(ed.post("/databases", [("csrf_token", edCSRF), ("name", "x")]).status, 403)
        XCTAssertEqual(admin.get("/tasks").status, 303)

        _ = try enable(ed, time: w.time)
        XCTAssertEqual(ed.get("/databases").status, 200, "set up, the editor works again")
        let page = ed.get("/settings/two-factor").bodyText
        XCTAssertTrue(page.contains("cannot be turned off here"))
        XCTAssertFalse(page.contains("Turn two-factor sign-in off"))

        // The admin sets it up too, then resets the editor's (a lost phone): the editor is signed out.
        _ = try enable(admin, time: w.time)
        let list = admin.get("/settings").bodyText
        XCTAssertTrue(list.contains("Reset two-factor"))
        let edID = try XCTUnwrap(try w.accounts.user(email: "ed@example.com")?.id)
        XCTAssertEqual(admin.post("/settings/users/\(edID)/two-factor-reset", [("csrf_token", admin.csrfToken)]).status, 303)
        XCTAssertEqual(ed.get("/databases").status, 303)
        XCTAssertEqual(try w.accounts.user(id: edID)?.twoFactorEnabled, false)
    }

    func testTurningItOffNeedsThePassword() throws {
        let w = try World()
        let ed = w.browser("ed@example.com", "editor password 1")
        _ = try enable(ed, time: w.time)
        let csrf = ed.csrfToken
        let wrong = ed.post("/settings/two-factor/disable", [("csrf_token", csrf), ("password", "not it at all")])
        XCTAssertEqual(wrong.status, 422)
        XCTAssertTrue(wrong.bodyText.contains("The password is not right."))
        XCTAssertEqual(ed.post("/settings/two-factor/disable", [("csrf_token", csrf), ("password", "editor password 1")]).status, 303)
        XCTAssertTrue(ed.get("/settings").bodyText.contains("Two-factor sign-in: off"))
    }
}
