import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Secrets
import Store
import Synchronization

public struct Webhook: Sendable {
    public let id: Int64
    public let url: String
    public let secret: String
    public let active: Bool
    public let cursor: Int64
    public let failures: Int
    public let nextAttemptAt: Int64
    public let pending: Int

    init(row: Row) {
        id = row.int64("id") ?? 0
        url = row.string("url") ?? ""
        secret = row.string("secret") ?? ""
        active = row.bool("active")
        cursor = row.int64("cursor") ?? 0
        failures = row.int("failures") ?? 0
        nextAttemptAt = row.int64("next_attempt_at") ?? 0
        pending = row.int("pending") ?? 0
    }
}

public struct WebhookDelivery: Sendable {
    public let webhookID: Int64
    public let firstEvent: Int64
    public let lastEvent: Int64
    public let events: Int
    public let attempt: Int
    public let statusCode: Int?
    public let error: String
    public let at: Int64
}

enum WebhookStore {
    static let all = NamedQuery("webhooks.all", """
        SELECT w.*, (SELECT COUNT(*) FROM trigger_events e WHERE e.id > w.cursor) AS pending FROM webhooks w ORDER BY w.id
        """)
    static let insert = NamedQuery("webhooks.insert", "INSERT INTO webhooks (url, secret, created_at) VALUES (?, ?, ?)")
    static let delete = NamedQuery("webhooks.delete", "DELETE FROM webhooks WHERE id = ?")
    static let due = NamedQuery("webhooks.due", "SELECT *, 0 AS pending FROM webhooks WHERE active = 1 AND next_attempt_at <= ? ORDER BY id")
    static let events = NamedQuery("webhooks.events", "SELECT * FROM trigger_events WHERE id > ? ORDER BY id LIMIT ?")
    /// The cursor only moves forward; the claim is released in any case.
    static let delivered = NamedQuery("webhooks.delivered", """
        UPDATE webhooks SET cursor = CASE WHEN cursor < ? THEN ? ELSE cursor END, failures = 0, next_attempt_at = 0 WHERE id = ?
        """)
    /// A host takes a due webhook's next batch for `claimSeconds` (its send times out well before): on several
    /// hosts, each batch goes out from one of them. A host that dies meanwhile leaves it due again afterwards.
    static let claim = NamedQuery("webhooks.claim", """
        UPDATE webhooks SET next_attempt_at = ? WHERE id = ? AND active = 1 AND next_attempt_at <= ?
        """)
    static let cursor = NamedQuery("webhooks.cursor", "SELECT cursor FROM webhooks WHERE id = ?")
    static let release = NamedQuery("webhooks.release", "UPDATE webhooks SET next_attempt_at = 0 WHERE id = ?")
    static let failed = NamedQuery("webhooks.failed", "UPDATE webhooks SET failures = failures + 1, next_attempt_at = ? WHERE id = ?")
    static let log = NamedQuery("webhooks.log", """
        INSERT INTO webhook_deliveries (webhook_id, first_event, last_event, events, attempt, status_code, error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """)
    static let recent = NamedQuery("webhooks.recent", "SELECT * FROM webhook_deliveries ORDER BY id DESC LIMIT ?")
    static var queries: [NamedQuery] { [all, insert, delete, due, events, delivered, claim, cursor, release, failed, log, recent] }
}

/// Delivers trigger events from the outbox to the configured webhooks: JSON batches over HTTP POST, signed with
/// HMAC-SHA-256 (header `X-Roster-Signature`), in event order, at least once. A receiver that fails (an error, a
/// timeout, a non-2xx answer) is retried with exponential backoff (5 s doubling up to an hour) from the same
/// event; every attempt is logged.
public final class Webhooks: Sendable {
    let pool: DatabasePool
    let clock: Clock
    /// ROSTER_WEBHOOK_ALLOW_PRIVATE=1: receivers on this machine or the local network are allowed (tests).
    let allowPrivate: Bool
    private let session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
    public static let batchSize = 100
    /// How long a host holds a webhook's batch while sending it (the send gives up after 15 s).
    static let claimSeconds: Int64 = 60
    private let queue = DispatchQueue(label: "roster.webhooks")
    private let timer = TimerBox()

    /// The background timer, set and cancelled under a lock (Dispatch sources are not Sendable).
    public final class TimerBox: @unchecked Sendable {
        public init() {}
        private let lock = NSLock()
        private var source: (any DispatchSourceTimer)?
        public func replace(with new: (any DispatchSourceTimer)?) {
            lock.lock()
            source?.cancel()
            source = new
            lock.unlock()
        }
    }

    public init(pool: DatabasePool, clock: Clock = .system,
                allowPrivate: Bool = ProcessInfo.processInfo.environment["ROSTER_WEBHOOK_ALLOW_PRIVATE"] == "1") {
        self.pool = pool
        self.clock = clock
        self.allowPrivate = allowPrivate
    }

    public func list() throws -> [Webhook] { try pool.read { try $0.query(WebhookStore.all).map(Webhook.init(row:)) } }

    /// Adds a receiver; returns it with its signing secret (shown to the admin).
    @discardableResult
    public func add(url raw: String) throws -> Webhook {
        let text = raw.trimmed
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil,
              text.utf8.count <= 2000 else {
            throw ValidationError(field: "url", "Enter an http:// or https:// address, like https://crm.example.com/roster-events.")
        }
        if let host = url.host, let problem = WebhookAddress.problem(host: host, allowPrivate: allowPrivate) {
            throw ValidationError(field: "url", problem)
        }
        let id = try pool.write { db -> Int64 in
            // New receivers start at the current end of the outbox: they get what happens from now on.
            let end = try db.scalar("SELECT COALESCE(MAX(id), 0) FROM trigger_events").int64 ?? 0
            try db.run(WebhookStore.insert, [text, Secrets.randomToken(bytes: 24), clock.now()])
            let id = try db.lastInsertedID()
            try db.run("UPDATE webhooks SET cursor = ? WHERE id = ?", [end, id])
            return id
        }
        return try readBack(try list().first { $0.id == id }, "webhook")
    }

