import HTTP
import Roster
@testable import Web
import XCTest

final class SessionAndCSRFTests: XCTestCase {
    func testEveryPageNeedsALogin() throws {
        let (app, _) = try makeApp()
        let browser = Browser(app)
        for path in ["/databases", "/segments", "/tasks", "/settings"] {
            let response = browser.get(path)
            XCTAssertEqual(response.status, 303, path)
            XCTAssertEqual(response.header("Location"), "/login?next=" + FormData.encode(path))
        }
    }

    func testLoginShowsDatabasesWithNavigation() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "ann@example.com", name: "Ann", role: .admin, password: "correct horse battery")
        let browser = Browser(app)
        let response = browser.login("ANN@example.com ", "correct horse battery")
        XCTAssertEqual(response.status, 303)
        XCTAssertEqual(response.header("Location"), "/databases")
        let setCookie = try XCTUnwrap(response.header("Set-Cookie"))
        XCTAssertTrue(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Lax"), setCookie)
        XCTAssertFalse(setCookie.contains("Secure"), "plain HTTP on loopback")
        let page = browser.get("/databases")
        XCTAssertEqual(page.status, 200)
        for label in ["Databases", "Segments", "Tasks", "Settings", "No profile databases yet", "Log out"] {
            XCTAssertTrue(page.bodyText.contains(label), label)
        }
        XCTAssertEqual(page.header("Cache-Control"), "no-store")
    }

    func testSecureCookieOverHTTPS() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "a@example.com", name: "", role: .viewer, password: "0123456789")
        let page = app.handle(Request(method: "GET", path: "/login", isHTTPS: true))
        let csrf = Browser.csrf(in: page)
        let cookie = page.header("Set-Cookie")!.split(separator: ";")[0]
        let response = app.handle(Request(method: "POST", path: "/login",
                                          headers: ["Content-Type": "application/x-www-form-urlencoded", "Cookie": String(cookie)],
                                          body: Array("csrf_token=\(csrf)&email=a%40example.com&password=0123456789".utf8), isHTTPS: true))
        XCTAssertEqual(response.status, 303)
        XCTAssertTrue(response.headers.contains { $0.0 == "Set-Cookie" && $0.1.hasPrefix("roster_session=") && $0.1.contains("; Secure") })
    }

    func testWrongPasswordAndUnknownUserGetTheSameAnswer() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "ann@example.com", name: "", role: .admin, password: "correct horse battery")
        let wrong = Browser(app).login("ann@example.com", "wrong password!")
        let unknown = Browser(app).login("nobody@example.com", "wrong password!")
        XCTAssertEqual(wrong.status, 401)
        XCTAssertEqual(unknown.status, 401)
        func message(_ r: Response) -> String {
            let html = r.bodyText
            let start = html.range(of: "role=\"alert\"")!.upperBound
            return String(html[start...].prefix(80))
        }
        XCTAssertEqual(message(wrong), message(unknown))
        XCTAssertNil(wrong.headers.first { $0.1.hasPrefix("roster_session=") })
    }

    func testLoginPostWithoutTheDoubleSubmitTokenIsRefused() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "ann@example.com", name: "", role: .admin, password: "correct horse battery")
        let browser = Browser(app)
        browser.get("/login")
        let response = browser.post("/login", [("csrf_token", "forged"), ("email", "ann@example.com"), ("password", "correct horse battery")])
        XCTAssertEqual(response.status, 403)
        let noCookie = Browser(app).post("/login", [("csrf_token", "x"), ("email", "ann@example.com"), ("password", "correct horse battery")])
        XCTAssertEqual(noCookie.status, 403)
    }

    func testPostWithoutOrWithWrongCSRFIsRefusedAndChangesNothing() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "ann@example.com", name: "", role: .admin, password: "correct horse battery")
        let browser = Browser(app)
        browser.login("ann@example.com", "correct horse battery")
        let fields = [("email", "new@example.com"), ("name", "N"), ("role", "viewer"), ("password", "0123456789ab")]
        XCTAssertEqual(browser.post("/settings/users", fields).status, 403)
        XCTAssertEqual(browser.post("/settings/users", fields + [("csrf_token", "nope")]).status, 403)
        XCTAssertNil(try accounts.user(email: "new@example.com"))
        let token = Browser.csrf(in: browser.get("/settings"))
        XCTAssertEqual(browser.post("/settings/users", fields + [("csrf_token", token)]).status, 303)
        XCTAssertNotNil(try accounts.user(email: "new@example.com"))
    }

    func testLogoutKillsTheSessionOnTheServer() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "ann@example.com", name: "", role: .admin, password: "correct horse battery")
        let browser = Browser(app)
        browser.login("ann@example.com", "correct horse battery")
        let stolen = browser.cookies
        let token = Browser.csrf(in: browser.get("/databases"))
        XCTAssertEqual(browser.post("/logout", [("csrf_token", token)]).status, 303)
        let replay = Browser(app)
        replay.cookies = stolen
        XCTAssertEqual(replay.get("/databases").status, 303, "the old cookie no longer works")
    }

    func testANewSessionIDAtEveryLoginWhateverTheBrowserSent() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "ann@example.com", name: "", role: .admin, password: "correct horse battery")
        // Session fixation: a value planted in the victim's browser must not become the session.
        let browser = Browser(app)
        browser.cookies[WebApp.sessionCookie] = "planted-by-attacker"
        XCTAssertEqual(browser.login("ann@example.com", "correct horse battery").status, 303)
        let issued = try XCTUnwrap(browser.cookies[WebApp.sessionCookie])
        XCTAssertNotEqual(issued, "planted-by-attacker")
        XCTAssertEqual(issued.count, 43, "32 random bytes, base64url")
        let attacker = Browser(app)
        attacker.cookies = [WebApp.sessionCookie: "planted-by-attacker"]
        XCTAssertEqual(attacker.get("/databases").status, 303)
        // Two logins give two different sessions.
        let again = Browser(app)
        again.login("ann@example.com", "correct horse battery")
        XCTAssertNotEqual(again.cookies[WebApp.sessionCookie], issued)
    }

    func testThrottlingIsNotBypassedBySpoofedForwardedFor() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "ann@example.com", name: "", role: .admin, password: "correct horse battery")
        for i in 0..<5 {
            let b = Browser(app)
            let page = b.get("/login")
            let r = b.post("/login", [("csrf_token", Browser.csrf(in: page)), ("email", "ann@example.com"), ("password", "guess number \(i)")],
                           headers: ["X-Forwarded-For": "203.0.113.\(i)", "X-Real-IP": "203.0.113.\(i)"])
            XCTAssertEqual(r.status, 401)
        }
        let b = Browser(app)
        let page = b.get("/login")
        let blocked = b.post("/login", [("csrf_token", Browser.csrf(in: page)), ("email", "ann@example.com"), ("password", "correct horse battery")],
                             headers: ["X-Forwarded-For": "198.51.100.7"])
        XCTAssertEqual(blocked.status, 429, "even the right password waits out the window")
        XCTAssertNotNil(blocked.header("Retry-After"))
    }

    func testNextOnlyRedirectsLocally() {
        XCTAssertEqual(LoginPage.safeNext("/settings"), "/settings")
        XCTAssertEqual(LoginPage.safeNext("//evil.example/x"), "/databases")
        XCTAssertEqual(LoginPage.safeNext("https://evil.example"), "/databases")
        XCTAssertEqual(LoginPage.safeNext("/\\evil.example"), "/databases")
        XCTAssertEqual(LoginPage.safeNext(nil), "/databases")
    }

    func testBadRequestsGetClearPages() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "ann@example.com", name: "", role: .admin, password: "correct horse battery")
        let browser = Browser(app)
        browser.login("ann@example.com", "correct horse battery")
        XCTAssertEqual(browser.get("/nowhere").status, 404)
        let wrongMethod = browser.send(Request(method: "DELETE", target: "/databases", headers: browser.cookieHeader))
        XCTAssertEqual(wrongMethod.status, 405)
        XCTAssertEqual(wrongMethod.header("Allow"), "GET, POST")
        XCTAssertEqual(browser.post("/settings/users", [("a", "b")], contentType: "text/plain").status, 415)
        var malformed = Request(method: "POST", target: "/settings/users", headers: browser.cookieHeader, body: Array("a=%zz".utf8))
        malformed.headers["content-type"] = "application/x-www-form-urlencoded"
        let bad = browser.send(malformed)
        XCTAssertEqual(bad.status, 400)
        XCTAssertTrue(bad.bodyText.contains("could not be read"))
    }

    func testFieldValuesAreEscapedOnOutput() throws {
        let (app, accounts) = try makeApp()
        try accounts.createUser(email: "ann@example.com", name: "<script>alert(1)</script>", role: .admin, password: "correct horse battery")
        let browser = Browser(app)
        browser.login("ann@example.com", "correct horse battery")
        let page = browser.get("/settings").bodyText
        XCTAssertFalse(page.contains("<script>alert(1)</script>"))
        XCTAssertTrue(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
    }
}
