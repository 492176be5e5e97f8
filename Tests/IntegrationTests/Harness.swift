import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The repository root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

struct HarnessError: Error, CustomStringConvertible { let description: String }

/// A port that was free a moment ago on 127.0.0.1 (the kernel picks it).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError(description: "socket failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) { ptr in
        ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard bound else { throw HarnessError(description: "bind failed") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

struct HTTPReply {
    let status: Int
    let headers: [(String, String)]
    let body: String
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    func headers(_ name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
}

/// A minimal HTTP/1.1 client over a loopback socket, so the tests see exactly what nginx sends (no redirects followed).
func httpRequest(port: Int, method: String, path: String, headers: [String: String] = [:], body: [UInt8] = [], timeout: Int = 30) throws -> HTTPReply {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError(description: "socket failed") }
    defer { close(fd) }
    var tv = timeval(tv_sec: timeout, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &addr) { ptr in
        ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard connected else { throw HarnessError(description: "cannot connect to 127.0.0.1:\(port)") }
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    for (k, v) in headers { head += "\(k): \(v)\r\n" }
    if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
    head += "\r\n"
    let request = Array(head.utf8) + body
    var sent = 0
    while sent < request.count {
        let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { break }  // the server may answer (413) and close before reading everything
        sent += n
    }
    var data = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        data.append(contentsOf: buffer[0..<n])
    }
    let text = String(decoding: data, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { throw HarnessError(description: "no HTTP response: \(text.prefix(200))") }
    let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
    let status = Int(lines[0].split(separator: " ")[1]) ?? 0
    let parsed = lines.dropFirst().compactMap { line -> (String, String)? in
        guard let colon = line.firstIndex(of: ":") else { return nil }
        return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }
    return HTTPReply(status: status, headers: parsed, body: String(text[split.upperBound...]))
}

/// The release binary behind a real nginx, in a temporary folder, on free loopback ports.
final class RunningRoster {
    let folder: URL
    let httpPort: Int
    let appPort: Int
    let binary: String
    let adminEmail = "admin@example.com"
    let adminPassword = "integration admin pw"
    private(set) var app: Process?
    private var nginx: Process?
    /// Serve FastCGI on the default Unix socket (DATA/roster.sock) instead of a TCP port.
    var unixSocket = false
    /// Run `roster supervise` (which runs `serve` and restarts it) instead of `serve`.
    var supervised = false
    /// More environment for the app (ROSTER_TASK_PAUSE_MS, the crash tests' ROSTER_TEST_ABORT_AT_CURSOR…).
    var extraEnvironment: [String: String] = [:]
    var socketPath: String { folder.appendingPathComponent("data/roster.sock").path }
    /// ROSTER_TEST_STORE=postgres: the app runs on a database of its own on the test cluster (dropped at `stop`).
    let postgres: (cluster: String, name: String, url: String)?
    var isPostgres: Bool { postgres != nil }
    var appAddress: String { unixSocket ? "unix:" + socketPath : "127.0.0.1:\(appPort)" }
    let appOutput: URL

    enum Store { case fromEnvironment, sqlite }

    /// `store`: the suite's store (ROSTER_TEST_STORE), or SQLite whatever the suite runs on.
    init(store: Store = .fromEnvironment) throws {
        binary = repositoryRoot.appendingPathComponent(".build/release/roster").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError(description: "\(binary) is missing: run `make test`, which builds the release binary first")
        }
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("roster-it-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        httpPort = try freeLoopbackPort()
        appPort = try freeLoopbackPort()
        appOutput = folder.appendingPathComponent("app.log")
        FileManager.default.createFile(atPath: appOutput.path, contents: nil)
        let env = ProcessInfo.processInfo.environment
        if store == .fromEnvironment, env["ROSTER_TEST_STORE"] == "postgres" {
            guard let cluster = env["ROSTER_TEST_POSTGRES_URL"], !cluster.isEmpty else {
                throw HarnessError(description: "ROSTER_TEST_STORE=postgres needs ROSTER_TEST_POSTGRES_URL (make test starts a cluster)")
            }
            let name = "it_\(UUID().uuidString.prefix(8).lowercased())"
            _ = try psql(cluster, "CREATE DATABASE \(name)")
            postgres = (cluster, name, cluster.replacingOccurrences(of: "/roster?", with: "/\(name)?"))
        } else {
            postgres = nil
        }
    }

    var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["ROSTER_DATA"] = folder.appendingPathComponent("data").path
        if unixSocket { env["ROSTER_LISTEN"] = nil } else { env["ROSTER_LISTEN"] = "127.0.0.1:\(appPort)" }
        env["ROSTER_TEMPLATES"] = repositoryRoot.appendingPathComponent("Templates").path
        env["ROSTER_WORKERS"] = "4"
        env["ROSTER_ADMIN_EMAIL"] = adminEmail
        env["ROSTER_ADMIN_PASSWORD"] = adminPassword
        if let postgres { env["ROSTER_DATABASE_URL"] = postgres.url }
        for (k, v) in extraEnvironment { env[k] = v }
        return env
    }

    /// Runs a `roster` subcommand to completion; returns its exit status and output.
    @discardableResult
    func command(_ args: [String], stdin: String? = nil, environment extra: [String: String] = [:]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        p.environment = environment.merging(extra) { _, new in new }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let input = Pipe()
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func start() throws {
        let (status, output) = try command(["bootstrap"])
        guard status == 0 else { throw HarnessError(description: "bootstrap failed: \(output)") }

        let app = Process()
        app.executableURL = URL(fileURLWithPath: binary)
        app.arguments = [supervised ? "supervise" : "serve"]
        app.environment = environment
        let log = try FileHandle(forWritingTo: appOutput)
        app.standardOutput = log
        app.standardError = log
        try app.run()
        self.app = app

        let prefix = folder.appendingPathComponent("nginx").path
        let prep = Process()
        prep.executableURL = URL(fileURLWithPath: "/bin/bash")
        prep.arguments = [repositoryRoot.appendingPathComponent("scripts/nginx-prefix.sh").path, prefix, String(httpPort), appAddress]
        try prep.run()
        prep.waitUntilExit()
        guard prep.terminationStatus == 0 else { throw HarnessError(description: "nginx-prefix.sh failed") }

        let nginx = Process()
        nginx.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        nginx.arguments = ["-p", prefix + "/", "-c", prefix + "/nginx.conf"]
        nginx.currentDirectoryURL = URL(fileURLWithPath: prefix)
        nginx.standardOutput = FileHandle.nullDevice
        try nginx.run()
        self.nginx = nginx

        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let reply = try? httpRequest(port: httpPort, method: "GET", path: "/login", timeout: 2), reply.status == 200 { return }
            usleep(100_000)
        }
        throw HarnessError(description: "Roster did not answer through nginx within 20 s; app log: \(appLog)")
    }

    var appLog: String { (try? String(contentsOf: appOutput, encoding: .utf8)) ?? "" }

    /// Kills the app with SIGKILL (a crash: no draining, no checkpoint).
    func killApp() {
        guard let app, app.isRunning else { return }
        kill(app.processIdentifier, SIGKILL)
        app.waitUntilExit()
    }

    /// Starts the app again (nginx keeps running) and waits until it answers through nginx.
    func restartApp() throws {
        let app = Process()
        app.executableURL = URL(fileURLWithPath: binary)
        app.arguments = ["serve"]
        app.environment = environment
        let log = try FileHandle(forWritingTo: appOutput)
        log.seekToEndOfFile()
        app.standardOutput = log
        app.standardError = log
        try app.run()
        self.app = app
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let reply = try? httpRequest(port: httpPort, method: "GET", path: "/login", timeout: 2), reply.status == 200 { return }
            usleep(100_000)
        }
        throw HarnessError(description: "Roster did not come back within 20 s; app log: \(appLog)")
    }

    /// The pid of the `roster serve` that holds the data folder's lock (under `supervise`, the child).
    func servePID() -> pid_t? {
        let text = try? String(contentsOf: folder.appendingPathComponent("data/roster.lock"), encoding: .utf8)
        return text.flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Under `supervise`: kills the serving child with SIGKILL and waits until the supervisor's next child answers
    /// through nginx. Returns the seconds from the kill to the first answer.
    @discardableResult
    func killServeAndWaitForRestart(timeout: TimeInterval = 20) throws -> TimeInterval {
        guard let pid = servePID() else { throw HarnessError(description: "no serve pid in roster.lock") }
        kill(pid, SIGKILL)
        let killed = Date()
        while Date().timeIntervalSince(killed) < timeout {
            if let now = servePID(), now != pid, kill(now, 0) == 0,
               let reply = try? httpRequest(port: httpPort, method: "GET", path: "/login", timeout: 2), reply.status == 200 {
                return Date().timeIntervalSince(killed)
            }
            usleep(20_000)
        }
        throw HarnessError(description: "the supervisor did not bring roster serve back within \(timeout) s; log: \(appLog.suffix(2000))")
    }

    /// One value from the store, read with the sqlite3 shell or psql (what an operator would do).
    func sql(_ query: String) throws -> String {
        if let postgres { return try psql(postgres.url, query) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        p.arguments = [folder.appendingPathComponent("data/roster.sqlite").path, query]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Sends SIGTERM to the app and waits; returns its exit status.
    func stopApp(timeout: TimeInterval = 15) -> Int32? {
        guard let app, app.isRunning else { return app?.terminationStatus }
        app.terminate()
        let deadline = Date().addingTimeInterval(timeout)
        while app.isRunning && Date() < deadline { usleep(20_000) }
        if app.isRunning { kill(app.processIdentifier, SIGKILL); app.waitUntilExit(); return nil }
        return app.terminationStatus
    }

    /// The store's own check: SQLite's integrity_check; PostgreSQL checks its pages itself (true).
    func storeIsIntact() throws -> Bool {
        isPostgres ? true : try sql("PRAGMA integrity_check") == "ok"
    }

    /// `expr` of every row joined with commas (group_concat / string_agg).
    func joined(_ expr: String) -> String {
        isPostgres ? "string_agg(CAST(\(expr) AS text), ',')" : "group_concat(\(expr), ',')"
    }

    func stop() {
        _ = stopApp()
        if let nginx, nginx.isRunning {
            kill(nginx.processIdentifier, SIGQUIT)
            nginx.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: folder)
        if let postgres { _ = try? psql(postgres.cluster, "DROP DATABASE IF EXISTS \(postgres.name) WITH (FORCE)") }
    }
}

/// One value from PostgreSQL, read with psql.
func psql(_ url: String, _ query: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
    p.arguments = ["-X", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", query]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard p.terminationStatus == 0 else { throw HarnessError(description: "psql: \(text)") }
    return text
}

/// Cookie jar for the integration client.
struct Jar {
    var cookies: [String: String] = [:]
    mutating func take(_ reply: HTTPReply) {
        for value in reply.headers("Set-Cookie") {
            let pair = value.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
            let name = String(pair[0])
            let val = pair.count > 1 ? String(pair[1]) : ""
            if value.contains("Max-Age=0") || val.isEmpty { cookies[name] = nil } else { cookies[name] = val }
        }
    }
    var header: [String: String] {
        cookies.isEmpty ? [:] : ["Cookie": cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")]
    }
}

func csrfToken(in html: String) -> String {
    guard let range = html.range(of: "name=\"csrf_token\" value=\"") else { return "" }
    return String(html[range.upperBound...].prefix { $0 != "\"" })
}

func formBody(_ fields: [(String, String)]) -> [UInt8] {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return Array(fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&").utf8)
}

/// A test case with its own Roster behind nginx, started before each test and stopped after it.
class RosterServerTestCase: XCTestCase {
    var server: RunningRoster!

    override func setUpWithError() throws {
        server = try RunningRoster()
        try server.start()
    }

    override func tearDown() {
        server?.stop()
    }
}