    public func delete(_ id: Int64) throws {
        let n = try pool.write { try $0.run(WebhookStore.delete, [id]) }
        if n == 0 { throw ValidationError(field: "webhook", "No such webhook.") }
    }

    public func recentDeliveries(limit: Int = 50) throws -> [WebhookDelivery] {
        try pool.read { db in
            try db.query(WebhookStore.recent, [limit]).map {
                WebhookDelivery(webhookID: $0.int64("webhook_id") ?? 0, firstEvent: $0.int64("first_event") ?? 0, lastEvent: $0.int64("last_event") ?? 0,
                                events: $0.int("events") ?? 0, attempt: $0.int("attempt") ?? 0, statusCode: $0.int("status_code"),
                                error: $0.string("error") ?? "", at: $0.int64("at") ?? 0)
            }
        }
    }

    /// Sends one batch to every webhook that is due; returns how many batches were accepted.
    @discardableResult
    public func deliverDue() -> Int {
        guard let hooks = try? pool.read({ try $0.query(WebhookStore.due, [clock.now()]).map(Webhook.init(row:)) }) else { return 0 }
        var accepted = 0
        for hook in hooks {
            // Each send may take up to 15 s: every claim, log line and backoff reads the clock afresh.
            let now = clock.now()
            // Nothing waiting: no claim (and no write) at all.
            guard let waiting = try? pool.read({ try $0.query(WebhookStore.events, [hook.cursor, 1]) }), !waiting.isEmpty else { continue }
            // The cursor as of the claim: another host may have sent a batch since the list was read.
            let claimed = try? pool.write { db -> Int64? in
                guard try db.run(WebhookStore.claim, [now + Webhooks.claimSeconds, hook.id, now]) == 1 else { return nil }
                return try db.scalar(WebhookStore.cursor, [hook.id]).int64
            }
            guard let cursor = claimed ?? nil else { continue }   // another host sends this batch
            guard let events = try? pool.read({ try $0.query(WebhookStore.events, [cursor, Webhooks.batchSize]) }), let last = events.last else {
                _ = try? pool.write { try $0.run(WebhookStore.release, [hook.id]) }
                continue
            }
            let body = JSONValue.object(["events": .array(events.map { e in
                .object(["id": .int(e.int64("id") ?? 0), "type": .string(e.string("type") ?? ""), "database_id": .int(e.int64("database_id") ?? 0),
                         "profile_id": .string(e.string("profile_id") ?? ""), "payload": JSONValue.parse(e.string("payload") ?? "{}") ?? .object([:]),
                         "task_id": e.int64("task_id").map { .int($0) } ?? .null, "created_at": .int(e.int64("created_at") ?? 0)])
            })]).canonical
            let bytes = Array(body.utf8)
            let (status, error) = post(hook.url, bytes, signature: Secrets.hmacSHA256Hex(key: hook.secret, message: bytes))
            let ok = status.map { (200..<300).contains($0) } ?? false
            let first = events.first?.int64("id") ?? 0
            let lastID = last.int64("id") ?? 0
            let answered = clock.now()   // the backoff counts from the answer, not from the claim
            try? pool.write { db in
                try db.run(WebhookStore.log, [hook.id, first, lastID, events.count, hook.failures + 1, status, error, answered])
                if ok {
                    try db.run(WebhookStore.delivered, [lastID, lastID, hook.id])
                } else {
                    let backoff = min(3600, 5 << min(hook.failures, 10))
                    try db.run(WebhookStore.failed, [answered + Int64(backoff), hook.id])
                }
            }
            if ok { accepted += 1 }
        }
        return accepted
    }

    /// POSTs with a 10-second timeout; the status code, or nil and the error.
    func post(_ address: String, _ body: [UInt8], signature: String) -> (Int?, String) {
        guard let url = URL(string: address), let host = url.host else { return (nil, "bad address") }
        // Checked again at every delivery: the name may resolve elsewhere now.
        if let problem = WebhookAddress.problem(host: host, allowPrivate: allowPrivate) { return (nil, problem) }
        var request = URLRequest(url: url, timeoutInterval: 10)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("sha256=" + signature, forHTTPHeaderField: "X-Roster-Signature")
        request.httpBody = Data(body)
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<(Int?, String)>((nil, "no answer"))
        let task = session.dataTask(with: request) { _, response, error in
            result.withLock { $0 = ((response as? HTTPURLResponse)?.statusCode, error.map { "\($0.localizedDescription)" } ?? "") }
            done.signal()
        }
        task.resume()
        if done.wait(timeout: .now() + 15) == .timedOut { task.cancel(); return (nil, "timed out") }
        return result.withLock { $0 }
    }

    /// Delivers every few seconds in the background until `stop`.
    public func start(every seconds: Double = 2) {
        let source = DispatchSource.makeTimerSource(queue: queue)
        source.schedule(deadline: .now() + seconds, repeating: seconds)
        source.setEventHandler { [self] in
            while deliverDue() > 0 {}
        }
        source.resume()
        timer.replace(with: source)
    }

    public func stop() {
        timer.replace(with: nil)
        queue.sync {}
    }
}
