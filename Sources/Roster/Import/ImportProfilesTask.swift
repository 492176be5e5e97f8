import Foundation
import Store

/// Imports profiles from an uploaded CSV, as a background task.
///
/// The cursor is the byte offset of the next row, so a chunk can stop after any row and a resumed task goes on
/// from there. Each row is validated whole before anything is written, and written inside its own savepoint:
/// a bad row is counted as failed and written to the failed-rows CSV with its reason, and never leaves half a
/// profile. Empty cells never overwrite an existing profile's values (a column missing from a file would
/// otherwise wipe data); a new profile gets the fields' defaults for them.
public struct ImportProfilesTask: TaskHandler {
    public static let kind = "import_profiles"
    let imports: ProfileImports

    public init(imports: ProfileImports) { self.imports = imports }

    /// Rows per transaction. Every row touches random pages of the email and profile-id indexes, and each commit
    /// writes those pages again: bigger chunks write far less (about 0.3 s of writer lock each).
    public var preferredChunkSize: Int? { 5000 }
    /// At most this much work per chunk (50 ms), whatever the row count. A write that arrives meanwhile does not wait
    /// for it: the chunk ends early for it (below), so this only sets how often an import alone commits.
    static let chunkBudgetNanoseconds: UInt64 = 50_000_000
    /// Once another write waits for the writer, the chunk ends after this much work (2 ms): the import still moves,
    /// and the waiting page or API call gets the writer after a row or two.
    static let yieldAfterNanoseconds: UInt64 = 2_000_000

    struct Plan {
        let databaseID: Int64
        let taskID: Int64
        let actor: Int64?
        let header: [String]
        let targets: [String]
        let match: ImportMatch
        let updateExisting: Bool
        let subscription: (resource: Int64, channel: Channel, status: String)?
        let detectLocation: Bool
        let catalogue: Profiles.Catalogue
        /// The history details of every profile this import creates (the same text for each).

        init(_ task: TaskRecord, _ db: Connection) throws {
            guard let databaseID = task.databaseID, try db.queryOne(DatabaseStore.byID, [databaseID]) != nil else {
                throw ValidationError(field: "task", "The database no longer exists.")
            }
            self.databaseID = databaseID
            taskID = task.id
            actor = task.createdBy
            header = JSONValue.stringList(task.parameters["header"])
            targets = JSONValue.stringList(task.parameters["targets"])
            match = ImportMatch(text: task.parameters["match"]?.stringValue ?? "") ?? .email
            updateExisting = task.parameters["existing"]?.stringValue != "skip"
            detectLocation = task.parameters["detect_location"] == .bool(true)
            if let resource = task.int64Parameter("resource_id"), let channel = Channel(rawValue: task.parameters["channel"]?.stringValue ?? "") {
                subscription = (resource, channel, task.parameters["subscription_status"]?.stringValue ?? "subscribed")
            } else {
                subscription = nil
            }
            catalogue = try Profiles.catalogue(databaseID, db)
            for target in targets where !target.isEmpty && target != "status" && StandardField.named(target) == nil {
                guard catalogue.custom.contains(where: { $0.name == target }) else {
                    throw ValidationError(field: "task", "The field \(target) was deleted after the import started.")
                }
            }
        }

    }

    func delimiter(_ task: TaskRecord) -> UInt8 { task.parameters["delimiter"]?.stringValue == ";" ? UInt8(ascii: ";") : UInt8(ascii: ",") }
    func uploadPath(_ task: TaskRecord) -> String { imports.uploadPath(task.parameters["upload"]?.stringValue ?? "") }

    /// Counts the rows (for the progress bar) and finds where the first one starts: a pass over the whole file,
    /// before the task's first transaction, so no writer waits on it.
    public func survey(_ task: TaskRecord) throws -> [String: JSONValue] {
        guard ProfileImports.validToken(task.parameters["upload"]?.stringValue ?? "") else { throw ValidationError(field: "task", "No upload to import.") }
        let reader = try CSVReader(path: uploadPath(task), delimiter: delimiter(task))
        _ = reader.next()
        let start = reader.offset
        var total = 0
        while reader.next() != nil { total += 1 }
        return ["start": .int(start), "rows": .int(Int64(total))]
    }

    /// The upload goes only once the last chunk has committed: a crash before that resumes from the file.
    public func finished(_ task: TaskRecord) { unlink(uploadPath(task)) }

