import Foundation
import Store
import Synchronization

/// What one chunk of a task did. The runner adds the counts to the task row in the chunk's own transaction.
public struct ChunkOutcome: Sendable {
    public var cursor: Int64
    public var processed = 0
    public var added = 0
    public var updated = 0
    public var skipped = 0
    public var failed = 0
    public var deleted = 0
    public var message = ""
    /// Skipped (or failed) items by reason, added to the task's totals: {"unsafe_status": 3}.
    public var reasons: [String: Int] = [:]
    /// For tasks that write a file: its size after this chunk (committed with the counts).
    public var outputBytes: Int64?
    /// True when there is nothing after `cursor`.
    public var finished = false
    public init(cursor: Int64) { self.cursor = cursor }
}

/// The work of one kind of task, written so that it can stop after any chunk and resume from the cursor.
/// What `enqueue` throws when its `alongside` step declined (someone else claimed the same work first).
public struct NotClaimed: Error {}

public protocol TaskHandler: Sendable {
    /// Runs once, when the task first starts, in a write transaction: freeze the target set (for example the
    /// highest profile id to touch) into the returned parameters and count the total.
    func prepare(_ task: TaskRecord, _ db: Connection) throws -> (total: Int, parameters: [String: JSONValue])
    /// Processes the items after `task.cursor`, at most `limit` of them, in the caller's write transaction.
    func runChunk(_ task: TaskRecord, limit: Int, _ db: Connection) throws -> ChunkOutcome
    /// Items per chunk when the handler knows better than the runner's default (nil: the default).
    var preferredChunkSize: Int? { get }
    /// Whether a user of `role` may start or resume this task (the same rule as at launch).
    func mayRun(_ task: TaskRecord, role: Role) -> Bool
    /// Slow reading done once before `prepare`, outside any transaction (so writers never wait on it); what it
    /// returns is added to the parameters `prepare` sees and keeps.
    func survey(_ task: TaskRecord) throws -> [String: JSONValue]
    /// Runs after the task's last chunk has committed (cleaning up what a crash before the commit would need).
    func finished(_ task: TaskRecord)
}

extension TaskHandler {
    public var preferredChunkSize: Int? { nil }
    public func mayRun(_ task: TaskRecord, role: Role) -> Bool { role.canEdit }
    public func survey(_ task: TaskRecord) throws -> [String: JSONValue] { [:] }
    public func finished(_ task: TaskRecord) {}
}

/// Runs tasks in this process, one at a time, on a Dispatch queue. Tasks are rows: enqueued in a committed
/// transaction before the page answers, advanced chunk by chunk (each chunk one write transaction that also moves the
/// cursor and counters), cancellable between chunks.
///
/// A running task has a lease: its runner (`owner`, "host/pid/token") and a time it runs until, renewed by every chunk
/// and by a heartbeat. Only the holder's chunks commit. When the holder is gone — its lease ran out (another host
/// died), or it was an earlier process on this host — any runner takes the task over from its committed cursor,
/// counted as an interruption (`recover`). Several hosts on one PostgreSQL thus run each task exactly once at a time.
public final class TaskRunner: Sendable {
    let pool: DatabasePool
    let clock: Clock
    let handlers: [String: any TaskHandler]
    public let chunkSize: Int
    /// A pause between chunks (ROSTER_TASK_PAUSE_MS): gives the machine back to pages on a busy host; 0 by default.
    public let pauseMilliseconds: Int
    /// This runner, as the holder of a task's lease.
    public let owner: LeaseOwner
    /// How long a lease lasts without renewal, in seconds of the app clock.
    public let leaseSeconds: Int64
    private let queue = DispatchQueue(label: "roster.tasks")
    private let heartbeatQueue = DispatchQueue(label: "roster.tasks.heartbeat")
    private let heartbeat = Webhooks.TimerBox()
    private let scheduled = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let activity = Atomic<Int64>(Int64(Date().timeIntervalSince1970))
    private let busy = Atomic<Bool>(false)
    /// The task this runner works on (0: none), for the heartbeat.
    private let working = Atomic<Int64>(0)
    /// For the crash tests only (ROSTER_TEST_ABORT_AT_CURSOR): the process aborts inside any chunk that starts at or
    /// after this cursor, before the chunk commits, as a crash in the middle of real work would.
    private let abortAtCursor: Int64? = ProcessInfo.processInfo.environment["ROSTER_TEST_ABORT_AT_CURSOR"].flatMap { Int64($0) }

