import Foundation
import Store

/// When a schedule runs: once at an instant, or every day, every week on a day, every month on a day, at a time of
/// day in a time zone.
public enum Recurrence: Sendable, Equatable {
    case once(at: Int64)
    case daily
    /// 1 = Monday … 7 = Sunday.
    case weekly(weekday: Int)
    /// 1 … 31; in a shorter month, its last day.
    case monthly(day: Int)

    public var name: String {
        switch self {
        case .once: return "once"
        case .daily: return "daily"
        case .weekly: return "weekly"
        case .monthly: return "monthly"
        }
    }
}

public struct ScheduleTiming: Sendable, Equatable {
    public var recurrence: Recurrence
    /// Minutes after local midnight, 0 … 1439 (a one-off keeps its own instant).
    public var minuteOfDay: Int
    /// An IANA time zone name ("Europe/Berlin", "UTC").
    public var timeZone: String

    public init(recurrence: Recurrence, minuteOfDay: Int = 0, timeZone: String = "UTC") {
        self.recurrence = recurrence
        self.minuteOfDay = minuteOfDay
        self.timeZone = timeZone
    }

    public static let weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

    /// The timing a form (or the command line) describes; every field is checked, and a refusal names it.
    /// `date` (YYYY-MM-DD) is for "once"; `time` is HH:MM; `weekday` 1–7; `day` 1–31.
    public static func parse(recurrence: String, date: String, time: String, weekday: String, day: String,
                             zone: String) throws -> ScheduleTiming {
        var errors: [String: String] = [:]
        let zoneName = zone.trimmingCharacters(in: .whitespaces).isEmpty ? "UTC" : zone.trimmingCharacters(in: .whitespaces)
        let tz = zoneName.utf8.count <= 64 ? TimeZone(identifier: zoneName) : nil
        if tz == nil { errors["schedule_zone"] = "Enter a time zone by its name, like Europe/Berlin or UTC." }
        let parts = time.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        var minute = 0
        if time.utf8.count <= 5, parts.count == 2, let h = parts[0], let m = parts[1], (0...23).contains(h), (0...59).contains(m) {
            minute = h * 60 + m
        } else {
            errors["schedule_time"] = "Enter the time as HH:MM (24-hour), like 09:30."
        }
        var result: Recurrence = .daily
        switch recurrence {
        case "once":
            let d = date.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            if date.utf8.count == 10, d.count == 3, let y = d[0], let mo = d[1], let da = d[2], (2000...2200).contains(y), let tz,
               DateComponents(year: y, month: mo, day: da).isValidDate(in: calendar(tz)),
               let instant = ScheduleTiming.instant(year: y, month: mo, day: da, minute: minute, tz) {
                result = .once(at: instant)
            } else {
                errors["schedule_date"] = "Enter a date as YYYY-MM-DD."
            }
        case "daily": result = .daily
        case "weekly":
            guard let w = Int(weekday), (1...7).contains(w) else { errors["schedule_weekday"] = "Choose a day of the week."; break }
            result = .weekly(weekday: w)
        case "monthly":
            guard let m = Int(day), (1...31).contains(m) else { errors["schedule_day"] = "Choose a day of the month from 1 to 31."; break }
            result = .monthly(day: m)
        default: errors["schedule_recurrence"] = "Choose once, daily, weekly or monthly."
        }
        if !errors.isEmpty { throw ValidationError(errors) }
        return ScheduleTiming(recurrence: result, minuteOfDay: minute, timeZone: zoneName)
    }

    static func calendar(_ tz: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = tz
        return calendar
    }

    /// The instant of a local date and time; a time the clocks skip (a DST gap) moves forward, as the calendar does.
    static func instant(year: Int, month: Int, day: Int, minute: Int, _ tz: TimeZone) -> Int64? {
        let calendar = calendar(tz)
        // (Not `isValidDate`: it refuses a wall-clock time inside a DST gap, which would skip that day's run.)
        let components = DateComponents(year: year, month: month, day: day, hour: minute / 60, minute: minute % 60)
        guard let date = calendar.date(from: components) else { return nil }
        return Int64(date.timeIntervalSince1970.rounded(.down))
    }

