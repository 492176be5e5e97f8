import Foundation
import Store

/// What one bulk chunk did.
struct BulkChunk {
    var updated = 0
    var deleted = 0
    var skipped = 0
    var failed = 0
    var reasons: [String: Int] = [:]
    /// An undo's preview: a few values it leaves alone.
    var drift: [DriftRow] = []

    mutating func skip(_ reason: String, _ n: Int = 1) {
        guard n > 0 else { return }
        skipped += n
        reasons[reason, default: 0] += n
    }
}

/// Applies a bulk action to the targets of a task in one id range. The same code runs the task's chunks and the
/// preview (which runs it over every target and rolls back), so the preview's counts are what the task does.
///
/// Set-based where the action allows (fields, statuses, global unsubscribe, deletion): each statement works on
/// the chunk's id range, and the change log, history and trigger rows are written by INSERT … SELECT before the
/// change itself. Per profile where the spec's rules need it (adding a subscription, attaching a promo code).
struct BulkExecutor {
    let databaseID: Int64
    let taskID: Int64
    let actor: Int64?
    let action: BulkAction
    let skipTriggers: Bool
    let now: Int64
    /// Deletion by inactivity: profiles with no interaction at or after this time.
    let cutoff: Int64
    let catalogue: Profiles.Catalogue
    /// A preview runs chunk by chunk, each rolled back: the codes its earlier chunks attached are free again, so
    /// later chunks skip that many.
    var codesAlreadyAttached = 0
    /// How many drifted values an undo's chunk notes (its preview shows them); 0 in a task.
    var driftSamples = 0

    var table: String { ProfileTable.name(databaseID) }
    var history: String { ProfileTable.historyName(databaseID) }
    var subscriptions: String { "subscriptions_\(databaseID)" }
    /// The chunk's targets: three parameters (task, after, up to).
    var targets: String { "SELECT profile FROM task_targets WHERE task_id = ? AND profile > ? AND profile <= ?" }

    static let statusName = "CASE %@ WHEN 0 THEN 'subscribed' WHEN 1 THEN 'unsubscribed' WHEN 2 THEN 'complainer' WHEN 3 THEN 'hard_bounced' WHEN 4 THEN 'unconfirmed' WHEN 5 THEN 'suspended' ELSE 'invalid' END"
    static func statusName(_ column: String) -> String { statusName.replacingOccurrences(of: "%@", with: column) }

    /// A column's value as the change log shows it.
    static func display(_ column: String, _ type: FieldType?) -> String {
        switch type {
        case .boolean?: return "CASE \(column) WHEN 1 THEN 'true' WHEN 0 THEN 'false' END"
        case .ip?: return "CASE WHEN \(column) IS NULL THEN NULL ELSE ((\(column) >> 24) & 255) || '.' || ((\(column) >> 16) & 255) || '.' || ((\(column) >> 8) & 255) || '.' || (\(column) & 255) END"
        default: return "CAST(\(column) AS TEXT)"
        }
    }

    /// The change-log rows of one field for the chunk's changed profiles (in `temp.bulk_profiles`). CROSS JOIN keeps
    /// the temp table as the outer loop: it has no statistics, and with a plain JOIN SQLite chose to scan the whole
    /// profile table for every chunk (4x slower on a million profiles).
    static func changeLogSQL(table: String, column: String, type: FieldType?, _ dialect: Dialect) -> String {
        "INSERT INTO task_changes (task_id, profile_id, field, before, after) SELECT ?, c.profile_id, ?, \(display("p." + column, type)), "
            + "\(dialect.text("?")) FROM \(dialect.temp("bulk_profiles")) c \(dialect.orderedJoin) \(table) p ON p.id = c.id "
            + "WHERE \(dialect.isDistinct("p.\(column)", "?"))"
    }

    /// The profile write path, as a marketer's bulk task.
    func writer(_ db: Connection) -> ProfileWriter {
        ProfileWriter(db, databaseID: databaseID, catalogue: catalogue, actor: actor, origin: .bulk, now: now, skipTriggers: skipTriggers,
                      taskID: taskID)
    }

