import StoreCore
import Foundation

public enum Migrator {
    /// Applies every migration newer than the recorded version. Returns the versions applied.
    @discardableResult
    public static func migrate(_ db: SQLiteConnection, _ migrations: [Migration]) throws -> [Int] {
        try db.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at TEXT NOT NULL
            )
            """)
        let current = try db.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").int ?? 0
        var applied: [Int] = []
        for migration in try Migration.pending(migrations, current: current) {
            try db.inTransaction(.immediate) { db in
                try db.execute(migration.sql)
                try db.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                           [migration.version, migration.name, ISO8601DateFormatter().string(from: Date())])
            }
            applied.append(migration.version)
        }
        return applied
    }
}
