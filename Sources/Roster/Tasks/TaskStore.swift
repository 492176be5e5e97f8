import Store

public enum TaskState: String, Sendable, CaseIterable {
    case queued, running, done, failed, cancelled, interrupted
    /// Launched under an approval rule: waits for a second admin (Settings → Approvals); expires after 7 days.
    /// Stored as `queued` with `approval_pending = 1`, which the runner never takes.
    case awaitingApproval = "awaiting_approval"
    public var isFinished: Bool { self == .done || self == .failed || self == .cancelled }
    public var label: String {
        switch self {
        case .queued: return "Queued"
        case .running: return "Running"
        case .done: return "Done"
        case .failed: return "Failed"
        case .cancelled: return "Cancelled"
        case .interrupted: return "Interrupted"
        case .awaitingApproval: return "Awaiting approval"
        }
    }
}

/// A background task as stored: its progress and counts are committed with each chunk of work.
public struct TaskRecord: Sendable, Equatable {
    public let id: Int64
    public let kind: String
    public let state: TaskState
    public let title: String
    public let databaseID: Int64?
    public let createdBy: Int64?
    public let createdByEmail: String?
    public internal(set) var parameters: [String: JSONValue]
    public let cursor: Int64
    public let total: Int
    public let processed: Int
    public let added: Int
    public let updated: Int
    public let skipped: Int
    public let failed: Int
    public let deleted: Int
    public let message: String
    public let cancelRequested: Bool
    public let outputBytes: Int64
    public let createdAt: Int64
    public let startedAt: Int64?
    public let finishedAt: Int64?
    /// Skipped items by reason.
    public let details: [String: Int]
    public let segmentID: Int64?
    /// Restarts that found this task running at the same cursor (reset when a person resumes it).
    public let interruptions: Int
    /// Why it needed a second admin (nil: no approval rule applied).
    public let approvalReason: String?
    public let approvedBy: Int64?
    public let approvedByEmail: String?
    public let approvedAt: Int64?
    public let rejectedBy: Int64?
    public let rejectedByEmail: String?

    static func details(_ text: String?) -> [String: Int] {
        guard case .object(let o)? = JSONValue.parse(text ?? "{}") else { return [:] }
        return o.compactMapValues { if case .int(let i) = $0 { return Int(i) } else { return nil } }
    }

    init(row: Row) {
        details = TaskRecord.details(row.string("details"))
        segmentID = row.int64("segment_id")
        interruptions = row.int("interruptions") ?? 0
        approvalReason = row.string("approval_reason")
        approvedBy = row.int64("approved_by")
        approvedByEmail = row.string("approved_by_email")
        approvedAt = row.int64("approved_at")
        rejectedBy = row.int64("rejected_by")
        rejectedByEmail = row.string("rejected_by_email")
        id = row.int64("id") ?? 0
        kind = row.string("kind") ?? ""
        let stored = TaskState(rawValue: row.string("state") ?? "") ?? .failed
        state = stored == .queued && row.bool("approval_pending") ? .awaitingApproval : stored
        title = row.string("title") ?? ""
        databaseID = row.int64("database_id")
        createdBy = row.int64("created_by")
        createdByEmail = row.string("created_by_email")
        if case .object(let o)? = JSONValue.parse(row.string("parameters") ?? "{}") { parameters = o } else { parameters = [:] }
        cursor = row.int64("cursor") ?? 0
        total = row.int("total") ?? 0
        processed = row.int("processed") ?? 0
        added = row.int("added") ?? 0
        updated = row.int("updated") ?? 0
        skipped = row.int("skipped") ?? 0
        failed = row.int("failed") ?? 0
        deleted = row.int("deleted") ?? 0
        message = row.string("message") ?? ""
        cancelRequested = row.bool("cancel_requested")
        outputBytes = row.int64("output_bytes") ?? 0
        createdAt = row.int64("created_at") ?? 0
        startedAt = row.int64("started_at")
        finishedAt = row.int64("finished_at")
    }

    /// 0…100, for the progress bar.
    public var percent: Int {
        if state == .done { return 100 }
        guard total > 0 else { return 0 }
        return min(100, processed * 100 / total)
    }

    public func int64Parameter(_ key: String) -> Int64? {
        if case .int(let i)? = parameters[key] { return i }
        return nil
    }
}