    func run(after: Int64, upTo: Int64, count: Int, _ db: Connection) throws -> BulkChunk {
        let range: [SQLValue] = [.integer(taskID), .integer(after), .integer(upTo)]
        var chunk = BulkChunk()
        switch action {
        case .updateFields(let changes):
            let resolved = try BulkUpdates.resolve(changes, catalogue)
            let differs = resolved.map { db.dialect.isDistinct("p.\($0.column)", "?") }.joined(separator: " OR ")
            let values = resolved.map(\.value)
            // The chunk's profiles this changes, found once; the log, history, triggers and the update read them.
            try db.execute("CREATE TEMP TABLE IF NOT EXISTS bulk_profiles (id \(db.dialect.type(.integer)) PRIMARY KEY, profile_id \(db.dialect.type(.text)) NOT NULL)")
            try db.run("DELETE FROM \(db.dialect.temp("bulk_profiles"))")
            try db.prepare("INSERT INTO \(db.dialect.temp("bulk_profiles")) (id, profile_id) SELECT p.id, p.profile_id FROM \(table) p WHERE p.id IN (\(targets)) AND (\(differs))")
                .execute(range + values)
            for r in resolved {
                try db.prepare(BulkExecutor.changeLogSQL(table: table, column: r.column, type: r.type, db.dialect))
                    .execute([.integer(taskID), .text(r.key), r.shown.map { .text($0) } ?? .null, r.value])
            }
            let details = JSONValue.object(["fields": .array(resolved.map { .string($0.key) }), "task": .int(taskID)]).canonical
            try db.run("INSERT INTO \(history) (profile, at, type, actor, details) SELECT id, ?, ?, ?, ? FROM \(db.dialect.temp("bulk_profiles"))",
                       [.integer(now), .text(HistoryEvent.fieldChanged), actor.map { .integer($0) } ?? SQLValue.null, .text(details)])
            if !skipTriggers {
                try db.run("INSERT INTO trigger_events (database_id, profile_id, type, payload, task_id, created_at) SELECT ?, profile_id, 'field_updated', ?, ?, ? FROM \(db.dialect.temp("bulk_profiles"))",
                           [SQLValue.integer(databaseID), .text(details), .integer(taskID), .integer(now)])
            }
            chunk.updated = try db.prepare("UPDATE \(table) SET \(resolved.map { "\($0.column) = ?" }.joined(separator: ", ")), updated_at = ?, version = version + 1 WHERE id IN (SELECT id FROM \(db.dialect.temp("bulk_profiles")))")
                .execute(values + [.integer(now)])
            chunk.skip(SkipReason.unchanged, count - chunk.updated)
            if chunk.updated > 0 { try db.run(History.bumpStatsBy, [databaseID, now, HistoryEvent.fieldChanged, chunk.updated, chunk.updated]) }

        case .unsubscribe:
            try db.prepare("INSERT INTO task_changes (task_id, profile_id, field, before, after) SELECT ?, p.profile_id, 'status', \(BulkExecutor.statusName("p.status")), 'unsubscribed' FROM \(table) p WHERE p.id IN (\(targets)) AND p.status <> 1")
                .execute([.integer(taskID)] + range)
            try db.prepare("INSERT INTO \(history) (profile, at, type, actor, details) SELECT p.id, ?, ?, ?, \(db.dialect.jsonObject([("from", BulkExecutor.statusName("p.status")), ("to", "'unsubscribed'"), ("task", "?")])) FROM \(table) p WHERE p.id IN (\(targets)) AND p.status <> 1")
                .execute([.integer(now), .text(HistoryEvent.statusChanged), actor.map { .integer($0) } ?? .null, .integer(taskID)] + range)
            if !skipTriggers {
                // The same event as ProfileWriter.update writes for a global status change.
                try db.prepare("""
                    INSERT INTO trigger_events (database_id, profile_id, type, payload, task_id, created_at)
                    SELECT ?, p.profile_id, 'status_updated', \(db.dialect.jsonObject([("from", BulkExecutor.statusName("p.status")),
                                                                                        ("status", "'unsubscribed'")])), ?, ?
                    FROM \(table) p WHERE p.id IN (\(targets)) AND p.status <> 1
                    """).execute([.integer(databaseID), .integer(taskID), .integer(now)] + range)
            }
            chunk.updated = try db.prepare("UPDATE \(table) SET status = 1, updated_at = ?, version = version + 1 WHERE id IN (\(targets)) AND status <> 1").execute([.integer(now)] + range)
            chunk.skip(SkipReason.unchanged, count - chunk.updated)
            if chunk.updated > 0 { try db.run(History.bumpStatsBy, [databaseID, now, HistoryEvent.statusChanged, chunk.updated, chunk.updated]) }

        case .undo(let original):
            return try undo(original, after: after, upTo: upTo, count: count, db)

        case .deleteInactive:
            let inactive = "(last_interaction_at IS NULL OR last_interaction_at < ?)"
            // Kept for ROSTER_UNDO_DAYS, with what goes with them, so the deletion can be undone.
            _ = try DeletionArchive.write(self, condition: inactive, range + [.integer(cutoff)], db)
            try db.prepare("INSERT INTO task_changes (task_id, profile_id, field, before, after) SELECT ?, p.profile_id, 'profile', p.email, 'deleted' FROM \(table) p WHERE p.id IN (\(targets)) AND \(inactive)")
                .execute([.integer(taskID)] + range + [.integer(cutoff)])
            // History, subscriptions, relations and static-segment memberships go with the profile (ON DELETE
            // CASCADE); the daily event statistics stay, so reports keep the deleted profiles' actions.
            chunk.deleted = try db.prepare("DELETE FROM \(table) WHERE id IN (\(targets)) AND \(inactive)").execute(range + [.integer(cutoff)])
            chunk.skip(SkipReason.recentInteraction, count - chunk.deleted)

        case .updateSubscriptionStatus(let resourceID, let channel, let statusText, let includeUnsafe):
            guard let status = ProfileStatus(text: statusText) else { throw ValidationError(field: "status", "Choose one of the seven statuses.") }
            let guardUnsafe = status == .subscribed && !includeUnsafe
            let scope = "s.profile IN (\(targets)) AND s.resource_id = ? AND s.channel = ? AND s.deleted = 0"
            let scopeParams = range + [.integer(resourceID), .text(channel)]
            let newStatus = SQLValue.integer(Int64(status.rawValue))
            var change = "s.status <> ?" + (guardUnsafe ? " AND s.status NOT IN (\(EventRules.unsafeCodesSQL))" : "")
            // Double opt-in: only the subscriber's confirmation makes an unconfirmed subscription subscribed.
            if status == .subscribed, try ResourceStore.doubleOptInRow(resourceID, db) != nil {
                let waiting = try db.prepare("SELECT COUNT(*) FROM \(subscriptions) s WHERE \(scope) AND s.status = \(ProfileStatus.unconfirmed.rawValue)")
                    .query(scopeParams).first?[0].int ?? 0
                chunk.skip(SkipReason.awaitingConfirmation, waiting)
                change += " AND s.status <> \(ProfileStatus.unconfirmed.rawValue)"
            }
            // The suppression lists' rule, set-based: no subscription to a suppressed contact becomes active.
            let activating = status == .subscribed || status == .unconfirmed
            let suppressed = Suppressions.suppressedSQL("s", databaseID: databaseID, db.dialect)
            if activating {
                let downgrade = status == .unconfirmed ? " AND s.status <> \(ProfileStatus.subscribed.rawValue)" : ""
                let count = try db.prepare("""
                    SELECT COUNT(*) FROM \(subscriptions) s WHERE \(scope) AND \(change)\(downgrade) AND \(suppressed)
                    """).query(scopeParams + [newStatus]).first?[0].int ?? 0
                chunk.skip(SkipReason.suppressed, count)
                change += " AND (NOT \(suppressed)\(status == .unconfirmed ? " OR s.status = \(ProfileStatus.subscribed.rawValue)" : ""))"
            }
            // One pass over the chunk's subscriptions counts what is skipped and why.
            let tally = try db.prepare("""
                SELECT COALESCE(SUM(CASE WHEN s.status = ? THEN 1 ELSE 0 END), 0) AS same,
                    COALESCE(SUM(CASE WHEN s.status IN (\(EventRules.unsafeCodesSQL)) AND s.status <> ? THEN 1 ELSE 0 END), 0) AS unsafe
                FROM \(subscriptions) s WHERE \(scope)
                """).query([newStatus, newStatus] + scopeParams).first
            chunk.skip(SkipReason.unchanged, tally?.int("same") ?? 0)
            if guardUnsafe { chunk.skip(SkipReason.unsafeStatus, tally?.int("unsafe") ?? 0) }
            let none = try db.prepare("SELECT COUNT(*) FROM (\(targets)) t WHERE NOT EXISTS (SELECT 1 FROM \(subscriptions) s WHERE s.profile = t.profile AND s.resource_id = ? AND s.channel = ? AND s.deleted = 0)")
                .query(range + [.integer(resourceID), .text(channel)]).first?[0].int ?? 0
            chunk.skip(SkipReason.noSubscription, none)
            // The subscriptions to change, found once; the log, history, triggers and the change itself read them.
            let (integer, text) = (db.dialect.type(.integer), db.dialect.type(.text))
            try db.execute("CREATE TEMP TABLE IF NOT EXISTS bulk_subs (id \(integer) PRIMARY KEY, profile \(integer), profile_id \(text), before \(integer), label \(text))")
            try db.run("DELETE FROM \(db.dialect.temp("bulk_subs"))")
            try db.prepare("""
                INSERT INTO \(db.dialect.temp("bulk_subs")) (id, profile, profile_id, before, label)
                SELECT s.id, s.profile, p.profile_id, s.status, 'subscription ' || s.resource_id || ' ' || s.channel || ' ' || s.contact
                FROM \(subscriptions) s JOIN \(table) p ON p.id = s.profile WHERE \(scope) AND \(change)
                """).execute(scopeParams + [newStatus])
            try db.run("INSERT INTO task_changes (task_id, profile_id, field, before, after) SELECT ?, profile_id, label, \(BulkExecutor.statusName("before")), ? FROM \(db.dialect.temp("bulk_subs"))",
                       [SQLValue.integer(taskID), SQLValue.text(status.name)])
            let type = status == .unsubscribed ? HistoryEvent.unsubscribed : HistoryEvent.subscriptionChanged
            try db.run("INSERT INTO \(history) (profile, at, type, actor, details) SELECT profile, ?, ?, ?, \(db.dialect.jsonObject([("subscription", "id"), ("from", BulkExecutor.statusName("before")), ("status", db.dialect.text("?")), ("task", "?")])) FROM \(db.dialect.temp("bulk_subs"))",
                       [SQLValue.integer(now), SQLValue.text(type), actor.map { SQLValue.integer($0) } ?? SQLValue.null, SQLValue.text(status.name), SQLValue.integer(taskID)])
            if !skipTriggers {
                try db.run("INSERT INTO trigger_events (database_id, profile_id, type, payload, task_id, created_at) SELECT ?, profile_id, 'subscription_updated', \(db.dialect.jsonObject([("resource_id", "?"), ("channel", db.dialect.text("?")), ("status", db.dialect.text("?"))])), ?, ? FROM \(db.dialect.temp("bulk_subs"))",
                           [SQLValue.integer(databaseID), SQLValue.integer(resourceID), SQLValue.text(channel), SQLValue.text(status.name), SQLValue.integer(taskID), SQLValue.integer(now)])
            }
            // The same rules as every other history event (EventRules): a marketer's status change engages the profile
            // but is not a customer interaction.
            if EventRules.isInteraction(type, origin: .bulk) {
                try db.run("UPDATE \(table) SET last_interaction_at = \(db.dialect.greatest("COALESCE(last_interaction_at, 0)", "?")) WHERE id IN (SELECT profile FROM \(db.dialect.temp("bulk_subs")))",
                           [SQLValue.integer(now)])
            }
            if EventRules.engages(type) {
                try db.run("UPDATE \(table) SET engaged_at = COALESCE(engaged_at, ?) WHERE id IN (SELECT profile FROM \(db.dialect.temp("bulk_subs")))", [SQLValue.integer(now)])
            }
            chunk.updated = try db.run("UPDATE \(subscriptions) SET status = ?, updated_at = ? WHERE id IN (SELECT id FROM \(db.dialect.temp("bulk_subs")))", [newStatus, SQLValue.integer(now)])
            if status == .hardBounced || status == .complainer {
                // Hard bounces and complaints fill the lists that take them automatically (as ProfileWriter.recordBounce).
                for row in try db.query("SELECT s.channel, s.contact FROM \(subscriptions) s WHERE s.id IN (SELECT id FROM \(db.dialect.temp("bulk_subs")))") {
                    guard let channel = Channel(rawValue: row.string("channel") ?? "") else { continue }
                    try Suppressions.recordBounce(db, databaseID: databaseID, channel: channel, contact: row.string("contact") ?? "",
                                                  status: status, now: now)
                }
            }
            try db.run("DELETE FROM \(db.dialect.temp("bulk_subs"))")
            if chunk.updated > 0 { try db.run(History.bumpStatsBy, [databaseID, now, type, chunk.updated, chunk.updated]) }

        case .addSubscription(let resourceID, let channelText, let statusText, let sourceID, let includeUnsafe):
            guard let status = ProfileStatus(text: statusText), let channel = Channel(rawValue: channelText) else {
                throw ValidationError(field: "action", "The task's subscription cannot be read.")
            }
            let writer = self.writer(db)
            let rows = try db.prepare("SELECT p.id, p.profile_id, p.email, p.phones FROM \(table) p WHERE p.id IN (\(targets)) ORDER BY p.id").query(range)
            for row in rows {
                let rowID = row.int64("id") ?? 0
                let profileID = row.string("profile_id") ?? ""
                var contact = ""
                var provider = ""
                if let sourceID {
                    guard let source = try db.queryOne("""
                        SELECT contact, provider, status FROM \(subscriptions) WHERE profile = ? AND resource_id = ? AND channel = ? AND deleted = 0
                        ORDER BY priority, created_at, id LIMIT 1
                        """, [rowID, sourceID, channel.rawValue]) else { chunk.skip(SkipReason.noSource); continue }
                    // A source subscription in an unsafe status gives no contact to subscribe (the same rule).
                    let sourceStatus = ProfileStatus(rawValue: source.int("status") ?? 0) ?? .subscribed
                    if status == .subscribed, !includeUnsafe, EventRules.unsafe(sourceStatus) { chunk.skip(SkipReason.unsafeStatus); continue }
                    contact = source.string("contact") ?? ""
                    provider = source.string("provider") ?? ""
                } else if channel == .email {
                    let email = row.string("email") ?? ""
                    if email == ProfileIdentity.placeholderEmail(profileID) { chunk.skip(SkipReason.noContact); continue }
                    contact = email
                } else {
                    guard let phone = JSONValue.stringList(row.string("phones")).first else { chunk.skip(SkipReason.noContact); continue }
                    contact = phone
                }
                // Only what the action sets changes: the status (categories, priority and fields stay).
                let change = SubscriptionChange(resourceID: resourceID, channel: channel.rawValue, contact: contact, provider: provider,
                                                status: status, includeUnsafe: includeUnsafe)
                let outcome: SubscribeOutcome
                do {
                    try db.run("SAVEPOINT bulk_subscription")
                    outcome = try writer.subscribe(rowID: rowID, profileID: profileID, change)
                    try db.run("RELEASE bulk_subscription")
                } catch let error where error is ValidationError || error is UnsafeStatusRefusal || error is SuppressedContact {
                    try db.run("ROLLBACK TO bulk_subscription")
                    try db.run("RELEASE bulk_subscription")
                    if error is UnsafeStatusRefusal { chunk.skip(SkipReason.unsafeStatus) }
                    else if error is SuppressedContact { chunk.skip(SkipReason.suppressed) } else {
                        chunk.failed += 1
                        chunk.reasons["invalid_contact", default: 0] += 1
                    }
                    continue
                }
                let before: String, id: Int64
                switch outcome {
                case .unchanged: chunk.skip(SkipReason.unchanged); continue
                case .added(let added): (before, id) = ("", added)
                case .updated(let updated, let old, let wasDeleted):
                    (before, id) = (SubscriptionChangeLog.before(old, wasDeleted: wasDeleted), updated)
                }
                // The status as written: a resource with double opt-in makes a new subscription unconfirmed.
                let after = try db.scalar("SELECT status FROM \(subscriptions) WHERE id = ?", [id]).int
                    .flatMap(ProfileStatus.init(rawValue:)) ?? status
                try db.run(BulkStore.insertChange, [taskID, profileID, "subscription \(resourceID) \(channel.rawValue) \(contact)", before,
                                                    after.name])
                chunk.updated += 1
            }

        case .promoCodes(let programID, let attach):
            if attach {
                let rows = try db.prepare("SELECT p.id, p.profile_id FROM \(table) p WHERE p.id IN (\(targets)) ORDER BY p.id").query(range)
                for row in rows {
                    let rowID = row.int64("id") ?? 0
                    let profileID = row.string("profile_id") ?? ""
                    if try db.queryOne(BulkStore.hasCode, [programID, databaseID, profileID]) != nil { chunk.skip(SkipReason.hasCode); continue }
                    guard let text = try writer(db).attachFreeCode(rowID: rowID, profileID: profileID, programID: programID,
                                                                          skipping: codesAlreadyAttached) else {
                        chunk.skip(SkipReason.noFreeCode)
                        continue
                    }
                    try db.run(BulkStore.insertChange, [taskID, profileID, "promo code \(programID)", "", text])
                    chunk.updated += 1
                }
            } else {
                let codes = try db.prepare("""
                    SELECT c.id, c.code, p.id AS row, p.profile_id FROM promo_codes c JOIN \(table) p ON p.profile_id = c.profile_id
                    WHERE c.program_id = ? AND c.database_id = ? AND c.status IN ('attached', 'activated') AND p.id IN (\(targets))
                    """).query([.integer(programID), .integer(databaseID)] + range)
                var profilesWithCodes = Set<Int64>()
                for code in codes {
                    try writer(db).detachCode(rowID: code.int64("row") ?? 0, codeID: code.int64("id") ?? 0, code: code.string("code") ?? "")
                    try db.run(BulkStore.insertChange, [taskID, code.string("profile_id") ?? "", "promo code \(programID)", code.string("code") ?? "", "detached"])
                    profilesWithCodes.insert(code.int64("row") ?? 0)
                }
                chunk.updated = codes.count
                chunk.skip(SkipReason.noCode, count - profilesWithCodes.count)
            }
        }
        return chunk
    }
}