    /// The first slot strictly after `t`; nil when there is none (a one-off whose time has passed).
    public func next(after t: Int64) -> Int64? {
        if case .once(let at) = recurrence { return at > t ? at : nil }
        guard let tz = TimeZone(identifier: timeZone) else { return nil }
        let calendar = ScheduleTiming.calendar(tz)
        var day = calendar.startOfDay(for: Date(timeIntervalSince1970: TimeInterval(t)))
        // A slot is at most a month and a few days away; two months of days always find it.
        for _ in 0..<64 {
            let c = calendar.dateComponents([.year, .month, .day, .weekday], from: day)
            guard let year = c.year, let month = c.month, let dom = c.day, let weekday = c.weekday else { return nil }
            let matches: Bool
            switch recurrence {
            case .once, .daily: matches = true
            case .weekly(let w): matches = (weekday + 5) % 7 + 1 == w   // Calendar: 1 = Sunday
            case .monthly(let d):
                let last = calendar.range(of: .day, in: .month, for: day)?.count ?? 28
                matches = dom == min(d, last)
            }
            if matches, let slot = ScheduleTiming.instant(year: year, month: month, day: dom, minute: minuteOfDay, tz), slot > t {
                return slot
            }
            guard let following = calendar.date(byAdding: .day, value: 1, to: day) else { return nil }
            day = following
        }
        return nil
    }

    /// The local date (YYYY-MM-DD) of `instant` in the timing's zone.
    public func localDay(_ instant: Int64) -> String {
        let tz = TimeZone(identifier: timeZone) ?? TimeZone(secondsFromGMT: 0) ?? .current
        let c = ScheduleTiming.calendar(tz).dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: TimeInterval(instant)))
        return String(format: "%04d-%02d-%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
    }

    /// "every Monday at 09:30 (Europe/Berlin)".
    public var words: String {
        let time = String(format: "%02d:%02d", minuteOfDay / 60, minuteOfDay % 60)
        switch recurrence {
        case .once(let at):
            let tz = TimeZone(identifier: timeZone) ?? TimeZone(secondsFromGMT: 0) ?? .current
            let c = ScheduleTiming.calendar(tz).dateComponents([.year, .month, .day, .hour, .minute], from: Date(timeIntervalSince1970: TimeInterval(at)))
            return String(format: "once, on %04d-%02d-%02d at %02d:%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0)
                + " (\(timeZone))"
        case .daily: return "every day at \(time) (\(timeZone))"
        case .weekly(let w): return "every \(ScheduleTiming.weekdays[max(0, min(6, w - 1))]) at \(time) (\(timeZone))"
        case .monthly(let d): return "every month on day \(d)\(d > 28 ? " (or its last day)" : "") at \(time) (\(timeZone))"
        }
    }
}

/// A bulk update launched by the clock.
public struct Schedule: Sendable {
    public let id: Int64
    public let databaseID: Int64
    public let title: String
    /// nil: the stored update cannot be read (the schedule is shown as such, and never runs).
    public let request: BulkRequest?
    public let createdBy: Int64?
    public let createdByEmail: String?
    public let timing: ScheduleTiming
    public let paused: Bool
    public let nextRun: Int64?
    public let lastRun: Int64?
    public let lastTaskID: Int64?
    public let lastError: String?

    init?(row: Row) {
        guard let id = row.int64("id"), let databaseID = row.int64("database_id") else { return nil }
        var parameters: [String: JSONValue] = [:]
        if case .object(let o)? = JSONValue.parse(row.string("parameters") ?? "") { parameters = o }
        let recurrence: Recurrence
        switch row.string("recurrence") ?? "" {
        case "once": recurrence = .once(at: row.int64("run_at") ?? 0)
        case "weekly": recurrence = .weekly(weekday: row.int("weekday") ?? 1)
        case "monthly": recurrence = .monthly(day: row.int("month_day") ?? 1)
        default: recurrence = .daily
        }
        self.id = id
        self.databaseID = databaseID
        self.title = row.string("title") ?? ""
        self.request = try? BulkUpdateTask.request(databaseID: databaseID, segmentID: row.int64("segment_id"), parameters: parameters)
        self.createdBy = row.int64("created_by")
        self.createdByEmail = row.string("created_by_email")
        self.timing = ScheduleTiming(recurrence: recurrence, minuteOfDay: row.int("minute_of_day") ?? 0, timeZone: row.string("time_zone") ?? "UTC")
        self.paused = row.bool("paused")
        self.nextRun = row.int64("next_run")
        self.lastRun = row.int64("last_run")
        self.lastTaskID = row.int64("last_task_id")
        self.lastError = row.string("last_error")
    }
}

