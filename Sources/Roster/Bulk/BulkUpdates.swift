import Foundation
import SQLiteStore

/// What a bulk update will do, counted by running it and rolling back.
public struct BulkPreview: Sendable {
    public let selected: Int
    public let updated: Int
    public let deleted: Int
    public let skipped: Int
    public let failed: Int
    public let reasons: [String: Int]
    /// A few of the changes: profile id, field, before, after.
    public let sample: [(profileID: String, field: String, before: String, after: String)]
    /// Deletion: profiles with no interaction since this time are deleted.
    public let cutoff: Int64
}

/// A field of a field update, resolved against the catalogue and judged.
struct ResolvedChange {
    let key: String
    let column: String
    let value: SQLValue
    /// The new value as the change log shows it (nil when deleted).
    let shown: String?
    let type: FieldType?
}

/// Bulk updates: checking a request, previewing it exactly, launching it as a task.
public final class BulkUpdates: Sendable {
    let pool: DatabasePool
    let tasks: TaskRunner
    let clock: Clock
    public let removalMinMonths: Int

    public init(pool: DatabasePool, tasks: TaskRunner, clock: Clock = .system, removalMinMonths: Int = 1) {
        self.pool = pool
        self.tasks = tasks
        self.clock = clock
        self.removalMinMonths = removalMinMonths
    }

    /// The start of the current month (UTC) minus `months` months: profiles with no interaction since then may be
    /// deleted. On the 1st and on the 31st of a month it is the same day.
    public static func cutoff(now: Int64, months: Int) -> Int64 {
        let parts = UTCTime.parts(now)
        var year = parts.year
        var month = parts.month - months
        while month < 1 { month += 12; year -= 1 }
        return Int64(UTCTime.days(year: year, month: month, day: 1)) * 86_400
    }

    public var currentCutoff: Int64 { BulkUpdates.cutoff(now: clock.now(), months: removalMinMonths) }

    static func resolve(_ changes: [FieldChange], _ catalogue: Profiles.Catalogue) throws -> [ResolvedChange] {
        var errors: [String: String] = [:]
        var resolved: [ResolvedChange] = []
        if changes.isEmpty { throw ValidationError(field: "fields", "Add at least one field to change.") }
        for change in changes {
            let key = "field_" + change.field
            if resolved.contains(where: { $0.key == change.field }) { errors[key] = "\(change.field) is chosen twice."; continue }
            if StandardField.named(change.field)?.kind == .email {
                errors[key] = "Emails identify profiles and are unique: they cannot be set in bulk."
                continue
            }
            // Judged by the profile write path's rules: the type, the options, and required fields never emptied.
            if let text = change.value, text.trimmed.isEmpty {
                errors[key] = "\(change.field): enter a value, or choose “delete the value”."
                continue
            }
            do {
                let (ref, value) = try ProfileWriter.judgeOne(change.field, .text(change.value ?? ""), catalogue)
                let type: FieldType?
                if let standard = StandardField.named(change.field) {
                    if case .typed(let t) = standard.kind { type = t } else { type = nil }
                } else {
                    type = catalogue.custom.first { $0.name == change.field }?.type
                }
                let shown = change.value == nil ? nil : (type?.display(value) ?? FieldType.tags.display(value))
                resolved.append(ResolvedChange(key: ref.key, column: ref.column, value: value, shown: shown, type: type))
            } catch let error as ValidationError {
                for message in error.fieldErrors.values { errors[key] = message }
            }
        }
        if !errors.isEmpty { throw ValidationError(errors) }
        return resolved
    }

    /// Checks everything a forged form could get wrong. `role` decides who may delete.
    public func validate(_ request: BulkRequest, role: Role) throws {
        guard role.canEdit else { throw ValidationError(field: "action", "Viewers cannot change profiles.") }
        try pool.read { db in
            guard try db.queryOne(DatabaseStore.byID.sql, [request.databaseID]) != nil else { throw ValidationError(field: "database", "No such database.") }
            let context = try SelectionContext.load(request.databaseID, now: clock.now(), db)
            _ = try request.scope.compile(db, now: clock.now())
            func status(_ text: String) throws -> ProfileStatus {
                guard let s = ProfileStatus(text: text) else { throw ValidationError(field: "status", "Choose one of the seven statuses.") }
                return s
            }
            func resource(_ id: Int64, _ channel: String, field: String) throws {
                guard let r = context.resources[id] else { throw ValidationError(field: field, "The resource is not attached to this database.") }
                guard let c = Channel(rawValue: channel), r.channels.contains(c) else { throw ValidationError(field: "channel", "\(r.name) has no \(channel) channel.") }
            }
            switch request.action {
            case .updateFields(let changes):
                _ = try BulkUpdates.resolve(changes, try Profiles.catalogue(request.databaseID, db))
            case .addSubscription(let r, let channel, let s, let source, _):
                try resource(r, channel, field: "resource")
                _ = try status(s)
                if let source {
                    if source == r { throw ValidationError(field: "source_resource", "Take the contacts from another resource.") }
                    try resource(source, channel, field: "source_resource")
                } else if let c = Channel(rawValue: channel), ![Channel.email, .sms, .whatsapp, .viber].contains(c) {
                    throw ValidationError(field: "channel", "Profile fields hold contacts for email, SMS, WhatsApp and Viber; for \(channel) take the contacts from another resource.")
                }
            case .updateSubscriptionStatus(let r, let channel, let s, _):
                try resource(r, channel, field: "resource")
                _ = try status(s)
            case .promoCodes(let program, _):
                guard try db.queryOne(LoyaltyStore.byID.sql, [program]) != nil else { throw ValidationError(field: "program", "No such loyalty program.") }
            case .deleteInactive:
                guard role.canDelete else { throw ValidationError(field: "action", "Only admins can delete profiles.") }
                guard try request.scope.hasCondition(db) else {
                    throw ValidationError(field: "rules", "Deleting needs at least one condition (a rule, a range, or a limit above 0), "
                                          + "in the form or in the segment. Roster never deletes a whole database this way.")
                }
            case .unsubscribe:
                guard try request.scope.hasCondition(db) else {
                    throw ValidationError(field: "rules", "A global unsubscribe needs at least one condition (a rule, a range, or a limit "
                                          + "above 0), in the form or in the segment. Roster never unsubscribes a whole database this way.")
                }
            }
        }
    }

