import Foundation
import Store

/// Undo: a bulk update (`BulkAction.undo`) that puts back what an earlier bulk task changed, wherever the value is
/// still the one that task left. A value changed since (drift) is counted and left alone. Being a bulk update, it has
/// the same preview, approval rules, progress, counts and change log as any other.
///
/// Its items are the original's change-log rows (for a deletion, its archived profiles), in id order: its counts are
/// values put back, and a chunk is a range of those ids.
public enum Undo {
    /// The original task of an undo, checked: a bulk task that has ended, in `databaseID`, not an undo itself, not
    /// undone already (or being undone, by a task other than `undoTask`, the one being checked), and, for a deletion,
    /// still archived. `role` decides who may restore profiles.
    static func original(_ id: Int64, databaseID: Int64, role: Role, undoTask: Int64? = nil, _ db: Connection) throws -> BulkRequest {
        guard let row = try db.queryOne(TaskStore.byID, [id]) else { throw ValidationError(field: "task", "No such task.") }
        let task = TaskRecord(row: row)
        guard task.kind == BulkUpdateTask.kind, task.databaseID == databaseID else {
            throw ValidationError(field: "task", "Only a bulk update of this database can be undone.")
        }
        guard task.state.isFinished else {
            throw ValidationError(field: "task", "Task #\(id) has not ended; it can be undone once it is done, cancelled or failed.")
        }
        let request = try BulkUpdateTask.request(task)
        if case .undo = request.action {
            throw ValidationError(field: "task", "An undo is not undone in turn; launch the original change again instead.")
        }
        if let other = try db.queryOne(UndoStore.undoneBy, [UndoStore.pattern(id), undoTask ?? 0]) {
            throw ValidationError(field: "task", "Task #\(id) is already undone (or being undone) by task #\(other.int64("id") ?? 0).")
        }
        if case .deleteInactive = request.action {
            guard mayRestore(role) else { throw ValidationError(field: "action", "Only admins can restore deleted profiles.") }
            guard (try db.scalar(UndoStore.archivedCount, [id]).int ?? 0) > 0 else {
                throw ValidationError(field: "task", "The profiles task #\(id) deleted are no longer archived (kept for "
                                      + "ROSTER_UNDO_DAYS days after the deletion), or it deleted none.")
            }
        }
        return request
    }

    /// Restoring deleted profiles takes what deleting them takes: an admin (to launch, and to resume).
    static func mayRestore(_ role: Role) -> Bool { role.canDelete }

    /// The profiles an undo of `original` touches (approval rules count profiles; its items are values).
    static func profiles(of original: Int64, _ db: Connection) throws -> Int {
        try db.scalar(try isDeletion(original, db) ? UndoStore.archivedCount : UndoStore.changedProfiles, [original]).int ?? 0
    }

    /// The task that undid (or is undoing) `id`, if any.
    static func undoneBy(_ id: Int64, _ db: Connection) throws -> Int64? {
        try db.queryOne(UndoStore.undoneBy, [UndoStore.pattern(id), 0])?.int64("id")
    }

    /// The items an undo of `original` works through, in order.
    static func targets(of original: Int64, _ db: Connection) throws -> [Int64] {
        let named = try isDeletion(original, db) ? UndoStore.archivedIDs : UndoStore.changeIDs
        return try db.query(named, [original]).compactMap { $0.int64("id") }
    }

    /// Freezes the items of an undo as the targets of `taskID`; returns how many.
    static func freeze(of original: Int64, taskID: Int64, _ db: Connection) throws -> Int {
        try db.run(try isDeletion(original, db) ? UndoStore.freezeArchived : UndoStore.freezeChanges, [taskID, original])
    }

    static func isDeletion(_ id: Int64, _ db: Connection) throws -> Bool {
        guard let row = try db.queryOne(TaskStore.byID, [id]) else { throw ValidationError(field: "task", "No such task.") }
        if case .deleteInactive = try BulkUpdateTask.request(TaskRecord(row: row)).action { return true }
        return false
    }
}

/// The archive of profiles deleted by bulk tasks, kept `days` days so the deletion can be undone.
public struct DeletionArchive: Sendable {
    public struct Size: Sendable {
        public let profiles: Int
        public let bytes: Int
        public let oldest: Int64?
    }

    let pool: DatabasePool
    public let days: Int

    public init(pool: DatabasePool, days: Int) {
        self.pool = pool
        self.days = max(1, days)
    }

