import Store

/// The SQL for databases, their standard-field settings and custom fields.
public enum DatabaseStore {
    static let all = NamedQuery("databases.all", "SELECT * FROM databases ORDER BY name COLLATE NOCASE")
    static let byID = NamedQuery("databases.byID", "SELECT * FROM databases WHERE id = ?")
    static let byName = NamedQuery("databases.byName", "SELECT * FROM databases WHERE name = ? COLLATE NOCASE")
    static let insert = NamedQuery("databases.insert", """
        INSERT INTO databases (name, description, tags, sm_title, sm_language, sm_edit_fields, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """)
    static let update = NamedQuery("databases.update", """
        UPDATE databases SET name = ?, description = ?, tags = ?, sm_title = ?, sm_language = ?, sm_edit_fields = ?, updated_at = ?
        WHERE id = ?
        """)
    static let delete = NamedQuery("databases.delete", "DELETE FROM databases WHERE id = ?")

    static let fields = NamedQuery("customFields.ofDatabase", "SELECT * FROM custom_fields WHERE database_id = ? ORDER BY id")
    static let fieldByID = NamedQuery("customFields.byID", "SELECT * FROM custom_fields WHERE id = ?")
    static let fieldByName = NamedQuery("customFields.byName", "SELECT * FROM custom_fields WHERE database_id = ? AND name = ? COLLATE NOCASE")
    static let insertField = NamedQuery("customFields.insert", """
        INSERT INTO custom_fields (database_id, name, type, options, description, default_value, required, show_in_sm, indexed, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """)
    static let updateField = NamedQuery("customFields.update", """
        UPDATE custom_fields SET name = ?, type = ?, options = ?, description = ?, default_value = ?, required = ?, show_in_sm = ?, indexed = ?
        WHERE id = ?
        """)
    static let deleteField = NamedQuery("customFields.delete", "DELETE FROM custom_fields WHERE id = ?")

    static let catalogueVersion = NamedQuery("databases.catalogueVersion", "SELECT catalogue_version FROM databases WHERE id = ?")
    static let standardSettings = NamedQuery("standardFields.ofDatabase", "SELECT * FROM standard_field_settings WHERE database_id = ?")
    static let upsertStandard = NamedQuery("standardFields.upsert", """
        INSERT INTO standard_field_settings (database_id, field_key, default_value, required, show_in_sm) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (database_id, field_key) DO UPDATE SET default_value = excluded.default_value, required = excluded.required,
            show_in_sm = excluded.show_in_sm
        """)

    static let attachedResources = NamedQuery("databases.resources", """
        SELECT r.* FROM resources r JOIN database_resources dr ON dr.resource_id = r.id WHERE dr.database_id = ? ORDER BY r.name COLLATE NOCASE
        """)
    static let attachedResource = NamedQuery("databases.resource", """
        SELECT r.* FROM resources r JOIN database_resources dr ON dr.resource_id = r.id WHERE dr.database_id = ? AND r.id = ?
        """)
    static let detachAll = NamedQuery("databases.detachResources", "DELETE FROM database_resources WHERE database_id = ?")
    static let attach = NamedQuery("databases.attachResource", "INSERT INTO database_resources (database_id, resource_id) VALUES (?, ?) ON CONFLICT DO NOTHING")

    static var queries: [NamedQuery] {
        [all, byID, byName, insert, update, delete, fields, fieldByID, fieldByName, insertField, updateField, deleteField,
         standardSettings, catalogueVersion, upsertStandard, attachedResources, attachedResource, detachAll, attach]
    }
}
