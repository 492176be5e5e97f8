import Foundation
import HTTP
import Roster
import Secrets
import Store
import StoreTestSupport
@testable import Web

/// A fresh app over its own temporary database, with the project's real templates.
func makeApp(clock: Clock = .system) throws -> (WebApp, Accounts) {
    Secrets.initialize()
    let dir = try temporaryFolder("roster-web")
    let pool = try makeTestPool(in: dir)
    let services = Services.make(pool: pool, exportDirectory: dir.appendingPathComponent("exports").path, clock: clock)
    let app = WebApp(services: services, templates: try TemplateSet.load(directory: projectTemplatesDirectory()))
    return (app, services.accounts)
}

/// Drives the app in-process like a browser: keeps cookies, reads hidden CSRF fields, follows nothing by itself.
final class Browser {
    let app: WebApp
    var cookies: [String: String] = [:]
    var remoteAddress = "10.1.2.3"

    init(_ app: WebApp) { self.app = app }

    @discardableResult
    func get(_ target: String, headers: [String: String] = [:]) -> Response {
        send(Request(method: "GET", target: target, headers: headers.merging(cookieHeader) { a, _ in a }, remoteAddress: remoteAddress))
    }

    @discardableResult
    func post(_ target: String, _ fields: [(String, String)], headers: [String: String] = [:],
              contentType: String = "application/x-www-form-urlencoded") -> Response {
        let body = Array(FormData(pairs: fields).encoded.utf8)
        var all = headers.merging(cookieHeader) { a, _ in a }
        all["Content-Type"] = contentType
        return send(Request(method: "POST", target: target, headers: all, body: body, remoteAddress: remoteAddress))
    }

    var cookieHeader: [String: String] {
        cookies.isEmpty ? [:] : ["Cookie": cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")]
    }

    func send(_ request: Request) -> Response {
        let response = app.handle(request)
        for (name, value) in response.headers where name.lowercased() == "set-cookie" {
            let pair = value.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
            let key = String(pair[0])
            let val = pair.count > 1 ? String(pair[1]) : ""
            if value.contains("Max-Age=0") || val.isEmpty { cookies[key] = nil } else { cookies[key] = val }
        }
        return response
    }

    /// This browser's session CSRF token, read from a page that has a form.
    var csrfToken: String { Browser.csrf(in: get("/settings")) }

    /// The CSRF token of the first form on the page.
    static func csrf(in response: Response) -> String {
        let html = response.bodyText
        guard let range = html.range(of: "name=\"csrf_token\" value=\"") else { return "" }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    @discardableResult
    func login(_ email: String, _ password: String) -> Response {
        let page = get("/login")
        return post("/login", [("csrf_token", Browser.csrf(in: page)), ("email", email), ("password", password)])
    }
}

/// A CSV import through the pages (upload, then the mapping form with `fields`), run to its end; the task.
@discardableResult
func importThroughPages(_ b: Browser, databaseID: Int64, csv: String, _ fields: [(String, String)]) throws -> TaskRecord? {
    let (type, body) = multipartBody([("csrf_token", b.csrfToken)], file: ("file", "people.csv", csv))
    let mapping = b.send(Request(method: "POST", target: "/databases/\(databaseID)/import",
                                 headers: b.cookieHeader.merging(["Content-Type": type]) { a, _ in a }, body: body))
    guard mapping.status == 200, let upload = mapping.bodyText.firstMatch(of: /name="upload" value="([^"]+)"/)?.1 else { return nil }
    let started = b.post("/databases/\(databaseID)/import/start",
                         [("csrf_token", b.csrfToken), ("upload", String(upload)), ("filename", "people.csv")] + fields)
    guard started.status == 303 else { return nil }
    b.app.services.tasks.runUntilIdle()
    return try b.app.services.tasks.recent().first
}

/// A fresh app with a signed-in user of `role` (and an admin besides).
func signIn(_ role: Role) throws -> (Browser, WebApp) {
    let (app, accounts) = try makeApp()
    try accounts.createUser(email: "\(role.rawValue)@example.com", name: "", role: role, password: "password for \(role.rawValue)")
    if role != .admin { try accounts.createUser(email: "admin@example.com", name: "", role: .admin, password: "password for admin") }
    let browser = Browser(app)
    precondition(browser.login("\(role.rawValue)@example.com", "password for \(role.rawValue)").status == 303)
    return (browser, app)
}

/// A multipart/form-data body as a browser sends it: the content type and the bytes.
func multipartBody(_ fields: [(String, String)], file: (field: String, name: String, content: String)?) -> (String, [UInt8]) {
    let boundary = "----rosterTestBoundary7MA4YWxk"
    var body = ""
    for (k, v) in fields { body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(k)\"\r\n\r\n\(v)\r\n" }
    if let file {
        body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(file.field)\"; filename=\"\(file.name)\"\r\nContent-Type: text/plain\r\n\r\n\(file.content)\r\n"
    }
    body += "--\(boundary)--\r\n"
    return ("multipart/form-data; boundary=\(boundary)", Array(body.utf8))
}

/// Runs the debug `roster` binary (built with the tests) with `arguments`; returns its exit status and output.
func runRoster(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let binary = root.appendingPathComponent(".build/debug/roster").path
    guard FileManager.default.isExecutableFile(atPath: binary) else { return (-1, "build the roster binary first (swift build): \(binary)") }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = out
    try process.run()
    let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output)
}

/// A new folder for one test's data, removed when the test process ends (tests may still be reading it until then).
func temporaryFolder(_ prefix: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    TemporaryFolders.shared.add(dir)
    return dir
}

final class TemporaryFolders: @unchecked Sendable {
    static let shared = TemporaryFolders()
    private let lock = NSLock()
    private var folders: [URL] = []

    private init() {
        atexit { TemporaryFolders.shared.removeAll() }
    }

    func add(_ url: URL) {
        lock.lock()
        folders.append(url)
        lock.unlock()
    }

    func removeAll() {
        lock.lock()
        defer { lock.unlock() }
        for url in folders { try? FileManager.default.removeItem(at: url) }
        folders = []
    }
}
