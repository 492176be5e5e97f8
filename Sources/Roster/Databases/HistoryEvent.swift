/// The types of action-history events. Creation counts as an interaction for deletion by inactivity; marketers'
/// edits are an audit trail and do not (see the spec README's decisions).
public enum HistoryEvent {
    public static let created = "created"
    public static let fieldChanged = "field_changed"
    public static let statusChanged = "status_changed"
    public static let subscriptionAdded = "subscription_added"
    public static let subscriptionChanged = "subscription_changed"
    public static let subscriptionDeleted = "subscription_deleted"
    public static let unsubscribed = "unsubscribed"
    public static let promoAttached = "promo_attached"
    public static let promoDetached = "promo_detached"
    public static let promoActivated = "promo_activated"
    public static let segmentEntered = "segment_entered"
    public static let segmentLeft = "segment_left"
    public static let sent = "sent"
    public static let delivered = "delivered"
    public static let opened = "opened"
    public static let clicked = "clicked"
    public static let goal = "goal"

    /// Every type, in the order the history filter lists them.
    public static let all: [String] = [created, fieldChanged, statusChanged, subscriptionAdded, subscriptionChanged, subscriptionDeleted,
                                       unsubscribed, promoAttached, promoDetached, promoActivated, segmentEntered, segmentLeft,
                                       sent, delivered, opened, clicked, goal]
}

import Store

/// Writes history events: the event row, and one more in the day's count for the database's statistics.
enum History {
    static let bumpStats = NamedQuery("eventStats.bump", """
        INSERT INTO event_stats (database_id, day, type, count) VALUES (?, strftime('%Y-%m-%d', ?, 'unixepoch'), ?, 1)
        ON CONFLICT (database_id, day, type) DO UPDATE SET count = event_stats.count + 1
        """, postgres: """
        INSERT INTO event_stats (database_id, day, type, count)
        VALUES (?, to_char(to_timestamp(CAST(? AS bigint)) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), ?, 1)
        ON CONFLICT (database_id, day, type) DO UPDATE SET count = event_stats.count + 1
        """)
    /// Adds a chunk's count at once (imports and bulk tasks record many events of one type).
    static let bumpStatsBy = NamedQuery("eventStats.bumpBy", """
        INSERT INTO event_stats (database_id, day, type, count) VALUES (?, strftime('%Y-%m-%d', ?, 'unixepoch'), ?, ?)
        ON CONFLICT (database_id, day, type) DO UPDATE SET count = event_stats.count + ?
        """, postgres: """
        INSERT INTO event_stats (database_id, day, type, count)
        VALUES (?, to_char(to_timestamp(CAST(? AS bigint)) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), ?, ?)
        ON CONFLICT (database_id, day, type) DO UPDATE SET count = event_stats.count + CAST(? AS bigint)
        """)
    static let monthly = NamedQuery("eventStats.monthly", """
        SELECT substr(day, 1, 7) AS month, SUM(count) AS total FROM event_stats WHERE database_id = ? AND day >= ? GROUP BY month ORDER BY month
        """)
    static let dropDatabase = NamedQuery("eventStats.dropDatabase", "DELETE FROM event_stats WHERE database_id = ?")
    static var queries: [NamedQuery] { [bumpStats, bumpStatsBy, monthly, dropDatabase] }

    /// Writes one event. `interaction` (decided by `EventRules` from the event and where it came from) moves the
    /// profile's last interaction; an engaging event marks the profile engaged. Callers go through `ProfileWriter`.
    /// With a `tally`, the day's statistics are counted there and written once per chunk (imports).
    static func record(_ db: Connection, database: Int64, profile: Int64, at: Int64, type: String, actor: Int64?,
                       details: JSONValue, interaction: Bool, tally: EventTally? = nil) throws {
        try db.run(ProfileTable.insertEvent(database), [profile, at, type, actor, details.canonical])
        if let tally { tally.add(type) } else { try db.run(bumpStats, [database, at, type]) }
        // A new profile's row already has its creation time as its last interaction.
        if interaction && type != HistoryEvent.created { try db.run(touchSQL(database, db.dialect), [at, profile]) }
        if EventRules.engages(type) { try db.run(engageSQL(database), [at, profile]) }
    }

    static func touchSQL(_ database: Int64, _ dialect: Dialect) -> String {
        "UPDATE \(ProfileTable.name(database)) SET last_interaction_at = \(dialect.greatest("COALESCE(last_interaction_at, 0)", "?")) WHERE id = ?"
    }

    static func engageSQL(_ database: Int64) -> String {
        "UPDATE \(ProfileTable.name(database)) SET engaged_at = COALESCE(engaged_at, ?) WHERE id = ?"
    }
}

/// Event counts of a chunk, for the daily statistics, written once per chunk instead of once per event. A row
/// written inside a savepoint keeps its counts only when the savepoint is released.
final class EventTally {
    private var kept: [String: Int] = [:]
    private var row: [String: Int] = [:]

    func add(_ type: String) { row[type, default: 0] += 1 }
    func keepRow() {
        for (type, n) in row { kept[type, default: 0] += n }
        row = [:]
    }
    func dropRow() { row = [:] }

    func flush(_ db: Connection, database: Int64, at: Int64) throws {
        keepRow()
        for (type, count) in kept.sorted(by: { $0.key < $1.key }) {
            try db.run(History.bumpStatsBy, [database, at, type, count, count])
        }
        kept = [:]
    }
}
