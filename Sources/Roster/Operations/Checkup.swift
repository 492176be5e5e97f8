import Foundation
import Store

/// `roster check` and `/healthz`: named checks, each ok or a problem with what was found.
public struct CheckResult: Sendable, Equatable {
    public let name: String
    public let ok: Bool
    public let detail: String
    /// Worth a look but not a problem (files the hourly sweep will remove): `roster check` still exits 0.
    public let warning: Bool
    public init(_ name: String, ok: Bool, _ detail: String, warning: Bool = false) {
        self.name = name
        self.ok = ok
        self.detail = detail
        self.warning = warning
    }
}

public enum Checkup {
    /// A WAL larger than this is a problem for `roster check` (checkpoints are not keeping up, or a reader never ends).
    public static let walLimitBytes: Int64 = 1 << 30

    /// The offline or online check of a data folder: integrity, foreign keys, schema version, WAL size, leftover files.
    public static func database(pool: DatabasePool, files: TaskFiles, newestSchema: Int = Schema.migrations.last?.version ?? 0) -> [CheckResult] {
        var results: [CheckResult] = []
        if pool.kind == .sqlite {
            results += sqliteFile(pool: pool)
        } else {
            // Pages, foreign keys and the WAL of a PostgreSQL store are the server's own (data checksums, amcheck).
            do {
                let version = try pool.read { try $0.scalar("SHOW server_version").string ?? "" }
                results.append(CheckResult("store", ok: true, "PostgreSQL \(version) answers"))
            } catch {
                results.append(CheckResult("store", ok: false, "\(error)"))
            }
        }
        do {
            let version = try pool.read { try $0.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").int ?? 0 }
            results.append(CheckResult("schema", ok: version == newestSchema,
                                       version == newestSchema ? "version \(version)" : "version \(version), this roster expects \(newestSchema): run roster migrate"))
        } catch {
            results.append(CheckResult("schema", ok: false, "\(error)"))
        }
        if let leftovers = files.leftovers() {
            results.append(CheckResult("files", ok: true,
                                       leftovers.isEmpty ? "no orphaned or expired files"
                                           : "\(leftovers.count) orphaned or expired file(s), removed by the server's hourly sweep: "
                                             + leftovers.prefix(5).joined(separator: ", "), warning: !leftovers.isEmpty))
        } else {
            results.append(CheckResult("files", ok: false, "the task list could not be read"))
        }
        return results
    }

    /// What only a SQLite file needs checked: its pages, its foreign keys (enforced per connection, so rows written
    /// by another tool may break them), and its WAL's size.
    static func sqliteFile(pool: DatabasePool) -> [CheckResult] {
        var results: [CheckResult] = []
        do {
            let answers = try pool.read { try $0.query("PRAGMA integrity_check").compactMap { $0.string("integrity_check") } }
            let ok = answers == ["ok"]
            results.append(CheckResult("integrity", ok: ok, ok ? "ok" : answers.prefix(20).joined(separator: "; ")))
        } catch {
            results.append(CheckResult("integrity", ok: false, "\(error)"))
        }
        do {
            let rows = try pool.read { try $0.query("PRAGMA foreign_key_check") }
            let tables = Set(rows.compactMap { $0.string("table") }).sorted()
            results.append(CheckResult("foreign keys", ok: rows.isEmpty,
                                       rows.isEmpty ? "ok" : "\(rows.count) row(s) point at missing rows in \(tables.joined(separator: ", "))"))
        } catch {
            results.append(CheckResult("foreign keys", ok: false, "\(error)"))
        }
        let wal = fileSize(pool.path + "-wal")
        results.append(CheckResult("wal", ok: wal <= walLimitBytes, "\(wal >> 20) MB" + (wal > walLimitBytes ? " (over \(walLimitBytes >> 20) MB)" : "")))
        return results
    }

    /// What `/healthz` reports: the database answers, the writer is not stuck, the disk has room, the task runner lives.
    public static func health(pool: DatabasePool, tasks: TaskRunner, files: TaskFiles, now: Double = Date().timeIntervalSince1970,
                              writerStuckAfter: Double = 60, runnerQuietAfter: Int64 = 300) -> [CheckResult] {
        var results: [CheckResult] = []
        var pending = 0
        do {
            // Tasks awaiting approval are queued but not the runner's to take: they do not count as waiting work.
            pending = try pool.read { db in
                try db.query(TaskStore.countByState).filter { ["queued", "running"].contains($0.string("state") ?? "") }
                    .reduce(0) { $0 + ($1.int("n") ?? 0) } - (try Approvals.pendingCount(db))
            }
            results.append(CheckResult("database", ok: true, "answers"))
        } catch {
            results.append(CheckResult("database", ok: false, "\(error)"))
        }
        if let since = pool.writerHeldSince, now - since > writerStuckAfter {
            results.append(CheckResult("writer", ok: false, "held by one write for \(Int(now - since)) s"))
        } else {
            results.append(CheckResult("writer", ok: true, "free or moving"))
        }
        do {
            try files.requireFreeSpace()
            results.append(CheckResult("disk", ok: true, "above the free-space threshold"))
        } catch {
            results.append(CheckResult("disk", ok: false, "below the free-space threshold"))
        }
        let quiet = Int64(now) - tasks.lastActivity
        if tasks.isStopping {
            results.append(CheckResult("tasks", ok: false, "the task runner is stopping"))
        } else if pending > 0 && !tasks.isBusy && quiet > runnerQuietAfter {
            // Work waits and the runner is not on it: it should have picked it up within milliseconds of its enqueue.
            results.append(CheckResult("tasks", ok: false, "\(pending) task(s) waiting, the task runner idle for \(quiet) s"))
        } else {
            results.append(CheckResult("tasks", ok: true, pending > 0 ? "working" : "idle"))
        }
        return results
    }

    static func fileSize(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    }
}

/// What `/metrics` reads from the database and the data folder when it is scraped.
public struct OperationsGauges: Sendable {
    public var tasksByState: [String: Int] = [:]
    public var webhookBacklog = 0
    public var loginFailuresRecent: [String: Int] = [:]
    public var databaseBytes: Int64 = 0
    public var walBytes: Int64 = 0
    public var lastBackupAt: Int64?
    public var lastBackupOK = false

