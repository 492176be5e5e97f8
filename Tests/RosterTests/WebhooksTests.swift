import Foundation
@testable import Roster
import Secrets
import Store
import Synchronization
import XCTest

/// A one-thread HTTP receiver on 127.0.0.1: answers each POST with the next status of `statuses` and keeps the bodies.
final class Receiver: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var statuses: [Int]
    private(set) var bodies: [String] = []
    private(set) var signatures: [String] = []

    init(statuses: [Int]) throws {
        self.statuses = statuses
        let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, size) } }
        listen(sock, 16)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sock, $0, &size) } }
        fd = sock
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in serve() }
    }

    var count: Int { lock.lock(); defer { lock.unlock() }; return bodies.count }

    private func serve() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 { return }
            var data = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 65536)
            // Read the head, then Content-Length bytes of body.
            while true {
                let n = read(client, &buffer, buffer.count)
                if n <= 0 { break }
                data += buffer[0..<n]
                let text = String(decoding: data, as: UTF8.self)
                if let range = text.range(of: "\r\n\r\n") {
                    let head = text[..<range.lowerBound].lowercased()
                    let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                    if text.utf8.count - text[..<range.upperBound].utf8.count >= length { break }
                }
            }
            let text = String(decoding: data, as: UTF8.self)
            let parts = text.components(separatedBy: "\r\n\r\n")
            let signature = parts[0].split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-roster-signature:") }.map { String($0.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces) } ?? ""
            lock.lock()
            let status = statuses.isEmpty ? 200 : statuses.removeFirst()
            bodies.append(parts.dropFirst().joined(separator: "\r\n\r\n"))
            signatures.append(signature)
            lock.unlock()
            let location = (300..<400).contains(status) ? "Location: /elsewhere\r\n" : ""
            let reply = "HTTP/1.1 \(status) X\r\n\(location)Content-Length: 0\r\nConnection: close\r\n\r\n"
            _ = reply.withCString { write(client, $0, strlen($0)) }
            close(client)
        }
    }

    deinit { close(fd) }
}

final class WebhooksTests: XCTestCase {
    func testReceiversOnThisMachineOrThePrivateNetworkAreRefused() throws {
        let hooks = Webhooks(pool: try makePool(), allowPrivate: false)
        for url in ["http://127.0.0.1:8080/x", "http://localhost/x", "http://10.1.2.3/x", "http://172.20.0.1/x", "http://192.168.1.1/x",
                    "http://169.254.169.254/latest/meta-data", "http://100.64.0.1/x", "http://0.0.0.0/x", "http://[::1]/x",
                    "http://[::ffff:127.0.0.1]/x", "http://[fd00::1]/x", "http://[fe80::1]/x", "http://2130706433/x", "http://0x7f.1/x"] {
            XCTAssertThrowsError(try hooks.add(url: url), url) { error in
                XCTAssertEqual((error as? ValidationError)?.fieldErrors.keys.first, "url", url)
            }
        }
        XCTAssertNoThrow(try hooks.add(url: "https://93.184.216.34/events"), "a public address")
        XCTAssertEqual(try hooks.list().count, 1)
    }

    func testARedirectIsNotFollowed() throws {
        let pool = try makePool()
        let receiver = try Receiver(statuses: [302])
        let hooks = Webhooks(pool: pool, allowPrivate: true)
        let hook = try hooks.add(url: "http://127.0.0.1:\(receiver.port)/events")
        let (status, _) = hooks.post(hook.url, Array("{}".utf8), signature: "x")
        XCTAssertEqual(status, 302, "the 3xx is the answer: the batch was not taken")
        XCTAssertEqual(receiver.count, 1, "and the redirect was not followed")
    }