    public func prepare(_ task: TaskRecord, _ db: Connection) throws -> (total: Int, parameters: [String: JSONValue]) {
        let plan = try Plan(task, db)
        let start = task.int64Parameter("start") ?? 0
        let total = Int(task.int64Parameter("rows") ?? 0)
        // Matching by phone or by a custom field looks every row up: index what it looks up.
        switch plan.match {
        case .phone: try db.execute(ProfileTable.createFirstPhoneIndex(plan.databaseID, db.dialect))
        case .field(let name):
            if let field = plan.catalogue.custom.first(where: { $0.name == name }) { try db.execute(ProfileTable.createIndex(plan.databaseID, field.id)) }
        case .email: break
        }
        try FileManager.default.createDirectory(atPath: imports.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        FileManager.default.createFile(atPath: imports.failedRowsPath(taskID: task.id), contents: nil, attributes: [.posixPermissions: 0o600])
        return (total, ["start": .int(start)])
    }

    public func runChunk(_ task: TaskRecord, limit: Int, _ db: Connection) throws -> ChunkOutcome {
        let plan = try Plan(task, db)
        let start = task.cursor == 0 ? (task.int64Parameter("start") ?? 0) : task.cursor
        let reader = try CSVReader(path: uploadPath(task), delimiter: delimiter(task), offset: start)
        var outcome = ChunkOutcome(cursor: start)
        var failedText = ""
        if task.outputBytes == 0 {
            failedText = (["row", "reason"] + plan.header).map { ExportProfilesTask.cell($0, neutralize: true) }.joined(separator: ",") + "\r\n"
        }
        let now = Clock.system.now()
        let tally = EventTally()
        // One writer for the chunk: the field rules are built once, not per row.
        var writer = ProfileWriter(db, databaseID: plan.databaseID, catalogue: plan.catalogue, actor: plan.actor, origin: .import,
                                   now: now, skipTriggers: false, taskID: plan.taskID, tally: tally)
        writer.detectLocation = plan.detectLocation
        // A chunk also ends after `chunkBudgetNanoseconds` of work: the writer lock is shared with every page and API call, and
        // rows that each touch random index pages make a 5,000-row chunk hold it for a third of a second.
        // The clock is read after every row (a vDSO call, nanoseconds): checking every 64 rows let a chunk of slow rows
        // run past its budget to 50 ms.
        let started = DispatchTime.now().uptimeNanoseconds
        while outcome.processed < limit {
            if outcome.processed > 0 {
                let spent = DispatchTime.now().uptimeNanoseconds &- started
                if spent > ImportProfilesTask.chunkBudgetNanoseconds
                    || (spent > ImportProfilesTask.yieldAfterNanoseconds && imports.pool.writerHasWaiters) { break }
            }
            guard let record = reader.next() else { outcome.finished = true; break }
            outcome.processed += 1
            outcome.cursor = reader.offset
            // The file's row number as a spreadsheet shows it: the header is row 1.
            let rowNumber = task.processed + outcome.processed + 1
            var cells: [String] = []
            var result: RowResult
            switch record {
            case .malformed(let reason):
                result = .failed(reason)
            case .fields(let fields):
                cells = fields
                if fields.count != plan.header.count {
                    result = .failed("The row has \(fields.count) values; the header has \(plan.header.count) columns.")
                } else {
                    try db.run("SAVEPOINT import_row")
                    do {
                        result = try apply(fields, plan, now: now, db, writer: writer)
                        try db.run("RELEASE import_row")
                        tally.keepRow()
                    } catch let error as ValidationError {
                        try db.run("ROLLBACK TO import_row")
                        try db.run("RELEASE import_row")
                        tally.dropRow()
                        result = .failed(error.fieldErrors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: " "))
                    } catch let error as any StoreFailure where error.isConstraintViolation {
                        try db.run("ROLLBACK TO import_row")
                        try db.run("RELEASE import_row")
                        tally.dropRow()
                        result = .failed("The row conflicts with another profile (\(error.message)).")
                    }
                }
            }
            switch result {
            case .added: outcome.added += 1
            case .updated: outcome.updated += 1
            case .skipped: outcome.skipped += 1
            case .failed(let reason):
                outcome.failed += 1
                failedText += ([String(rowNumber), reason] + cells).map { ExportProfilesTask.cell($0, neutralize: true) }.joined(separator: ",") + "\r\n"
            }
        }
        // The day's event counts for the statistics, once per chunk instead of once per row.
        try tally.flush(db, database: plan.databaseID, at: now)
        outcome.outputBytes = try appendFailed(failedText, task)
        return outcome
    }

