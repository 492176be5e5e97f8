import Foundation
import Secrets
import SQLiteStore
import Store

/// What a backup holds, written beside it as `FILE.manifest.json` and checked again before any restore.
public struct BackupManifest: Sendable, Equatable {
    public static let format = "roster-backup/1"
    public var createdAt: Int64
    public var schemaVersion: Int
    public var bytes: Int64
    public var sha256: String
    /// `PRAGMA integrity_check`'s answer on the copy: "ok".
    public var integrity: String
    /// Rows per table in the copy.
    public var tables: [String: Int]

    public var json: String {
        JSONValue.object([
            "format": .string(BackupManifest.format), "created_at": .int(createdAt), "schema_version": .int(Int64(schemaVersion)),
            "bytes": .int(bytes), "sha256": .string(sha256), "integrity": .string(integrity),
            "tables": .object(tables.mapValues { .int(Int64($0)) }),
        ]).canonical
    }

    public init(createdAt: Int64, schemaVersion: Int, bytes: Int64, sha256: String, integrity: String, tables: [String: Int]) {
        self.createdAt = createdAt
        self.schemaVersion = schemaVersion
        self.bytes = bytes
        self.sha256 = sha256
        self.integrity = integrity
        self.tables = tables
    }

    public init?(json text: String) {
        guard case .object(let o)? = JSONValue.parse(text), o["format"]?.stringValue == BackupManifest.format,
              case .int(let created)? = o["created_at"], case .int(let schema)? = o["schema_version"],
              case .int(let bytes)? = o["bytes"], let sha = o["sha256"]?.stringValue, let integrity = o["integrity"]?.stringValue,
              case .object(let t)? = o["tables"] else { return nil }
        var tables: [String: Int] = [:]
        for (name, value) in t {
            guard case .int(let n) = value else { return nil }
            tables[name] = Int(n)
        }
        self.init(createdAt: created, schemaVersion: Int(schema), bytes: bytes, sha256: sha, integrity: integrity, tables: tables)
    }

    public static func path(for backup: String) -> String { backup + ".manifest.json" }
}

/// A backup or restore that could not be done, and why (for an operator: the file, the check that failed).
public struct BackupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A backup as recorded for the Settings page.
public struct BackupRecord: Sendable {
    public let path: String
    public let startedAt: Int64
    public let finishedAt: Int64
    public let bytes: Int64
    public let ok: Bool
    public let message: String
    public let scheduled: Bool

    init(row: Row) {
        path = row.string("path") ?? ""
        startedAt = row.int64("started_at") ?? 0
        finishedAt = row.int64("finished_at") ?? 0
        bytes = row.int64("bytes") ?? 0
        ok = row.bool("ok")
        message = row.string("message") ?? ""
        scheduled = row.bool("scheduled")
    }
}

enum BackupStore {
    static let insert = NamedQuery("backups.insert", """
        INSERT INTO backups (path, started_at, finished_at, bytes, ok, message, scheduled) VALUES (?, ?, ?, ?, ?, ?, ?)
        """)
    static let last = NamedQuery("backups.last", "SELECT * FROM backups ORDER BY id DESC LIMIT 1")
    static let lastScheduledOK = NamedQuery("backups.lastScheduledOK", "SELECT MAX(started_at) FROM backups WHERE scheduled = 1 AND ok = 1")
    static let prune = NamedQuery("backups.prune", "DELETE FROM backups WHERE id < (SELECT MAX(id) FROM backups) - 1000")
    static var queries: [NamedQuery] { [insert, last, lastScheduledOK, prune] }
}

/// Online backups (while pages, API calls and tasks go on), their checks, scheduled backups, and restores.
///
/// A backup is written as `FILE.partial-PID`, checked (integrity, schema version, rows per table, SHA-256), its
/// manifest written and renamed into place, and only then the file itself renamed to FILE: a backup killed at any
/// moment leaves nothing named FILE, and a restore refuses a FILE without its manifest.
public final class Backups: Sendable {
    let pool: DatabasePool
    let clock: Clock
    public init(pool: DatabasePool, clock: Clock = .system) {
        self.pool = pool
        self.clock = clock
    }

    /// A backup taken: its manifest, and the seconds spent copying and checking (for `roster backup`'s report).
    public struct Taken: Sendable {
        public let manifest: BackupManifest
        public let copySeconds: Double
        public let checkSeconds: Double
    }