    public func size() throws -> Size {
        try pool.read { db in
            let row = try db.queryOne(UndoStore.archiveSize)
            return Size(profiles: row?.int("profiles") ?? 0, bytes: row?.int("bytes") ?? 0, oldest: row?.int64("oldest"))
        }
    }

    /// Removes what was deleted more than `days` days before `now`, 5,000 profiles per transaction; returns how many.
    @discardableResult
    public func purge(now: Int64) throws -> Int {
        let before = now - Int64(days) * 86_400
        var total = 0
        while true {
            let n = try pool.write { try $0.run(UndoStore.purge, [before]) }
            total += n
            if n == 0 { return total }
        }
    }

    /// An archived JSON value as the column held it (the store wrote numbers, text and nulls).
    static func value(_ json: JSONValue) -> SQLValue {
        switch json {
        case .int(let i): return .integer(i)
        case .string(let s): return .text(s)
        case .double(let d): return .real(d)
        case .bool(let b): return .integer(b ? 1 : 0)
        case .object(let o):
            if let text = o["real"]?.stringValue, let d = Double(text) { return .real(d) }
            if let text = o["base64"]?.stringValue, let data = Data(base64Encoded: text) { return .blob([UInt8](data)) }
            return .null
        default: return .null
        }
    }

    /// Archives the chunk's profiles that `condition` deletes (parameters: the chunk's range, then `params`), with
    /// everything that goes with them, in one INSERT … SELECT: the store builds each profile's JSON, reading the
    /// related rows through their profile indexes. Returns how many.
    static func write(_ executor: BulkExecutor, condition: String, _ params: [SQLValue], _ db: Connection) throws -> Int {
        let d = db.dialect
        let id = executor.databaseID
        func columns(_ table: String) throws -> [String] {
            try db.query(d.tableColumns, [table]).compactMap { $0.string("name") }.filter { $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } }
        }
        func rows(_ table: String, _ alias: String, where clause: String) throws -> String {
            d.jsonEmbed("SELECT \(d.jsonArrayAgg(d.rowJSON(alias, columns: try columns(table)))) FROM \(table) \(alias) WHERE \(clause)")
        }
        let (subscriptions, history) = ("subscriptions_\(id)", executor.history)
        let (members, relations) = (SegmentStore.membersTable(id), "relations_\(id)")
        // A relation is kept with both of its profiles: whichever comes back second brings it back.
        let data = d.jsonBuild([
            ("profile", d.rowJSON("p", columns: try columns(executor.table))),
            ("subscriptions", try rows(subscriptions, "s", where: "s.profile = p.id")),
            ("history", try rows(history, "h", where: "h.profile = p.id")),
            ("members", try rows(members, "m", where: "m.profile = p.id")),
            ("relations", try rows(relations, "r", where: "r.profile = p.id OR r.related = p.id")),
        ])
        return try db.prepare("""
            INSERT INTO deleted_profiles (task_id, database_id, row_id, profile_id, email, deleted_at, data)
            SELECT ?, ?, p.id, p.profile_id, p.email, ?, CAST(\(data) AS \(d.type(.text))) FROM \(executor.table) p
            WHERE p.id IN (\(executor.targets)) AND \(condition) ORDER BY p.id
            """).execute([SQLValue.integer(executor.taskID), .integer(id), .integer(executor.now)] + params)
    }
}

extension BulkExecutor {
    /// One chunk of an undo of `originalID`: its change-log rows (or archived profiles) with ids in (after, upTo].
    func undo(_ originalID: Int64, after: Int64, upTo: Int64, count: Int, _ db: Connection) throws -> BulkChunk {
        guard let row = try db.queryOne(TaskStore.byID, [originalID]) else { throw ValidationError(field: "task", "The task to undo is gone.") }
        let original = try BulkUpdateTask.request(TaskRecord(row: row))
        let range: [SQLValue] = [.integer(originalID), .integer(after), .integer(upTo)]
        var chunk = BulkChunk()
        switch original.action {
        case .updateFields(let changes): try undoFields(changes, range, &chunk, db)
        case .unsubscribe: try undoUnsubscribe(range, &chunk, db)
        case .addSubscription, .updateSubscriptionStatus: try undoSubscriptions(range, &chunk, db)
        case .promoCodes(let program, let attach): try undoCodes(program, attach: attach, range, &chunk, db)
        case .deleteInactive: try restore(range, count: count, &chunk, db)
        case .undo: throw ValidationError(field: "task", "An undo is not undone in turn.")
        }
        return chunk
    }

