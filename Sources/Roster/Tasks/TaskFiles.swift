import Foundation
import Store

/// The files tasks leave for people to download — profile and history exports, an import's failed rows — and the
/// transient files of requests (uploads being mapped, spooled bodies, their parts, change-log copies).
///
/// They hold personal data, so: only the task's launcher or an admin may download one; they expire `keepDays`
/// after their task ended; they go with their task's database; uploads and exports are refused while the disk has
/// less than `minFreeBytes` free. `sweep` removes whatever has expired or lost its owner; the server runs it at
/// start and every hour.
public final class TaskFiles: Sendable {
    let pool: DatabasePool
    let clock: Clock
    public let exportDirectory: String
    public let uploadDirectory: String
    public let keepDays: Int
    public let minFreeBytes: Int64

    public init(pool: DatabasePool, exportDirectory: String, uploadDirectory: String, clock: Clock = .system, keepDays: Int = 7,
                minFreeBytes: Int64 = 256 << 20) {
        self.pool = pool
        self.clock = clock
        self.exportDirectory = exportDirectory
        self.uploadDirectory = uploadDirectory
        self.keepDays = max(1, keepDays)
        self.minFreeBytes = max(0, minFreeBytes)
    }

    /// The launcher of a task, or an admin.
    public func mayDownload(_ task: TaskRecord, user: User) -> Bool {
        user.role == .admin || task.createdBy == user.id
    }

    /// Whether a finished task's file has expired (and is, or soon will be, deleted).
    public func isExpired(_ task: TaskRecord) -> Bool {
        guard let finished = task.finishedAt else { return false }
        return finished < clock.now() - Int64(keepDays) * 86_400
    }

    /// Refuses work that would write `bytes` more while the disk is nearly full.
    public func requireFreeSpace(for bytes: Int64 = 0, at directory: String? = nil) throws {
        let path = directory ?? uploadDirectory
        let attributes = try? FileManager.default.attributesOfFileSystem(forPath: (path as NSString).deletingLastPathComponent)
        guard let free = (attributes?[.systemFreeSize] as? NSNumber)?.int64Value else { return }
        if free - max(0, bytes) < minFreeBytes {
            throw ValidationError(field: "disk", "The server's disk is nearly full (\(free >> 20) MB free, \(minFreeBytes >> 20) MB are kept "
                                  + "free). Nothing was stored; ask an administrator to free space.")
        }
    }

    /// Removes expired task files, files of tasks or databases that are gone, and request leftovers older than an
    /// hour (no request takes that long without writing). Returns how many files it removed.
    @discardableResult
    public func sweep() -> Int {
        (leftovers() ?? []).filter { unlink($0) == 0 }.count
    }

    /// The files `sweep` would remove (`roster check` lists them), or nil when the task list could not be read.
    /// Uploads of imports that have not finished are kept.
    public func leftovers() -> [String]? {
        // The folders first, the tasks after: a file that appears in between belongs to a task the snapshot sees.
        let listed = [exportDirectory, uploadDirectory].map { directory in
            (directory, (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
        }
        let tasks: [Int64: TaskRecord]
        let databases: Set<Int64>
        do {
            (tasks, databases) = try pool.read { db in
                let all = try db.query(TaskStore.recent, [Int64.max]).map(TaskRecord.init(row:))
                let ids = try db.query(DatabaseStore.all).compactMap { $0.int64("id") }
                return (Dictionary(all.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }), Set(ids))
            }
        } catch {
            return nil
        }
        let activeUploads = Set(tasks.values.filter { !$0.state.isFinished }.compactMap { $0.parameters["upload"]?.stringValue })
        let now = Date()
        var found: [String] = []
        func age(_ path: String) -> TimeInterval {
            let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
            return now.timeIntervalSince(modified ?? now)
        }
        func taskFileIsDead(_ id: Int64?) -> Bool {
            guard let id, let task = tasks[id] else { return true }
            if let database = task.databaseID, !databases.contains(database) { return true }
            return task.state.isFinished && isExpired(task)
        }
        for (directory, names) in listed {
            for name in names {
                let path = (directory as NSString).appendingPathComponent(name)
                var remove = false
                if let id = TaskFiles.taskID(name, prefix: "export-") ?? TaskFiles.taskID(name, prefix: "failed-") {
                    remove = taskFileIsDead(id)
                } else if name.hasPrefix("changes-") || name.hasPrefix("part-") || name.hasPrefix("body-") {
                    remove = age(path) > 3600
                } else if name.hasPrefix("import-") {
                    let token = String(name.dropFirst("import-".count).prefix(32))
                    remove = !activeUploads.contains(token) && age(path) > 86_400
                }
                if remove { found.append(path) }
            }
        }
        return found.sorted()
    }

    /// `export-12.csv` → 12.
    static func taskID(_ name: String, prefix: String) -> Int64? {
        guard name.hasPrefix(prefix), name.hasSuffix(".csv") else { return nil }
        return Int64(name.dropFirst(prefix.count).dropLast(4))
    }
}
