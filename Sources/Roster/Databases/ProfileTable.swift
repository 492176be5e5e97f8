import Store

/// The per-database profile table: `profiles_<id>`, one typed column per standard field and one per custom field.
///
/// Identifiers here are built only from integer ids (`profiles_12`, `c_34`), never from names a user typed,
/// so they are safe to place in SQL text; values are always bound.
public enum ProfileTable {
    static func name(_ databaseID: Int64) -> String { "profiles_\(databaseID)" }

    static func createStatements(_ databaseID: Int64, _ dialect: Dialect) -> [String] {
        let t = name(databaseID)
        let (integer, text) = (dialect.type(.integer), dialect.type(.text))
        let standard = StandardField.all.filter { $0.column.hasPrefix("s_") }.map { field -> String in
            switch field.kind {
            case .typed(let type): return "    \(field.column) \(dialect.type(type.columnKind))"
            default: return "    \(field.column) \(text)"
            }
        }.joined(separator: ",\n")
        return [
            """
            CREATE TABLE \(t) (
                \(dialect.idColumn),
                profile_id          \(text) NOT NULL UNIQUE,
                email               \(text) COLLATE NOCASE NOT NULL UNIQUE,
                phones              \(text),
                status              \(integer) NOT NULL DEFAULT 0,
                range_bucket        \(integer) NOT NULL,
            \(standard),
                created_at          \(integer) NOT NULL,
                updated_at          \(integer) NOT NULL,
                last_interaction_at \(integer),
                engaged_at          \(integer),
                version             \(integer) NOT NULL DEFAULT 1
            )
            """,
            "CREATE INDEX \(t)_status ON \(t)(status)",
            "CREATE INDEX \(t)_last_interaction ON \(t)(last_interaction_at)",
            "CREATE INDEX \(t)_bucket ON \(t)(range_bucket)",
            "CREATE INDEX \(t)_engaged ON \(t)(engaged_at) WHERE engaged_at IS NOT NULL",
            // The action history of the database's profiles; a profile's events go with it (ON DELETE CASCADE).
            """
            CREATE TABLE \(historyName(databaseID)) (
                \(dialect.idColumn),
                profile    \(integer) NOT NULL REFERENCES \(t)(id) ON DELETE CASCADE,
                at         \(integer) NOT NULL,
                type       \(text) NOT NULL,
                actor      \(integer),
                details    \(text) NOT NULL DEFAULT '{}'
            )
            """,
            "CREATE INDEX \(historyName(databaseID))_profile ON \(historyName(databaseID))(profile, at)",
            "CREATE INDEX \(historyName(databaseID))_type ON \(historyName(databaseID))(type, at)",
            // Subscriptions per resource and channel; deleted ones are kept (restorable) and count toward the limits.
            """
            CREATE TABLE subscriptions_\(databaseID) (
                \(dialect.idColumn),
                profile     \(integer) NOT NULL REFERENCES \(t)(id) ON DELETE CASCADE,
                resource_id \(integer) NOT NULL,
                channel     \(text) NOT NULL,
                contact     \(text) NOT NULL,
                provider    \(text) NOT NULL DEFAULT '',
                status      \(integer) NOT NULL,
                priority    \(integer) NOT NULL DEFAULT 0,
                categories  \(text) NOT NULL DEFAULT '[]',
                fields      \(text) NOT NULL DEFAULT '{}',
                deleted     \(integer) NOT NULL DEFAULT 0,
                created_at  \(integer) NOT NULL,
                updated_at  \(integer) NOT NULL
            )
            """,
            "CREATE INDEX subscriptions_\(databaseID)_profile ON subscriptions_\(databaseID)(profile, resource_id, channel)",
            "CREATE INDEX subscriptions_\(databaseID)_resource ON subscriptions_\(databaseID)(resource_id, channel, status)",
            // Named relations between two profiles of the database ("recommended by"); gone with either profile.
            """
            CREATE TABLE relations_\(databaseID) (
                \(dialect.idColumn),
                profile    \(integer) NOT NULL REFERENCES \(t)(id) ON DELETE CASCADE,
                related    \(integer) NOT NULL REFERENCES \(t)(id) ON DELETE CASCADE,
                name       \(text) NOT NULL,
                properties \(text) NOT NULL DEFAULT '{}',
                created_at \(integer) NOT NULL
            )
            """,
            "CREATE INDEX relations_\(databaseID)_profile ON relations_\(databaseID)(profile)",
            "CREATE INDEX relations_\(databaseID)_related ON relations_\(databaseID)(related)",
        ] + SegmentStore.createMembers(databaseID, dialect)
    }

    static func historyName(_ databaseID: Int64) -> String { "history_\(databaseID)" }

