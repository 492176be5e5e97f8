import Store

/// The change log stores what changed in stable machine terms (`_country`, `subscription 3 email a@x.io`,
/// `promo code 2`); people read it through this: field labels, resource and program names, channel labels. Used by
/// the bulk preview's sample and by the change-log CSV, so both say the same.
public struct ChangeLabels: Sendable {
    let resources: [Int64: String]
    let programs: [Int64: String]

    init(_ db: Connection) throws {
        resources = try ResourceStore.names(db)
        programs = try LoyaltyStore.names(db)
    }

    /// The names as of now (the history page reads them once per page).
    public static func read(_ pool: DatabasePool) throws -> ChangeLabels {
        try pool.read { try ChangeLabels($0) }
    }

    /// "News — Email": the resource's current name (or the one recorded, when it is gone) and the channel's label.
    public func subscription(resourceID: Int64?, recordedName: String? = nil, channel: String) -> String {
        let resource = resourceID.flatMap { resources[$0] } ?? recordedName ?? resourceID.map { "Resource #\($0)" } ?? "A resource"
        return "\(resource) — \(Channel(rawValue: channel)?.label ?? channel)"
    }

    public func program(_ id: Int64) -> String? { programs[id] }

    /// "City", "Global status", "News — Email (ann@example.com)", "Promo code from Spring sale".
    public func field(_ raw: String) -> String {
        if raw == "status" { return "Global status" }
        if raw == "profile" { return "Profile" }
        if let standard = StandardField.named(raw) { return standard.label }
        let parts = raw.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        if parts.count >= 3, parts[0] == "subscription", let id = Int64(parts[1]) {
            let contact = parts.count > 3 && !parts[3].isEmpty ? " (\(parts[3]))" : ""
            return subscription(resourceID: id, channel: parts[2]) + contact
        }
        if parts.count == 3, parts[0] == "promo", parts[1] == "code", let id = Int64(parts[2]) {
            return "Promo code from \(programs[id] ?? "program #\(id)")"
        }
        return raw
    }

    /// What a bulk update does, in words, with names and labels: "Set City to “Oslo”; clear Birthday", "Change
    /// subscriptions to News — Email to Unsubscribed (unsafe statuses left alone)". The task page shows it.
    public func words(_ action: BulkAction, skipTriggers: Bool = false) -> String {
        func status(_ name: String) -> String { ProfileStatus.allCases.first { $0.name == name }?.label ?? name }
        func unsafe(_ included: Bool) -> String { included ? " (unsafe statuses included)" : " (unsafe statuses left alone)" }
        var text: String
        switch action {
        case .updateFields(let changes):
            text = changes.map { c in c.value.map { "set \(field(c.field)) to “\($0)”" } ?? "clear \(field(c.field))" }
                .joined(separator: "; ")
            text = text.prefix(1).uppercased() + text.dropFirst()
        case .addSubscription(let r, let channel, let st, let source, let included):
            let from = source.map { "from subscriptions in \(subscription(resourceID: $0, channel: channel))" } ?? "from profile fields"
            text = "Add a subscription to \(subscription(resourceID: r, channel: channel)), status \(status(st)), contacts \(from)"
                + unsafe(included)
        case .updateSubscriptionStatus(let r, let channel, let st, let included):
            text = "Change subscriptions to \(subscription(resourceID: r, channel: channel)) to \(status(st))" + unsafe(included)
        case .promoCodes(let id, let attach):
            let name = programs[id] ?? "program #\(id)"
            text = attach ? "Attach a free promo code from \(name) to each profile" : "Detach the promo codes of \(name)"
        case .deleteInactive:
            text = "Delete the profiles with no interaction since the cut-off"
        case .unsubscribe:
            text = "Set the global status to Unsubscribed"
        case .undo(let id):
            text = "Undo task #\(id): put back what it changed, wherever nothing changed it since"
        }
        return text + (skipTriggers ? "; triggers not started" : "")
    }

    /// The change-log rows of a task, with each profile's email (for a deleted profile, the email the log kept).
    static func changesSQL(databaseID: Int64) -> String {
        """
        SELECT c.id, c.profile_id, COALESCE(p.email, CASE WHEN c.field = 'profile' THEN c.before END) AS email, c.field, c.before, c.after
        FROM task_changes c LEFT JOIN \(ProfileTable.name(databaseID)) p ON p.profile_id = c.profile_id
        WHERE c.task_id = ? AND c.id > ? ORDER BY c.id LIMIT ?
        """
    }
}

/// One change-log row as people read it.
public struct ChangeRow: Sendable {
    public let id: Int64
    public let profileID: String
    public let email: String
    /// The label: "City", "News — Email (ann@example.com)".
    public let field: String
    /// As stored: "_city", "subscription 3 email ann@example.com".
    public let key: String
    public let before: String
    public let after: String

    static func read(databaseID: Int64, taskID: Int64, after: Int64, limit: Int, _ db: Connection) throws -> [ChangeRow] {
        let rows = try db.query(ChangeLabels.changesSQL(databaseID: databaseID), [taskID, after, limit])
        if rows.isEmpty { return [] }
        let labels = try ChangeLabels(db)
        return rows.map { row in
            let profileID = row.string("profile_id") ?? ""
            let key = row.string("field") ?? ""
            return ChangeRow(id: row.int64("id") ?? 0, profileID: profileID, email: ProfileIdentity.shownEmail(row.string("email"), profileID: profileID),
                             field: labels.field(key), key: key, before: row.string("before") ?? "", after: row.string("after") ?? "")
        }
    }
}