    enum RowResult { case added, updated, skipped, failed(String) }

    /// Validates and writes one row. Throws `ValidationError` with every problem of the row.
    func apply(_ fields: [String], _ plan: Plan, now: Int64, _ db: Connection, writer: ProfileWriter) throws -> RowResult {
        var values: [String: String] = [:]
        var statusText: String?
        for (index, target) in plan.targets.enumerated() where !target.isEmpty {
            let cell = fields[index].trimmed
            if cell.isEmpty { continue }
            if target == "status" { statusText = cell } else { values[target] = cell }
        }
        if let statusText, ProfileStatus(text: statusText) == nil {
            throw ValidationError(field: "status", "Status \(statusText) is not one of: \(ProfileStatus.allCases.map(\.name).joined(separator: ", ")).")
        }
        let table = ProfileTable.name(plan.databaseID)
        // Find the existing profile.
        var existing: Row?
        switch plan.match {
        case .email:
            if let email = values["email"] {
                existing = try db.queryOne("SELECT * FROM \(table) WHERE email = ?", [email.lowercased()])
            }
        case .phone:
            if let text = values["phones"], let phones = StandardField.named("phones"), case .success(let box) = phones.parse(text),
               let first = JSONValue.stringList(box.value.string).first {
                existing = try db.queryOne("SELECT * FROM \(table) WHERE \(ProfileTable.firstPhone(db.dialect)) = ?", [first])
            }
        case .field(let name):
            if let text = values[name], let field = plan.catalogue.custom.first(where: { $0.name == name }) {
                switch field.type.parse(text, options: field.options) {
                case .success(let value): existing = try db.queryOne("SELECT * FROM \(table) WHERE \(field.column) = ? LIMIT 1", [value])
                case .failure(let e): throw ValidationError(field: name, "\(name) \(e.reason).")
                }
            }
        }
        let inputs = values.mapValues { FieldValueInput.text($0) }
        let status = statusText.flatMap { ProfileStatus(text: $0) }
        if let existing {
            if !plan.updateExisting { return .skipped }
            let current = ProfileStatus(rawValue: existing.int("status") ?? 0) ?? .subscribed
            // Empty cells never overwrite: a file without a column (a required one too) leaves that field alone.
            let changed = try writer.update(existing, inputs, status: status, empty: .keep)
            try subscribe(writer, existing.int64("id") ?? 0, existing.string("profile_id") ?? "", plan, db)
            return changed.isEmpty && (status == nil || status == current) ? .skipped : .updated
        }
        let (rowID, profileID) = try writer.create(inputs, status: status ?? .subscribed)
        try subscribe(writer, rowID, profileID, plan, db)
        return .added
    }

    /// Adds the import's subscription with the row's email or first phone as the contact.
    func subscribe(_ writer: ProfileWriter, _ rowID: Int64, _ profileID: String, _ plan: Plan, _ db: Connection) throws {
        guard let subscription = plan.subscription else { return }
        let row = try db.queryOne("SELECT email, phones FROM \(ProfileTable.name(plan.databaseID)) WHERE id = ?", [rowID])
        let email = row?.string("email") ?? ""
        let phones = row?.string("phones")
        let contact: String
        switch subscription.channel {
        case .email:
            guard !email.isEmpty, email != ProfileIdentity.placeholderEmail(profileID) else {
                throw ValidationError(field: "email", "The row has no email to subscribe.")
            }
            contact = email
        default:
            guard let phone = JSONValue.stringList(phones).first else {
                throw ValidationError(field: "phones", "The row has no phone to subscribe.")
            }
            contact = phone
        }
        do {
            try writer.subscribe(rowID: rowID, profileID: profileID,
                                 SubscriptionChange(resourceID: subscription.resource, channel: subscription.channel.rawValue, contact: contact,
                                                    status: ProfileStatus(text: subscription.status) ?? .subscribed))
        } catch let refusal as UnsafeStatusRefusal {
            throw ValidationError(field: "subscription", refusal.message)
        } catch let suppressed as SuppressedContact {
            throw ValidationError(field: "subscription", suppressed.message)
        }
    }

    func appendFailed(_ text: String, _ task: TaskRecord) throws -> Int64 {
        try TaskOutputFile.append(text, to: imports.failedRowsPath(taskID: task.id), committedBytes: task.outputBytes)
    }
}
