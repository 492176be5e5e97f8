import Foundation
import Roster

/// Domain values → what templates show. Numbers and dates are formatted here, not in templates.
enum View {
    static func count(_ n: Int) -> String { UTCTime.grouped(n) }

    /// A file size as people read it: 812 bytes, 14.2 KB, 3.1 MB.
    static func bytes(_ n: Int64) -> String {
        if n < 1024 { return "\(n) bytes" }
        if n < 1 << 20 { return String(format: "%.1f KB", Double(n) / 1024) }
        return String(format: "%.1f MB", Double(n) / Double(1 << 20))
    }

    static func day(_ seconds: Int64?) -> String {
        guard let seconds else { return "" }
        return DateText.day(seconds)
    }

    static func time(_ seconds: Int64?) -> String {
        guard let seconds else { return "" }
        return UTCTime.time(seconds)
    }

    static func database(_ db: ProfileDatabase) -> TemplateValue {
        [
            "id": .string(String(db.id)), "name": .string(db.name), "description": .string(db.description),
            "tags": .list(db.tags.map { .string($0) }), "tags_text": .string(db.tags.joined(separator: ", ")),
            "sm_title": .string(db.smTitle), "sm_language": .string(db.smLanguage),
            "sm_language_label": .string(Databases.languages.first { $0.code == db.smLanguage }?.label ?? db.smLanguage),
            "created": .string(day(db.createdAt)),
        ]
    }

    static func field(_ f: CustomField) -> TemplateValue {
        [
            "id": .string(String(f.id)), "name": .string(f.name), "type": .string(f.type.rawValue), "type_label": .string(f.type.label),
            "options": .string(f.options.joined(separator: ", ")), "description": .string(f.description),
            "default_value": .string(f.defaultValue ?? ""), "required": .bool(f.required), "show_in_sm": .bool(f.showInSM),
            "indexed": .bool(f.indexed), "created": .string(day(f.createdAt)),
        ]
    }

    static func resource(_ r: Resource) -> TemplateValue {
        [
            "id": .string(String(r.id)), "name": .string(r.name), "description": .string(r.description),
            "channels": .list(r.channels.map { .string($0.label) }),
            "channels_text": .string(r.channels.map(\.label).joined(separator: ", ")),
            "categories_text": .string(r.categories.joined(separator: ", ")),
            "fields_text": .string(r.fields.map { "\($0.name) (\($0.type.label))" }.joined(separator: ", ")),
            "increase_priority": .bool(r.increasePriority),
        ]
    }

    /// "1,204 added · 3 skipped": the counts that are not zero, for the Tasks list ("—" before any).
    static func result(_ t: TaskRecord) -> String {
        let parts = [(t.added, "added"), (t.updated, "updated"), (t.deleted, "deleted"), (t.skipped, "skipped"), (t.failed, "failed")]
            .filter { $0.0 > 0 }.map { "\(count($0.0)) \($0.1)" }
        return parts.isEmpty ? "—" : parts.joined(separator: " · ")
    }

    /// "1 matching profile", "2 matching profiles": a count with its noun.
    static func counted(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
        "\(count(n)) \(n == 1 ? singular : plural ?? singular + "s")"
    }

    static func task(_ t: TaskRecord) -> TemplateValue {
        [
            "id": .string(String(t.id)), "kind": .string(t.kind), "title": .string(t.title), "state": .string(t.state.rawValue),
            "state_label": .string(t.state.label), "percent": .int(t.percent), "percent_text": .string("\(t.percent)%"),
            "total": .string(count(t.total)), "processed": .string(count(t.processed)), "added": .string(count(t.added)),
            "updated": .string(count(t.updated)), "skipped": .string(count(t.skipped)), "failed": .string(count(t.failed)),
            "deleted": .string(count(t.deleted)), "message": .string(t.message),
            "result": .string(result(t)),
            "created_by": .string(t.createdByEmail ?? "—"), "created": .string(time(t.createdAt)),
            "started": .string(time(t.startedAt)), "finished": .string(time(t.finishedAt)),
            "is_active": .bool(t.state == .queued || t.state == .running), "is_interrupted": .bool(t.state == .interrupted),
            "download": .bool((t.kind == ExportProfilesTask.kind || t.kind == ExportHistoryTask.kind) && t.state == .done),
            "reasons": .list(t.details.sorted { $0.key < $1.key }.map { ["count": .string(count($0.value)), "label": .string(SkipReason.label($0.key))] }),
            "change_log": .bool(t.kind == BulkUpdateTask.kind && t.processed > 0),
            "failed_rows": .bool(t.kind == ImportProfilesTask.kind && t.failed > 0 && t.outputBytes > 0),
            "can_cancel": .bool(t.state == .queued || t.state == .running || t.state == .interrupted || t.state == .awaitingApproval),
            "awaiting": .bool(t.state == .awaitingApproval), "approval_reason": TemplateValue(t.approvalReason),
            "approved_by": TemplateValue(t.approvedAt.map { _ in t.approvedByEmail ?? "a user since deleted" }),
            "approved_at": .string(time(t.approvedAt)),
            "rejected_by": TemplateValue(t.rejectedBy.map { _ in t.rejectedByEmail ?? "a deleted user" }),
        ]
    }

    static func counts(_ c: SelectionCounts) -> TemplateValue {
        ["matching": .string(count(c.matchingRules)), "in_range": .string(count(c.inRange)), "selected": .string(count(c.selected))]
    }

    static func errors(_ fieldErrors: [String: String]) -> TemplateValue {
        .dict(TemplateDict(fieldErrors.mapValues { TemplateValue.string($0) }))
    }

    static func typeOptions(selected: String) -> TemplateValue {
        .list(FieldType.allCases.map { ["value": .string($0.rawValue), "label": .string($0.label), "selected": .bool($0.rawValue == selected)] })
    }
}

extension RequestContext {
    /// A checkbox is on when the form sent it.
    func checkbox(_ name: String) -> Bool { form[name] != nil }

    /// The database named by the `:id` path parameter, or 404.
    func database(_ app: WebApp) throws -> ProfileDatabase {
        guard let db = try app.services.databases.get(try int64Param("id")) else { throw HTTPError.notFound }
        return db
    }

    func requireDeleter() throws -> User {
        let user = try requireUser()
        guard user.role.canDelete else { throw HTTPError(403, "Only admins delete", "Ask an admin to delete this.") }
        return user
    }
}
