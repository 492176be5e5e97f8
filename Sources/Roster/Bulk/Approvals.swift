import Store

/// Settings → Approvals: which bulk updates need a second admin before they run.
public struct ApprovalRules: Sendable, Equatable {
    /// Delete inactive profiles.
    public var deleteInactive = false
    /// Global unsubscribe.
    public var unsubscribe = false
    /// Any bulk update that selects more than this many profiles (nil: no limit).
    public var overProfiles: Int?

    public init(deleteInactive: Bool = false, unsubscribe: Bool = false, overProfiles: Int? = nil) {
        self.deleteInactive = deleteInactive
        self.unsubscribe = unsubscribe
        self.overProfiles = overProfiles
    }

    public var isEmpty: Bool { !deleteInactive && !unsubscribe && overProfiles == nil }

    /// Why a bulk update of `action` over `selected` profiles needs a second admin, or nil.
    public func reason(for action: BulkAction, selected: Int?) -> String? {
        var reasons: [String] = []
        if deleteInactive, case .deleteInactive = action { reasons.append("it deletes profiles") }
        if unsubscribe, case .unsubscribe = action { reasons.append("it unsubscribes profiles from everything") }
        if let limit = overProfiles, let selected, selected > limit {
            reasons.append("it selects \(selected) profiles, more than \(limit)")
        }
        return reasons.isEmpty ? nil : "A second admin must approve this task: " + reasons.joined(separator: "; ") + "."
    }
}

enum ApprovalStore {
    static let rules = NamedQuery("approvals.rules", "SELECT * FROM approval_rules WHERE id = 1")
    static let save = NamedQuery("approvals.save", """
        UPDATE approval_rules SET delete_inactive = ?, unsubscribe = ?, over_profiles = ?, updated_at = ? WHERE id = 1
        """)
    /// Approved with the count the approver saw: the task refuses to start on more (`BulkUpdateTask.prepare`).
    static let approve = NamedQuery("approvals.approve", """
        UPDATE tasks SET approval_pending = 0, approved_by = ?, approved_at = ?, parameters = ?
        WHERE id = ? AND state = 'queued' AND approval_pending = 1
        """)
    static let reject = NamedQuery("approvals.reject", """
        UPDATE tasks SET state = 'cancelled', rejected_by = ?, finished_at = ?, message = ?
        WHERE id = ? AND state = 'queued' AND approval_pending = 1
        """)
    static let pending = NamedQuery("approvals.pending", """
        SELECT COUNT(*) FROM tasks WHERE state = 'queued' AND approval_pending = 1
        """)
    static let expiring = NamedQuery("approvals.expiring", """
        SELECT id FROM tasks WHERE state = 'queued' AND approval_pending = 1 AND created_at < ?
        """)
    static let expire = NamedQuery("approvals.expire", """
        UPDATE tasks SET state = 'cancelled', finished_at = ?, message = ? WHERE id = ? AND state = 'queued' AND approval_pending = 1
        """)
    static var queries: [NamedQuery] { [rules, save, approve, reject, pending, expiring, expire] }
}

/// The approval of bulk updates: the rules, and approving, rejecting and expiring tasks that wait for a second admin.
/// `BulkUpdates.start` asks `rules` (every way a bulk update is launched goes through it); the runner only ever
/// takes queued tasks, so a task awaiting approval changes nothing until an admin other than its launcher approves.
public struct Approvals: Sendable {
    let pool: DatabasePool
    let clock: Clock
    let tasks: TaskRunner
    /// A task waits this long for approval, then it is cancelled.
    public static let expirySeconds: Int64 = 7 * 86_400

    public init(pool: DatabasePool, tasks: TaskRunner, clock: Clock = .system) {
        self.pool = pool
        self.tasks = tasks
        self.clock = clock
    }

    public func rules() throws -> ApprovalRules {
        try pool.read { try Approvals.rules($0) }
    }

    static func rules(_ db: Connection) throws -> ApprovalRules {
        guard let row = try db.queryOne(ApprovalStore.rules) else { return ApprovalRules() }
        return ApprovalRules(deleteInactive: row.bool("delete_inactive"), unsubscribe: row.bool("unsubscribe"),
                             overProfiles: row.int("over_profiles"))
    }

    /// Only admins change the rules. A limit is a whole number of profiles from 1 to 1,000,000,000.
    public func save(_ rules: ApprovalRules, by user: User) throws {
        guard user.role == .admin else { throw PermissionError(message: "Only an admin can change the approval rules.") }
        if let limit = rules.overProfiles, !(1...1_000_000_000).contains(limit) {
            throw ValidationError(field: "over_profiles", "Enter a number of profiles from 1 to 1,000,000,000, or leave it empty.")
        }
        try pool.write { try $0.run(ApprovalStore.save, [rules.deleteInactive, rules.unsubscribe, rules.overProfiles, clock.now()]) }
    }

