import Foundation
import HTTP
@testable import Roster
import Synchronization
@testable import Web
import XCTest

/// Issue #17, "Approval": "Settings → Approvals: require a second admin for delete inactive, for global unsubscribe,
/// and for any task over N profiles. Such a task waits as awaiting approval on the Tasks page; another admin (never
/// the one who launched it) sees the same preview and approves or rejects it with a reason; who launched, who approved
/// and when are shown on the task page. Tasks awaiting approval expire after 7 days." Tests: "the launcher cannot
/// approve; a rejected or expired task changes nothing; a viewer or editor cannot approve."
final class ApprovalsTests: XCTestCase {
    final class Time: Sendable {
        let value = Mutex<Int64>(1_700_000_000)
        func withLock<T: Sendable>(_ body: (inout Int64) -> T) -> T { value.withLock { body(&$0) } }
    }

    final class Setup {
        let app: WebApp
        let now: Time
        let first: Browser, second: Browser, editor: Browser, viewer: Browser
        var db: ProfileDatabase!

        init() throws {
            let now = Time()
            self.now = now
            let (app, _) = try makeApp(clock: Clock { now.withLock { $0 } })
            self.app = app
            app.services.tasks.stop()   // the test runs tasks itself (runUntilIdle on a stopped runner does nothing)
            let accounts = app.services.accounts
            // Ten profiles created long ago with no interaction since: delete inactive takes them all.
            let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
            for i in 0..<10 {
                _ = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "p\(i)@x.io"]), actor: nil)
            }
            now.withLock { $0 = 1_790_000_000 }
            var browsers: [Browser] = []
            for (email, role) in [("ann@example.com", Role.admin), ("bob@example.com", .admin), ("ed@example.com", .editor),
                                  ("vic@example.com", .viewer)] {
                try accounts.createUser(email: email, name: "", role: role, password: "password for \(email)")
                let b = Browser(app)
                precondition(b.login(email, "password for \(email)").status == 303)
                browsers.append(b)
            }
            (first, second, editor, viewer) = (browsers[0], browsers[1], browsers[2], browsers[3])
            self.db = db
        }

        /// A runner of its own runs whatever is queued (the app's runner is stopped).
        func runTasks() {
            TaskRunner(pool: app.services.pool, handlers: [BulkUpdateTask.kind: BulkUpdateTask(clock: app.services.clock)],
                       clock: app.services.clock).runUntilIdle()
        }

        func profiles() throws -> Int { try app.services.databases.profileCount(db.id) }

        func saveRules(_ b: Browser, _ fields: [(String, String)]) -> Response {
            b.post("/settings/approvals", [("csrf_token", b.csrfToken)] + fields)
        }

        /// Launches through the bulk form; returns the task id.
        func launch(_ b: Browser, _ action: [(String, String)], limit: String = "") throws -> Int64 {
            let fields: [(String, String)] = [("csrf_token", b.csrfToken), ("node", "r"), ("kind_r", "group"), ("join_r", "and"),
                                              ("range_from", "0"), ("range_to", "100"), ("limit", limit)] + action + [("action", "launch")]
            let r = b.post("/databases/\(db.id)/bulk-update", fields)
            XCTAssertEqual(r.status, 303, r.bodyText)
            return try XCTUnwrap(r.header("Location")?.split(separator: "/").last.flatMap { Int64($0) })
        }

        func task(_ id: Int64) throws -> TaskRecord { try XCTUnwrap(app.services.tasks.task(id)) }

        /// Opens the task's preview as `b` and approves with the count it showed; the response.
        func approveAfterPreview(_ b: Browser, _ id: Int64) -> Response {
            let page = b.get("/tasks/\(id)?preview=1").bodyText
            let count = page.range(of: "name=\"previewed\" value=\"").map { String(page[$0.upperBound...].prefix { $0.isNumber }) } ?? ""
            return b.post("/tasks/\(id)/approve", [("csrf_token", b.csrfToken), ("previewed", count)])
        }

        /// A browser signed in now (sessions end after 7 days, and the tests move the clock past that).
        func signedIn(_ email: String) -> Browser {
            let b = Browser(app)
            precondition(b.login(email, "password for \(email)").status == 303)
            return b
        }
    }

    func testADeletionWaitsForASecondAdminWhoSeesThePreviewAndApproves() throws {
        let s = try Setup()
        XCTAssertEqual(s.saveRules(s.first, [("delete_inactive", "1")]).status, 303)
        let id = try s.launch(s.first, [("bulk_action", "delete_inactive")], limit: "100")
        XCTAssertEqual(try s.task(id).state, .awaitingApproval)
        s.runTasks()
        XCTAssertEqual(try s.profiles(), 10, "nothing is deleted before approval")
        XCTAssertTrue(s.first.get("/tasks").bodyText.contains("Awaiting approval"))

        // The launcher, an editor and a viewer cannot approve.
        XCTAssertEqual(s.first.post("/tasks/\(id)/approve", [("csrf_token", s.first.csrfToken)]).status, 403)
        XCTAssertFalse(s.first.get("/tasks/\(id)").bodyText.contains("Approve and run"), "the launcher is not offered approval")
        XCTAssertEqual(s.editor.post("/tasks/\(id)/approve", [("csrf_token", s.editor.csrfToken)]).status, 403)
        XCTAssertEqual(s.viewer.post("/tasks/\(id)/approve", [("csrf_token", s.viewer.csrfToken)]).status, 403)
        XCTAssertThrowsError(try s.app.services.approvals.approve(id, by: XCTUnwrap(s.app.services.accounts.user(email: "ann@example.com")), previewed: 10))
        s.runTasks()
        XCTAssertEqual(try s.task(id).state, .awaitingApproval)
        XCTAssertEqual(try s.profiles(), 10)

        // The second admin asks for the preview (approving without it is refused), sees what it will do, approves.
        let page = s.second.get("/tasks/\(id)").bodyText
        XCTAssertTrue(page.contains("it deletes profiles"), page)
        XCTAssertTrue(page.contains("Preview what it will do"), page)
        let blind = s.second.post("/tasks/\(id)/approve", [("csrf_token", s.second.csrfToken)])
        XCTAssertEqual(blind.status, 422)
        XCTAssertTrue(blind.bodyText.contains("Look at the preview"), blind.bodyText)
        let previewed = s.second.get("/tasks/\(id)?preview=1").bodyText
        XCTAssertTrue(previewed.contains("Will be deleted"), previewed)
        XCTAssertTrue(previewed.contains("Approve and run"), previewed)
        XCTAssertEqual(s.approveAfterPreview(s.second, id).status, 303)
        s.runTasks()
        let done = try s.task(id)
        XCTAssertEqual(done.state, .done)
        XCTAssertEqual(done.deleted, 10)
        XCTAssertEqual(try s.profiles(), 0)
        let shown = s.first.get("/tasks/\(id)").bodyText
        XCTAssertTrue(shown.contains("Approved by bob@example.com"), shown)
        XCTAssertTrue(shown.contains("launched by ann@example.com"), shown)
    }

    func testARejectedTaskChangesNothingAndSaysWhy() throws {
        let s = try Setup()
        _ = s.saveRules(s.first, [("unsubscribe", "1")])
        let id = try s.launch(s.first, [("bulk_action", "unsubscribe")], limit: "100")
        XCTAssertEqual(try s.task(id).state, .awaitingApproval)
        let empty = s.second.post("/tasks/\(id)/reject", [("csrf_token", s.second.csrfToken), ("reason", "  ")])
        XCTAssertEqual(empty.status, 422)
        XCTAssertTrue(empty.bodyText.contains("Say why"), empty.bodyText)
        XCTAssertEqual(s.first.post("/tasks/\(id)/reject", [("csrf_token", s.first.csrfToken), ("reason", "mine")]).status, 403,
                       "the launcher cannot decide either way (cancelling is theirs)")
        XCTAssertEqual(s.second.post("/tasks/\(id)/reject", [("csrf_token", s.second.csrfToken), ("reason", "Wrong segment")]).status, 303)
        s.runTasks()
        let task = try s.task(id)
        XCTAssertEqual(task.state, .cancelled)
        XCTAssertTrue(task.message.contains("Wrong segment"), task.message)
        XCTAssertTrue(s.first.get("/tasks/\(id)").bodyText.contains("Rejected by bob@example.com"))
        let statuses = try s.app.services.profiles.list(databaseID: s.db.id, ProfileQuery()).profiles.map(\.status)
        XCTAssertTrue(statuses.allSatisfy { $0 != .unsubscribed }, "nobody was unsubscribed")
        XCTAssertEqual(s.approveAfterPreview(s.second, id).status, 422, "decided already")
    }

    func testATaskNotApprovedWithinSevenDaysExpiresAndChangesNothing() throws {
        let s = try Setup()
        _ = s.saveRules(s.first, [("delete_inactive", "1")])
        let id = try s.launch(s.first, [("bulk_action", "delete_inactive")], limit: "100")
        // The server's runner polls every 2 s; one poll is played here.
        let server = TaskRunner(pool: s.app.services.pool, handlers: [BulkUpdateTask.kind: BulkUpdateTask(clock: s.app.services.clock)],
                                clock: s.app.services.clock)
        s.now.withLock { $0 += 7 * 86_400 - 1 }
        server.poll()
        XCTAssertEqual(try s.task(id).state, .awaitingApproval, "within 7 days it still waits")
        s.now.withLock { $0 += 2 }
        server.poll()
        XCTAssertEqual(try s.task(id).state, .cancelled, "expired by the poll")
        let bob = s.signedIn("bob@example.com")
        XCTAssertEqual(s.approveAfterPreview(bob, id).status, 422, "too late to approve")
        // Expired when someone tries to approve it, even before a poll.
        let other = try s.launch(s.signedIn("ann@example.com"), [("bulk_action", "delete_inactive")], limit: "100")
        s.now.withLock { $0 += 7 * 86_400 + 1 }
        let later = s.signedIn("bob@example.com")
        XCTAssertEqual(later.post("/tasks/\(other)/approve", [("csrf_token", later.csrfToken), ("previewed", "10")]).status, 422)
        XCTAssertEqual(try s.task(other).state, .cancelled)
        let task = try s.task(id)
        XCTAssertEqual(task.state, .cancelled)
        XCTAssertTrue(task.message.contains("Expired"), task.message)
        s.runTasks()
        XCTAssertEqual(try s.profiles(), 10)
    }

    func testTheProfileLimitAppliesToAnyBulkUpdateOverIt() throws {
        let s = try Setup()
        XCTAssertEqual(s.saveRules(s.first, [("over_profiles", "5")]).status, 303)
        XCTAssertEqual(try s.app.services.approvals.rules(), ApprovalRules(overProfiles: 5))
        let all = try s.launch(s.first, [("bulk_action", "update_fields"), ("field_0", "_city"), ("mode_0", "set"), ("value_0", "Oslo")])
        XCTAssertEqual(try s.task(all).state, .awaitingApproval)
        XCTAssertTrue(try s.task(all).approvalReason?.contains("selects 10 profiles, more than 5") ?? false)
        let few = try s.launch(s.first, [("bulk_action", "update_fields"), ("field_0", "_city"), ("mode_0", "set"), ("value_0", "Rome")],
                               limit: "5")
        XCTAssertEqual(try s.task(few).state, .queued, "5 profiles: not over the limit")
        s.runTasks()
        XCTAssertEqual(try s.task(few).updated, 5)
        XCTAssertEqual(try s.task(all).state, .awaitingApproval)
        // Without rules, launches run at once as before.
        XCTAssertEqual(s.saveRules(s.first, [("over_profiles", "")]).status, 303)
        let free = try s.launch(s.second, [("bulk_action", "update_fields"), ("field_0", "_city"), ("mode_0", "set"), ("value_0", "Oslo")])
        XCTAssertEqual(try s.task(free).state, .queued)
    }

    func testOnlyAdminsSetTheRulesAndBadLimitsAreRefused() throws {
        let s = try Setup()
        XCTAssertEqual(s.saveRules(s.editor, [("delete_inactive", "1")]).status, 403)
        for bad in ["abc", "0", "-3", "99999999999999"] {
            let r = s.saveRules(s.first, [("delete_inactive", "1"), ("over_profiles", bad)])
            XCTAssertEqual(r.status, 422, bad)
            XCTAssertTrue(r.bodyText.contains("profiles"), r.bodyText)
        }
        XCTAssertEqual(try s.app.services.approvals.rules(), ApprovalRules(), "a refused form changes nothing")
        XCTAssertTrue(s.first.get("/settings").bodyText.contains("Approvals"))
        XCTAssertFalse(s.editor.get("/settings").bodyText.contains("Save the approval rules"))
    }

    // An approval holds for what the approver saw: a selection that changed since the preview is refused at
    // approval, and one that grew after approval is refused when the task starts; nothing changes either way.
    func testAnApprovalHoldsOnlyForTheSelectionThatWasPreviewed() throws {
        let s = try Setup()
        _ = s.saveRules(s.first, [("delete_inactive", "1")])
        let id = try s.launch(s.first, [("bulk_action", "delete_inactive")], limit: "100")
        let page = s.second.get("/tasks/\(id)?preview=1").bodyText
        XCTAssertTrue(page.contains("name=\"previewed\" value=\"10\""), page)
        _ = try s.app.services.profiles.create(databaseID: s.db.id, ProfileInput(values: ["email": "late@x.io"]), actor: nil)
        let stale = s.second.post("/tasks/\(id)/approve", [("csrf_token", s.second.csrfToken), ("previewed", "10")])
        XCTAssertEqual(stale.status, 422)
        XCTAssertTrue(stale.bodyText.contains("changed since your preview"), stale.bodyText)
        XCTAssertEqual(try s.task(id).state, .awaitingApproval)
        XCTAssertEqual(s.approveAfterPreview(s.second, id).status, 303, "approved on a fresh preview (11)")
        // Two more profiles before the runner starts it: 13 selected, 11 approved.
        for email in ["later1@x.io", "later2@x.io"] {
            _ = try s.app.services.profiles.create(databaseID: s.db.id, ProfileInput(values: ["email": email]), actor: nil)
        }
        s.runTasks()
        let task = try s.task(id)
        XCTAssertEqual(task.state, .failed)
        XCTAssertTrue(task.message.contains("grew from 11 to 13"), task.message)
        XCTAssertEqual(try s.profiles(), 13, "nothing was deleted")
    }

    // A rule set after a task was launched (and before it started) holds: the task is refused at its start.
    func testARuleSetAfterTheLaunchStopsAnUnapprovedTask() throws {
        let s = try Setup()
        let id = try s.launch(s.first, [("bulk_action", "delete_inactive")], limit: "100")
        XCTAssertEqual(try s.task(id).state, .queued)
        _ = s.saveRules(s.second, [("delete_inactive", "1")])
        s.runTasks()
        let task = try s.task(id)
        XCTAssertEqual(task.state, .failed)
        XCTAssertTrue(task.message.contains("was not approved"), task.message)
        XCTAssertEqual(try s.profiles(), 10)
    }

    // Only the launcher or an admin cancels a waiting task; waiting tasks are not work the runner owes (/healthz).
    func testWaitingTasksAreCancelledByTheLauncherOrAnAdminAndDoNotAlarmTheHealthCheck() throws {
        let s = try Setup()
        _ = s.saveRules(s.first, [("unsubscribe", "1")])
        let id = try s.launch(s.first, [("bulk_action", "unsubscribe")], limit: "100")
        XCTAssertEqual(s.editor.post("/tasks/\(id)/cancel", [("csrf_token", s.editor.csrfToken)]).status, 403)
        XCTAssertEqual(try s.task(id).state, .awaitingApproval)
        let server = TaskRunner(pool: s.app.services.pool, handlers: [BulkUpdateTask.kind: BulkUpdateTask(clock: s.app.services.clock)],
                                clock: s.app.services.clock)
        let health = Checkup.health(pool: s.app.services.pool, tasks: server, files: s.app.services.files,
                                    now: Date().timeIntervalSince1970 + 3600)
        XCTAssertEqual(health.first { $0.name == "tasks" }?.ok, true, "\(health)")
        let metrics = try OperationsGauges.read(pool: s.app.services.pool, now: s.app.services.clock.now())
        XCTAssertEqual(metrics.tasksByState["awaiting_approval"], 1)
        XCTAssertEqual(metrics.tasksByState["queued"] ?? 0, 0)
        XCTAssertEqual(s.first.post("/tasks/\(id)/cancel", [("csrf_token", s.first.csrfToken)]).status, 303)
        XCTAssertEqual(try s.task(id).state, .cancelled)
    }
}