    func testEventsAreDeliveredSignedInOrderAndRetriedAfterAFailure() throws {
        let pool = try makePool()
        let now = Mutex<Int64>(1_790_000_000)
        let clock = Clock { now.withLock { $0 } }
        let receiver = try Receiver(statuses: [500, 200, 200])
        let hooks = Webhooks(pool: pool, clock: clock, allowPrivate: true)  // the receiver listens on 127.0.0.1
        XCTAssertThrowsError(try hooks.add(url: "ftp://example.com/x"))
        XCTAssertThrowsError(try hooks.add(url: "not a url"))
        let hook = try hooks.add(url: "http://127.0.0.1:\(receiver.port)/events")
        // Two events arrive through a bulk update that fires triggers.
        let databases = Databases(pool: pool, clock: clock)
        let db = try databases.create(DatabaseInput(name: "D"))
        _ = try databases.addField(to: db.id, FieldInput(name: "score", type: "number"))
        let profiles = Profiles(pool: pool, clock: clock)
        for i in 0..<2 { _ = try profiles.create(databaseID: db.id, ProfileInput(values: ["email": "p\(i)@x.io"]), actor: nil) }
        let runner = TaskRunner(pool: pool, handlers: [BulkUpdateTask.kind: BulkUpdateTask(clock: clock)], clock: clock)
        let bulk = BulkUpdates(pool: pool, tasks: runner, clock: clock)
        let admin = try Accounts(pool: pool, clock: clock).createUser(email: "a@x.io", name: "", role: .admin, password: "password for admin")
        _ = try bulk.start(BulkRequest(databaseID: db.id, selection: Selection(), action: .updateFields([FieldChange(field: "score", value: "5")])), title: "t", user: admin)
        runner.runUntilIdle()
        // Without triggers: nothing more is queued.
        _ = try bulk.start(BulkRequest(databaseID: db.id, selection: Selection(), action: .updateFields([FieldChange(field: "score", value: "6")]), skipTriggers: true), title: "t", user: admin)
        runner.runUntilIdle()
        XCTAssertEqual(try hooks.list().first?.pending, 2)

        XCTAssertEqual(hooks.deliverDue(), 0, "the receiver answers 500 first")
        XCTAssertEqual(try hooks.list().first?.failures, 1)
        XCTAssertEqual(hooks.deliverDue(), 0, "not retried before the backoff ends")
        XCTAssertEqual(receiver.count, 1)
        now.withLock { $0 += 6 }
        XCTAssertEqual(hooks.deliverDue(), 1)
        XCTAssertEqual(receiver.count, 2)
        XCTAssertEqual(receiver.bodies[0], receiver.bodies[1], "the retry sends the same events")
        guard case .object(let body)? = JSONValue.parse(receiver.bodies[1]), case .array(let events)? = body["events"] else { return XCTFail(receiver.bodies[1]) }
        XCTAssertEqual(events.count, 2)
        if case .object(let first) = events[0] { XCTAssertEqual(first["type"], .string("field_updated")) }
        XCTAssertEqual(receiver.signatures[1], "sha256=" + Secrets.hmacSHA256Hex(key: hook.secret, message: Array(receiver.bodies[1].utf8)))
        XCTAssertEqual(try hooks.list().first?.pending, 0)
        XCTAssertEqual(hooks.deliverDue(), 0, "nothing left")
        let log = try hooks.recentDeliveries()
        XCTAssertEqual(log.map(\.statusCode), [200, 500])
    }

    // Issue #16: several app hosts deliver "each event once". A batch is claimed before it is sent: while one host
    // holds it (sending), another does not send it; if the holder dies, the claim runs out and another sends it.
    func testTwoHostsSendEachBatchOnce() throws {
        let pool = try makePool()
        let now = Mutex<Int64>(1_790_000_000)
        let clock = Clock { now.withLock { $0 } }
        let receiver = try Receiver(statuses: [])
        let hostA = Webhooks(pool: pool, clock: clock, allowPrivate: true)
        let hostB = Webhooks(pool: pool, clock: clock, allowPrivate: true)
        let hook = try hostA.add(url: "http://127.0.0.1:\(receiver.port)/events")
        func addEvents(_ count: Int) throws {
            try pool.write { db in
                for i in 0..<count {
                    try db.run("INSERT INTO trigger_events (database_id, profile_id, type, created_at) VALUES (1, ?, 'field_updated', 1)",
                               ["p\(i)"])
                }
            }
        }
        try addEvents(3)
        // Host A claimed the batch and is sending it (played by hand): host B leaves it alone.
        try pool.write { try $0.run("UPDATE webhooks SET next_attempt_at = ? WHERE id = ?", [1_790_000_000 + 60, hook.id]) }
        XCTAssertEqual(hostB.deliverDue(), 0)
        XCTAssertEqual(receiver.count, 0)
        // Host A died mid-send: once its claim runs out, host B sends the batch.
        now.withLock { $0 += 61 }
        XCTAssertEqual(hostB.deliverDue(), 1)
        XCTAssertEqual(receiver.count, 1)

        // Both hosts delivering at once: every event reaches the receiver exactly once.
        try addEvents(450)
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let host = i == 0 ? hostA : hostB
            for _ in 0..<50 {
                host.deliverDue()
                if (try? host.list().first?.pending) == 0 { break }
            }
        }
        XCTAssertEqual(try hostA.list().first?.pending, 0)
        var seen: [Int64: Int] = [:]
        for body in receiver.bodies {
            guard case .object(let o)? = JSONValue.parse(body), case .array(let events)? = o["events"] else { continue }
            for case .object(let e) in events { if case .int(let id)? = e["id"] { seen[id, default: 0] += 1 } }
        }
        XCTAssertEqual(seen.count, 453)
        XCTAssertEqual(seen.values.max(), 1, "no event twice")
    }
}
