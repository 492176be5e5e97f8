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
        Migration(version: 2, name: "databases, custom fields, resources, loyalty programs, tasks", sql: """
            -- AUTOINCREMENT: a deleted database's id (and so its table names) is never given to a new one.
            CREATE TABLE databases (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                name        TEXT NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                tags        TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
                sm_title    TEXT NOT NULL DEFAULT '',
                sm_language TEXT NOT NULL DEFAULT 'en',
                created_at  INTEGER NOT NULL,
                updated_at  INTEGER NOT NULL
            );
            CREATE UNIQUE INDEX databases_name ON databases(name COLLATE NOCASE);
            -- Settings of the standard fields, one row per database and field key that differs from the defaults.
            CREATE TABLE standard_field_settings (
                database_id   INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
                field_key     TEXT NOT NULL,
                default_value TEXT,
                required      INTEGER NOT NULL DEFAULT 0,
                show_in_sm    INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (database_id, field_key)
            ) WITHOUT ROWID;
            -- A custom field's values live in column c_<id> of profiles_<database_id>.
            CREATE TABLE custom_fields (
                id            INTEGER PRIMARY KEY AUTOINCREMENT,
                database_id   INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
                name          TEXT NOT NULL,
                type          TEXT NOT NULL CHECK (type IN ('number','float','line','date','boolean','enum','ip','tags','object','array')),
                options       TEXT NOT NULL DEFAULT '[]',  -- JSON array: the choices of an enum
                description   TEXT NOT NULL DEFAULT '',
                default_value TEXT,
                required      INTEGER NOT NULL DEFAULT 0,
                show_in_sm    INTEGER NOT NULL DEFAULT 0,
                indexed       INTEGER NOT NULL DEFAULT 0,
                created_at    INTEGER NOT NULL
            );
            CREATE UNIQUE INDEX custom_fields_name ON custom_fields(database_id, name COLLATE NOCASE);
            CREATE TABLE resources (
                id                INTEGER PRIMARY KEY,
                name              TEXT NOT NULL,
                description       TEXT NOT NULL DEFAULT '',
                increase_priority INTEGER NOT NULL DEFAULT 0,
                created_at        INTEGER NOT NULL,
                updated_at        INTEGER NOT NULL
            );
            CREATE UNIQUE INDEX resources_name ON resources(name COLLATE NOCASE);
            CREATE TABLE resource_channels (
                resource_id INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
                channel     TEXT NOT NULL CHECK (channel IN ('email','sms','push','telegram_bot','whatsapp','viber')),
                PRIMARY KEY (resource_id, channel)
            ) WITHOUT ROWID;
            CREATE TABLE resource_categories (
                id          INTEGER PRIMARY KEY,
                resource_id INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
                name        TEXT NOT NULL
            );
            CREATE UNIQUE INDEX resource_categories_name ON resource_categories(resource_id, name COLLATE NOCASE);
            CREATE TABLE resource_fields (
                id          INTEGER PRIMARY KEY,
                resource_id INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
                name        TEXT NOT NULL,
                type        TEXT NOT NULL CHECK (type IN ('number','float','line','date','boolean','enum','ip','tags','object','array'))
            );
            CREATE UNIQUE INDEX resource_fields_name ON resource_fields(resource_id, name COLLATE NOCASE);
            CREATE TABLE database_resources (
                database_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
                resource_id INTEGER NOT NULL REFERENCES resources(id) ON DELETE RESTRICT,
                PRIMARY KEY (database_id, resource_id)
            ) WITHOUT ROWID;
            CREATE INDEX database_resources_resource ON database_resources(resource_id);
            CREATE TABLE loyalty_programs (
                id          INTEGER PRIMARY KEY,
                name        TEXT NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                created_at  INTEGER NOT NULL
            );
            CREATE UNIQUE INDEX loyalty_programs_name ON loyalty_programs(name COLLATE NOCASE);
            CREATE TABLE promo_codes (
                id           INTEGER PRIMARY KEY,
                program_id   INTEGER NOT NULL REFERENCES loyalty_programs(id) ON DELETE CASCADE,
                code         TEXT NOT NULL,
                -- detached codes are never handed out again: a code never goes to two profiles
                status       TEXT NOT NULL DEFAULT 'free' CHECK (status IN ('free','attached','activated','detached')),
                database_id  INTEGER,
                profile_id   TEXT,
                attached_at  INTEGER,
                activated_at INTEGER,
                created_at   INTEGER NOT NULL,
                UNIQUE (program_id, code)
            );
            CREATE INDEX promo_codes_status ON promo_codes(program_id, status);
            CREATE TABLE tasks (
                id            INTEGER PRIMARY KEY,
                kind          TEXT NOT NULL,
                state         TEXT NOT NULL CHECK (state IN ('queued','running','done','failed','cancelled','interrupted')),
                title         TEXT NOT NULL,
                database_id   INTEGER,
                created_by    INTEGER REFERENCES users(id) ON DELETE SET NULL,
                parameters    TEXT NOT NULL DEFAULT '{}',
                cursor        INTEGER NOT NULL DEFAULT 0,
                total         INTEGER NOT NULL DEFAULT 0,
                processed     INTEGER NOT NULL DEFAULT 0,
                added         INTEGER NOT NULL DEFAULT 0,
                updated       INTEGER NOT NULL DEFAULT 0,
                skipped       INTEGER NOT NULL DEFAULT 0,
                failed        INTEGER NOT NULL DEFAULT 0,
                deleted       INTEGER NOT NULL DEFAULT 0,
                message       TEXT NOT NULL DEFAULT '',
                -- bytes of the task's output file that belong to committed chunks (exports): a resumed task
                -- truncates the file to this size first, so no row is written twice.
                output_bytes  INTEGER NOT NULL DEFAULT 0,
                cancel_requested INTEGER NOT NULL DEFAULT 0,
                created_at    INTEGER NOT NULL,
                started_at    INTEGER,
                finished_at   INTEGER
            );
            CREATE INDEX tasks_state ON tasks(state);
            -- Daily counts of history events per database and type. Kept when profiles are deleted, so
            -- reports and the activity chart stay right.
            CREATE TABLE event_stats (
                database_id INTEGER NOT NULL,
                day         TEXT NOT NULL,   -- YYYY-MM-DD, UTC
                type        TEXT NOT NULL,
                count       INTEGER NOT NULL,
                PRIMARY KEY (database_id, day, type)
            ) WITHOUT ROWID;
            """),
        Migration(version: 3, name: "segments", sql: """
            -- Dynamic segments keep their selection (rules, range, limit) as JSON and are evaluated when used;
            -- static ones keep their members in segment_members_<database id>.
            CREATE TABLE segments (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                database_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
                name        TEXT NOT NULL,
                kind        TEXT NOT NULL CHECK (kind IN ('dynamic', 'static')),
                selection   TEXT NOT NULL DEFAULT '{}',
                created_by  INTEGER REFERENCES users(id) ON DELETE SET NULL,
                created_at  INTEGER NOT NULL,
                updated_at  INTEGER NOT NULL
            );
            CREATE INDEX segments_database ON segments(database_id);
            """),
        Migration(version: 4, name: "bulk updates: frozen targets, change log, skip reasons, trigger outbox", sql: """
            -- The profiles a bulk task will touch, fixed when it starts (profiles that match later are not touched).
            CREATE TABLE task_targets (
                task_id INTEGER NOT NULL,
                profile INTEGER NOT NULL,
                PRIMARY KEY (task_id, profile)
            ) WITHOUT ROWID;
            -- Every value a bulk task changed, before and after, for its downloadable change log.
            CREATE TABLE task_changes (
                id         INTEGER PRIMARY KEY,
                task_id    INTEGER NOT NULL,
                profile_id TEXT NOT NULL,
                field      TEXT NOT NULL,
                before     TEXT,
                after      TEXT
            );
            CREATE INDEX task_changes_task ON task_changes(task_id, id);
            -- Counts of skipped items by reason ({"unsafe_status": 37, …}) and the segment a task started from.
            ALTER TABLE tasks ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
            ALTER TABLE tasks ADD COLUMN segment_id INTEGER;
            -- Trigger events (subscription added or changed, field updated, promo code attached), written in the
            -- same transaction as the change that caused them: a durable outbox for whatever delivers them.
            CREATE TABLE trigger_events (
                id          INTEGER PRIMARY KEY,
                database_id INTEGER NOT NULL,
                profile_id  TEXT NOT NULL,
                type        TEXT NOT NULL,
                payload     TEXT NOT NULL DEFAULT '{}',
                task_id     INTEGER,
                created_at  INTEGER NOT NULL,
                delivered_at INTEGER
            );
            CREATE INDEX trigger_events_pending ON trigger_events(delivered_at, id);
            """),
        Migration(version: 5, name: "webhooks", sql: """
            -- URLs that receive trigger events as JSON batches. Each keeps its own cursor in the outbox, so a slow or
            -- failing receiver never holds back another; failures back off exponentially.
            CREATE TABLE webhooks (
                id              INTEGER PRIMARY KEY AUTOINCREMENT,
                url             TEXT NOT NULL,
                secret          TEXT NOT NULL,
                active          INTEGER NOT NULL DEFAULT 1,
                cursor          INTEGER NOT NULL DEFAULT 0,
                failures        INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER NOT NULL DEFAULT 0,
                created_at      INTEGER NOT NULL
            );
            CREATE TABLE webhook_deliveries (
                id          INTEGER PRIMARY KEY,
                webhook_id  INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
                first_event INTEGER NOT NULL,
                last_event  INTEGER NOT NULL,
                events      INTEGER NOT NULL,
                attempt     INTEGER NOT NULL,
                status_code INTEGER,
                error       TEXT NOT NULL DEFAULT '',
                at          INTEGER NOT NULL
            );
            CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, id);
            """),
        Migration(version: 6, name: "API tokens and idempotency keys", sql: """
            -- Tokens are stored as BLAKE2b digests (the token itself is shown once), scoped to chosen databases.
            CREATE TABLE api_tokens (
                id           INTEGER PRIMARY KEY AUTOINCREMENT,
                name         TEXT NOT NULL,
                digest       TEXT NOT NULL UNIQUE,
                databases    TEXT NOT NULL DEFAULT '[]',
                created_by   INTEGER REFERENCES users(id) ON DELETE SET NULL,
                created_at   INTEGER NOT NULL,
                last_used_at INTEGER,
                expires_at   INTEGER,
                revoked_at   INTEGER
            );
            -- The first answer to a request with an Idempotency-Key, kept a day, so a retry is not applied twice.
            CREATE TABLE api_idempotency (
                token_id     INTEGER NOT NULL,
                key          TEXT NOT NULL,
                content_type TEXT NOT NULL,
                response     TEXT NOT NULL,
                created_at   INTEGER NOT NULL,
                PRIMARY KEY (token_id, key)
            ) WITHOUT ROWID;
            """),
        Migration(version: 7, name: "field catalogue versions", sql: """
            -- Bumped by these triggers on any change to a database's custom fields or standard-field settings, so a
            -- process (or, later, each app host) can keep the field catalogue in memory and check it with one read.
            ALTER TABLE databases ADD COLUMN catalogue_version INTEGER NOT NULL DEFAULT 0;
            CREATE TRIGGER custom_fields_inserted AFTER INSERT ON custom_fields BEGIN
                UPDATE databases SET catalogue_version = catalogue_version + 1 WHERE id = NEW.database_id;
            END;
            CREATE TRIGGER custom_fields_updated AFTER UPDATE ON custom_fields BEGIN
                UPDATE databases SET catalogue_version = catalogue_version + 1 WHERE id IN (OLD.database_id, NEW.database_id);
            END;
            CREATE TRIGGER custom_fields_deleted AFTER DELETE ON custom_fields BEGIN
                UPDATE databases SET catalogue_version = catalogue_version + 1 WHERE id = OLD.database_id;
            END;
            CREATE TRIGGER standard_settings_inserted AFTER INSERT ON standard_field_settings BEGIN
                UPDATE databases SET catalogue_version = catalogue_version + 1 WHERE id = NEW.database_id;
            END;
            CREATE TRIGGER standard_settings_updated AFTER UPDATE ON standard_field_settings BEGIN
                UPDATE databases SET catalogue_version = catalogue_version + 1 WHERE id IN (OLD.database_id, NEW.database_id);
            END;
            CREATE TRIGGER standard_settings_deleted AFTER DELETE ON standard_field_settings BEGIN
                UPDATE databases SET catalogue_version = catalogue_version + 1 WHERE id = OLD.database_id;
            END;
            """),
        Migration(version: 8, name: "idempotency keys remember their request", sql: """
            -- A key reused with another body is refused instead of replaying the first answer.
            ALTER TABLE api_idempotency ADD COLUMN request_digest TEXT NOT NULL DEFAULT '';
            """),
        Migration(version: 9, name: "automatic resume; backups", sql: """
            -- Restarts that found the task running at the same cursor: the third one holds it (a poisonous chunk
            -- must not crash-loop the server).
            ALTER TABLE tasks ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE tasks ADD COLUMN interrupted_cursor INTEGER;
            -- Backups taken by the server's schedule or by `roster backup`, for the Settings page.
            CREATE TABLE backups (
                id          INTEGER PRIMARY KEY,
                path        TEXT NOT NULL,
                started_at  INTEGER NOT NULL,
                finished_at INTEGER NOT NULL,
                bytes       INTEGER NOT NULL,
                ok          INTEGER NOT NULL,
                message     TEXT NOT NULL DEFAULT '',
                scheduled   INTEGER NOT NULL DEFAULT 0
            );
            """),
    ]

    /// Every named query of every store, compiled at start-up.
    public static var queries: [NamedQuery] {
        UserStore.queries + SessionStore.queries + LoginThrottle.queries + DatabaseStore.queries + ResourceStore.queries
            + LoyaltyStore.queries + TaskStore.queries + TaskTargets.queries + History.queries + SegmentStore.queries + BulkStore.queries + WebhookStore.queries + APIStore.queries
            + BackupStore.queries + OperationsStore.queries
    }
}