public enum TaskStore {
    static let columns = """
        SELECT t.*, u.email AS created_by_email, a.email AS approved_by_email, r.email AS rejected_by_email FROM tasks t
        LEFT JOIN users u ON u.id = t.created_by LEFT JOIN users a ON a.id = t.approved_by LEFT JOIN users r ON r.id = t.rejected_by
        """
    /// Queued; with `approval_pending` and its reason when an approval rule applies.
    static let insert = NamedQuery("tasks.insert", """
        INSERT INTO tasks (kind, state, title, database_id, created_by, parameters, created_at, approval_pending, approval_reason)
        VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?)
        """)
    static let byID = NamedQuery("tasks.byID", "\(columns) WHERE t.id = ?")
    static let recent = NamedQuery("tasks.recent", "\(columns) ORDER BY t.id DESC LIMIT ?")
    /// The oldest queued tasks with their kinds: a runner takes the first one it has a handler for.
    static let nextQueued = NamedQuery("tasks.nextQueued", """
        SELECT id, kind FROM tasks WHERE state = 'queued' AND approval_pending = 0 ORDER BY id LIMIT 50
        """)
    /// Committed on its own before any work, so a crash anywhere after it (a survey, a prepare) counts as an
    /// interruption. The runner takes the task's lease with it: only one runner, on any host, claims a queued task.
    static let start = NamedQuery("tasks.start", """
        UPDATE tasks SET state = 'running', lease_owner = ?, lease_until = ? WHERE id = ? AND state = 'queued' AND approval_pending = 0
        """)
    /// The heartbeat (and every chunk): the lease runs on while its holder works.
    static let renew = NamedQuery("tasks.renew", """
        UPDATE tasks SET lease_until = ? WHERE id = ? AND lease_owner = ? AND state = 'running'
        """)
    static let began = NamedQuery("tasks.began", "UPDATE tasks SET started_at = COALESCE(started_at, ?) WHERE id = ?")
    /// A chunk commits only if no other runner moved the task meanwhile (a `roster bulk` process and a restarted
    /// server could otherwise both work on it).
    static let cursorCheck = NamedQuery("tasks.cursorCheck", "SELECT cursor, state, lease_owner FROM tasks WHERE id = ?")
    static let prepared = NamedQuery("tasks.prepared", "UPDATE tasks SET total = ?, parameters = ? WHERE id = ?")
    static let progress = NamedQuery("tasks.progress", """
        UPDATE tasks SET cursor = ?, processed = processed + ?, added = added + ?, updated = updated + ?, skipped = skipped + ?,
            failed = failed + ?, deleted = deleted + ?, message = CASE WHEN ? = '' THEN message ELSE ? END,
            output_bytes = COALESCE(?, output_bytes) WHERE id = ?
        """)
    /// Ends a task only while the runner still holds it: a runner that lost its lease (or never got it) must not end
    /// another runner's task.
    static let finishHeld = NamedQuery("tasks.finishHeld", """
        UPDATE tasks SET state = ?, finished_at = ?, message = CASE WHEN ? = '' THEN message ELSE ? END
        WHERE id = ? AND state = 'running' AND lease_owner = ?
        """)
    static let requestCancel = NamedQuery("tasks.requestCancel", """
        UPDATE tasks SET cancel_requested = 1,
            state = CASE WHEN state IN ('queued', 'interrupted') THEN 'cancelled' ELSE state END,
            finished_at = CASE WHEN state IN ('queued', 'interrupted') THEN ? ELSE finished_at END
        WHERE id = ? AND state IN ('queued', 'running', 'interrupted')
        """)
    static let cancelRequested = NamedQuery("tasks.cancelRequested", "SELECT cancel_requested FROM tasks WHERE id = ?")
    static let running = NamedQuery("tasks.running", """
        SELECT id, cursor, interruptions, interrupted_cursor, lease_owner, lease_until, cancel_requested FROM tasks
        WHERE state = 'running'
        """)
    /// A task found without a living holder after a person asked to cancel it: it ends cancelled.
    static let cancelAbandoned = NamedQuery("tasks.cancelAbandoned", """
        UPDATE tasks SET state = 'cancelled', finished_at = ?, lease_owner = NULL, lease_until = NULL
        WHERE id = ? AND state = 'running' AND lease_owner IS ?
        """, postgres: """
        UPDATE tasks SET state = 'cancelled', finished_at = ?, lease_owner = NULL, lease_until = NULL
        WHERE id = ? AND state = 'running' AND lease_owner IS NOT DISTINCT FROM ?::text
        """)
    /// A runner found the task running without a living holder: it counts as an interruption at its cursor, then it
    /// is queued again or held.
    static let interrupted = NamedQuery("tasks.interrupted", """
        UPDATE tasks SET state = ?, interruptions = ?, interrupted_cursor = cursor, message = ?, lease_owner = NULL,
            lease_until = NULL
        WHERE id = ? AND state = 'running' AND lease_owner IS ?
        """, postgres: """
        UPDATE tasks SET state = ?, interruptions = ?, interrupted_cursor = cursor, message = ?, lease_owner = NULL,
            lease_until = NULL
        WHERE id = ? AND state = 'running' AND lease_owner IS NOT DISTINCT FROM ?::text
        """)
    /// A clean stop (SIGTERM): the runner's task stopped between chunks and simply waits for the next claim.
    static let requeueRunning = NamedQuery("tasks.requeueRunning", """
        UPDATE tasks SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE state = 'running' AND lease_owner = ?
        """)
    /// A person resumes: the interruption count starts again.
    static let resume = NamedQuery("tasks.resume", """
        UPDATE tasks SET state = 'queued', interruptions = 0, interrupted_cursor = NULL WHERE id = ? AND state = 'interrupted'
        """)
    static let countByState = NamedQuery("tasks.countByState", "SELECT state, COUNT(*) AS n FROM tasks GROUP BY state")
    static let details = NamedQuery("tasks.details", "SELECT details FROM tasks WHERE id = ?")
    static let setDetails = NamedQuery("tasks.setDetails", "UPDATE tasks SET details = ? WHERE id = ?")
    static let setSegment = NamedQuery("tasks.setSegment", "UPDATE tasks SET segment_id = ? WHERE id = ?")
    static let countActive = NamedQuery("tasks.countActive", "SELECT COUNT(*) FROM tasks WHERE state IN ('queued', 'running')")

    static var queries: [NamedQuery] {
        [insert, byID, recent, nextQueued, start, renew, began, cursorCheck, prepared, progress, finishHeld, cancelAbandoned, requestCancel, cancelRequested, running, interrupted, requeueRunning, resume,
         countActive, countByState, details, setDetails, setSegment]
    }
}
