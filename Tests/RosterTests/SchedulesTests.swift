import Foundation
import Synchronization
@testable import Roster
import Store
import XCTest

/// Schedules, from issue #17: once at a chosen time or daily, weekly on a day, monthly on a day, at a time in a time
/// zone; each run an ordinary task (frozen targets, approval if the rules say so); paused, edited, deleted; a slot runs
/// exactly once, across a restart, and a slot missed while the server was down runs once when it is back.
final class SchedulesTests: XCTestCase, BulkFixtures {
    final class MovableClock: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Int64
        init(_ start: Int64) { value = start }
        var now: Int64 {
            get { lock.lock(); defer { lock.unlock() }; return value }
            set { lock.lock(); value = newValue; lock.unlock() }
        }
        var clock: Clock { Clock { [self] in now } }
    }

    /// 2026-09-21 (a Monday) 00:00 UTC.
    static let monday: Int64 = 1_789_948_800

    func at(_ text: String, _ zone: String = "UTC") -> Int64 {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: zone)
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return Int64(formatter.date(from: text)!.timeIntervalSince1970)
    }

    func testSlotsFollowTheCalendarOfTheTimeZone() throws {
        XCTAssertEqual(at("2026-09-21 00:00"), SchedulesTests.monday)
        let daily = try ScheduleTiming.parse(recurrence: "daily", date: "", time: "09:30", weekday: "", day: "", zone: "Europe/Berlin")
        XCTAssertEqual(daily.next(after: at("2026-09-21 07:29")), at("2026-09-21 09:30", "Europe/Berlin"), "09:30 in Berlin is 07:30 UTC")
        XCTAssertEqual(daily.next(after: at("2026-09-21 09:30", "Europe/Berlin")), at("2026-09-22 09:30", "Europe/Berlin"), "strictly after")
        // Across the end of summer time (25 October 2026), still 09:30 on the wall clock.
        XCTAssertEqual(daily.next(after: at("2026-10-25 00:00")), at("2026-10-25 09:30", "Europe/Berlin"))
        XCTAssertEqual(at("2026-10-25 09:30", "Europe/Berlin") - at("2026-10-24 09:30", "Europe/Berlin"), 25 * 3600)
        let weekly = try ScheduleTiming.parse(recurrence: "weekly", date: "", time: "18:00", weekday: "5", day: "", zone: "UTC")
        XCTAssertEqual(weekly.next(after: SchedulesTests.monday), at("2026-09-25 18:00"), "Friday")
        let monthly = try ScheduleTiming.parse(recurrence: "monthly", date: "", time: "03:00", weekday: "", day: "31", zone: "UTC")
        XCTAssertEqual(monthly.next(after: SchedulesTests.monday), at("2026-09-30 03:00"), "September has 30 days: its last day")
        XCTAssertEqual(monthly.next(after: at("2026-10-01 00:00")), at("2026-10-31 03:00"))
        XCTAssertEqual(monthly.next(after: at("2027-02-01 00:00")), at("2027-02-28 03:00"))
        let first = try ScheduleTiming.parse(recurrence: "monthly", date: "", time: "00:00", weekday: "", day: "1", zone: "UTC")
        XCTAssertEqual(first.next(after: at("2026-12-31 12:00")), at("2027-01-01 00:00"))
        let once = try ScheduleTiming.parse(recurrence: "once", date: "2026-12-24", time: "18:00", weekday: "", day: "", zone: "America/New_York")
        XCTAssertEqual(once.next(after: SchedulesTests.monday), at("2026-12-24 18:00", "America/New_York"))
        XCTAssertNil(once.next(after: at("2026-12-31 00:00")))
        // A time the clocks skip (02:30 on 29 March 2026 in Berlin) still runs that day, an hour later on the wall clock.
        let gap = try ScheduleTiming.parse(recurrence: "daily", date: "", time: "02:30", weekday: "", day: "", zone: "Europe/Berlin")
        let slot = try XCTUnwrap(gap.next(after: at("2026-03-28 23:00")))
        XCTAssertEqual(gap.localDay(slot), "2026-03-29")
        XCTAssertEqual(slot, at("2026-03-29 01:30"), "03:30 summer time")
        XCTAssertNoThrow(try ScheduleTiming.parse(recurrence: "once", date: "2026-03-29", time: "02:30", weekday: "", day: "", zone: "Europe/Berlin"))
        // A one-off's date is its own zone's: 08:00 in Tokyo is the day before in UTC.
        let tokyo = try ScheduleTiming.parse(recurrence: "once", date: "2026-10-02", time: "08:00", weekday: "", day: "", zone: "Asia/Tokyo")
        if case .once(let at) = tokyo.recurrence { XCTAssertEqual(tokyo.localDay(at), "2026-10-02"); XCTAssertEqual(UTCTime.day(at), "2026-10-01") }
        XCTAssertEqual(first.words, "every month on day 1 at 00:00 (UTC)")
        XCTAssertEqual(weekly.words, "every Friday at 18:00 (UTC)")

        func refuse(_ recurrence: String, date: String = "", time: String = "10:00", weekday: String = "", day: String = "",
                    zone: String = "UTC", _ field: String) {
            XCTAssertThrowsError(try ScheduleTiming.parse(recurrence: recurrence, date: date, time: time, weekday: weekday, day: day, zone: zone)) {
                XCTAssertNotNil(($0 as? ValidationError)?.fieldErrors[field], "\($0)")
            }
        }
        refuse("hourly", "schedule_recurrence")
        refuse("daily", time: "24:00", "schedule_time")
        refuse("daily", time: "9", "schedule_time")
        refuse("daily", zone: "Mars/Olympus", "schedule_zone")
        refuse("weekly", weekday: "8", "schedule_weekday")
        refuse("monthly", day: "0", "schedule_day")
        refuse("once", date: "2026-02-30", "schedule_date")
        refuse("once", date: "tomorrow", "schedule_date")
    }

    struct Fixture {
        let s: BulkSetup
        let clock: MovableClock
        let schedules: Schedules
        let bulk: BulkUpdates
    }

    func fixture() throws -> Fixture {
        let s = try makeSetup(count: 6)
        let clock = MovableClock(SchedulesTests.monday)
        let bulk = BulkUpdates(pool: s.pool, tasks: s.runner, clock: clock.clock)
        return Fixture(s: s, clock: clock, schedules: Schedules(pool: s.pool, bulk: bulk, clock: clock.clock), bulk: bulk)
    }

    func tasks(_ s: BulkSetup) throws -> Int { try s.pool.read { try $0.scalar("SELECT COUNT(*) FROM tasks").int ?? -1 } }

    func testEachSlotRunsOnceAcrossARestartAndAMissedSlotRunsOnceLate() throws {
        let f = try fixture()
        let request = BulkRequest(databaseID: f.s.db.id, selection: Selection(limit: 3), action: .updateFields([FieldChange(field: "vip", value: "true")]))
        let timing = try ScheduleTiming.parse(recurrence: "daily", date: "", time: "03:00", weekday: "", day: "", zone: "UTC")
        let id = try f.schedules.create(request, title: "Nightly VIPs", timing: timing, user: f.s.editor)
        XCTAssertEqual(try f.schedules.get(id)?.nextRun, at("2026-09-21 03:00"))
        f.clock.now = at("2026-09-21 02:59")
        XCTAssertEqual(try f.schedules.runDue(), [], "not yet")
        f.clock.now = at("2026-09-21 03:00")
        let first = try f.schedules.runDue()
        XCTAssertEqual(first.count, 1)
        XCTAssertEqual(try f.schedules.runDue(), [], "the slot has run")
        // A restart: a new service over the same store owes nothing for this slot.
        let restarted = Schedules(pool: f.s.pool, bulk: f.bulk, clock: f.clock.clock)
        XCTAssertEqual(try restarted.runDue(), [])
        XCTAssertEqual(try f.schedules.get(id)?.nextRun, at("2026-09-22 03:00"))
        // The run is an ordinary task, launched by the schedule's maker.
        f.s.runner.runUntilIdle()
        let task = try XCTUnwrap(f.s.runner.task(first[0]))
        XCTAssertEqual([task.state.rawValue, String(task.updated), task.createdByEmail ?? ""], ["done", "3", "e@x.io"])
        XCTAssertEqual(try f.schedules.get(id)?.lastTaskID, first[0])

        // Down for three days: the missed slots run once, late, and the next is the first slot after now.
        f.clock.now = at("2026-09-25 10:00")
        let before = try tasks(f.s)
        // Four hosts (or timers) at once: one of them gets the slot.
        let counts = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let host = Schedules(pool: f.s.pool, bulk: f.bulk, clock: f.clock.clock)
            let n = (try? host.runDue().count) ?? -100
            counts.withLock { $0.append(n) }
        }
        XCTAssertEqual(counts.withLock { $0.reduce(0, +) }, 1)
        XCTAssertEqual(try tasks(f.s), before + 1, "one task for the missed slots")
        XCTAssertEqual(try f.schedules.get(id)?.nextRun, at("2026-09-26 03:00"))
        f.s.runner.runUntilIdle()
    }

    func testPausedSchedulesOweNothingAndApprovalRulesApplyToEachRun() throws {
        let f = try fixture()
        let request = BulkRequest(databaseID: f.s.db.id, selection: Selection(limit: 2), action: .unsubscribe)
        let timing = try ScheduleTiming.parse(recurrence: "weekly", date: "", time: "08:00", weekday: "1", day: "", zone: "UTC")
        let id = try f.schedules.create(request, title: "Monday cleanup", timing: timing, user: f.s.admin)
        try f.schedules.setPaused(id, true, user: f.s.admin)
        f.clock.now = at("2026-09-21 09:00")
        XCTAssertEqual(try f.schedules.runDue(), [], "paused")
        try f.schedules.setPaused(id, false, user: f.s.admin)
        XCTAssertEqual(try f.schedules.get(id)?.nextRun, at("2026-09-28 08:00"), "resumed: the next slot from now, not the one missed while paused")
        // A rule set after the schedule was made applies to its runs.
        try Approvals(pool: f.s.pool, tasks: f.s.runner).save(ApprovalRules(unsubscribe: true), by: f.s.admin)
        f.clock.now = at("2026-09-28 08:00")
        let run = try f.schedules.runDue()
        XCTAssertEqual(run.count, 1)
        XCTAssertEqual(try run.first.flatMap { try f.s.runner.task($0) }?.state, .awaitingApproval)
        // Edited: a new time; the next run follows it.
        try f.schedules.update(id, title: "Monday cleanup", timing: try ScheduleTiming.parse(
            recurrence: "daily", date: "", time: "07:15", weekday: "", day: "", zone: "UTC"), user: f.s.admin)
        XCTAssertEqual(try f.schedules.get(id)?.nextRun, at("2026-09-29 07:15"))
        // Only the maker or an admin changes it; deleted, it is gone.
        XCTAssertThrowsError(try f.schedules.setPaused(id, true, user: f.s.editor))
        try f.schedules.delete(id, user: f.s.admin)
        XCTAssertNil(try f.schedules.get(id))
    }

    func testARunThatCannotLaunchSaysWhyAndWaitsForTheNextSlot() throws {
        let f = try fixture()
        let request = BulkRequest(databaseID: f.s.db.id, selection: Selection(limit: 2), action: .updateFields([FieldChange(field: "vip", value: "true")]))
        let timing = try ScheduleTiming.parse(recurrence: "daily", date: "", time: "06:00", weekday: "", day: "", zone: "UTC")
        // Checked as a launch is: a viewer cannot schedule, a past one-off is refused, and so is a forged field.
        XCTAssertThrowsError(try f.schedules.create(request, title: "x", timing: timing, user: f.s.viewer))
        XCTAssertThrowsError(try f.schedules.create(request, title: "x", timing: ScheduleTiming(recurrence: .once(at: SchedulesTests.monday - 60)),
                                                    user: f.s.editor))
        XCTAssertThrowsError(try f.schedules.create(BulkRequest(databaseID: f.s.db.id, selection: Selection(), action: .updateFields([
            FieldChange(field: "nope", value: "1")])), title: "x", timing: timing, user: f.s.editor))
        XCTAssertThrowsError(try f.schedules.create(request, title: " ", timing: timing, user: f.s.editor))
        XCTAssertEqual(try f.schedules.list().count, 0, "nothing recorded")

        let id = try f.schedules.create(request, title: "Morning", timing: timing, user: f.s.editor)
        try Accounts(pool: f.s.pool).deleteUser(userID: f.s.editor.id, actingUserID: f.s.admin.id)
        f.clock.now = at("2026-09-21 06:00")
        XCTAssertEqual(try f.schedules.runDue(), [])
        let schedule = try XCTUnwrap(f.schedules.get(id))
        XCTAssertTrue(schedule.lastError?.contains("no longer has an account") ?? false, schedule.lastError ?? "")
        XCTAssertEqual(schedule.nextRun, at("2026-09-22 06:00"))
        XCTAssertEqual(try tasks(f.s), 0)
    }
}