    public init(pool: DatabasePool, handlers: [String: any TaskHandler], clock: Clock = .system, chunkSize: Int = 2000,
                pauseMilliseconds: Int = 0, leaseSeconds: Int = 60) {
        self.pauseMilliseconds = pauseMilliseconds
        self.pool = pool
        self.handlers = handlers
        self.clock = clock
        self.chunkSize = chunkSize
        self.leaseSeconds = Int64(max(2, leaseSeconds))
        self.owner = LeaseOwner.make()
    }

    deinit { owner.retire() }

    /// What a start found of the tasks a crash left running.
    public struct Recovery: Sendable, Equatable {
        /// Queued again: they continue from their committed cursor.
        public var resumed: [Int64] = []
        /// Held as interrupted: stopped at the same cursor `autoResumeLimit` times.
        public var held: [Int64] = []
    }

    /// Restarts that find a task running at the same cursor before it is held instead of resumed.
    public static let autoResumeLimit = 3

    /// For the tasks found running without a living holder (a crash on this host, a host whose lease ran out; their
    /// counts are those of committed chunks): each such find counts as an interruption at the task's cursor. Below
    /// `autoResumeLimit` interruptions at the same cursor the task is queued again and continues by itself; at the
    /// limit it stays interrupted with the reason, so one poisonous chunk cannot crash-loop the server. A person can
    /// still resume it from the Tasks page. The server runs this at start and at every poll.
    @discardableResult
    public func recover(autoResumeLimit: Int = TaskRunner.autoResumeLimit) throws -> Recovery {
        let now = clock.now()
        func abandoned(_ rows: [Row]) -> [Row] {
            rows.filter { LeaseOwner.isAbandoned(holder: $0.string("lease_owner"), until: $0.int64("lease_until"), now: now) }
        }
        // Read first: a poll that finds every running task held takes no write lock.
        guard !abandoned(try pool.read { try $0.query(TaskStore.running) }).isEmpty else { return Recovery() }
        return try pool.write { db in
            var recovery = Recovery()
            for row in abandoned(try db.query(TaskStore.running)) {
                guard let id = row.int64("id") else { continue }
                let holder = row.string("lease_owner")
                // A person asked to cancel it before its holder went: it ends cancelled, not resumed.
                if row.bool("cancel_requested") {
                    if try db.run(TaskStore.cancelAbandoned, [clock.now(), id, holder]) == 1 { try TaskTargets.drop(taskID: id, db) }
                    continue
                }
                let cursor = row.int64("cursor") ?? 0
                let sameCursor = row.int64("interrupted_cursor") == cursor
                let count = sameCursor ? (row.int("interruptions") ?? 0) + 1 : 1
                if count < autoResumeLimit {
                    let reason = "Roster stopped while this task ran (a restart, or its host went away); it continued by itself "
                        + "from its last committed chunk."
                    try db.run(TaskStore.interrupted, ["queued", count, reason, id, holder])
                    recovery.resumed.append(id)
                } else {
                    let reason = autoResumeLimit <= 1
                        ? "Roster stopped while this task ran. Resume it to continue from where it stopped."
                        : "Roster stopped \(count) times while this task was at the same point, so it was not started again "
                          + "automatically. Resume it once the cause is found (see the server's log)."
                    try db.run(TaskStore.interrupted, ["interrupted", count, reason, id, holder])
                    recovery.held.append(id)
                }
            }
            return recovery
        }
    }

    /// At start-up, without resuming anything: every task left running becomes interrupted (tools and tests).
    @discardableResult
    public func recoverInterrupted() throws -> Int {
        try recover(autoResumeLimit: 1).held.count
    }

    /// Records a task (committed when this returns) and wakes the runner. With `awaitingApproval` (the reason an
    /// approval rule applies) it waits for a second admin instead (`Approvals`).
    /// `alongside` runs in the same transaction with the new task's id (a schedule claims its slot there): when it
    /// returns false, nothing is recorded and `NotClaimed` is thrown.
    @discardableResult
    public func enqueue(kind: String, title: String, databaseID: Int64?, userID: Int64?, parameters: [String: JSONValue],
                        segmentID: Int64? = nil, awaitingApproval reason: String? = nil,
                        alongside: ((Connection, Int64) throws -> Bool)? = nil) throws -> Int64 {
        guard handlers[kind] != nil else { throw ValidationError(field: "task", "Unknown task kind \(kind).") }
        let now = clock.now()
        let id = try pool.write { db -> Int64 in
            try db.run(TaskStore.insert, [kind, title, databaseID, userID, JSONValue.object(parameters).canonical, now, reason != nil,
                                          reason])
            let id = try db.lastInsertedID()
            if let segmentID { try db.run(TaskStore.setSegment, [segmentID, id]) }
            if let alongside, try !alongside(db, id) { throw NotClaimed() }
            return id
        }
        wake()
        return id
    }