    /// Brings the per-database tables of older versions up to date (SQL migrations cannot loop over databases):
    /// run at start-up after the migrations; each step checks first, so it runs once.
    public static func upgrade(_ pool: DatabasePool) throws {
        try pool.write { db in
            for row in try db.query(DatabaseStore.all) {
                guard let id = row.int64("id") else { continue }
                let columns = try db.query(db.dialect.tableColumns, ["subscriptions_\(id)"]).compactMap { $0.string("name") }
                // v7: the values of a subscription's custom and standard channel fields.
                if !columns.isEmpty && !columns.contains("fields") {
                    try db.execute("ALTER TABLE subscriptions_\(id) ADD COLUMN fields \(db.dialect.type(.text)) NOT NULL DEFAULT '{}'")
                }
                // v3: static segments' members, created with every database since (IF NOT EXISTS: runs once).
                for sql in SegmentStore.createMembers(id, db.dialect) { try db.execute(sql) }
            }
        }
    }

    static func dropStatements(_ databaseID: Int64) -> [String] {
        ["DROP TABLE IF EXISTS segment_members_\(databaseID)", "DROP TABLE IF EXISTS relations_\(databaseID)", "DROP TABLE IF EXISTS subscriptions_\(databaseID)", "DROP TABLE IF EXISTS \(historyName(databaseID))", "DROP TABLE IF EXISTS \(name(databaseID))"]
    }

    static func insertEvent(_ databaseID: Int64) -> String {
        "INSERT INTO \(historyName(databaseID)) (profile, at, type, actor, details) VALUES (?, ?, ?, ?, ?)"
    }

    /// SQLite: no declared type, so the column keeps exactly what was bound (an INTEGER affinity would turn the text
    /// "007" into 7 after a change to Line), and a change of field type can rewrite values in place. PostgreSQL: the
    /// type's own column type.
    static func addColumn(_ databaseID: Int64, _ field: Int64, _ type: FieldType, _ dialect: Dialect) -> String {
        let declared = dialect.kind == .sqlite ? "" : " " + dialect.type(type.columnKind)
        return "ALTER TABLE \(name(databaseID)) ADD COLUMN c_\(field)\(declared)"
    }
    static func dropColumn(_ databaseID: Int64, _ field: Int64) -> String { "ALTER TABLE \(name(databaseID)) DROP COLUMN c_\(field)" }
    static func indexName(_ databaseID: Int64, _ field: Int64) -> String { "\(name(databaseID))_c_\(field)" }
    static func createIndex(_ databaseID: Int64, _ field: Int64) -> String {
        "CREATE INDEX IF NOT EXISTS \(indexName(databaseID, field)) ON \(name(databaseID))(c_\(field))"
    }
    /// Matching by phone (imports, the API) looks up the profile's main phone: the first of its list.
    static func createFirstPhoneIndex(_ databaseID: Int64, _ dialect: Dialect) -> String {
        "CREATE INDEX IF NOT EXISTS \(name(databaseID))_phone1 ON \(name(databaseID))(\(firstPhone(dialect)))"
    }
    /// The profile's main phone (the first of its list), as the index above holds it.
    static func firstPhone(_ dialect: Dialect) -> String { dialect.jsonArrayElement("phones", 0) }
    static func dropIndex(_ databaseID: Int64, _ field: Int64) -> String { "DROP INDEX IF EXISTS \(indexName(databaseID, field))" }
    static func count(_ databaseID: Int64) -> String { "SELECT COUNT(*) FROM \(name(databaseID))" }
    /// Profiles engaged by anything beyond creation and plain edits (`EventRules.engages`): the mark the history writer
    /// sets, and, for data written before it did, the history and the subscriptions themselves.
    static func engagedCount(_ databaseID: Int64) -> String {
        """
        SELECT COUNT(*) FROM \(name(databaseID)) p WHERE p.engaged_at IS NOT NULL
        OR EXISTS (SELECT 1 FROM \(historyName(databaseID)) h WHERE h.profile = p.id AND h.type NOT IN \(EventRules.notEngagingSQL))
        OR EXISTS (SELECT 1 FROM subscriptions_\(databaseID) s WHERE s.profile = p.id)
        """
    }
    static func nonNullValues(_ databaseID: Int64, _ field: Int64) -> String {
        "SELECT id, profile_id, c_\(field) AS value FROM \(name(databaseID)) WHERE c_\(field) IS NOT NULL ORDER BY id"
    }
    static func valueCount(_ databaseID: Int64, _ field: Int64) -> String { "SELECT COUNT(*) FROM \(name(databaseID)) WHERE c_\(field) IS NOT NULL" }
    static func setValue(_ databaseID: Int64, _ field: Int64) -> String { "UPDATE \(name(databaseID)) SET c_\(field) = ? WHERE id = ?" }
    /// The set-based update of one field on every profile: one statement, whatever the database's size.
    static func setAll(_ databaseID: Int64, _ field: Int64) -> String { "UPDATE \(name(databaseID)) SET c_\(field) = ?" }
}