    /// Whether `user` may approve or reject `task` now: an admin who did not launch it, while it waits.
    public static func mayDecide(_ task: TaskRecord, user: User) -> Bool {
        user.role == .admin && task.createdBy != user.id && task.state == .awaitingApproval
    }

    /// A task awaiting approval is cancelled only by its launcher or an admin (an editor cannot reject it unseen).
    public static func mayCancel(_ task: TaskRecord, user: User) -> Bool {
        task.state != .awaitingApproval || user.role == .admin || task.createdBy == user.id
    }

    /// Tasks waiting for a second admin (for /metrics).
    public static func pendingCount(_ db: Connection) throws -> Int {
        try db.scalar(ApprovalStore.pending).int ?? 0
    }

    /// What a waiting bulk task would work through now: the items its preview counts and its start freezes (profiles;
    /// for an undo, the values or archived profiles).
    public func selectedNow(_ task: TaskRecord) throws -> Int {
        let request = try BulkUpdateTask.request(task)
        return try pool.read { try BulkUpdateTask.targets(request, now: clock.now(), $0).count }
    }

    private func decidable(_ id: Int64, by user: User) throws -> TaskRecord {
        guard let task = try tasks.task(id) else { throw ValidationError(field: "task", "No such task.") }
        guard user.role == .admin else { throw PermissionError(message: "Only an admin can approve or reject a task.") }
        guard task.createdBy != user.id else {
            throw PermissionError(message: "You launched this task; another admin must approve or reject it.")
        }
        guard task.state == .awaitingApproval else { throw ValidationError(field: "task", "This task is not awaiting approval.") }
        guard task.createdAt >= clock.now() - Approvals.expirySeconds else {
            _ = try Approvals.expire(pool: pool, now: clock.now())
            throw ValidationError(field: "task", "This task waited more than 7 days and expired; launch it again.")
        }
        return task
    }

    /// Queues the task: it runs as if launched now (its targets are frozen when it starts). `previewed` is the number
    /// of profiles the approver's preview showed: a selection that changed since is refused, and the task will not
    /// start on more profiles than were approved.
    public func approve(_ id: Int64, by user: User, previewed: Int?) throws {
        var task = try decidable(id, by: user)
        guard let previewed else { throw ValidationError(field: "task", "Look at the preview before approving.") }
        let now = try selectedNow(task)
        guard now == previewed else {
            throw ValidationError(field: "task", "The selection changed since your preview (\(previewed) profiles then, \(now) now). "
                                  + "Look at the preview again before approving.")
        }
        task.parameters["approved_selected"] = .int(Int64(previewed))
        let parameters = JSONValue.object(task.parameters).canonical
        let changed = try pool.write { try $0.run(ApprovalStore.approve, [user.id, clock.now(), parameters, id]) }
        if changed == 0 { throw ValidationError(field: "task", "This task is not awaiting approval.") }
        tasks.wake()
    }

    /// Cancels the task with the reason given; nothing was changed.
    public func reject(_ id: Int64, by user: User, reason raw: String) throws {
        _ = try decidable(id, by: user)
        let reason = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else { throw ValidationError(field: "reason", "Say why the task is rejected.") }
        guard reason.unicodeScalars.count <= 500 else { throw ValidationError(field: "reason", "Keep the reason to 500 characters at most.") }
        guard !reason.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\t" }) else {
            throw ValidationError(field: "reason", "The reason contains control characters; write it as plain text.")
        }
        let message = "Rejected by \(user.email): \(reason)"
        let changed = try pool.write { try $0.run(ApprovalStore.reject, [user.id, clock.now(), message, id]) }
        if changed == 0 { throw ValidationError(field: "task", "This task is not awaiting approval.") }
    }

    /// Cancels tasks that waited longer than `expirySeconds`; returns their ids. The runner's poll calls it.
    @discardableResult
    static func expire(pool: DatabasePool, now: Int64) throws -> [Int64] {
        let cutoff = now - expirySeconds
        let due = try pool.read { try $0.query(ApprovalStore.expiring, [cutoff]).compactMap { $0.int64("id") } }
        guard !due.isEmpty else { return [] }
        return try pool.write { db in
            try due.filter {
                try db.run(ApprovalStore.expire, [now, "Expired: no admin approved it within 7 days. Nothing was changed.", $0]) == 1
            }
        }
    }
}
