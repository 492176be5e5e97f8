import Foundation
@testable import Roster
import Store
import Synchronization
import XCTest

/// Issue #16: "exactly one host runs a given task at a time, through a lease … with a heartbeat. When a host dies
/// mid-task, another takes the task over after the lease expires and resumes from the committed cursor; the end state
/// equals an uninterrupted run." Hosts are played by runners on one store with their own lease holders.
final class TaskLeaseTests: XCTestCase {
    /// Counts to `total` one item per chunk, recording each item once per run: re-running an item shows up as a
    /// count above 1.
    final class Tally: Sendable {
        let items = Mutex<[Int64: Int]>([:])
        func withLock<T>(_ body: (inout [Int64: Int]) -> T) -> T { items.withLock { body(&$0) } }
    }

    struct Counter: TaskHandler {
        let seen: Tally
        let onSurvey: @Sendable () throws -> Void
        var preferredChunkSize: Int? { 1 }
        func survey(_ task: TaskRecord) throws -> [String: JSONValue] { try onSurvey(); return [:] }
        func prepare(_ task: TaskRecord, _ db: Connection) throws -> (total: Int, parameters: [String: JSONValue]) { (5, [:]) }
        func runChunk(_ task: TaskRecord, limit: Int, _ db: Connection) throws -> ChunkOutcome {
            let item = task.cursor + 1
            seen.withLock { $0[item, default: 0] += 1 }
            var outcome = ChunkOutcome(cursor: item)
            outcome.processed = 1
            outcome.updated = 1
            outcome.finished = item == 5
            return outcome
        }
    }

    final class Setup: @unchecked Sendable {
        let pool: DatabasePool
        let now = Mutex<Int64>(1_800_000_000)
        let seen = Tally()
        var onSurvey: @Sendable () throws -> Void = {}
        init() throws { pool = try makePool() }
        var clock: Clock { Clock { [self] in now.withLock { $0 } } }
        func runner() -> TaskRunner {
            TaskRunner(pool: pool, handlers: ["count": Counter(seen: seen, onSurvey: { [self] in try onSurvey() })], clock: clock,
                       chunkSize: 1, leaseSeconds: 60)
        }
        func advance(_ seconds: Int64) { now.withLock { $0 += seconds } }

        /// A counting task recorded by a runner that runs nothing (the test decides who runs it).
        func queued() throws -> Int64 {
            let recorder = runner()
            recorder.stop()
            return try recorder.enqueue(kind: "count", title: "count", databaseID: nil, userID: nil, parameters: [:])
        }
    }

    /// A task left running by a holder as the test says, at cursor 2 (two chunks committed).
    func heldTask(_ s: Setup, holder: String, until: Int64) throws -> Int64 {
        let id = try s.queued()
        try s.pool.write { db in
            try db.run("""
                UPDATE tasks SET state = 'running', started_at = 1, total = 5, cursor = 2, processed = 2, updated = 2,
                    lease_owner = ?, lease_until = ? WHERE id = ?
                """, [holder, until, id])
        }
        s.seen.withLock { $0 = [1: 1, 2: 1] }   // what the first host did before it died
        return id
    }

    // "exactly one host runs a given task at a time": a living holder on another host keeps its task until its lease
    // runs out; then another host takes it over from the committed cursor, and the end state equals one run.
    func testAnotherHostTakesOverOnlyAfterTheLeaseRunsOut() throws {
        let s = try Setup()
        let now = s.now.withLock { $0 }
        let id = try heldTask(s, holder: "other-host/4242/abcd1234", until: now + 60)
        let second = s.runner()
        XCTAssertEqual(try second.recover(), TaskRunner.Recovery(), "the lease runs: nothing to take over")
        second.runUntilIdle()
        XCTAssertEqual(try second.task(id)?.state, .running)
        XCTAssertEqual(try second.task(id)?.cursor, 2, "nobody else worked on it")

        s.advance(61)
        XCTAssertEqual(try second.recover().resumed, [id], "the lease ran out: taken over")
        second.runUntilIdle()
        let task = try XCTUnwrap(second.task(id))
        XCTAssertEqual(task.state, .done)
        XCTAssertEqual([task.processed, task.updated, task.total], [5, 5, 5], "exact counts, as one uninterrupted run")
        XCTAssertEqual(s.seen.withLock { $0 }, [1: 1, 2: 1, 3: 1, 4: 1, 5: 1], "no item twice, none missed")
        XCTAssertEqual(task.interruptions, 1)
        XCTAssertTrue(task.message.contains("continued by itself"), task.message)
    }

    // A restart on the same host need not wait for the lease: the earlier process is gone, so its task is taken
    // over at once.
    func testAnEarlierProcessOnThisHostIsGoneAtOnce() throws {
        let s = try Setup()
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let dead = finished.processIdentifier
        let now = s.now.withLock { $0 }
        let id = try heldTask(s, holder: "\(LeaseOwner.localHost)/\(dead)/deadbeef", until: now + 3600)
        let runner = s.runner()
        XCTAssertEqual(try runner.recover().resumed, [id])
        runner.runUntilIdle()
        XCTAssertEqual(try runner.task(id)?.state, .done)
        XCTAssertEqual(s.seen.withLock { $0 }.values.max(), 1)
    }