    /// The chunk's change-log rows of the original: three parameters (original task, after, up to).
    private var changes: String { "task_changes c WHERE c.task_id = ? AND c.id > ? AND c.id <= ?" }
    /// A condition on the change log's field (`c.field`), when there is one, and its parameter.
    private static func onlyField(_ field: String?) -> (sql: String, params: [SQLValue]) {
        field.map { (" AND c.field = ?", [.text($0)]) } ?? ("", [])
    }

    /// The chunk's change-log rows in order, each with its profile's row id (`row`, nil when the profile is gone).
    private func changeRows(_ range: [SQLValue], _ db: Connection) throws -> [Row] {
        try db.query("""
            SELECT c.profile_id, c.field, c.before, c.after, p.id AS row FROM task_changes c LEFT JOIN \(table) p ON p.profile_id = c.profile_id
            WHERE c.task_id = ? AND c.id > ? AND c.id <= ? ORDER BY c.id
            """, range)
    }

    /// The same rows with their profiles (`p`), where those still exist.
    private var joined: String {
        "task_changes c JOIN \(table) p ON p.profile_id = c.profile_id WHERE c.task_id = ? AND c.id > ? AND c.id <= ?"
    }

    private func temporaryTables(_ db: Connection) throws {
        let (integer, text) = (db.dialect.type(.integer), db.dialect.type(.text))
        try db.execute("CREATE TEMP TABLE IF NOT EXISTS undo_values (id \(integer) PRIMARY KEY, profile_id \(text) NOT NULL, before \(text), after \(text))")
        try db.execute("CREATE TEMP TABLE IF NOT EXISTS undo_profiles (id \(integer) PRIMARY KEY, profile_id \(text) NOT NULL)")
        try db.run("DELETE FROM \(db.dialect.temp("undo_values"))")
        try db.run("DELETE FROM \(db.dialect.temp("undo_profiles"))")
    }

    /// Counts the chunk's rows (of `field`, if given) whose profile is gone, and the rest not restored as drift (or as
    /// `remainder`).
    private func tally(field: String?, restored: Int, remainder: String = SkipReason.changedSince, _ range: [SQLValue],
                       _ chunk: inout BulkChunk, _ db: Connection) throws {
        let (only, extra) = BulkExecutor.onlyField(field)
        let rows = try db.scalar("SELECT COUNT(*) FROM \(changes)\(only)", range + extra).int ?? 0
        let gone = try db.scalar("SELECT COUNT(*) FROM \(changes)\(only) AND NOT EXISTS (SELECT 1 FROM \(table) p WHERE p.profile_id = c.profile_id)",
                                 range + extra).int ?? 0
        chunk.skip(SkipReason.profileGone, gone)
        chunk.skip(remainder, rows - gone - restored)
    }

    /// For the preview, before anything is put back: a few rows whose value is not what the original left
    /// (`current` reads it from `p` as people read it; `drifted` is true of them, with `params`).
    private func sampleDrift(field: String?, current: String, drifted: String, _ params: [SQLValue], _ range: [SQLValue],
                             _ chunk: inout BulkChunk, _ db: Connection) throws {
        guard driftSamples > chunk.drift.count else { return }
        let (only, extra) = BulkExecutor.onlyField(field)
        let sample = try db.query("""
            SELECT c.profile_id, c.field, c.after, \(current) AS now FROM \(joined)\(only)
            AND \(drifted) ORDER BY c.id LIMIT ?
            """, range + extra + params + [.integer(Int64(driftSamples - chunk.drift.count))])
        chunk.drift += sample.map { DriftRow(profileID: $0.string("profile_id") ?? "", key: $0.string("field") ?? "",
                                              left: $0.string("after") ?? "", now: $0.string("now") ?? "") }
    }

