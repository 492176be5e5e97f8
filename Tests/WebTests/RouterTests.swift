import HTTP
@testable import Web
import XCTest

final class RouterTests: XCTestCase {
    let router = Router([
        Route("GET", "/databases") { _, _ in Response.text("list") },
        Route("GET", "/settings/users/:id") { _, _ in Response.text("user") },
        Route("POST", "/settings/users/:id/role") { _, _ in Response.text("role") },
    ])

    func testMatchesLiteralAndParameters() {
        guard case .found(_, let params) = router.resolve(method: "GET", path: "/settings/users/42") else { return XCTFail() }
        XCTAssertEqual(params, ["id": "42"])
        guard case .found = router.resolve(method: "GET", path: "/databases/") else { return XCTFail("a trailing slash is the same page") }
    }

    func testUnknownPathIsNotFound() {
        guard case .notFound = router.resolve(method: "GET", path: "/nope") else { return XCTFail() }
        guard case .notFound = router.resolve(method: "GET", path: "/settings/users/1/role/extra") else { return XCTFail() }
    }

    func testWrongMethodListsAllowed() {
        guard case .methodNotAllowed(let allowed) = router.resolve(method: "DELETE", path: "/settings/users/1/role") else { return XCTFail() }
        XCTAssertEqual(allowed, ["POST"])
    }

    func testHeadUsesGet() {
        guard case .found = router.resolve(method: "HEAD", path: "/databases") else { return XCTFail() }
    }
}

final class FormDataTests: XCTestCase {
    func testDecodesPlusPercentAndRepeats() throws {
        let form = try XCTUnwrap(FormData(strict: "a=1&b=x+y&c=%C3%A9%26&a=2&empty=&flag"))
        XCTAssertEqual(form["a"], "1")
        XCTAssertEqual(form.all("a"), ["1", "2"])
        XCTAssertEqual(form["b"], "x y")
        XCTAssertEqual(form["c"], "é&")
        XCTAssertEqual(form["empty"], "")
        XCTAssertEqual(form["flag"], "")
        XCTAssertNil(form["missing"])
    }

    func testMalformedEscapesAndInvalidUTF8AreRefused() {
        XCTAssertNil(FormData(strict: "a=%zz"))
        XCTAssertNil(FormData(strict: "a=%4"))
        XCTAssertNil(FormData(strict: "a=%FF%FE"))
    }

    func testEncodeRoundTrips() throws {
        let original = FormData(pairs: [("email", "a+b@c.d"), ("q", "O'Brien & Söhne = 100%")])
        XCTAssertEqual(FormData(strict: original.encoded), original)
    }

    func testQueryStringIsLenient() {
        let q = FormData(urlEncoded: "ok=1&bad=%zz&next=%2Fsettings")
        XCTAssertEqual(q["ok"], "1")
        XCTAssertNil(q["bad"])
        XCTAssertEqual(q["next"], "/settings")
    }

    /// A path decodes `%XX` but keeps `+` (only forms and queries mean a space by it); a malformed escape or bytes
    /// that are not UTF-8 leave the path as sent, which then matches no route.
    func testPathDecoding() {
        XCTAssertEqual(FormData.decodePath("/a%20b+c/%C3%A9"), "/a b+c/é")
        XCTAssertEqual(FormData.decodePath("/plain/path"), "/plain/path")
        XCTAssertNil(FormData.decodePath("/bad%zz"))
        XCTAssertNil(FormData.decodePath("/bad%"))
        XCTAssertNil(FormData.decodePath("/bad%FF"))
        XCTAssertEqual(Request(method: "GET", target: "/x%2Fy+z?q=a+b").path, "/x/y+z")
        XCTAssertEqual(Request(method: "GET", target: "/x%2Fy+z?q=a+b").query["q"], "a b")
    }

    func testCookiesParse() {
        let r = Request(method: "GET", target: "/", headers: ["Cookie": "a=1; roster_session=abc=; a=2"])
        XCTAssertEqual(r.cookies["roster_session"], "abc=")
        XCTAssertEqual(r.cookies["a"], "1")
        let spaced = Request(method: "GET", target: "/", headers: ["Cookie": " \tx = y z ;novalue;  ;=v; w=\t"])
        XCTAssertEqual(spaced.cookies, ["x": "y z", "": "v", "w": ""])
        // One cookie read alone gives what the whole dictionary gives.
        XCTAssertEqual(r.cookie("roster_session"), "abc=")
        XCTAssertEqual(r.cookie("a"), "1")
        XCTAssertNil(r.cookie("b"))
        XCTAssertEqual(spaced.cookie("x"), "y z")
        XCTAssertEqual(spaced.cookie("w"), "")
        XCTAssertNil(spaced.cookie("novalue"))
        XCTAssertNil(Request(method: "GET", target: "/", headers: [:]).cookie("a"))
    }
}
