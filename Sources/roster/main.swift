import FastCGIServer
import Foundation
import Roster
import Secrets
import Store
import Web

// Before any thread exists: only the server's waiting thread may receive SIGTERM/SIGINT.
FastCGIServer.blockShutdownSignals()


/// Unbuffered standard output, so `make run` shows lines as they happen.
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("roster: \(message)\n".utf8))
    exit(code)
}

let usage = """
    Usage: roster <command> [options]

    Commands:
      serve                               run the FastCGI app (behind nginx)
      bootstrap                           create the first admin if there are no users yet; prints how to sign in
      user add --email E --role R [--name N]   add a user; the password is read from standard input
      user list                           list users
      user password --email E             set a user's password, read from standard input
      user reset-two-factor --email E     turn off a user's second factor (lost phone, no recovery code)
      migrate                             apply database migrations and exit
      database list                       list databases (id, profiles, name)
      database create --structure FILE    create a database from a structure file; prints its id
      database structure ID               print a database's structure file
      field add --database ID --name N --type T [--options a,b] [--indexed]   add a custom field; prints its id
      field set --database ID --name N (--value V | --clear)   set or clear one field on every profile
      resource create --name N --channels email,sms [--categories a,b]      prints the resource id
      import --database ID --file F.csv [--match email|phone|field:NAME] [--skip-existing]
                                          import profiles from CSV (columns mapped by their header names)
      bulk --database ID --selection JSON --action JSON [--segment ID] [--preview] [--skip-triggers] [--as EMAIL]
                                          run (or preview) a bulk update as a task, launched by EMAIL (default:
                                          the first admin)
      task undo ID [--preview] [--as EMAIL]   undo a bulk task (values changed since are left alone), or print
                                          what the undo would do
      token create --name N --databases 1,2 [--expires-days D]   an API token for the batch API (printed once)
      segment count --database ID --selection JSON   count what rules, range and limit select (matching, in range, selected)
      seed --database NAME --profiles N   add N realistic demo profiles (creating the database if needed)
      supervise                           run `serve` and start it again within a second whenever it dies
      backup --to FILE                    an online, checked copy of the database (and FILE.manifest.json)
      restore --from FILE                 put a checked backup in place (refused while serve runs); keeps the old one
      check                               integrity, foreign keys, schema, WAL size, leftover files; exit 1 on a problem
      copy-store --from sqlite:PATH --to postgres://…   copy a SQLite installation into an empty PostgreSQL
                                          database (one transaction), then compare every table's row count

    \(Configuration.help)
    """

guard Secrets.initialize() else { fail("libsodium could not start") }

let (config, args) = {
    do { return try Configuration.parse(Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment) }
    catch { fail("\(error)\n\n\(usage)", code: 2) }
}()

/// The store the configuration names (PostgreSQL or the data folder's SQLite file), migrated and checked.
func openPool() -> DatabasePool {
    do {
        try config.prepareDataDirectory()
        let pool = config.usesPostgres
            ? try DatabasePool(postgresURL: config.databaseURL, migrations: Schema.migrations, queries: Schema.queries)
            : try DatabasePool(path: config.databasePath, migrations: Schema.migrations, queries: Schema.queries)
        try ProfileTable.upgrade(pool)
        return pool
    } catch {
        fail("cannot open the database at \(config.storeDescription): \(error)")
    }
}

/// Commands that work on the SQLite file itself stop here on PostgreSQL, saying what to use instead.
func requireSQLite(_ command: String, instead: String) {
    if config.usesPostgres { fail("\(command) works on the SQLite file; on PostgreSQL, \(instead)", code: 2) }
}

/// With ROSTER_TIMING=1, prints how long the operation took inside the process (for `make bench`).
func reportTiming(since start: Date) {
    if ProcessInfo.processInfo.environment["ROSTER_TIMING"] == "1" {
        FileHandle.standardError.write(Data(String(format: "roster-timing-ms %.3f\n", Date().timeIntervalSince(start) * 1000).utf8))
    }
}

func option(_ name: String, in args: [String]) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