    /// Field values: a value is put back where the profile still holds exactly what the original set (its value, as
    /// the field's rules store it, compared with the column). Found set-based; the earlier values (the change log's
    /// text of the column) are read back by type in Swift.
    private func undoFields(_ changes: [FieldChange], _ range: [SQLValue], _ chunk: inout BulkChunk, _ db: Connection) throws {
        try temporaryTables(db)
        let (values, profiles) = (db.dialect.temp("undo_values"), db.dialect.temp("undo_profiles"))
        var restoredKeys: [String] = []
        let refs = ProfileWriter.fieldRefs(catalogue)
        for change in changes {
            // The field as it is now: deleted since, or unable to hold what the task set, its values are left alone. A
            // cleared value is NULL whatever the field's rules say now (it may have become required since).
            var found: (key: String, value: SQLValue, type: FieldType?)?
            if change.value == nil, let ref = refs.first(where: { $0.key == change.field }) {
                found = (ref.key, .null, BulkUpdates.fieldType(change.field, catalogue))
            } else if let r = try? BulkUpdates.resolve([change], catalogue).first {
                found = (r.key, r.value, r.type)
            }
            guard let resolved = found, let ref = refs.first(where: { $0.key == resolved.key }) else {
                try tally(field: change.field, restored: 0, remainder: SkipReason.fieldGone, range, &chunk, db)
                continue
            }
            let (key, type) = (resolved.key, resolved.type)
            let stillSet = "NOT (\(db.dialect.isDistinct("p." + ref.column, "?")))"
            try sampleDrift(field: key, current: BulkExecutor.display("p." + ref.column, type), drifted: "NOT \(stillSet)", [resolved.value],
                            range, &chunk, db)
            try db.run("DELETE FROM \(values)")
            try db.prepare("""
                INSERT INTO \(values) (id, profile_id, before, after) SELECT p.id, p.profile_id, c.before, c.after
                FROM \(joined) AND c.field = ? AND \(stillSet)
                """).execute(range + [.text(key), resolved.value])
            // Values the field can no longer hold (its type changed since) are left alone and counted.
            let update = try db.prepare("UPDATE \(table) SET \(ref.column) = ?, updated_at = ?, version = version + 1 WHERE id = ?")
            var unreadable: [Int64] = []
            var cache: [String: SQLValue] = [:]
            for row in try db.query("SELECT id, before FROM \(values) ORDER BY id") {
                let id = row.int64("id") ?? 0
                let before = row.string("before")
                let value: SQLValue?
                if let before { value = cache[before] ?? BulkExecutor.stored(before, type) } else { value = .null }
                guard let value, !(value == .null && ref.required) else { unreadable.append(id); continue }
                if let before { cache[before] = value }
                _ = try update.execute([value, SQLValue.integer(now), .integer(id)])
            }
            for id in unreadable { try db.run("DELETE FROM \(values) WHERE id = ?", [id]) }
            chunk.skip(SkipReason.fieldGone, unreadable.count)
            let restored = try db.run("INSERT INTO task_changes (task_id, profile_id, field, before, after) SELECT ?, profile_id, ?, after, before FROM \(values)",
                                      [SQLValue.integer(taskID), .text(key)])
            // (WHERE: SQLite needs it to read ON CONFLICT after a SELECT.)
            try db.run("INSERT INTO \(profiles) (id, profile_id) SELECT id, profile_id FROM \(values) WHERE 1 = 1 ON CONFLICT (id) DO NOTHING")
            chunk.updated += restored
            try tally(field: key, restored: restored + unreadable.count, range, &chunk, db)
            if restored > 0 { restoredKeys.append(key) }
        }
        let details = JSONValue.object(["fields": .array(restoredKeys.map { .string($0) }), "task": .int(taskID)]).canonical
        let n = try db.run("INSERT INTO \(history) (profile, at, type, actor, details) SELECT id, ?, ?, ?, ? FROM \(profiles)",
                           [SQLValue.integer(now), .text(HistoryEvent.fieldChanged), actor.map { .integer($0) } ?? .null, .text(details)])
        if !skipTriggers {
            try db.run("INSERT INTO trigger_events (database_id, profile_id, type, payload, task_id, created_at) SELECT ?, profile_id, 'field_updated', ?, ?, ? FROM \(profiles)",
                       [SQLValue.integer(databaseID), .text(details), .integer(taskID), .integer(now)])
        }
        if n > 0 { try db.run(History.bumpStatsBy, [databaseID, now, HistoryEvent.fieldChanged, n, n]) }
    }

