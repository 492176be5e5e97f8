import Foundation
import Store

/// Settings from flags (`--data DIR`) with environment variables (`ROSTER_DATA`) as the fallback.
struct Configuration {
    var dataDirectory = "data"
    /// A Unix socket in the data folder unless an address is given: TCP on 127.0.0.1 would let any local user
    /// speak FastCGI to the app (and claim any REMOTE_ADDR). `host:port` still listens on TCP (scripts, tests).
    var listen = ""
    var workers = 96
    /// Page reads handled at once (the others wait in arrival order); 0: chosen from the cores and the store.
    var concurrency = 0
    var templates = "Templates"
    var secureCookies = false
    /// Deletion by conditions removes profiles with no interaction since the start of the current month minus this
    /// many months (PROFILES_REMOVAL_MIN_MONTHS in the spec).
    var removalMinMonths = 1
    /// A pause between the chunks of background tasks, in milliseconds (ROSTER_TASK_PAUSE_MS).
    var taskPauseMilliseconds = 0
    /// Days a task's download (export, failed rows) is kept after the task ended (ROSTER_FILE_DAYS).
    var fileDays = 7
    /// Days the profiles a bulk task deleted are kept so the task can be undone (ROSTER_UNDO_DAYS).
    var undoDays = 30
    /// Uploads and exports are refused while less than this many MB are free on the data folder's disk.
    var minFreeMB = 256
    /// Scheduled backups go here, once a day (none when empty).
    var backupDirectory = ""
    /// The UTC hour of the daily backup.
    var backupHour = 3
    /// Scheduled backups kept in `backupDirectory`.
    var backupKeep = 7
    /// PostgreSQL instead of the data folder's SQLite file: a libpq URL (`postgres://user@host/db`), shared by every
    /// app host. Empty: SQLite.
    var databaseURL = ""
    /// Where exports, failed-row files and uploads being mapped are kept (`exports/`, `uploads/`): the data folder
    /// unless set. With several app hosts, a folder every host mounts (any host serves any download or import step).
    var filesDirectory = ""
    /// Seconds a task's lease lasts without renewal: how long a dead host's task waits before another takes it over.
    var taskLeaseSeconds = 60
    /// Where subscribers reach this installation (scheme and host, no path): the base of subscription-manager links.
    var publicURL = "http://127.0.0.1:8080"
    /// Hours a double opt-in confirmation link works.
    var confirmationHours = 72

    static let help = """
        Configuration (flag, or environment variable):
          --data DIR        ROSTER_DATA       data folder (SQLite database); default: data
          --listen ADDR     ROSTER_LISTEN     FastCGI address, host:port or a socket path; default: DATA/roster.sock
          --workers N       ROSTER_WORKERS    FastCGI worker threads; default: 96
                            ROSTER_CONCURRENCY  page reads (GET) handled at once; default: 2 per core (SQLite), 8 per
                                              core (PostgreSQL, where requests wait on the network)
          --templates DIR   ROSTER_TEMPLATES  the Templates folder; default: Templates
          --secure-cookies  ROSTER_SECURE_COOKIES=1  mark cookies Secure (TLS ends before nginx)
                            ROSTER_PROFILES_REMOVAL_MIN_MONTHS  months of inactivity (before the current month) that
                                              deletion by conditions requires; default: 1
                            ROSTER_FILE_DAYS  days a task's download is kept after the task ended; default: 7
                            ROSTER_UNDO_DAYS  days profiles deleted by a bulk task are kept for its undo; default: 30
                            ROSTER_MIN_FREE_MB  uploads and exports are refused below this much free disk; default: 256
                            ROSTER_BACKUP_DIR  a folder for a checked backup every day (none when unset)
                            ROSTER_BACKUP_HOUR  the UTC hour (0-23) of the daily backup; default: 3
                            ROSTER_BACKUP_KEEP  scheduled backups kept; default: 7
          --database-url URL  ROSTER_DATABASE_URL  PostgreSQL (postgres://user@host/db) instead of DATA/roster.sqlite
          --files DIR       ROSTER_FILES      exports and uploads; default: the data folder (a shared mount with
                                              several app hosts)
                            ROSTER_TASK_LEASE_SECONDS  a task whose host stopped renewing its lease this long is taken
                                              over by another host; default: 60
                            ROSTER_HOST_ID    this host's name in task leases; default: the host name
                            ROSTER_PUBLIC_URL  where subscribers reach Roster (links in API answers); default:
                                              http://127.0.0.1:8080
                            ROSTER_CONFIRMATION_HOURS  hours a double opt-in confirmation link works; default: 72
        """