    /// Takes a checked backup to `path` and records it (failures too).
    @discardableResult
    public func take(to path: String, scheduled: Bool = false) throws -> Taken {
        let started = clock.now()
        do {
            let taken = try write(to: path)
            _ = try? pool.write { try $0.run(BackupStore.insert, [path, started, clock.now(), taken.manifest.bytes, true, "", scheduled]) }
            return taken
        } catch {
            _ = try? pool.write { try $0.run(BackupStore.insert, [path, started, clock.now(), 0, false, "\(error)", scheduled]) }
            throw error
        }
    }

    private func write(to path: String) throws -> Taken {
        let manager = FileManager.default
        if manager.fileExists(atPath: path) { throw BackupError("\(path) exists already; choose a new name") }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty && !manager.fileExists(atPath: directory) {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let partial = "\(path).partial-\(getpid())"
        let manifestPartial = "\(BackupManifest.path(for: path)).partial-\(getpid())"
        var done = false
        defer {
            if !done {
                unlink(partial)
                unlink(manifestPartial)
            }
        }
        let copyStarted = Date()
        guard let sqlite = pool.sqlite else {
            throw BackupError("a PostgreSQL store is backed up by PostgreSQL itself (pg_basebackup, a replica)")
        }
        try sqlite.backup(to: partial)
        try Backups.sync(partial)
        let checkStarted = Date()
        var manifest = try Backups.inspect(partial)
        let checkSeconds = Date().timeIntervalSince(checkStarted)
        guard manifest.integrity == "ok" else { throw BackupError("the copy failed its integrity check: \(manifest.integrity)") }
        manifest.createdAt = clock.now()
        guard manager.createFile(atPath: manifestPartial, contents: Data(manifest.json.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw BackupError("cannot write \(manifestPartial)")
        }
        try Backups.sync(manifestPartial)
        // The manifest first: FILE appears last, so a FILE that exists is complete.
        guard rename(manifestPartial, BackupManifest.path(for: path)) == 0, rename(partial, path) == 0 else {
            throw BackupError("cannot rename the backup into place: \(String(cString: strerror(errno)))")
        }
        try Backups.sync(directory.isEmpty ? "." : directory)
        done = true
        return Taken(manifest: manifest, copySeconds: checkStarted.timeIntervalSince(copyStarted), checkSeconds: checkSeconds)
    }

    /// Reads a database file as a backup's check sees it: integrity, schema version, rows per table, size, SHA-256.
    public static func inspect(_ path: String) throws -> BackupManifest {
        let conn = try SQLiteConnection(path: path, mode: .readOnly)
        let integrity = try conn.query("PRAGMA integrity_check").compactMap { $0.string("integrity_check") }.joined(separator: "; ")
        let schema = try conn.scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").int ?? 0
        var tables: [String: Int] = [:]
        let names = try conn.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            .compactMap { $0.string("name") }
        for name in names {
            tables[name] = try conn.scalar("SELECT COUNT(*) FROM \(Backups.quoted(name))").int ?? 0
        }
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
        guard let sha = Secrets.sha256Hex(fileAt: path) else { throw BackupError("cannot read \(path)") }
        return BackupManifest(createdAt: 0, schemaVersion: schema, bytes: size, sha256: sha, integrity: integrity.isEmpty ? "no answer" : integrity,
                              tables: tables)
    }

    /// Checks a backup against its manifest: the same bytes, integrity ok, the same rows per table, a schema this
    /// build can run. Returns the manifest; throws naming the first difference.
    public static func verify(_ path: String, newestSchema: Int = Schema.migrations.last?.version ?? 0) throws -> BackupManifest {
        guard FileManager.default.fileExists(atPath: path) else { throw BackupError("\(path) does not exist") }
        let manifestPath = BackupManifest.path(for: path)
        guard let text = try? String(contentsOfFile: manifestPath, encoding: .utf8) else {
            throw BackupError("\(manifestPath) is missing: a backup is complete only with its manifest")
        }
        guard let manifest = BackupManifest(json: text) else { throw BackupError("\(manifestPath) is not a Roster backup manifest") }
        guard let sha = Secrets.sha256Hex(fileAt: path), sha == manifest.sha256 else {
            throw BackupError("\(path) is not the file its manifest describes (its SHA-256 differs): damaged or replaced")
        }
        let found = try Backups.inspect(path)
        guard found.integrity == "ok" else { throw BackupError("\(path) failed its integrity check: \(found.integrity)") }
        guard found.tables == manifest.tables else {
            let differing = Set(found.tables.keys).union(manifest.tables.keys).sorted().filter { found.tables[$0] != manifest.tables[$0] }
            throw BackupError("\(path): rows differ from the manifest in \(differing.joined(separator: ", "))")
        }
        guard manifest.schemaVersion <= newestSchema else {
            throw BackupError("\(path) has schema version \(manifest.schemaVersion); this roster knows up to \(newestSchema): use a newer roster")
        }
        return manifest
    }

    /// Puts a verified backup in place of the database at `databasePath` (the caller holds the data folder's lock,
    /// so no server runs on it). The old database, with its WAL, is kept aside; returns where.
    public static func restore(from path: String, to databasePath: String, now: Int64) throws -> String {
        _ = try verify(path)
        let manager = FileManager.default
        let incoming = databasePath + ".restore-partial"
        unlink(incoming)
        do { try manager.copyItem(atPath: path, toPath: incoming) } catch { throw BackupError("cannot copy \(path): \(error.localizedDescription)") }
        try Backups.sync(incoming)
        var aside = ""
        let wal = databasePath + "-wal"
        if manager.fileExists(atPath: databasePath) {
            // The old database keeps both its names until the backup takes the live one: hard links first (a name
            // that exists already is never overwritten), so a crash at any point leaves it whole under `aside`.
            let stamp = UTCTime.compactStamp(now)
            var attempt = 1
            repeat {
                aside = "\(databasePath).before-restore-\(stamp)" + (attempt == 1 ? "" : "-\(attempt)")
                attempt += 1
            } while manager.fileExists(atPath: aside) || manager.fileExists(atPath: aside + "-wal")
            guard link(databasePath, aside) == 0 else { throw BackupError("cannot keep the old database aside: \(String(cString: strerror(errno)))") }
            // Its WAL goes with it (SQLite finds a WAL by its database's name) and leaves the live name before the
            // backup arrives: a WAL beside the wrong database would be replayed onto it.
            if manager.fileExists(atPath: wal) {
                guard link(wal, aside + "-wal") == 0, unlink(wal) == 0 else {
                    throw BackupError("cannot move the old database's WAL aside: \(String(cString: strerror(errno)))")
                }
            }
            unlink(databasePath + "-shm")
        } else if manager.fileExists(atPath: wal) {
            throw BackupError("\(wal) exists without its database: move it away (it belongs to a database that is gone) and retry")
        }
        guard rename(incoming, databasePath) == 0 else { throw BackupError("cannot put the backup in place: \(String(cString: strerror(errno)))") }
        try Backups.sync((databasePath as NSString).deletingLastPathComponent)
        return aside
    }

    /// The newest backup recorded, for the Settings page.
    public func last() throws -> BackupRecord? {
        try pool.read { try $0.queryOne(BackupStore.last).map(BackupRecord.init(row:)) }
    }

    /// The schedule: once a day, in the UTC hour `hour`, a backup into `directory` named by its time; the newest
    /// `keep` backups there are kept. Called every minute; does nothing when today's backup exists.
    @discardableResult
    public func runSchedule(directory: String, hour: Int, keep: Int) -> BackupManifest? {
        let now = clock.now()
        let dayStart = now - now % 86_400
        let due = dayStart + Int64(hour) * 3600
        guard now >= due, now < due + 3600 else { return nil }
        let last = (try? pool.read { try $0.scalar(BackupStore.lastScheduledOK).int64 }) ?? nil
        if let last, last >= due { return nil }
        let path = (directory as NSString).appendingPathComponent("roster-\(UTCTime.compactStamp(now)).sqlite")
        do {
            let manifest = try take(to: path, scheduled: true).manifest
            Log.info("backup", ["path": path, "bytes": String(manifest.bytes), "ok": "1"])
            Backups.prune(directory: directory, keep: keep)
            _ = try? pool.write { try $0.run(BackupStore.prune) }
            return manifest
        } catch {
            Log.error("backup failed", ["path": path, "error": "\(error)"])
            return nil
        }
    }

    /// Keeps the newest `keep` scheduled backups (and their manifests) in `directory`; removes partial files older
    /// than a day (a backup killed half-way).
    static func prune(directory: String, keep: Int) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let backups = names.filter { $0.hasPrefix("roster-") && $0.hasSuffix(".sqlite") }.sorted()
        for name in backups.dropLast(max(1, keep)) {
            let path = (directory as NSString).appendingPathComponent(name)
            unlink(path)
            unlink(BackupManifest.path(for: path))
        }
        for name in names where name.contains(".partial-") {
            let path = (directory as NSString).appendingPathComponent(name)
            let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
            if let modified, Date().timeIntervalSince(modified) > 86_400 { unlink(path) }
        }
    }

    static func quoted(_ identifier: String) -> String { "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    /// fsync a file or folder, so a rename that follows never exposes a file whose bytes are not on disk yet.
    static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw BackupError("cannot open \(path) to sync it") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw BackupError("cannot sync \(path): \(String(cString: strerror(errno)))") }
    }
}