    /// Global unsubscribe: the earlier status comes back where the profile is still unsubscribed.
    private func undoUnsubscribe(_ range: [SQLValue], _ chunk: inout BulkChunk, _ db: Connection) throws {
        try temporaryTables(db)
        let values = db.dialect.temp("undo_values")
        let code = "CASE u.before " + ProfileStatus.allCases.map { "WHEN '\($0.name)' THEN \($0.rawValue)" }.joined(separator: " ") + " END"
        let names = ProfileStatus.allCases.map { "'\($0.name)'" }.joined(separator: ", ")
        try sampleDrift(field: nil, current: BulkExecutor.statusName("p.status"), drifted: "p.status <> 1", [], range, &chunk, db)
        try db.prepare("""
            INSERT INTO \(values) (id, profile_id, before, after) SELECT p.id, p.profile_id, c.before, c.after
            FROM task_changes c JOIN \(table) p ON p.profile_id = c.profile_id
            WHERE c.task_id = ? AND c.id > ? AND c.id <= ? AND c.field = 'status' AND p.status = 1 AND c.before IN (\(names))
            """).execute(range)
        try db.run("INSERT INTO \(history) (profile, at, type, actor, details) SELECT id, ?, ?, ?, \(db.dialect.jsonObject([("from", "'unsubscribed'"), ("to", "before"), ("task", "?")])) FROM \(values)",
                   [SQLValue.integer(now), .text(HistoryEvent.statusChanged), actor.map { .integer($0) } ?? .null, .integer(taskID)])
        try db.run("INSERT INTO task_changes (task_id, profile_id, field, before, after) SELECT ?, profile_id, 'status', after, before FROM \(values)",
                   [SQLValue.integer(taskID)])
        let restored = try db.run("UPDATE \(table) SET status = (SELECT \(code) FROM \(values) u WHERE u.id = \(table).id), updated_at = ?, "
                                  + "version = version + 1 WHERE id IN (SELECT id FROM \(values))", [SQLValue.integer(now)])
        chunk.updated += restored
        try tally(field: nil, restored: restored, range, &chunk, db)
        if restored > 0 { try db.run(History.bumpStatsBy, [databaseID, now, HistoryEvent.statusChanged, restored, restored]) }
    }

    /// Subscriptions: one the original added is removed, one it changed gets its earlier status back, where its
    /// status is still what the original set. Logged as "subscription RESOURCE CHANNEL CONTACT".
    private func undoSubscriptions(_ range: [SQLValue], _ chunk: inout BulkChunk, _ db: Connection) throws {
        let writer = self.writer(db)
        let rows = try changeRows(range, db)
        for row in rows {
            guard let rowID = row.int64("row") else { chunk.skip(SkipReason.profileGone); continue }
            let field = row.string("field") ?? ""
            let (before, after) = (row.string("before") ?? "", row.string("after") ?? "")
            let parts = field.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 4, parts[0] == "subscription", let resource = Int64(parts[1]) else { chunk.skip(SkipReason.changedSince); continue }
            let (channel, contact) = (parts[2], parts[3])
            let current = try db.queryOne("""
                SELECT id, status FROM \(subscriptions) WHERE profile = ? AND resource_id = ? AND channel = ? AND contact = ? AND deleted = 0
                ORDER BY id LIMIT 1
                """, [rowID, resource, channel, contact])
            guard let current, let id = current.int64("id"),
                  ProfileStatus(rawValue: current.int("status") ?? -1)?.name == after else {
                noteDrift(row, now: current.flatMap { ProfileStatus(rawValue: $0.int("status") ?? -1)?.name } ?? "(none)", &chunk)
                chunk.skip(SkipReason.changedSince)
                continue
            }
            let event: [String: JSONValue] = ["subscription": .int(id), "resource": .int(resource), "channel": .string(channel),
                                              "contact": .string(contact)]
            if before.isEmpty {
                try db.run("DELETE FROM \(subscriptions) WHERE id = ?", [id])
                try writer.record(rowID, HistoryEvent.subscriptionDeleted, event)
                try db.run(BulkStore.insertChange, [taskID, row.string("profile_id") ?? "", field, after, "removed"])
            } else if let status = SubscriptionChangeLog.deleted(before) {
                // The task brought back a deleted subscription: it is deleted again, with its earlier status.
                try db.run("UPDATE \(subscriptions) SET status = ?, deleted = 1, updated_at = ? WHERE id = ?", [status.rawValue, now, id])
                try writer.record(rowID, HistoryEvent.subscriptionDeleted, event)
                try db.run(BulkStore.insertChange, [taskID, row.string("profile_id") ?? "", field, after, before])
            } else {
                guard let status = ProfileStatus(text: before) else { chunk.skip(SkipReason.changedSince); continue }
                // Putting a status back is a way in too: a contact suppressed since is not made active again.
                if ProfileWriter.activates(from: ProfileStatus(text: after), to: status), let channel = Channel(rawValue: channel),
                   try Suppressions.match(db, databaseID: databaseID, channel: channel, contact: contact) != nil {
                    chunk.skip(SkipReason.suppressed)
                    continue
                }
                try db.run("UPDATE \(subscriptions) SET status = ?, updated_at = ? WHERE id = ?", [status.rawValue, now, id])
                var details = event
                details["from"] = .string(after)
                details["status"] = .string(before)
                try writer.record(rowID, status == .unsubscribed ? HistoryEvent.unsubscribed : HistoryEvent.subscriptionChanged, details)
                try writer.trigger(row.string("profile_id") ?? "", "subscription_updated", .object([
                    "resource_id": .int(resource), "channel": .string(channel), "status": .string(before)]))
                try db.run(BulkStore.insertChange, [taskID, row.string("profile_id") ?? "", field, after, before])
            }
            chunk.updated += 1
        }
    }