    // A runner of this process that stopped leaves its task to the others at once; one still running keeps it.
    func testAStoppedRunnerOfThisProcessLeavesItsTask() throws {
        let s = try Setup()
        let holder = s.runner()
        let now = s.now.withLock { $0 }
        let id = try heldTask(s, holder: holder.owner.text, until: now + 3600)
        let other = s.runner()
        XCTAssertEqual(try other.recover().resumed, [], "its holder runs")
        holder.stop()
        XCTAssertEqual(try other.recover().resumed, [id], "its holder stopped")
    }

    // The heartbeat keeps the lease while a slow step (the survey, outside any chunk) outlasts it: the task is not
    // taken over and finishes without an interruption.
    func testTheHeartbeatRenewsTheLeaseDuringASlowSurvey() throws {
        let s = try Setup()
        let id = try s.queued()
        let worker = s.runner()
        let rival = s.runner()
        s.onSurvey = { [s] in
            s.advance(50)
            worker.poll()      // the heartbeat: renewed to now + 60
            s.advance(50)      // 100 s after the claim: past the first lease, within the renewed one
            _ = try? rival.recover()
        }
        XCTAssertEqual(try worker.runToEnd(id)?.state, .done)
        let task = try XCTUnwrap(worker.task(id))
        XCTAssertEqual(task.interruptions, 0, task.message)
        XCTAssertEqual(s.seen.withLock { $0 }, [1: 1, 2: 1, 3: 1, 4: 1, 5: 1])
    }

    // Without the heartbeat the same slow survey loses the task: the rival takes it over, and the first runner's
    // chunks do not commit (only the holder's do).
    func testALostLeaseStopsTheFirstRunnersChunks() throws {
        let s = try Setup()
        let id = try s.queued()
        let worker = s.runner()
        let rival = s.runner()
        s.onSurvey = { [s] in
            s.advance(100)
            _ = try? rival.recover(autoResumeLimit: 1)   // held as interrupted, so that nobody claims it again
        }
        worker.runUntilIdle()
        XCTAssertEqual(s.seen.withLock { $0 }, [:], "the worker's chunks never ran: it no longer held the lease")
        let task = try XCTUnwrap(worker.task(id))
        XCTAssertEqual(task.state, .interrupted)
        XCTAssertEqual(task.processed, 0)
        s.onSurvey = {}
        try rival.resume(id, role: .admin)
        rival.runUntilIdle()
        XCTAssertEqual(try rival.task(id)?.state, .done)
        XCTAssertEqual(s.seen.withLock { $0 }, [1: 1, 2: 1, 3: 1, 4: 1, 5: 1])
    }

    // A runner only takes the kinds it has a handler for (a command-line runner next to a server's tasks).
    func testARunnerLeavesKindsItCannotRun() throws {
        let s = try Setup()
        let stranger = TaskRunner(pool: s.pool, handlers: ["other": Counter(seen: s.seen, onSurvey: {})], clock: s.clock)
        stranger.stop()
        let foreign = try stranger.enqueue(kind: "other", title: "o", databaseID: nil, userID: nil, parameters: [:])
        let runner = s.runner()
        runner.runUntilIdle()
        XCTAssertEqual(try runner.task(foreign)?.state, .queued)
    }

    // A cancel asked while the task ran, then its host died: the task ends cancelled, not resumed.
    func testACancelAskedBeforeTheHolderDiedEndsCancelled() throws {
        let s = try Setup()
        let now = s.now.withLock { $0 }
        let id = try heldTask(s, holder: "other-host/4242/abcd1234", until: now + 60)
        let runner = s.runner()
        try runner.cancel(id)
        XCTAssertEqual(try runner.task(id)?.state, .running, "its holder stops it after its chunk")
        s.advance(61)   // …but the holder is gone
        try runner.recover()
        XCTAssertEqual(try runner.task(id)?.state, .cancelled)
        runner.runUntilIdle()
        XCTAssertEqual(s.seen.withLock { $0 }, [1: 1, 2: 1], "nothing ran after the cancel")
    }

    // A runner that lost its lease and then meets an error does not end the task: the task is the new holder's.
    func testARunnerThatLostItsLeaseDoesNotFailTheTask() throws {
        let s = try Setup()
        let id = try s.queued()
        let worker = s.runner()
        let rival = s.runner()
        s.onSurvey = { [s] in
            s.advance(100)
            _ = try? rival.recover()
            s.onSurvey = {}
            throw ValidationError(field: "x", "the survey failed after the lease ran out")
        }
        worker.runUntilIdle()
        let task = try XCTUnwrap(worker.task(id))
        XCTAssertNotEqual(task.state, .failed, task.message)
        XCTAssertEqual(task.state, .done, "taken over (by the rival's recovery) and run to its end")
        XCTAssertEqual(s.seen.withLock { $0 }, [1: 1, 2: 1, 3: 1, 4: 1, 5: 1])
    }
}
