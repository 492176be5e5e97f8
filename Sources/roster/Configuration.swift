import Foundation

/// Settings from flags (`--data DIR`) with environment variables (`ROSTER_DATA`) as the fallback.
struct Configuration {
    var dataDirectory = "data"
    /// A Unix socket in the data folder unless an address is given: TCP on 127.0.0.1 would let any local user
    /// speak FastCGI to the app (and claim any REMOTE_ADDR). `host:port` still listens on TCP (scripts, tests).
    var listen = ""
    var workers = 96
    var templates = "Templates"
    var secureCookies = false
    /// Deletion by conditions removes profiles with no interaction since the start of the current month minus this
    /// many months (PROFILES_REMOVAL_MIN_MONTHS in the spec).
    var removalMinMonths = 1
    /// A pause between the chunks of background tasks, in milliseconds (ROSTER_TASK_PAUSE_MS).
    var taskPauseMilliseconds = 0
    /// Days a task's download (export, failed rows) is kept after the task ended (ROSTER_FILE_DAYS).
    var fileDays = 7
    /// Uploads and exports are refused while less than this many MB are free on the data folder's disk.
    var minFreeMB = 256
    /// Scheduled backups go here, once a day (none when empty).
    var backupDirectory = ""
    /// The UTC hour of the daily backup.
    var backupHour = 3
    /// Scheduled backups kept in `backupDirectory`.
    var backupKeep = 7

    static let help = """
        Configuration (flag, or environment variable):
          --data DIR        ROSTER_DATA       data folder (SQLite database); default: data
          --listen ADDR     ROSTER_LISTEN     FastCGI address, host:port or a socket path; default: DATA/roster.sock
          --workers N       ROSTER_WORKERS    FastCGI worker threads; default: 96
          --templates DIR   ROSTER_TEMPLATES  the Templates folder; default: Templates
          --secure-cookies  ROSTER_SECURE_COOKIES=1  mark cookies Secure (TLS ends before nginx)
                            ROSTER_PROFILES_REMOVAL_MIN_MONTHS  months of inactivity (before the current month) that
                                              deletion by conditions requires; default: 1
                            ROSTER_FILE_DAYS  days a task's download is kept after the task ended; default: 7
                            ROSTER_MIN_FREE_MB  uploads and exports are refused below this much free disk; default: 256
                            ROSTER_BACKUP_DIR  a folder for a checked backup every day (none when unset)
                            ROSTER_BACKUP_HOUR  the UTC hour (0-23) of the daily backup; default: 3
                            ROSTER_BACKUP_KEEP  scheduled backups kept; default: 7
        """

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// Reads the environment, then the flags; returns the arguments that were not configuration.
    static func parse(_ arguments: [String], environment: [String: String]) throws -> (Configuration, [String]) {
        var config = Configuration()
        if let v = environment["ROSTER_DATA"], !v.isEmpty { config.dataDirectory = v }
        if let v = environment["ROSTER_LISTEN"], !v.isEmpty { config.listen = v }
        if let v = environment["ROSTER_WORKERS"], !v.isEmpty {
            guard let n = Int(v), (1...256).contains(n) else { throw Failure(description: "ROSTER_WORKERS must be a number from 1 to 256") }
            config.workers = n
        }
        if let v = environment["ROSTER_TEMPLATES"], !v.isEmpty { config.templates = v }
        if environment["ROSTER_SECURE_COOKIES"] == "1" { config.secureCookies = true }
        if let v = environment["ROSTER_TASK_PAUSE_MS"], !v.isEmpty {
            guard let n = Int(v), (0...60_000).contains(n) else { throw Failure(description: "ROSTER_TASK_PAUSE_MS must be a number from 0 to 60000") }
            config.taskPauseMilliseconds = n
        }
        if let v = environment["ROSTER_PROFILES_REMOVAL_MIN_MONTHS"], !v.isEmpty {
            guard let n = Int(v), (0...120).contains(n) else { throw Failure(description: "ROSTER_PROFILES_REMOVAL_MIN_MONTHS must be a number from 0 to 120") }
            config.removalMinMonths = n
        }
        if let v = environment["ROSTER_FILE_DAYS"], !v.isEmpty {
            guard let n = Int(v), (1...3650).contains(n) else { throw Failure(description: "ROSTER_FILE_DAYS must be a number from 1 to 3650") }
            config.fileDays = n
        }
        if let v = environment["ROSTER_MIN_FREE_MB"], !v.isEmpty {
            guard let n = Int(v), (0...10_000_000).contains(n) else { throw Failure(description: "ROSTER_MIN_FREE_MB must be a number from 0 to 10000000") }
            config.minFreeMB = n
        }
        if let v = environment["ROSTER_BACKUP_DIR"], !v.isEmpty { config.backupDirectory = v }
        if let v = environment["ROSTER_BACKUP_HOUR"], !v.isEmpty {
            guard let n = Int(v), (0...23).contains(n) else { throw Failure(description: "ROSTER_BACKUP_HOUR must be a number from 0 to 23") }
            config.backupHour = n
        }
        if let v = environment["ROSTER_BACKUP_KEEP"], !v.isEmpty {
            guard let n = Int(v), (1...1000).contains(n) else { throw Failure(description: "ROSTER_BACKUP_KEEP must be a number from 1 to 1000") }
            config.backupKeep = n
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
            default: rest.append(arg)
            }
            index += 1
        }
        if config.listen.isEmpty { config.listen = (config.dataDirectory as NSString).appendingPathComponent("roster.sock") }
        return (config, rest)
    }

    var databasePath: String { (dataDirectory as NSString).appendingPathComponent("roster.sqlite") }

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