    /// Promo codes: a code the original attached goes back to the free codes if it is still attached (not activated)
    /// to that profile; a code it detached is attached again if it is still detached and the profile has no other
    /// code of the program (a code is never given to two profiles, a profile has one code per program).
    private func undoCodes(_ program: Int64, attach: Bool, _ range: [SQLValue], _ chunk: inout BulkChunk, _ db: Connection) throws {
        let writer = self.writer(db)
        let rows = try changeRows(range, db)
        for row in rows {
            let profileID = row.string("profile_id") ?? ""
            let code = (attach ? row.string("after") : row.string("before")) ?? ""
            guard let rowID = row.int64("row") else { chunk.skip(SkipReason.profileGone); continue }
            let changed: Int
            if attach {
                changed = try db.run("""
                    UPDATE promo_codes SET status = 'free', database_id = NULL, profile_id = NULL, attached_at = NULL
                    WHERE program_id = ? AND code = ? AND database_id = ? AND profile_id = ? AND status = 'attached'
                    """, [program, code, databaseID, profileID])
            } else {
                changed = try db.run("""
                    UPDATE promo_codes SET status = CASE WHEN activated_at IS NULL THEN 'attached' ELSE 'activated' END
                    WHERE program_id = ? AND code = ? AND database_id = ? AND profile_id = ? AND status = 'detached'
                    AND NOT EXISTS (SELECT 1 FROM promo_codes o WHERE o.program_id = ? AND o.database_id = ? AND o.profile_id = ?
                                    AND o.status IN ('attached', 'activated'))
                    """, [program, code, databaseID, profileID, program, databaseID, profileID])
            }
            guard changed == 1 else {
                let now = try db.queryOne("SELECT status FROM promo_codes WHERE program_id = ? AND code = ?", [program, code])?.string("status")
                noteDrift(row, now: now ?? "(none)", &chunk)
                chunk.skip(attach ? SkipReason.changedSince : SkipReason.codeTaken)
                continue
            }
            try writer.record(rowID, attach ? HistoryEvent.promoDetached : HistoryEvent.promoAttached,
                              ["code": .string(code), "program": .int(program)])
            try db.run(BulkStore.insertChange, [taskID, profileID, row.string("field") ?? "", attach ? code : "detached", attach ? "returned" : code])
            chunk.updated += 1
        }
    }

    private func noteDrift(_ row: Row, now: String, _ chunk: inout BulkChunk) {
        guard driftSamples > chunk.drift.count else { return }
        chunk.drift.append(DriftRow(profileID: row.string("profile_id") ?? "", key: row.string("field") ?? "",
                                    left: row.string("after") ?? "", now: now))
    }

