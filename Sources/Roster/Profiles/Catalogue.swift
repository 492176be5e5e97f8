import Foundation
import Store
import Synchronization

extension Profiles {
    /// A database's fields: its custom fields, the settings of its standard fields, and how to read every column.
    struct Catalogue: Sendable {
        let custom: [CustomField]
        let standard: [String: StandardFieldSetting]
        /// Built once with the catalogue rather than on every read of a profile.
        let columns: [ReadColumn]

        init(custom: [CustomField], standard: [String: StandardFieldSetting]) {
            self.custom = custom
            self.standard = standard
            self.columns = Profiles.readColumns(custom: custom)
        }
    }
}

/// Field catalogues kept in memory, one per database, each checked on use against the database's
/// `catalogue_version` (bumped by triggers on any change to its custom fields or standard-field settings).
///
/// Pages read the catalogue of a database on every request, and loading it is two queries and a few dozen rows;
/// checking the version is one indexed read. Because the version lives in the database, the check is right for any
/// number of processes or hosts sharing it, and for every writer, including ones that bypass the services.
public final class CatalogueCache: Sendable {
    /// Read by every page and API call, written when a catalogue changes: a readers-writer lock, so readers never
    /// queue behind each other (a mutex here cost the profile page about 6% of its CPU in futex hand-offs).
    private let entries = ReadMostly<[Int64: (version: Int64, catalogue: Profiles.Catalogue)]>([:])

    public init() {}

    /// The catalogue as of `db`'s current transaction.
    func catalogue(_ databaseID: Int64, _ db: Connection) throws -> Profiles.Catalogue {
        let version = try db.scalar(DatabaseStore.catalogueVersion, [databaseID]).int64 ?? -1
        if let hit = entries.read({ $0[databaseID] }), hit.version == version { return hit.catalogue }
        let fresh = try Profiles.catalogue(databaseID, db)
        if version >= 0 { entries.write { $0[databaseID] = (version, fresh) } }
        return fresh
    }
}

/// A value behind a pthread readers-writer lock: many readers at once, one writer alone.
final class ReadMostly<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    init(_ value: Value) {
        self.value = value
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func read<T>(_ body: (Value) throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(value)
    }

    func write<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&value)
    }
}