    /// Page reads handled at once: enough to keep every core busy while some wait on a lock or the disk; with
    /// PostgreSQL a request spends much of its time waiting for the server, so more run at once.
    var effectiveConcurrency: Int {
        if concurrency > 0 { return min(concurrency, workers) }
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        return min(workers, usesPostgres ? 8 * cores : 2 * cores)
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// Reads the environment, then the flags; returns the arguments that were not configuration.
    static func parse(_ arguments: [String], environment: [String: String]) throws -> (Configuration, [String]) {
        var config = Configuration()
        /// A whole number from the environment within `range`; nil when the variable is unset or empty.
        func number(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let n = Int(text), range.contains(n) else {
                throw Failure(description: "\(name) must be a number from \(range.lowerBound) to \(range.upperBound)")
            }
            return n
        }
        if let v = environment["ROSTER_DATA"], !v.isEmpty { config.dataDirectory = v }
        if let v = environment["ROSTER_LISTEN"], !v.isEmpty { config.listen = v }
        if let n = try number("ROSTER_WORKERS", 1...256) { config.workers = n }
        if let n = try number("ROSTER_CONCURRENCY", 1...256) { config.concurrency = n }
        if let v = environment["ROSTER_TEMPLATES"], !v.isEmpty { config.templates = v }
        if environment["ROSTER_SECURE_COOKIES"] == "1" { config.secureCookies = true }
        if let n = try number("ROSTER_TASK_PAUSE_MS", 0...60_000) { config.taskPauseMilliseconds = n }
        if let n = try number("ROSTER_PROFILES_REMOVAL_MIN_MONTHS", 0...120) { config.removalMinMonths = n }
        if let n = try number("ROSTER_FILE_DAYS", 1...3650) { config.fileDays = n }
        if let n = try number("ROSTER_UNDO_DAYS", 1...3650) { config.undoDays = n }
        if let n = try number("ROSTER_MIN_FREE_MB", 0...10_000_000) { config.minFreeMB = n }
        if let v = environment["ROSTER_BACKUP_DIR"], !v.isEmpty { config.backupDirectory = v }
        if let n = try number("ROSTER_BACKUP_HOUR", 0...23) { config.backupHour = n }
        if let n = try number("ROSTER_BACKUP_KEEP", 1...1000) { config.backupKeep = n }
        if let v = environment["ROSTER_DATABASE_URL"], !v.isEmpty { config.databaseURL = v }
        if let v = environment["ROSTER_FILES"], !v.isEmpty { config.filesDirectory = v }
        if let n = try number("ROSTER_TASK_LEASE_SECONDS", 3...3600) { config.taskLeaseSeconds = n }
        if let n = try number("ROSTER_CONFIRMATION_HOURS", 1...8760) { config.confirmationHours = n }
        if let v = environment["ROSTER_PUBLIC_URL"], !v.isEmpty {
            var url = v
            while url.hasSuffix("/") { url.removeLast() }
            guard url.hasPrefix("http://") || url.hasPrefix("https://"), url.utf8.count <= 200,
                  url.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "?" && $0 != "#" }) else {
                throw Failure(description: "ROSTER_PUBLIC_URL is an http:// or https:// address without a query, like https://roster.example.com")
            }
            config.publicURL = url
        }

        var rest: [String] = []
        var index = 0
        func value(_ flag: String) throws -> String {
            index += 1
            guard index < arguments.count else { throw Failure(description: "\(flag) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            let arg = arguments[index]
            switch arg {
            case "--data": config.dataDirectory = try value(arg)
            case "--listen": config.listen = try value(arg)
            case "--workers":
                guard let n = Int(try value(arg)), (1...256).contains(n) else { throw Failure(description: "--workers must be a number from 1 to 256") }
                config.workers = n
            case "--templates": config.templates = try value(arg)
            case "--secure-cookies": config.secureCookies = true
            case "--database-url": config.databaseURL = try value(arg)
            case "--files": config.filesDirectory = try value(arg)
            default: rest.append(arg)
            }
            index += 1
        }
        if !config.databaseURL.isEmpty, !(config.databaseURL.hasPrefix("postgres://") || config.databaseURL.hasPrefix("postgresql://")) {
            throw Failure(description: "the database URL must start with postgres:// or postgresql://")
        }
        if config.filesDirectory.isEmpty { config.filesDirectory = config.dataDirectory }
        if config.listen.isEmpty { config.listen = (config.dataDirectory as NSString).appendingPathComponent("roster.sock") }
        return (config, rest)
    }

    var databasePath: String { (dataDirectory as NSString).appendingPathComponent("roster.sqlite") }
    var usesPostgres: Bool { !databaseURL.isEmpty }
    /// The store, for messages: the SQLite file, or the PostgreSQL URL without its password.
    var storeDescription: String { usesPostgres ? DatabasePool.withoutPassword(databaseURL) : databasePath }
    var exportDirectory: String { (filesDirectory as NSString).appendingPathComponent("exports") }
    var uploadDirectory: String { (filesDirectory as NSString).appendingPathComponent("uploads") }

    /// Creates the data folder readable only by its owner: it holds personal data.
    /// The data folder holds personal data: files are created 0600 (umask 077). When the app listens on a Unix
    /// socket inside it, nginx's group (www-data) may pass through the folder (0710: no listing, no reading) to
    /// reach the socket; otherwise the folder is 0700.
    func prepareDataDirectory() throws {
        umask(0o077)
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let socketInside = !listen.contains(":") && (listen as NSString).deletingLastPathComponent == dataDirectory
        if socketInside, let group = getgrnam("www-data") {
            _ = chown(dataDirectory, UInt32.max, group.pointee.gr_gid)
            _ = chmod(dataDirectory, 0o710)
        }
    }
}
