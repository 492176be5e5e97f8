import SQLiteStore

/// The schema, as an ordered list of migrations. Never edit a shipped migration: add a new one.
public enum Schema {
    public static let migrations: [Migration] = [
        Migration(version: 1, name: "accounts and sessions", sql: """
            CREATE TABLE users (
                id            INTEGER PRIMARY KEY,
                email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
                name          TEXT NOT NULL DEFAULT '',
                role          TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
                password_hash TEXT NOT NULL,
                created_at    INTEGER NOT NULL,
                updated_at    INTEGER NOT NULL
            );
            CREATE TABLE sessions (
                -- BLAKE2b digest of the cookie token: a stolen database file holds no live session.
                token_digest  TEXT PRIMARY KEY,
                user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                csrf_token    TEXT NOT NULL,
                created_at    INTEGER NOT NULL,
                last_seen_at  INTEGER NOT NULL,
                remote_addr   TEXT NOT NULL DEFAULT ''
            ) WITHOUT ROWID;
            CREATE INDEX sessions_user ON sessions(user_id);
            CREATE TABLE login_failures (
                id        INTEGER PRIMARY KEY,
                -- 'email:<address>' or 'ip:<address>'
                key       TEXT NOT NULL,
                failed_at INTEGER NOT NULL
            );
            CREATE INDEX login_failures_key ON login_failures(key, failed_at);
            """),
    ]

    /// Every named query of every store, compiled at start-up.
    public static var queries: [NamedQuery] {
        UserStore.queries + SessionStore.queries + LoginThrottle.queries
    }
}
