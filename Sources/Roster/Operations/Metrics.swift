import Foundation
import Synchronization

/// The process's counters and histograms, rendered in Prometheus' text format by `/metrics`. One registry per
/// process (as Prometheus client libraries keep a default one): requests are counted where they are answered, task
/// rows where chunks commit. Gauges that live in the database (queue depth, backlog, file sizes) are read when scraped.
public final class Metrics: Sendable {
    public static let shared = Metrics()

    /// Upper bounds of the latency buckets, in seconds.
    static let buckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    struct RequestKey: Hashable { let method: String; let route: String; let status: Int }
    struct Histogram {
        var counts = [Int](repeating: 0, count: Metrics.buckets.count)
        var count = 0
        var sum = 0.0

        mutating func record(_ seconds: Double) {
            for (i, bound) in Metrics.buckets.enumerated() where seconds <= bound { counts[i] += 1 }
            count += 1
            sum += seconds
        }
    }
    struct TaskRows { var rows = 0; var chunks = 0; var seconds = 0.0; var lastRate = 0.0 }
    struct State {
        var requests: [RequestKey: Int] = [:]
        var latency: [String: Histogram] = [:]
        var tasks: [String: TaskRows] = [:]
    }
    /// Counters are kept in shards picked by thread, each behind its own lock, and summed when scraped: one lock for
    /// every request made 96 worker threads queue on it (the profile page lost a third of its throughput).
    final class Shard: @unchecked Sendable {
        let lock = NSLock()
        var state = State()
    }
    private let shards: [Shard] = (0..<32).map { _ in Shard() }
    private let tasks = Mutex<[String: TaskRows]>([:])

    public init() {}

    private var shard: Shard {
        // pthread_t is the thread's control block address on Linux: page-aligned-ish, so the low bits are dropped.
        shards[Int((UInt(pthread_self()) >> 12) % UInt(shards.count))]
    }

    /// One answered request: `route` is the route's pattern (`/databases/:id`), never the raw path, so ids do not
    /// turn into unbounded label values; unknown paths count as `unmatched`.
    public func request(method: String, route: String, status: Int, seconds: Double) {
        let method = method == "GET" || method == "HEAD" || method == "POST" ? method : "OTHER"
        let key = RequestKey(method: method, route: route, status: status)
        let shard = self.shard
        shard.lock.lock()
        defer { shard.lock.unlock() }
        shard.state.requests[key, default: 0] += 1
        // Changed in place through the default subscript: optional chaining copied the histogram per bucket.
        shard.state.latency[route, default: Histogram()].record(seconds)
    }

    /// One committed chunk of a task.
    public func chunk(kind: String, rows: Int, seconds: Double) {
        tasks.withLock { all in
            var t = all[kind, default: TaskRows()]
            t.rows += rows
            t.chunks += 1
            t.seconds += seconds
            if seconds > 0 { t.lastRate = Double(rows) / seconds }
            all[kind] = t
        }
    }

    /// Every shard's counters added up.
    private func merged() -> State {
        var total = State(tasks: tasks.withLock { $0 })
        for shard in shards {
            shard.lock.lock()
            let state = shard.state
            shard.lock.unlock()
            for (key, n) in state.requests { total.requests[key, default: 0] += n }
            for (route, h) in state.latency {
                var sum = total.latency[route, default: Histogram()]
                for i in sum.counts.indices { sum.counts[i] += h.counts[i] }
                sum.count += h.count
                sum.sum += h.sum
                total.latency[route] = sum
            }
        }
        return total
    }

    /// The counters in Prometheus' text exposition format (version 0.0.4).
    public func render() -> String {
        let s = merged()
        var out = "# HELP roster_http_requests_total Requests answered, by method, route pattern and status.\n"
        out += "# TYPE roster_http_requests_total counter\n"
        for (key, n) in s.requests.sorted(by: { ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status) }) {
            out += "roster_http_requests_total{method=\"\(key.method)\",route=\"\(Metrics.label(key.route))\",status=\"\(key.status)\"} \(n)\n"
        }
        out += "# HELP roster_http_request_duration_seconds Time to answer, by route pattern.\n"
        out += "# TYPE roster_http_request_duration_seconds histogram\n"
        for (route, h) in s.latency.sorted(by: { $0.key < $1.key }) {
            let r = Metrics.label(route)
            for (i, bound) in Metrics.buckets.enumerated() {
                out += "roster_http_request_duration_seconds_bucket{route=\"\(r)\",le=\"\(bound)\"} \(h.counts[i])\n"
            }
            out += "roster_http_request_duration_seconds_bucket{route=\"\(r)\",le=\"+Inf\"} \(h.count)\n"
            out += "roster_http_request_duration_seconds_sum{route=\"\(r)\"} \(h.sum)\n"
            out += "roster_http_request_duration_seconds_count{route=\"\(r)\"} \(h.count)\n"
        }
        out += "# HELP roster_task_rows_total Items processed by task chunks that committed, by task kind.\n"
        out += "# TYPE roster_task_rows_total counter\n"
        for (kind, t) in s.tasks.sorted(by: { $0.key < $1.key }) { out += "roster_task_rows_total{kind=\"\(Metrics.label(kind))\"} \(t.rows)\n" }
        out += "# HELP roster_task_chunks_total Task chunks that committed, by task kind.\n"
        out += "# TYPE roster_task_chunks_total counter\n"
        for (kind, t) in s.tasks.sorted(by: { $0.key < $1.key }) { out += "roster_task_chunks_total{kind=\"\(Metrics.label(kind))\"} \(t.chunks)\n" }
        out += "# HELP roster_task_rows_per_second Items per second of the last committed chunk, by task kind.\n"
        out += "# TYPE roster_task_rows_per_second gauge\n"
        for (kind, t) in s.tasks.sorted(by: { $0.key < $1.key }) {
            out += "roster_task_rows_per_second{kind=\"\(Metrics.label(kind))\"} \(String(format: "%.1f", t.lastRate))\n"
        }
        return out
    }

    /// A gauge line with its help and type.
    public static func gauge(_ name: String, _ help: String, _ samples: [(labels: String, value: Double)]) -> String {
        var out = "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
        for sample in samples {
            let value = sample.value == sample.value.rounded() && abs(sample.value) < 1e15
                ? String(Int64(sample.value)) : String(sample.value)
            out += sample.labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(sample.labels)} \(value)\n"
        }
        return out
    }

    /// A label value escaped as the format requires.
    public static func label(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