    /// A deletion: each archived profile comes back with its id, subscriptions, history, static-segment memberships
    /// and relations (those whose other profile exists), unless a profile with its id, profile id or email exists now.
    private func restore(_ range: [SQLValue], count: Int, _ chunk: inout BulkChunk, _ db: Connection) throws {
        let rows = try db.query(UndoStore.archivedChunk, range)
        // Archived profiles purged meanwhile (the period ended while the undo ran) are counted, not lost.
        chunk.skip(SkipReason.purged, count - rows.count)
        guard !rows.isEmpty else { return }
        var columns: [String: Set<String>] = [:]
        var statements: [String: Statement] = [:]
        // JSON writes 1.0 as 1: columns of real numbers (Float fields) get reals back.
        let reals = Set(ProfileWriter.fieldRefs(catalogue).filter { BulkUpdates.fieldType($0.key, catalogue)?.columnKind == .real }.map(\.column))
        /// `newID`: a row whose id was given to another row since (SQLite reuses the highest ids) gets a new one.
        func insert(_ table: String, _ json: JSONValue, only condition: String = "", _ params: [SQLValue] = [],
                    newID: Bool = false) throws -> Int {
            guard case .object(var values) = json else { return 0 }
            if columns[table] == nil { columns[table] = Set(try db.query(db.dialect.tableColumns, [table]).compactMap { $0.string("name") }) }
            if newID, let id = values["id"], try db.queryOne("SELECT 1 FROM \(table) WHERE id = ?", [DeletionArchive.value(id)]) != nil {
                values["id"] = nil
            }
            let names = values.keys.filter { columns[table]?.contains($0) == true }.sorted()
            guard !names.isEmpty else { return 0 }
            let marks = names.map { _ in "?" }.joined(separator: ", ")
            let sql = condition.isEmpty ? "INSERT INTO \(table) (\(names.joined(separator: ", "))) VALUES (\(marks))"
                : "INSERT INTO \(table) (\(names.joined(separator: ", "))) SELECT \(marks) WHERE \(condition)"
            let statement = try statements[sql] ?? db.prepare(sql)
            statements[sql] = statement
            return try statement.execute(names.map { name -> SQLValue in
                let value = DeletionArchive.value(values[name] ?? .null)
                if table == self.table, reals.contains(name), let d = value.double { return .real(d) }
                return value
            } + params)
        }
        let members = SegmentStore.membersTable(databaseID)
        for row in rows {
            guard let data = JSONValue.parse(row.string("data") ?? ""), case .object(let archived) = data,
                  let profile = archived["profile"] else { chunk.failed += 1; continue }
            // The whole profile in a savepoint: a profile with its id, profile id or email exists now, and it is left out.
            try db.run("SAVEPOINT undo_restore")
            do {
                _ = try insert(table, profile)
                for s in archived["subscriptions"]?.arrayValue ?? [] { _ = try insert(subscriptions, s, newID: true) }
                // A contact suppressed since the deletion comes back deleted (restorable by hand once off the list).
                if case .object(let p) = profile, let rowID = p["id"].map(DeletionArchive.value)?.int64 {
                    let active = "\(ProfileStatus.subscribed.rawValue), \(ProfileStatus.unconfirmed.rawValue)"
                    let hidden = try db.run("""
                        UPDATE \(subscriptions) SET deleted = 1 WHERE id IN (SELECT s.id FROM \(subscriptions) s
                            WHERE s.profile = ? AND s.deleted = 0 AND s.status IN (\(active))
                              AND \(Suppressions.suppressedSQL("s", databaseID: databaseID, db.dialect)))
                        """, [rowID])
                    if hidden > 0 { chunk.reasons[SkipReason.suppressed, default: 0] += hidden }
                }
                for h in archived["history"]?.arrayValue ?? [] { _ = try insert(history, h, newID: true) }
                for m in archived["members"]?.arrayValue ?? [] {
                    guard case .object(let o) = m, let segment = o["segment_id"] else { continue }
                    _ = try insert(members, m, only: "EXISTS (SELECT 1 FROM segments WHERE id = ?)", [DeletionArchive.value(segment)])
                }
                // A relation comes back once both of its profiles are back (or were never deleted: created before the
                // deletion, so not a new profile that took a deleted one's id), and only once.
                let deletedAt = SQLValue.integer(row.int64("deleted_at") ?? 0)
                for r in archived["relations"]?.arrayValue ?? [] {
                    guard case .object(let o) = r, let a = o["profile"], let b = o["related"], let name = o["name"] else { continue }
                    let (from, to) = (DeletionArchive.value(a), DeletionArchive.value(b))
                    _ = try insert("relations_\(databaseID)", r, only: """
                        EXISTS (SELECT 1 FROM \(table) WHERE id = ? AND created_at <= ?) AND EXISTS (SELECT 1 FROM \(table) WHERE id = ? AND created_at <= ?)
                        AND NOT EXISTS (SELECT 1 FROM relations_\(databaseID) WHERE profile = ? AND related = ? AND name = ?)
                        """, [from, deletedAt, to, deletedAt, from, to, DeletionArchive.value(name)], newID: true)
                }
                try db.run("RELEASE undo_restore")
            } catch let error as any StoreFailure where error.isConstraintViolation {
                try db.run("ROLLBACK TO undo_restore")
                try db.run("RELEASE undo_restore")
                if driftSamples > chunk.drift.count {
                    chunk.drift.append(DriftRow(profileID: row.string("profile_id") ?? "", key: "profile", left: "deleted",
                                                now: "a profile with this id or email exists"))
                }
                chunk.skip(SkipReason.profileExists)
                continue
            }
            try db.run(UndoStore.unarchive, [row.int64("id") ?? 0])
            try db.run(BulkStore.insertChange, [taskID, row.string("profile_id") ?? "", "profile", "deleted", row.string("email") ?? ""])
            chunk.updated += 1
        }
    }
}