/// Scheduled bulk updates. Each run is an ordinary task, launched through `BulkUpdates.start` as its creator (so the
/// checks, the approval rules and the frozen targets are those of a launch by hand). A slot is claimed by
/// compare-and-set on `next_run` in the transaction that records the task: one run per slot, whichever host or
/// restart gets there; a slot missed while the server was down runs once when it is back, and the next slot is the
/// first one after that moment.
public final class Schedules: Sendable {
    let pool: DatabasePool
    let bulk: BulkUpdates
    let accounts: Accounts
    let clock: Clock

    public init(pool: DatabasePool, bulk: BulkUpdates, clock: Clock = .system) {
        self.pool = pool
        self.bulk = bulk
        self.accounts = Accounts(pool: pool, clock: clock)
        self.clock = clock
    }

    public static func mayManage(_ schedule: Schedule, user: User) -> Bool {
        user.role.canEdit && (user.role.canManageUsers || schedule.createdBy == user.id)
    }

    static func columns(_ timing: ScheduleTiming) -> [SQLValue] {
        var runAt = SQLValue.null, weekday = SQLValue.null, day = SQLValue.null
        switch timing.recurrence {
        case .once(let at): runAt = .integer(at)
        case .daily: break
        case .weekly(let w): weekday = .integer(Int64(w))
        case .monthly(let d): day = .integer(Int64(d))
        }
        return [.text(timing.recurrence.name), runAt, .integer(Int64(timing.minuteOfDay)), weekday, day, .text(timing.timeZone)]
    }

    func firstRun(_ timing: ScheduleTiming) throws -> Int64 {
        guard let next = timing.next(after: clock.now()) else {
            throw ValidationError(field: "schedule_date", "That time has passed; choose a time to come.")
        }
        return next
    }