    /// Failures counted in the last `window` seconds (the login throttle's window).
    public static let loginWindow: Int64 = 900

    public static func read(pool: DatabasePool, now: Int64) throws -> OperationsGauges {
        var g = OperationsGauges()
        try pool.read { db in
            for row in try db.query(TaskStore.countByState) { g.tasksByState[row.string("state") ?? "", default: 0] += row.int("n") ?? 0 }
            // Awaiting approval is stored as queued: reported under its own state.
            let awaiting = try Approvals.pendingCount(db)
            g.tasksByState[TaskState.queued.rawValue, default: 0] -= awaiting
            g.tasksByState[TaskState.awaitingApproval.rawValue] = awaiting
            g.webhookBacklog = try db.scalar(OperationsStore.webhookBacklog).int ?? 0
            for row in try db.query(OperationsStore.loginFailures, [now - loginWindow]) {
                g.loginFailuresRecent[row.string("kind") ?? "", default: 0] += row.int("n") ?? 0
            }
            if let last = try db.queryOne(BackupStore.last) {
                g.lastBackupAt = last.int64("finished_at")
                g.lastBackupOK = last.bool("ok")
            }
        }
        g.databaseBytes = Checkup.fileSize(pool.path)
        g.walBytes = Checkup.fileSize(pool.path + "-wal")
        return g
    }
}

enum OperationsStore {
    /// Events not yet delivered, summed over the active webhooks.
    static let webhookBacklog = NamedQuery("operations.webhookBacklog", """
        SELECT COALESCE(SUM((SELECT COUNT(*) FROM trigger_events e WHERE e.id > w.cursor)), 0) FROM webhooks w WHERE w.active = 1
        """)
    /// Sign-in and API-token failures by kind ('email', 'ip', 'pair', 'api'…): the part of the key before its colon.
    static let loginFailures = NamedQuery("operations.loginFailures", """
        SELECT CASE WHEN instr(key, ':') > 0 THEN substr(key, 1, instr(key, ':') - 1) ELSE key END AS kind, COUNT(*) AS n
        FROM login_failures WHERE failed_at > ? GROUP BY kind
        """, postgres: """
        SELECT split_part(key, ':', 1) AS kind, COUNT(*) AS n FROM login_failures WHERE failed_at > ? GROUP BY kind
        """)
    static var queries: [NamedQuery] { [webhookBacklog, loginFailures] }
}