enum BulkStore {
    static let insertChange = NamedQuery("bulk.insertChange", "INSERT INTO task_changes (task_id, profile_id, field, before, after) VALUES (?, ?, ?, ?, ?)")
    static let insertTrigger = NamedQuery("bulk.insertTrigger", "INSERT INTO trigger_events (database_id, profile_id, type, payload, task_id, created_at) VALUES (?, ?, ?, ?, ?, ?)")
    static let hasCode = NamedQuery("bulk.hasCode", "SELECT 1 FROM promo_codes WHERE program_id = ? AND database_id = ? AND profile_id = ? AND status IN ('attached', 'activated')")
    static let freeCode = NamedQuery("bulk.freeCode", "SELECT id, code FROM promo_codes WHERE program_id = ? AND status = 'free' ORDER BY id LIMIT 1 OFFSET ?")
    static let attachCode = NamedQuery("bulk.attachCode", "UPDATE promo_codes SET status = 'attached', database_id = ?, profile_id = ?, attached_at = ? WHERE id = ? AND status = 'free'")
    static let changes = NamedQuery("bulk.changes", "SELECT id, profile_id, field, before, after FROM task_changes WHERE task_id = ? AND id > ? ORDER BY id LIMIT ?")
    static let changeCount = NamedQuery("bulk.changeCount", "SELECT COUNT(*) FROM task_changes WHERE task_id = ?")
    static var queries: [NamedQuery] { [insertChange, insertTrigger, hasCode, freeCode, attachCode, changes, changeCount] }
}