    public func parameters(_ request: BulkRequest) -> [String: JSONValue] {
        ["selection": request.selection.json, "action": request.action.json, "skip_triggers": .bool(request.skipTriggers)]
    }

    /// Runs the action over every selected profile in a transaction that is rolled back, and reports what it did.
    /// Checked first exactly as a launch is (`validate`), so a preview never shows what could not be launched.
    public func preview(_ request: BulkRequest, actor: User) throws -> BulkPreview {
        try validate(request, role: actor.role)
        let actor: Int64? = actor.id
        struct Rollback: Error { let preview: BulkPreview }
        let now = clock.now()
        let cutoff = BulkUpdates.cutoff(now: now, months: removalMinMonths)
        // A task id no task has: the dry run's targets and change-log rows vanish with the rollback.
        let dryID: Int64 = -Int64.random(in: 1...Int64(Int32.max))
        do {
            try pool.write { db -> Void in
                let selected = try BulkUpdateTask.freeze(request, taskID: dryID, now: now, db)
                let executor = BulkExecutor(databaseID: request.databaseID, taskID: dryID, actor: actor, action: request.action,
                                            skipTriggers: request.skipTriggers, now: now, cutoff: cutoff, catalogue: try Profiles.catalogue(request.databaseID, db))
                var total = BulkChunk()
                var cursor: Int64 = 0
                while true {
                    let ids = try TaskTargets.next(taskID: dryID, after: cursor, limit: 5000, db)
                    guard let last = ids.last else { break }
                    let chunk = try executor.run(after: cursor, upTo: last, count: ids.count, db)
                    total.updated += chunk.updated
                    total.deleted += chunk.deleted
                    total.skipped += chunk.skipped
                    total.failed += chunk.failed
                    for (k, v) in chunk.reasons { total.reasons[k, default: 0] += v }
                    cursor = last
                }
                let sample = try db.query(BulkStore.changes.sql, [dryID, 0, 10]).map {
                    (profileID: $0.string("profile_id") ?? "", field: $0.string("field") ?? "", before: $0.string("before") ?? "", after: $0.string("after") ?? "")
                }
                throw Rollback(preview: BulkPreview(selected: selected, updated: total.updated, deleted: total.deleted, skipped: total.skipped, failed: total.failed,
                                                    reasons: total.reasons, sample: sample, cutoff: cutoff))
            }
        } catch let rollback as Rollback {
            return rollback.preview
        }
        throw ValidationError(field: "preview", "The preview could not run.")
    }

    /// Records the task (committed before this returns) and wakes the runner.
    public func start(_ request: BulkRequest, title: String, user: User) throws -> Int64 {
        try validate(request, role: user.role)
        return try tasks.enqueue(kind: BulkUpdateTask.kind, title: title, databaseID: request.databaseID, userID: user.id,
                                 parameters: parameters(request), segmentID: request.segmentID)
    }

    /// The change log of a task, as CSV written to `path` (page by page, so a million changes never sit in memory).
    public func writeChanges(taskID: Int64, to path: String) throws {
        FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationError(field: "file", "Cannot write the change log.") }
        defer { try? handle.close() }
        handle.write(Data("profile_id,field,before,after\r\n".utf8))
        var after: Int64 = 0
        while true {
            let rows = try pool.read { try $0.query(BulkStore.changes.sql, [taskID, after, 10_000]) }
            guard let last = rows.last else { break }
            var text = ""
            for row in rows {
                text += [row.string("profile_id") ?? "", row.string("field") ?? "", row.string("before") ?? "", row.string("after") ?? ""]
                    .map { ExportProfilesTask.cell($0, neutralize: true) }.joined(separator: ",") + "\r\n"
            }
            handle.write(Data(text.utf8))
            after = last.int64("id") ?? after
        }
    }

    public func changeCount(taskID: Int64) throws -> Int {
        try pool.read { try $0.scalar(BulkStore.changeCount.sql, [taskID]).int ?? 0 }
    }
}