    static func checkTitle(_ title: String) throws -> String {
        let t = title.trimmingCharacters(in: .whitespacesAndNewlines)
        if t.isEmpty || t.count > 200 || t.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw ValidationError(field: "schedule_title", "A schedule's name has 1 to 200 characters and no control characters.")
        }
        return t
    }

    /// Records a schedule after checking the update exactly as a launch is checked (the role, the selection, the action).
    public func create(_ request: BulkRequest, title: String, timing: ScheduleTiming, user: User) throws -> Int64 {
        if case .undo = request.action { throw ValidationError(field: "action", "An undo runs once, now; it is not scheduled.") }
        try bulk.validate(request, role: user.role)
        let name = try Schedules.checkTitle(title)
        let next = try firstRun(timing)
        let now = clock.now()
        return try pool.write { db in
            try db.run(ScheduleStore.insert, [SQLValue.integer(request.databaseID), request.segmentID.map { .integer($0) } ?? .null, .text(name),
                                              .text(JSONValue.object(bulk.parameters(request)).canonical), .integer(user.id)]
                       + Schedules.columns(timing) + [.integer(next), .integer(now), .integer(now)])
            return try db.lastInsertedID()
        }
    }

    public func list() throws -> [Schedule] {
        try pool.read { try $0.query(ScheduleStore.all).compactMap(Schedule.init(row:)) }
    }

    public func get(_ id: Int64) throws -> Schedule? {
        try pool.read { try $0.queryOne(ScheduleStore.byID, [id]).flatMap(Schedule.init(row:)) }
    }

    func managed(_ id: Int64, by user: User) throws -> Schedule {
        guard let schedule = try get(id) else { throw ValidationError(field: "schedule", "No such schedule.") }
        guard Schedules.mayManage(schedule, user: user) else { throw PermissionError(message: "Only its maker or an admin can change a schedule.") }
        return schedule
    }

    /// A new timing and name; the next run is the timing's first slot from now.
    public func update(_ id: Int64, title: String, timing: ScheduleTiming, user: User) throws {
        let schedule = try managed(id, by: user)
        let name = try Schedules.checkTitle(title)
        let next = schedule.paused ? nil : try firstRun(timing)
        try pool.write { db in
            _ = try db.run(ScheduleStore.update, [SQLValue.text(name)] + Schedules.columns(timing)
                           + [next.map { .integer($0) } ?? .null, .integer(clock.now()), .integer(id)])
        }
    }

    /// Paused, a schedule owes nothing; resumed, it runs at its next slot from now (the slots while paused are not
    /// made up).
    public func setPaused(_ id: Int64, _ paused: Bool, user: User) throws {
        let schedule = try managed(id, by: user)
        let next = paused ? nil : schedule.timing.next(after: clock.now())
        if !paused, next == nil { throw ValidationError(field: "schedule", "Its time has passed; edit it to choose another.") }
        try pool.write { _ = try $0.run(ScheduleStore.pause, [paused, next, clock.now(), id]) }
    }

    public func delete(_ id: Int64, user: User) throws {
        _ = try managed(id, by: user)
        try pool.write { _ = try $0.run(ScheduleStore.delete, [id]) }
    }

    /// Launches each schedule whose slot has come, once; returns the tasks launched. A run that cannot be launched (its
    /// creator is gone, its segment was deleted, the checks refuse it) records why and waits for the next slot.
    @discardableResult
    public func runDue() throws -> [Int64] {
        let now = clock.now()
        var launched: [Int64] = []
        for schedule in try pool.read({ try $0.query(ScheduleStore.due, [now]).compactMap(Schedule.init(row:)) }) {
            guard let slot = schedule.nextRun else { continue }
            let next = schedule.timing.next(after: now).map { SQLValue.integer($0) } ?? .null
            do {
                guard let request = schedule.request else {
                    throw ValidationError(field: "schedule", "The update this schedule launches cannot be read; delete the schedule.")
                }
                guard let creatorID = schedule.createdBy, let creator = try accounts.user(id: creatorID) else {
                    throw ValidationError(field: "schedule", "The person who made this schedule no longer has an account; "
                                          + "make it again as someone who does.")
                }
                let id = try bulk.start(request, title: schedule.title, user: creator) { db, task in
                    try db.run(ScheduleStore.claim, [next, .integer(now), .integer(task), .null, .integer(schedule.id), .integer(slot)]) == 1
                }
                launched.append(id)
            } catch is NotClaimed {
                continue   // another host (or an earlier round) ran this slot
            } catch let error as ValidationError {
                _ = try? pool.write { try $0.run(ScheduleStore.claim, [next, .integer(now), .null, .text(error.description), .integer(schedule.id),
                                                                        .integer(slot)]) }
            } catch {
                // A store failure (busy, lost connection): the slot stays owed and is tried next round; the other
                // schedules go on.
                Log.error("schedule run failed", ["schedule": String(schedule.id), "error": String(describing: error)])
            }
        }
        return launched
    }
}

enum ScheduleStore {
    static let columns = "SELECT s.*, u.email AS created_by_email FROM schedules s LEFT JOIN users u ON u.id = s.created_by"
    static let insert = NamedQuery("schedules.insert", """
        INSERT INTO schedules (database_id, segment_id, title, parameters, created_by, recurrence, run_at, minute_of_day, weekday,
                               month_day, time_zone, next_run, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """)
    static let all = NamedQuery("schedules.all", "\(columns) ORDER BY s.paused, s.next_run, s.id")
    static let byID = NamedQuery("schedules.byID", "\(columns) WHERE s.id = ?")
    static let due = NamedQuery("schedules.due", "\(columns) WHERE s.paused = 0 AND s.next_run IS NOT NULL AND s.next_run <= ? ORDER BY s.next_run LIMIT 100")
    /// The slot is taken only if it is still the one read (compare-and-set).
    static let claim = NamedQuery("schedules.claim", """
        UPDATE schedules SET next_run = ?, last_run = ?, last_task_id = ?, last_error = ? WHERE id = ? AND next_run = ?
        """)
    static let update = NamedQuery("schedules.update", """
        UPDATE schedules SET title = ?, recurrence = ?, run_at = ?, minute_of_day = ?, weekday = ?, month_day = ?, time_zone = ?, next_run = ?,
        updated_at = ? WHERE id = ?
        """)
    static let pause = NamedQuery("schedules.pause", "UPDATE schedules SET paused = ?, next_run = ?, updated_at = ? WHERE id = ?")
    static let delete = NamedQuery("schedules.delete", "DELETE FROM schedules WHERE id = ?")
    static var queries: [NamedQuery] { [insert, all, byID, due, claim, update, pause, delete] }
}
