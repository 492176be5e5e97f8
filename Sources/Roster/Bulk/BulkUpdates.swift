import Foundation
import Store

/// What a bulk update will do, counted by running it and rolling back.
public struct BulkPreview: Sendable {
    public let selected: Int
    public let updated: Int
    public let deleted: Int
    public let skipped: Int
    public let failed: Int
    public let reasons: [String: Int]
    /// A few of the changes: profile id, field, before, after.
    /// A few changes as a person reads them: the profile's email beside its id, labels and names for the field.
    public let sample: [ChangeRow]
    /// An undo: a few values changed since the task, which it leaves alone (before: what the task left; after: now).
    public var drift: [ChangeRow] = []
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

    public init(pool: DatabasePool, tasks: TaskRunner, clock: Clock = .system, removalMinMonths: Int = 1, previewChunk: Int = 2000) {
        self.previewChunk = max(1, previewChunk)
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
                let type = fieldType(change.field, catalogue)
                let shown = change.value == nil ? nil : (type?.display(value) ?? FieldType.tags.display(value))
                resolved.append(ResolvedChange(key: ref.key, column: ref.column, value: value, shown: shown, type: type))
            } catch let error as ValidationError {
                for message in error.fieldErrors.values { errors[key] = message }
            }
        }
        if !errors.isEmpty { throw ValidationError(errors) }
        return resolved
    }

    /// The type of a standard or custom field (nil: plain text).
    static func fieldType(_ field: String, _ catalogue: Profiles.Catalogue) -> FieldType? {
        if let standard = StandardField.named(field) {
            if case .typed(let t) = standard.kind { return t }
            return nil
        }
        return catalogue.custom.first { $0.name == field }?.type
    }

    /// Checks everything a forged form could get wrong. `role` decides who may delete.
    /// `task`: the waiting task the request belongs to (its approver's preview), when there is one.
    public func validate(_ request: BulkRequest, role: Role, task: Int64? = nil) throws {
        guard role.canEdit else { throw ValidationError(field: "action", "Viewers cannot change profiles.") }
        try pool.read { db in
            guard try db.queryOne(DatabaseStore.byID, [request.databaseID]) != nil else { throw ValidationError(field: "database", "No such database.") }
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
                guard try db.queryOne(LoyaltyStore.byID, [program]) != nil else { throw ValidationError(field: "program", "No such loyalty program.") }
            case .deleteInactive:
                guard role.canDelete else { throw ValidationError(field: "action", "Only admins can delete profiles.") }
                guard try request.scope.hasCondition(db) else {
                    throw ValidationError(field: "rules", "Deleting needs at least one condition (a rule, a range, or a limit above 0), "
                                          + "in the form or in the segment. Roster never deletes a whole database this way.")
                }
            case .undo(let original):
                _ = try Undo.original(original, databaseID: request.databaseID, role: role, undoTask: task, db)
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

    /// Profiles per preview chunk: each chunk holds the writer for about as long as a task's chunk, never longer.
    let previewChunk: Int

    /// Runs the same code as the task over every selected profile, chunk by chunk, each chunk in its own
    /// transaction that is rolled back, and adds up what they did. The selection is read once on a read snapshot
    /// (as the task freezes it when it starts); between chunks every other writer goes ahead, so a preview of a
    /// million profiles never holds the write lock longer than one chunk. Checked first exactly as a launch is.
    public func preview(_ request: BulkRequest, actor user: User, task: Int64? = nil) throws -> BulkPreview {
        try validate(request, role: user.role, task: task)
        struct Rollback: Error { let chunk: BulkChunk; let sample: [ChangeRow] }
        let now = clock.now()
        let cutoff = BulkUpdates.cutoff(now: now, months: removalMinMonths)
        // A task id no task has: the dry run's targets and change-log rows vanish with each rollback.
        let dryID: Int64 = -Int64.random(in: 1...Int64(Int32.max))
        let ids = try pool.read { try BulkUpdateTask.targets(request, now: now, $0) }
        var total = BulkChunk()
        var sample: [ChangeRow] = []
        var start = 0
        while start < ids.count {
            let slice = ids[start..<min(ids.count, start + previewChunk)]
            let after: Int64 = start == 0 ? 0 : ids[start - 1]
            do {
                try pool.write { db -> Void in
                    try TaskTargets.write(slice, taskID: dryID, db)
                    var executor = BulkExecutor(databaseID: request.databaseID, taskID: dryID, actor: user.id, action: request.action,
                                                skipTriggers: request.skipTriggers, now: now, cutoff: cutoff,
                                                catalogue: try Profiles.catalogue(request.databaseID, db))
                    executor.codesAlreadyAttached = total.updated
                    executor.driftSamples = max(0, 10 - total.drift.count)
                    let chunk = try executor.run(after: after, upTo: slice.last ?? after, count: slice.count, db)
                    let rows = sample.count >= 10 ? [] : try ChangeRow.read(databaseID: request.databaseID, taskID: dryID, after: 0,
                                                                             limit: 10 - sample.count, db)
                    throw Rollback(chunk: chunk, sample: rows)
                }
            } catch let rollback as Rollback {
                total.updated += rollback.chunk.updated
                total.deleted += rollback.chunk.deleted
                total.skipped += rollback.chunk.skipped
                total.failed += rollback.chunk.failed
                for (k, v) in rollback.chunk.reasons { total.reasons[k, default: 0] += v }
                total.drift += rollback.chunk.drift
                sample += rollback.sample
            }
            start += slice.count
        }
        var preview = BulkPreview(selected: ids.count, updated: total.updated, deleted: total.deleted, skipped: total.skipped,
                                  failed: total.failed, reasons: total.reasons, sample: sample, cutoff: cutoff)
        if !total.drift.isEmpty {
            let labels = try pool.read { try ChangeLabels($0) }
            preview.drift = total.drift.map {
                ChangeRow(id: 0, profileID: $0.profileID, email: "", field: labels.field($0.key), key: $0.key, before: $0.left, after: $0.now)
            }
        }
        return preview
    }

    /// Records the task (committed before this returns) and wakes the runner — or, when an approval rule applies
    /// (Settings → Approvals), records it as awaiting a second admin. Every way a bulk update is launched (the page,
    /// the command line) comes through here, so the rules hold for all of them.
    public func start(_ request: BulkRequest, title: String, user: User, alongside: ((Connection, Int64) throws -> Bool)? = nil) throws -> Int64 {
        try validate(request, role: user.role)
        let rules = try pool.read { try Approvals.rules($0) }
        var selected: Int?
        if rules.overProfiles != nil {
            // The same selection the task freezes when it starts, counted now, in profiles.
            selected = try pool.read { try BulkUpdateTask.selectedProfiles(request, now: clock.now(), $0) }
        }
        var parameters = parameters(request)
        if try restoresProfiles(request) { parameters["restores_profiles"] = .bool(true) }
        return try tasks.enqueue(kind: BulkUpdateTask.kind, title: title, databaseID: request.databaseID, userID: user.id,
                                 parameters: parameters, segmentID: request.segmentID,
                                 awaitingApproval: rules.reason(for: request.action, selected: selected), alongside: alongside)
    }

    /// Whether the request is the undo of a deletion (it restores profiles).
    public func restoresProfiles(_ request: BulkRequest) throws -> Bool {
        guard case .undo(let original) = request.action else { return false }
        return try pool.read { try Undo.isDeletion(original, $0) }
    }

    /// The undo of a bulk task as a request (its triggers as the task's were), checked as a launch is.
    public func undoRequest(of task: TaskRecord, role: Role) throws -> BulkRequest {
        guard let databaseID = task.databaseID else { throw ValidationError(field: "task", "Only a bulk update can be undone.") }
        let original = try pool.read { try Undo.original(task.id, databaseID: databaseID, role: role, $0) }
        return BulkRequest(databaseID: databaseID, selection: Selection(), action: .undo(taskID: task.id), skipTriggers: original.skipTriggers)
    }

    /// What the task page says of undoing a task: the task that undid it, or whether `role` may undo it now (and why
    /// not, for an ended bulk task).
    public func undoState(of task: TaskRecord, role: Role) throws -> (undoneBy: Int64?, possible: Bool, refusal: String?) {
        guard task.kind == BulkUpdateTask.kind, task.state.isFinished, let databaseID = task.databaseID else { return (nil, false, nil) }
        return try pool.read { db in
            if let other = try Undo.undoneBy(task.id, db) { return (other, false, nil) }
            if case .undo? = try? BulkUpdateTask.request(task).action { return (nil, false, nil) }
            do {
                _ = try Undo.original(task.id, databaseID: databaseID, role: role, db)
                return (nil, role.canEdit, nil)
            } catch let error as ValidationError {
                return (nil, false, error.description)
            }
        }
    }

    /// The request a bulk task was launched with (the approver's preview shows what it will do).
    public func request(of task: TaskRecord) throws -> BulkRequest {
        try BulkUpdateTask.request(task)
    }

    /// The change log of a task, as CSV written to `path` (page by page, so a million changes never sit in memory).
    /// The change log as CSV: each profile's id and email, the field as a person reads it and as stored (for
    /// scripts), before and after.
    public func writeChanges(taskID: Int64, databaseID: Int64, to path: String) throws {
        FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationError(field: "file", "Cannot write the change log.") }
        defer { try? handle.close() }
        handle.write(Data("profile_id,email,field,field_key,before,after\r\n".utf8))
        var after: Int64 = 0
        while true {
            let rows = try pool.read { try ChangeRow.read(databaseID: databaseID, taskID: taskID, after: after, limit: 10_000, $0) }
            guard let last = rows.last else { break }
            var text = ""
            for row in rows {
                text += [row.profileID, row.email, row.field, row.key, row.before, row.after]
                    .map { ExportProfilesTask.cell($0, neutralize: true) }.joined(separator: ",") + "\r\n"
            }
            handle.write(Data(text.utf8))
            after = last.id
        }
    }

    public func changeCount(taskID: Int64) throws -> Int {
        try pool.read { try $0.scalar(BulkStore.changeCount, [taskID]).int ?? 0 }
    }
}