    public func task(_ id: Int64) throws -> TaskRecord? {
        try pool.read { try $0.queryOne(TaskStore.byID, [id]).map(TaskRecord.init(row:)) }
    }

    public func recent(limit: Int = 200) throws -> [TaskRecord] {
        try pool.read { try $0.query(TaskStore.recent, [limit]).map(TaskRecord.init(row:)) }
    }

    /// Queued or interrupted tasks stop at once; a running one stops after its current chunk.
    public func cancel(_ id: Int64) throws {
        try pool.write { db in
            try db.run(TaskStore.requestCancel, [clock.now(), id])
            // Ended now (it was queued or interrupted): its frozen targets go with it. A running task's go when the
            // runner stops it after its chunk.
            if try db.queryOne(TaskStore.byID, [id]).map(TaskRecord.init(row:))?.state == .cancelled {
                try TaskTargets.drop(taskID: id, db)
            }
        }
    }

    /// Queues an interrupted task again; it continues from its cursor. The role is checked again, by the rule that
    /// applied when the task was launched (an editor cannot resume an admin's deletion).
    public func resume(_ id: Int64, role: Role) throws {
        guard let task = try self.task(id) else { throw ValidationError(field: "task", "No such task.") }
        guard let handler = handlers[task.kind], handler.mayRun(task, role: role) else {
            throw PermissionError(message: "Your role cannot resume this task.")
        }
        let changed = try pool.write { try $0.run(TaskStore.resume, [id]) }
        if changed == 0 { throw ValidationError(field: "task", "Only an interrupted task can be resumed.") }
        wake()
    }

    /// Starts working through queued tasks (idempotent).
    public func wake() {
        guard !stopping.load(ordering: .relaxed) else { return }
        if scheduled.exchange(true, ordering: .acquiringAndReleasing) { return }
        queue.async { [self] in
            drain()
        }
    }

