import Store

/// The SQL of suppression lists: lists, their databases and their entries.
public enum SuppressionStore {
    static let lists = NamedQuery("suppression.lists", """
        SELECT l.*, (SELECT COUNT(*) FROM suppressions x WHERE x.list_id = l.id) AS entries FROM suppression_lists l ORDER BY l.name
        """)
    static let list = NamedQuery("suppression.list", """
        SELECT l.*, (SELECT COUNT(*) FROM suppressions x WHERE x.list_id = l.id) AS entries FROM suppression_lists l WHERE l.id = ?
        """)
    static let byName = NamedQuery("suppression.byName", "SELECT id FROM suppression_lists WHERE name = ? COLLATE NOCASE")
    static let insertList = NamedQuery("suppression.insertList", """
        INSERT INTO suppression_lists (name, global, auto_bounces, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
        """)
    static let updateList = NamedQuery("suppression.updateList", """
        UPDATE suppression_lists SET name = ?, global = ?, auto_bounces = ?, updated_at = ? WHERE id = ?
        """)
    static let deleteList = NamedQuery("suppression.deleteList", "DELETE FROM suppression_lists WHERE id = ?")
    static let databases = NamedQuery("suppression.databases", "SELECT database_id FROM suppression_list_databases WHERE list_id = ?")
    static let listsOfDatabase = NamedQuery("suppression.listsOfDatabase", """
        SELECT list_id FROM suppression_list_databases WHERE database_id = ?
        """)
    static let detachAll = NamedQuery("suppression.detachAll", "DELETE FROM suppression_list_databases WHERE list_id = ?")
    static let detachDatabase = NamedQuery("suppression.detachDatabase", "DELETE FROM suppression_list_databases WHERE database_id = ?")
    static let attach = NamedQuery("suppression.attach", "INSERT INTO suppression_list_databases (list_id, database_id) VALUES (?, ?)")
    static let insertEntry = NamedQuery("suppression.insertEntry", """
        INSERT INTO suppressions (list_id, kind, value, reason, created_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (list_id, kind, value) DO NOTHING
        """)
    static let entries = NamedQuery("suppression.entries", """
        SELECT id, kind, value, reason, created_at FROM suppressions WHERE list_id = ? AND value LIKE ? AND id > ? ORDER BY id LIMIT ?
        """)
    static let deleteEntry = NamedQuery("suppression.deleteEntry", "DELETE FROM suppressions WHERE id = ? AND list_id = ?")

    /// The lists that apply to a database: the global ones and those attached to it.
    static let applies = "(l.global = 1 OR EXISTS (SELECT 1 FROM suppression_list_databases a WHERE a.list_id = l.id AND a.database_id = ?))"

    /// The first list (by name) holding one of a contact's forms: its email, its domain, its phone.
    static let match = NamedQuery("suppression.match", """
        SELECT l.name FROM suppressions x JOIN suppression_lists l ON l.id = x.list_id
        WHERE ((x.kind = 'email' AND x.value = ?) OR (x.kind = 'domain' AND x.value = ?) OR (x.kind = 'phone' AND x.value = ?))
          AND \(applies)
        ORDER BY l.name LIMIT 1
        """)
    /// Hard bounces and complaints go to every applying list that takes them.
    static let recordBounce = NamedQuery("suppression.recordBounce", """
        INSERT INTO suppressions (list_id, kind, value, reason, created_at)
        SELECT l.id, ?, ?, ?, ? FROM suppression_lists l WHERE l.auto_bounces = 1 AND \(applies)
        ON CONFLICT (list_id, kind, value) DO NOTHING
        """)

    static var queries: [NamedQuery] {
        [lists, list, byName, insertList, updateList, deleteList, databases, listsOfDatabase, detachAll, detachDatabase, attach,
         insertEntry, entries, deleteEntry, match, recordBounce]
    }
}