/// Takes the data folder's lock (creating the folder), or stops with `refusal(holder's pid)` when a server holds it.
func lockDataFolder(_ refusal: (String) -> String) -> DataLock {
    do {
        try config.prepareDataDirectory()
        guard let lock = try DataLock.acquire(dataDirectory: config.dataDirectory) else {
            fail(refusal(DataLock.holder(dataDirectory: config.dataDirectory) ?? "?"))
        }
        return lock
    } catch {
        fail("\(error)")
    }
}

/// The user a command-line bulk task is recorded as launched by (approvals depend on who launched): --as EMAIL, else
/// the first admin.
func commandLineLauncher(_ pool: DatabasePool, _ args: [String]) throws -> User {
    let accounts = Accounts(pool: pool)
    if let email = option("--as", in: args) {
        guard let user = try accounts.user(email: email) else { fail("no user with the email \(email)", code: 2) }
        return user
    }
    guard let admin = try accounts.listUsers().first(where: { $0.role == .admin }) else { fail("no admin user to run the task as") }
    return admin
}

/// Bulk updates for a command: they record tasks without a runner of their own (this process runs only the task it
/// launches, with `runBulkHere`).
func commandLineBulk(_ pool: DatabasePool, removalMinMonths: Int) -> (bulk: BulkUpdates, tasks: TaskRunner) {
    let recorder = TaskRunner(pool: pool, handlers: [BulkUpdateTask.kind: BulkUpdateTask(removalMinMonths: removalMinMonths)])
    recorder.stop()
    return (BulkUpdates(pool: pool, tasks: recorder, removalMinMonths: removalMinMonths), recorder)
}

/// Runs a recorded bulk task here to its end and reports the time; exits 1 when it waits for approval.
func runBulkHere(_ id: Int64, _ pool: DatabasePool, removalMinMonths: Int, since started: Date) throws -> TaskRecord {
    let worker = TaskRunner(pool: pool, handlers: [BulkUpdateTask.kind: BulkUpdateTask(removalMinMonths: removalMinMonths)], chunkSize: 5000)
    guard let task = try worker.runToEnd(id) else { fail("the task is gone") }
    reportTiming(since: started)
    if task.state == .awaitingApproval {
        say("roster: task \(id) awaits approval: \(task.approvalReason ?? "") Another admin approves it on /tasks/\(id).")
        exit(1)
    }
    return task
}

func readPasswordFromStdin() -> String {
    guard let line = readLine(strippingNewline: true), !line.isEmpty else { fail("expected the password on standard input", code: 2) }
    return line
}

// Every command that writes subscriptions (serve, bulk, import) may ask for confirmations: their links need these.
SubscriberLinks.configuration = .init(publicURL: config.publicURL, confirmationHours: config.confirmationHours)