    /// Stops after the current chunk; waits for it. A task it held is left running under its lease: it counts as
    /// interrupted when a runner next finds it (`shutDown` hands it back instead).
    public func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        heartbeat.replace(with: nil)
        queue.sync {}
        heartbeatQueue.sync {}
        owner.retire()
    }

    /// A clean stop (SIGTERM): after the current chunk, the task this runner held is queued again without counting
    /// as an interruption; the next runner, here or on another host, continues it.
    public func shutDown() {
        stop()
        _ = try? pool.write { try $0.run(TaskStore.requeueRunning, [owner.text]) }
    }

    /// The server's background duty, every `seconds`: renew the lease of the task at hand, take over tasks whose
    /// holder is gone, and look for tasks queued by other processes or hosts.
    public func startPolling(every seconds: Double) {
        let interval = max(0.05, min(seconds, Double(leaseSeconds) / 3))
        let source = DispatchSource.makeTimerSource(queue: heartbeatQueue)
        source.schedule(deadline: .now() + interval, repeating: interval)
        source.setEventHandler { [self] in poll() }
        source.resume()
        heartbeat.replace(with: source)
    }

    /// Renews the lease of the task this runner works on, if any.
    private func renewWorking() {
        let id = working.load(ordering: .relaxed)
        if id != 0 {
            _ = try? pool.write { try $0.run(TaskStore.renew, [clock.now() + leaseSeconds, id, owner.text]) }
        }
    }

    /// One round of `startPolling`'s duty.
    public func poll() {
        guard !stopping.load(ordering: .relaxed) else { return }
        renewWorking()
        do {
            for id in try Approvals.expire(pool: pool, now: clock.now()) {
                Log.info("task expired without approval", ["task": String(id)])
            }
        } catch {
            Log.error("approval expiry failed", ["error": String(describing: error)])
        }
        do {
            let recovery = try recover()
            for id in recovery.resumed { Log.info("task taken over: its holder was gone", ["task": String(id)]) }
            for id in recovery.held { Log.error("task held: interrupted at the same point too often", ["task": String(id)]) }
        } catch {
            Log.error("task poll failed", ["error": String(describing: error)])
        }
        wake()
    }

    /// Runs one task to its end here (the command line's `import` and `bulk`); when another runner holds it (a
    /// server polling the same store), waits for that runner to end it. Returns the task as it ended.
    public func runToEnd(_ id: Int64, wait: Double = 0.2) throws -> TaskRecord? {
        guard let first = try task(id) else { return nil }
        guard handlers[first.kind] != nil else { throw ValidationError(field: "task", "No handler for \(first.kind) here.") }
        // The lease of the task at hand is renewed while it runs here (a server polling the same store would
        // otherwise take it over during a long survey); nothing else is taken or woken.
        let beat = DispatchSource.makeTimerSource(queue: heartbeatQueue)
        let interval = max(0.05, min(2, Double(leaseSeconds) / 3))
        beat.schedule(deadline: .now() + interval, repeating: interval)
        beat.setEventHandler { [self] in renewWorking() }
        beat.resume()
        heartbeat.replace(with: beat)
        defer { heartbeat.replace(with: nil) }
        queue.sync { run(id) }
        while let task = try self.task(id), !task.state.isFinished, task.state != .interrupted, task.state != .awaitingApproval {
            if task.state == .queued {
                queue.sync { run(id) }
            } else {
                usleep(useconds_t(wait * 1_000_000))
                try recover()   // the runner that held it may be gone
            }
        }
        return try self.task(id)
    }

    /// When a chunk last committed or the runner last looked for work (for /healthz), in seconds since 1970.
    public var lastActivity: Int64 { activity.load(ordering: .relaxed) }
    /// Whether a task is being worked on right now.
    public var isBusy: Bool { busy.load(ordering: .relaxed) }
    public var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Runs every queued task to its end, synchronously (tests and the CLI use it).
    public func runUntilIdle() {
        queue.sync { drain() }
    }

    /// Background work yields the CPU to page requests: the runner's thread runs at nice 10 (Linux applies nice per
    /// thread). On a 2-core machine a bulk task at full speed otherwise pushes the pages' p99 past 100 ms.
    private static func lowerThreadPriority() {
        #if os(Linux)
        // who = 0 is the calling thread on Linux (nice is per thread there).
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }

    /// The oldest queued task this runner has a handler for.
    private func nextQueued() -> Int64? {
        let rows = (try? pool.read { try $0.query(TaskStore.nextQueued) }) ?? []
        return rows.first { handlers[$0.string("kind") ?? ""] != nil }?.int64("id")
    }

    private func drain() {
        TaskRunner.lowerThreadPriority()
        while true {
            while !stopping.load(ordering: .relaxed) {
                guard let next = nextQueued() else { break }
                busy.store(true, ordering: .relaxed)
                run(next)
                busy.store(false, ordering: .relaxed)
                activity.store(Int64(Date().timeIntervalSince1970), ordering: .relaxed)
            }
            scheduled.store(false, ordering: .sequentiallyConsistent)
            // A task enqueued between the last look and the line above found `scheduled` still set and did not
            // schedule a drain: look once more, and carry on if one is waiting and nobody else took it.
            guard !stopping.load(ordering: .relaxed),
                  nextQueued() != nil,
                  !scheduled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        }
    }

    private func run(_ id: Int64) {
        var claimed = false
        do {
            guard var task = try self.task(id), let handler = handlers[task.kind] else { return }
            activity.store(Int64(Date().timeIntervalSince1970), ordering: .relaxed)
            // Running from here on, committed before any work: a crash in the survey or the prepare below is an
            // interruption at cursor 0, counted like any other (so it cannot crash-loop the server either).
            claimed = try pool.write { try $0.run(TaskStore.start, [owner.text, clock.now() + leaseSeconds, id]) } == 1
            guard claimed else { return }
            working.store(id, ordering: .relaxed)
            defer { working.store(0, ordering: .relaxed) }
            guard let claimedTask = try self.task(id) else { return }
            task = claimedTask   // as of the claim: an earlier holder may have begun it
            let fresh = task.startedAt == nil
            if fresh {
                for (k, v) in try handler.survey(task) { task.parameters[k] = v }
            }
            let surveyed = task
            let holding = try pool.write { db -> Bool in
                // Still the holder (a slow survey may have outlasted the lease): else another runner has it now.
                guard try db.run(TaskStore.renew, [clock.now() + leaseSeconds, id, owner.text]) == 1 else { return false }
                try db.run(TaskStore.began, [clock.now(), id])
                if fresh {
                    let prepared = try handler.prepare(surveyed, db)
                    var parameters = surveyed.parameters
                    for (k, v) in prepared.parameters { parameters[k] = v }
                    try db.run(TaskStore.prepared, [prepared.total, JSONValue.object(parameters).canonical, id])
                }
                // Renewed again as the prepare commits: a long prepare must not hand the task over as it ends.
                try db.run(TaskStore.renew, [clock.now() + leaseSeconds, id, owner.text])
                return true
            }
            guard holding else { return }
            while true {
                guard let fresh = try self.task(id) else { return }  // deleted with its database meanwhile
                task = fresh
                if task.cancelRequested {
                    try pool.write { try finish(id, .cancelled, $0) }
                    return
                }
                if stopping.load(ordering: .relaxed) { return }  // left running: marked interrupted at next start
                let current = task
                let chunkStarted = Date()
                let outcome = try pool.write { db -> ChunkOutcome? in
                    let now = try db.queryOne(TaskStore.cursorCheck, [id])
                    guard now?.int64("cursor") == current.cursor, now?.string("state") == TaskState.running.rawValue,
                          now?.string("lease_owner") == owner.text else { return nil }
                    let outcome = try handler.runChunk(current, limit: max(chunkSize, handler.preferredChunkSize ?? 0), db)
                    if let abortAtCursor, current.cursor >= abortAtCursor { abort() }
                    try db.run(TaskStore.progress, [outcome.cursor, outcome.processed, outcome.added, outcome.updated, outcome.skipped,
                                                        outcome.failed, outcome.deleted, outcome.message, outcome.message, outcome.outputBytes, id])
                    try db.run(TaskStore.renew, [clock.now() + leaseSeconds, id, owner.text])
                    if !outcome.reasons.isEmpty {
                        var details = TaskRecord.details(try db.scalar(TaskStore.details, [id]).string)
                        for (reason, n) in outcome.reasons { details[reason, default: 0] += n }
                        try db.run(TaskStore.setDetails, [JSONValue.object(details.mapValues { .int(Int64($0)) }).canonical, id])
                    }
                    if outcome.finished {
                        try finish(id, .done, db)
                    }
                    return outcome
                }
                // Another runner moved the task (or it ended): leave it to that runner.
                guard let outcome else { return }
                let seconds = Date().timeIntervalSince(chunkStarted)
                activity.store(Int64(Date().timeIntervalSince1970), ordering: .relaxed)
                Metrics.shared.chunk(kind: current.kind, rows: outcome.processed, seconds: seconds)
                Log.info("chunk", ["task": String(id), "kind": current.kind, "rows": String(outcome.processed),
                                   "ms": Log.milliseconds(seconds), "cursor": String(outcome.cursor),
                                   "finished": outcome.finished ? "1" : "0"])
                if outcome.finished {
                    handler.finished(current)
                    return
                }
                if pauseMilliseconds > 0 { usleep(useconds_t(pauseMilliseconds * 1000)) }
            }
        } catch {
            // Not claimed: the task is another runner's (or still queued). A lost connection to the store says
            // nothing about the task: it stays held until the lease runs out, then it is taken over.
            guard claimed else { return }
            if let failure = error as? any StoreFailure, failure.isConnectionFailure {
                Log.error("task left to its lease: the store connection failed", ["task": String(id), "error": failure.message])
                return
            }
            let message = (error as? ValidationError)?.description ?? "Stopped by an error: \(error)"
            guard (try? pool.write { try finish(id, .failed, message: message, $0) }) == true else { return }
            if !Log.isEnabled { FileHandle.standardError.write(Data("roster: task \(id) failed: \(error)\n".utf8)) }
            Log.error("task failed", ["task": String(id), "error": String(describing: error)])
        }
    }

    /// Ends a task this runner holds: its state and message, and its frozen targets are dropped (only an interrupted
    /// task keeps them). A task this runner no longer holds is left as it is.
    @discardableResult
    private func finish(_ id: Int64, _ state: TaskState, message: String = "", _ db: Connection) throws -> Bool {
        guard try db.run(TaskStore.finishHeld, [state.rawValue, clock.now(), message, message, id, owner.text]) == 1 else { return false }
        try TaskTargets.drop(taskID: id, db)
        return true
    }
}