/// The bulk-update task: freezes its targets when it starts, then applies the action chunk by chunk.
public struct BulkUpdateTask: TaskHandler {
    public static let kind = "bulk_update"
    let clock: Clock
    let removalMinMonths: Int

    /// Profiles per chunk (one transaction each): large enough that a chunk's fixed costs vanish, small enough that
    /// the writer lock is held well under a second.
    public var preferredChunkSize: Int? { 5000 }

    public init(clock: Clock = .system, removalMinMonths: Int = 1) {
        self.clock = clock
        self.removalMinMonths = removalMinMonths
    }

    /// Deleting profiles needs an admin, whoever launched the task; every other action an editor.
    public func mayRun(_ task: TaskRecord, role: Role) -> Bool {
        guard role.canEdit else { return false }
        if case .deleteInactive? = task.parameters["action"].flatMap(BulkAction.init(json:)) { return role.canDelete }
        if task.parameters["restores_profiles"] == .bool(true) { return Undo.mayRestore(role) }
        return true
    }

    static func request(_ task: TaskRecord) throws -> BulkRequest {
        try request(databaseID: task.databaseID, segmentID: task.segmentID, parameters: task.parameters)
    }

    /// A request as a task (or a schedule) stores it: `BulkUpdates.parameters`.
    static func request(databaseID: Int64?, segmentID: Int64?, parameters: [String: JSONValue]) throws -> BulkRequest {
        guard let databaseID, let selectionJSON = parameters["selection"], let selection = Selection(json: selectionJSON),
              let actionJSON = parameters["action"], let action = BulkAction(json: actionJSON) else {
            throw ValidationError(field: "task", "The task's parameters cannot be read.")
        }
        var skip = false
        if case .bool(let b)? = parameters["skip_triggers"] { skip = b }
        return BulkRequest(databaseID: databaseID, segmentID: segmentID, selection: selection, action: action, skipTriggers: skip)
    }