/// How a bulk task logs a subscription it brought back from deletion: "deleted (STATUS)" as the before-value.
enum SubscriptionChangeLog {
    static func before(_ status: ProfileStatus, wasDeleted: Bool) -> String { wasDeleted ? "deleted (\(status.name))" : status.name }
    /// The status a deleted subscription had, when `before` says it was deleted.
    static func deleted(_ before: String) -> ProfileStatus? {
        guard before.hasPrefix("deleted ("), before.hasSuffix(")") else { return nil }
        return ProfileStatus(text: String(before.dropFirst("deleted (".count).dropLast()))
    }
}

/// A value the undo leaves alone: what the original left, and what it is now.
struct DriftRow: Sendable {
    let profileID: String
    let key: String
    let left: String
    let now: String
}

extension BulkExecutor {
    /// A change-log value read back into what the column stores: the inverse of `display` (nil: the text is not a
    /// value of the type, e.g. the field's type changed since).
    static func stored(_ shown: String, _ type: FieldType?) -> SQLValue? {
        switch type?.columnKind {
        case nil, .text?: return .text(shown)
        case .integer?:
            if type == .boolean { return shown == "true" ? .integer(1) : shown == "false" ? .integer(0) : nil }
            if type == .ip, case .success(let v) = FieldType.ip.parse(shown) { return v }
            return Int64(shown).map { .integer($0) }
        case .real?: return Double(shown).map { .real($0) }
        default: return nil
        }
    }
}

enum UndoStore {
    /// The parameters of an undo of `id` as stored (canonical JSON: sorted keys, no spaces).
    static func pattern(_ id: Int64) -> String { "%\"action\":{\"action\":\"undo\",\"task_id\":\(id)}%" }
    static let undoneBy = NamedQuery("undo.undoneBy", """
        SELECT id FROM tasks WHERE kind = 'bulk_update' AND parameters LIKE ? AND state NOT IN ('cancelled', 'failed') AND id <> ?
        ORDER BY id DESC LIMIT 1
        """)
    static let changeIDs = NamedQuery("undo.changeIDs", "SELECT id FROM task_changes WHERE task_id = ? ORDER BY id")
    static let archivedIDs = NamedQuery("undo.archivedIDs", "SELECT id FROM deleted_profiles WHERE task_id = ? ORDER BY id")
    static let freezeChanges = NamedQuery("undo.freezeChanges", "INSERT INTO task_targets (task_id, profile) SELECT ?, id FROM task_changes WHERE task_id = ?")
    static let freezeArchived = NamedQuery("undo.freezeArchived", "INSERT INTO task_targets (task_id, profile) SELECT ?, id FROM deleted_profiles WHERE task_id = ?")
    static let archivedCount = NamedQuery("undo.archivedCount", "SELECT COUNT(*) FROM deleted_profiles WHERE task_id = ?")
    static let changedProfiles = NamedQuery("undo.changedProfiles", "SELECT COUNT(DISTINCT profile_id) FROM task_changes WHERE task_id = ?")
    static let archive = NamedQuery("undo.archive", """
        INSERT INTO deleted_profiles (task_id, database_id, row_id, profile_id, email, deleted_at, data) VALUES (?, ?, ?, ?, ?, ?, ?)
        """)
    static let archivedChunk = NamedQuery("undo.archivedChunk", """
        SELECT id, row_id, profile_id, email, deleted_at, data FROM deleted_profiles WHERE task_id = ? AND id > ? AND id <= ? ORDER BY id
        """)
    static let unarchive = NamedQuery("undo.unarchive", "DELETE FROM deleted_profiles WHERE id = ?")
    static let purge = NamedQuery("undo.purge", """
        DELETE FROM deleted_profiles WHERE id IN (SELECT id FROM deleted_profiles WHERE deleted_at < ? ORDER BY id LIMIT 5000)
        """)
    static let dropDatabase = NamedQuery("undo.dropDatabase", "DELETE FROM deleted_profiles WHERE database_id = ?")
    static let archiveSize = NamedQuery("undo.archiveSize", """
        SELECT COUNT(*) AS profiles, COALESCE(SUM(LENGTH(data)), 0) AS bytes, MIN(deleted_at) AS oldest FROM deleted_profiles
        """)
    static var queries: [NamedQuery] {
        [undoneBy, changeIDs, archivedIDs, freezeChanges, freezeArchived, archivedCount, changedProfiles, archive, archivedChunk, unarchive, purge,
         dropDatabase, archiveSize]
    }
}