switch args.first {
case "serve":
    // One server per data folder; a restore waits for it to stop. Held until the process ends.
    // Refused before anything starts (no task is claimed by a server that is about to stop).
    if !config.backupDirectory.isEmpty && config.usesPostgres {
        fail("ROSTER_BACKUP_DIR copies the SQLite file; on PostgreSQL, back up with pg_dump or a replica (docs/scale-out.md)", code: 2)
    }
    let dataLock = lockDataFolder { "another roster serve (pid \($0)) is running on \(config.dataDirectory)" }
    Log.enable()
    let pool = openPool()
    let templates: TemplateSet
    do { templates = try TemplateSet.load(directory: config.templates) }
    catch { fail("templates: \(error)") }
    let services = Services.make(pool: pool, exportDirectory: config.exportDirectory,
                                 removalMinMonths: config.removalMinMonths, taskPauseMilliseconds: config.taskPauseMilliseconds,
                                 fileDays: config.fileDays, minFreeMB: config.minFreeMB, taskLeaseSeconds: config.taskLeaseSeconds,
                                 undoDays: config.undoDays)
    do {
        // Tasks a crash left running continue by themselves from their last committed chunk, unless the crashes keep
        // coming at the same chunk (then they wait for a person, with the reason on the Tasks page).
        let recovery = try services.tasks.recover()
        for id in recovery.resumed { Log.info("task resumed after a restart", ["task": String(id)]) }
        for id in recovery.held {
            Log.error("task held: interrupted \(TaskRunner.autoResumeLimit) times at the same point", ["task": String(id)])
        }
    } catch { fail("cannot recover tasks: \(error)") }
    do { try pool.startBackgroundMaintenance() } catch { fail("cannot start the checkpoint thread: \(error)") }
    services.tasks.wake()
    // Renews the lease of the task at hand, takes over tasks whose host is gone, finds tasks other hosts queued.
    services.tasks.startPolling(every: 2)
    services.webhooks.start()
    var webConfig = WebConfiguration()
    webConfig.forceSecureCookies = config.secureCookies
    if !config.backupDirectory.isEmpty {
        webConfig.backupSchedule = "A backup is taken every day at \(config.backupHour):00 UTC into \(config.backupDirectory); "
            + "the newest \(config.backupKeep) are kept."
    }
    let app = WebApp(services: services, templates: templates, configuration: webConfig)
    // Large uploads (CSV imports) are written to the data folder while they are read, never held in memory.
    let server = FastCGIServer(configuration: .init(address: config.listen, workers: config.workers,
                                                      concurrency: config.effectiveConcurrency,
                                                      spoolDirectory: services.uploadDirectory), handler: app)
    // Expired task files, files of deleted databases and request leftovers go now and every hour.
    services.startHousekeeping()
    services.startSchedules()
    if !config.backupDirectory.isEmpty && !config.usesPostgres {
        services.startBackups(directory: config.backupDirectory, hour: config.backupHour, keep: config.backupKeep)
    }
    do {
        try server.run {
            say("roster: serving FastCGI on \(config.listen) with \(config.workers) workers, "
                + "\(config.effectiveConcurrency) at once; data in \(config.storeDescription)"
                + (config.filesDirectory == config.dataDirectory ? "" : ", files in \(config.filesDirectory)"))
        }
        services.tasks.shutDown()
        services.webhooks.stop()
        // Fold the WAL back into the database file so a copy of roster.sqlite alone is complete.
        if !config.usesPostgres {
            try? pool.writerWithoutTransaction { try $0.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
        }
        say("roster: stopped")
        withExtendedLifetime(dataLock) {}
        exit(0)
    } catch {
        fail("\(error)")
    }

case "bootstrap":
    let pool = openPool()
    let accounts = Accounts(pool: pool)
    do {
        if try accounts.userCount() > 0 {
            say("roster: users exist already; sign in with your account (no password was changed).")
            exit(0)
        }
        let env = ProcessInfo.processInfo.environment
        let email = env["ROSTER_ADMIN_EMAIL"].flatMap { $0.isEmpty ? nil : $0 } ?? "admin@localhost.localdomain"
        let given = env["ROSTER_ADMIN_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        let password = given ?? Secrets.randomToken(bytes: 12)
        try accounts.createUser(email: email, name: "Administrator", role: .admin, password: password)
        say("roster: created the first admin")
        say("         email:    \(email)")
        if given == nil {
            say("         password: \(password)")
            say("         (shown once; change it under Settings)")
        } else {
            say("         password: the one in ROSTER_ADMIN_PASSWORD")
        }
    } catch let error as ValidationError {
        fail("cannot create the first admin: \(error)")
    } catch {
        fail("\(error)")
    }

case "user":
    let pool = openPool()
    let accounts = Accounts(pool: pool)
    do {
        switch args.dropFirst().first {
        case "add":
            guard let email = option("--email", in: args) else { fail("user add needs --email", code: 2) }
            guard let role = Role(rawValue: option("--role", in: args) ?? "") else { fail("user add needs --role admin|editor|viewer", code: 2) }
            let user = try accounts.createUser(email: email, name: option("--name", in: args) ?? "", role: role, password: readPasswordFromStdin())
            say("roster: added \(user.email) as \(user.role.rawValue) (id \(user.id))")
        case "list":
            for user in try accounts.listUsers() {
                say("\(user.id)\t\(user.email)\t\(user.role.rawValue)\t\(user.name)")
            }
        case "password":
            guard let email = option("--email", in: args) else { fail("user password needs --email", code: 2) }
            guard let user = try accounts.user(email: email) else { fail("no user with the email \(email)") }
            try accounts.setPassword(userID: user.id, password: readPasswordFromStdin())
            say("roster: password set for \(user.email); their sessions were signed out")
        case "reset-two-factor":
            guard let email = option("--email", in: args) else { fail("user reset-two-factor needs --email", code: 2) }
            guard let user = try accounts.user(email: email) else { fail("no user with the email \(email)") }
            // The operator at the console acts as nobody in particular (no user id 0 exists).
            try TwoFactor(pool: pool).reset(userID: user.id, actingUserID: 0)
            say("roster: two-factor sign-in is off for \(user.email); their sessions were signed out")
        default:
            fail("unknown user command\n\n\(usage)", code: 2)
        }
    } catch let error as ValidationError {
        fail(error.description)
    } catch {
        fail("\(error)")
    }

case "database", "field", "resource":
    let pool = openPool()
    let databases = Databases(pool: pool)
    do {
        switch (args[0], args.dropFirst().first) {
        case ("database", "list"):
            for summary in try databases.list() { say("\(summary.database.id)\t\(summary.profileCount)\t\(summary.database.name)") }
        case ("database", "create"):
            guard let file = option("--structure", in: args) else { fail("database create needs --structure FILE", code: 2) }
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch { fail("cannot read \(file): \(error.localizedDescription)") }
            say(String(try databases.create(from: try DatabaseStructure.parse(text)).id))
        case ("database", "structure"):
            guard args.count > 2, let id = Int64(args[2]), let structure = try databases.structure(of: id) else { fail("no such database", code: 2) }
            say(structure.json())
        case ("field", "add"):
            guard let db = option("--database", in: args).flatMap(Int64.init), let name = option("--name", in: args), let type = option("--type", in: args) else {
                fail("field add needs --database ID --name N --type T", code: 2)
            }
            let started = Date()
            let field = try databases.addField(to: db, FieldInput(name: name, type: type, options: option("--options", in: args) ?? "", indexed: args.contains("--indexed")))
            reportTiming(since: started)
            say(String(field.id))
        case ("field", "set"):
            guard let db = option("--database", in: args).flatMap(Int64.init), let name = option("--name", in: args),
                  let field = try databases.fields(of: db).first(where: { $0.name.lowercased() == name.lowercased() }) else {
                fail("field set needs --database ID and the --name of one of its fields", code: 2)
            }
            let value = args.contains("--clear") ? nil : option("--value", in: args)
            if value == nil && !args.contains("--clear") { fail("field set needs --value V or --clear", code: 2) }
            let started = Date()
            let changed = try databases.setFieldOnAllProfiles(field, value: value)
            reportTiming(since: started)
            say("roster: \(changed) profiles changed")
        case ("resource", "create"):
            guard let name = option("--name", in: args), let channels = option("--channels", in: args) else {
                fail("resource create needs --name N --channels email,sms", code: 2)
            }
            let resource = try Resources(pool: pool).create(ResourceInput(name: name, channels: channels.split(separator: ",").map(String.init),
                                                                          categories: option("--categories", in: args) ?? ""))
            say(String(resource.id))
        default:
            fail("unknown command\n\n\(usage)", code: 2)
        }
    } catch let error as ValidationError {
        fail(error.description)
    } catch {
        fail("\(error)")
    }

case "import":
    // Imports a CSV file into a database as the web form does, with columns mapped by their header names.
    let pool = openPool()
    guard let db = option("--database", in: args).flatMap(Int64.init), let file = option("--file", in: args) else {
        fail("import needs --database ID --file F.csv [--match email|phone|field:NAME] [--skip-existing]", code: 2)
    }
    do {
        let imports = ProfileImports(pool: pool, directory: config.uploadDirectory)
        let runner = TaskRunner(pool: pool, handlers: [ImportProfilesTask.kind: ImportProfilesTask(imports: imports)])
        runner.stop()   // this process runs only the task it enqueues, below
        let started = Date()
        let upload = try imports.store(UploadSource(filename: (file as NSString).lastPathComponent) { target in
            try FileManager.default.copyItem(atPath: file, toPath: target)
        })
        var settings = ImportSettings(targets: upload.suggestedTargets(custom: try Databases(pool: pool).fields(of: db)))
        settings.match = option("--match", in: args) ?? "email"
        settings.existing = args.contains("--skip-existing") ? "skip" : "update"
        let id = try runner.enqueue(kind: ImportProfilesTask.kind, title: "Import profiles ← \(upload.filename) (command line)", databaseID: db,
                                    userID: nil, parameters: try imports.parameters(databaseID: db, upload: upload, settings))
        let worker = TaskRunner(pool: pool, handlers: [ImportProfilesTask.kind: ImportProfilesTask(imports: imports)])
        guard let task = try worker.runToEnd(id) else { fail("the import task is gone") }
        reportTiming(since: started)
        say("roster: task \(id) \(task.state.rawValue): \(task.added) added, \(task.updated) updated, \(task.skipped) skipped, \(task.failed) failed")
        if task.failed > 0 { say("roster: failed rows with their reasons: \(imports.failedRowsPath(taskID: id))") }
        if task.state != .done { exit(1) }
    } catch let error as ValidationError {
        fail(error.description)
    } catch {
        fail("\(error)")
    }

case "bulk":
    // Runs a bulk update as the web form does (a task, chunk by chunk, with its change log), here and now.
    let pool = openPool()
    guard let db = option("--database", in: args).flatMap(Int64.init),
          let selection = option("--selection", in: args).flatMap(JSONValue.parse).flatMap(Selection.init(json:)),
          let action = option("--action", in: args).flatMap(JSONValue.parse).flatMap(BulkAction.init(json:)) else {
        fail("bulk needs --database ID --selection JSON --action JSON [--segment ID] [--preview] [--skip-triggers]", code: 2)
    }
    do {
        let admin = try commandLineLauncher(pool, args)
        let bulk = commandLineBulk(pool, removalMinMonths: config.removalMinMonths).bulk
        var segmentID: Int64?
        if let text = option("--segment", in: args) {
            guard let id = Int64(text) else { fail("--segment takes a segment id", code: 2) }
            segmentID = id
        }
        let request = BulkRequest(databaseID: db, segmentID: segmentID, selection: selection, action: action,
                                  skipTriggers: args.contains("--skip-triggers"))
        let started = Date()
        if args.contains("--preview") {
            let p = try bulk.preview(request, actor: admin)
            reportTiming(since: started)
            say("selected \(p.selected), updated \(p.updated), deleted \(p.deleted), skipped \(p.skipped), failed \(p.failed)")
            exit(0)
        }
        let id = try bulk.start(request, title: "\(action.label) (command line)", user: admin)
        let task = try runBulkHere(id, pool, removalMinMonths: config.removalMinMonths, since: started)
        say("roster: task \(id) \(task.state.rawValue): \(task.total) selected, \(task.updated) updated, \(task.deleted) deleted, \(task.skipped) skipped, \(task.failed) failed")
        if task.state != .done { exit(1) }
    } catch let error as ValidationError {
        fail(error.description)
    } catch {
        fail("\(error)")
    }

case "task":
    // Undoes a bulk task as its page does (the same checks), as a task run here and now; --preview prints what it would
    // do instead.
    let pool = openPool()
    guard args.dropFirst().first == "undo", let original = args.dropFirst(2).first.flatMap({ Int64($0) }) else {
        fail("task undo needs a task id: roster task undo ID [--preview] [--as EMAIL]", code: 2)
    }
    do {
        let launcher = try commandLineLauncher(pool, args)
        let (bulk, tasks) = commandLineBulk(pool, removalMinMonths: config.removalMinMonths)
        guard let task = try tasks.task(original) else { fail("no task \(original)", code: 2) }
        let request = try bulk.undoRequest(of: task, role: launcher.role)
        let started = Date()
        if args.contains("--preview") {
            let p = try bulk.preview(request, actor: launcher)
            reportTiming(since: started)
            say("undo of task \(original): \(p.selected) items, \(p.updated) to put back, \(p.skipped) left as they are"
                + (p.reasons.isEmpty ? "" : " (" + p.reasons.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + ")"))
            exit(0)
        }
        let id = try bulk.start(request, title: "Undo #\(original): \(task.title)", user: launcher)
        let done = try runBulkHere(id, pool, removalMinMonths: config.removalMinMonths, since: started)
        say("roster: task \(id) \(done.state.rawValue): \(done.total) items, \(done.updated) put back, \(done.skipped) left as they are")
        if done.state != .done { exit(1) }
    } catch let error as ValidationError {
        fail(error.description)
    } catch {
        fail("\(error)")
    }

case "token":
    // Creates an API token for scripts; it is printed once (Roster keeps only its digest).
    let pool = openPool()
    guard args.dropFirst().first == "create", let name = option("--name", in: args), let list = option("--databases", in: args) else {
        fail("token create needs --name N --databases 1,2 [--expires-days D]", code: 2)
    }
    let ids = list.split(separator: ",").compactMap { Int64($0.trimmingCharacters(in: .whitespaces)) }
    do {
        let (token, _) = try APITokens(pool: pool).create(name: name, databaseIDs: ids, by: nil, expiresInDays: option("--expires-days", in: args).flatMap { Int($0) })
        say(token)
    } catch let error as ValidationError {
        fail(error.description)
    } catch {
        fail("\(error)")
    }

case "segment":
    // Counts what a selection (JSON: {"rules": …, "range_from": …, "range_to": …, "limit": …}) takes in a database.
    let pool = openPool()
    guard args.dropFirst().first == "count", let db = option("--database", in: args).flatMap(Int64.init), let text = option("--selection", in: args),
          let json = JSONValue.parse(text), let selection = Selection(json: json) else {
        fail("segment count needs --database ID --selection JSON", code: 2)
    }
    do {
        let segments = Segments(pool: pool)
        // Timed on the second run, as the running app counts (its statements and pages already warm).
        _ = try segments.counts(databaseID: db, selection)
        let started = Date()
        let counts = try segments.counts(databaseID: db, selection)
        reportTiming(since: started)
        say("\(counts.matchingRules)\t\(counts.inRange)\t\(counts.selected)")
    } catch let error as ValidationError {
        fail(error.description)
    } catch {
        fail("\(error)")
    }

case "seed":
    let pool = openPool()
    guard let name = option("--database", in: args), let count = option("--profiles", in: args).flatMap(Int.init), count > 0, count <= 10_000_000 else {
        fail("seed needs --database NAME --profiles N (1 to 10,000,000)", code: 2)
    }
    do {
        let started = Date()
        let db = try DemoData(pool: pool).seed(databaseName: name, count: count) { done in
            if done % 100_000 == 0 || done == count { say("roster: \(done) of \(count) profiles") }
        }
        say("roster: database \(db.id) (\(db.name)) has \(count) new demo profiles in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    } catch let error as ValidationError {
        fail(error.description)
    } catch {
        fail("\(error)")
    }

case "supervise":
    // The child gets every argument but this command's name (configuration flags included).
    var childArguments = Array(CommandLine.arguments.dropFirst())
    if let i = childArguments.firstIndex(of: "supervise") { childArguments.remove(at: i) }
    Supervisor.run(arguments: childArguments)

case "backup":
    // An online, checked copy: pages, API calls and tasks go on meanwhile.
    guard let target = option("--to", in: args) else { fail("backup needs --to FILE", code: 2) }
    requireSQLite("backup", instead: "use pg_dump or the server's own backups (see docs/scale-out.md)")
    let pool = openPool()
    do {
        let started = Date()
        let taken = try Backups(pool: pool).take(to: target)
        let manifest = taken.manifest
        let seconds = Date().timeIntervalSince(started)
        let rows = manifest.tables.filter { $0.key.hasPrefix("profiles_") }.values.reduce(0, +)
        say("roster: backup written to \(target) (\(manifest.bytes) bytes, \(rows) profiles, schema \(manifest.schemaVersion), "
            + "integrity \(manifest.integrity)) in \(String(format: "%.2f", seconds)) s (copy \(String(format: "%.2f", taken.copySeconds)) s, "
            + "check \(String(format: "%.2f", taken.checkSeconds)) s); manifest: \(BackupManifest.path(for: target))")
    } catch {
        fail("backup failed: \(error)")
    }

case "restore":
    guard let source = option("--from", in: args) else { fail("restore needs --from FILE", code: 2) }
    requireSQLite("restore", instead: "use pg_restore (see docs/scale-out.md)")
    let lock = lockDataFolder { "Roster is serving from \(config.dataDirectory) (pid \($0)); stop it first, then restore" }
    do {
        let aside = try Backups.restore(from: source, to: config.databasePath, now: Int64(Date().timeIntervalSince1970))
        withExtendedLifetime(lock) {}
        say("roster: restored \(source) into \(config.databasePath)")
        if !aside.isEmpty { say("roster: the previous database is kept as \(aside)") }
    } catch {
        fail("restore refused: \(error)")
    }

case "check":
    // Opened as it is: no migration runs, so a database older than this build is reported, not upgraded.
    let pool: DatabasePool
    if config.usesPostgres {
        do { pool = try DatabasePool(postgresURL: config.databaseURL, migrations: [], queries: []) }
        catch { fail("cannot open the database at \(config.storeDescription): \(error)") }
    } else {
        guard FileManager.default.fileExists(atPath: config.databasePath) else { fail("no database at \(config.databasePath)") }
        do { pool = try DatabasePool(path: config.databasePath, migrations: [], queries: []) }
        catch { fail("cannot open the database at \(config.databasePath): \(error)") }
    }
    let files = TaskFiles(pool: pool, exportDirectory: config.exportDirectory, uploadDirectory: config.uploadDirectory,
                          keepDays: config.fileDays, minFreeBytes: Int64(config.minFreeMB) << 20)
    let results = Checkup.database(pool: pool, files: files)
    for result in results { say("\(!result.ok ? "PROBLEM" : result.warning ? "warning" : "ok     ") \(result.name): \(result.detail)") }
    exit(results.allSatisfy(\.ok) ? 0 : 1)

case "copy-store":
    // Moves an installation to PostgreSQL: the server on the SQLite file must be stopped (its folder's lock).
    guard let from = option("--from", in: args), let to = option("--to", in: args) ?? (config.usesPostgres ? config.databaseURL : nil) else {
        fail("copy-store needs --from sqlite:PATH --to postgres://…", code: 2)
    }
    let path = from.hasPrefix("sqlite:") ? String(from.dropFirst("sqlite:".count)) : from
    guard to.hasPrefix("postgres://") || to.hasPrefix("postgresql://") else { fail("--to takes a postgres:// URL", code: 2) }
    guard FileManager.default.fileExists(atPath: path) else { fail("no SQLite database at \(path)") }
    let folder = (path as NSString).deletingLastPathComponent
    let sourceLock: DataLock
    do {
        guard let lock = try DataLock.acquire(dataDirectory: folder.isEmpty ? "." : folder) else {
            fail("Roster is serving from \(folder) (pid \(DataLock.holder(dataDirectory: folder) ?? "?")); stop it first")
        }
        sourceLock = lock
    } catch { fail("\(error)") }
    do {
        let started = Date()
        let source = try DatabasePool(path: path, migrations: Schema.migrations, queries: Schema.queries)
        try ProfileTable.upgrade(source)
        let target = try DatabasePool(postgresURL: to, migrations: Schema.migrations, queries: Schema.queries)
        let report = try CopyStore.copy(from: source, to: target) { table, rows in say("roster: \(table): \(rows) rows") }
        withExtendedLifetime(sourceLock) {}
        say("roster: copied \(report.rows) rows in \(report.tables.count) tables to \(DatabasePool.withoutPassword(to)) in "
            + String(format: "%.1f", Date().timeIntervalSince(started)) + " s; every table's count matches")
        say("roster: start the app hosts with ROSTER_DATABASE_URL; copy the files folder (exports/, uploads/) to ROSTER_FILES")
    } catch {
        fail("copy-store failed; no rows were kept on PostgreSQL: \(error)")
    }

case "migrate":
    _ = openPool()
    say("roster: the database at \(config.storeDescription) is up to date")

case "help", "--help", "-h":
    say(usage)

default:
    fail("unknown command\n\n\(usage)", code: 2)
}