    /// Writes the target rows for `taskID`; returns how many.
    static func freeze(_ request: BulkRequest, taskID: Int64, now: Int64, _ db: Connection) throws -> Int {
        if case .undo(let original) = request.action { return try Undo.freeze(of: original, taskID: taskID, db) }
        return try TaskTargets.freeze(request.scope, taskID: taskID, now: now, db)
    }

    /// The profiles a request selects (what approval rules count): its targets, except for an undo, whose items are
    /// values (`total`: its targets counted already).
    static func selectedProfiles(_ request: BulkRequest, now: Int64 = 0, total: Int? = nil, _ db: Connection) throws -> Int {
        if case .undo(let original) = request.action { return try Undo.profiles(of: original, db) }
        if let total { return total }
        return try targets(request, now: now, db).count
    }

    /// The ids a request works through, in order, as `freeze` would write them now: the selection's profiles; for
    /// an undo, the original's change-log rows or archived profiles.
    static func targets(_ request: BulkRequest, now: Int64, _ db: Connection) throws -> [Int64] {
        if case .undo(let original) = request.action { return try Undo.targets(of: original, db) }
        return try TaskTargets.select(request.scope, now: now, db)
    }

    public func prepare(_ task: TaskRecord, _ db: Connection) throws -> (total: Int, parameters: [String: JSONValue]) {
        let request = try BulkUpdateTask.request(task)
        guard try db.queryOne(DatabaseStore.byID, [request.databaseID]) != nil else { throw ValidationError(field: "task", "The database no longer exists.") }
        let now = clock.now()
        let total = try BulkUpdateTask.freeze(request, taskID: task.id, now: now, db)
        // Approval holds for what was approved: a selection that grew since (a segment widened) is refused, and so is
        // a task that an approval rule now names but nobody approved. The throw rolls the frozen targets back.
        if let approved = task.int64Parameter("approved_selected") {
            if total > approved {
                throw ValidationError(field: "task", "The selection grew from \(approved) to \(total) profiles after it was approved; "
                                      + "nothing was changed. Launch it again to have the new selection approved.")
            }
        } else {
            let selected = try BulkUpdateTask.selectedProfiles(request, total: total, db)
            if let reason = try Approvals.rules(db).reason(for: request.action, selected: selected) {
                throw ValidationError(field: "task", reason + " It selects \(selected) profiles now and was not approved; nothing was "
                                      + "changed. Launch it again.")
            }
        }
        // The cut-off is fixed when the task starts, so a task resumed next month deletes the same profiles.
        return (total, ["cutoff": .int(BulkUpdates.cutoff(now: now, months: removalMinMonths)), "started": .int(now)])
    }

    public func runChunk(_ task: TaskRecord, limit: Int, _ db: Connection) throws -> ChunkOutcome {
        let request = try BulkUpdateTask.request(task)
        let ids = try TaskTargets.next(taskID: task.id, after: task.cursor, limit: limit, db)
        var outcome = ChunkOutcome(cursor: task.cursor)
        guard let last = ids.last else {
            outcome.finished = true  // the runner drops the targets with the task's end
            return outcome
        }
        let executor = BulkExecutor(databaseID: request.databaseID, taskID: task.id, actor: task.createdBy, action: request.action,
                                    skipTriggers: request.skipTriggers, now: clock.now(), cutoff: task.int64Parameter("cutoff") ?? 0,
                                    catalogue: try Profiles.catalogue(request.databaseID, db))
        let chunk = try executor.run(after: task.cursor, upTo: last, count: ids.count, db)
        outcome.cursor = last
        outcome.processed = ids.count
        outcome.updated = chunk.updated
        outcome.deleted = chunk.deleted
        outcome.skipped = chunk.skipped
        outcome.failed = chunk.failed
        outcome.reasons = chunk.reasons
        if chunk.reasons[SkipReason.noFreeCode] != nil { outcome.message = "The program ran out of free promo codes; the profiles after that got none (see the counts)." }
        if ids.count < limit { outcome.finished = true }
        return outcome
    }
}
