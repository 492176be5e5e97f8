import Foundation
import Store
import Synchronization

/// What a person types when creating or editing a database.
public struct DatabaseInput: Sendable {
    public var name: String
    public var description: String
    public var tags: String
    public var smTitle: String
    public var smLanguage: String
    /// Subscribers may change the fields shown to them in the subscription manager.
    public var smEditFields: Bool
    public var resourceIDs: [Int64]
    /// The suppression lists attached to the database; nil leaves them as they are.
    public var suppressionListIDs: [Int64]?
    public init(name: String, description: String = "", tags: String = "", smTitle: String = "", smLanguage: String = "en",
                smEditFields: Bool = false, resourceIDs: [Int64] = [], suppressionListIDs: [Int64]? = nil) {
        self.suppressionListIDs = suppressionListIDs
        self.smEditFields = smEditFields
        self.name = name
        self.description = description
        self.tags = tags
        self.smTitle = smTitle
        self.smLanguage = smLanguage
        self.resourceIDs = resourceIDs
    }
}

/// What a person types when adding or editing a custom field.
public struct FieldInput: Sendable {
    public var name: String
    public var type: String
    public var options: String
    public var description: String
    public var defaultValue: String
    public var required: Bool
    public var showInSM: Bool
    public var indexed: Bool
    public init(name: String, type: String, options: String = "", description: String = "", defaultValue: String = "",
                required: Bool = false, showInSM: Bool = false, indexed: Bool = false) {
        self.name = name
        self.type = type
        self.options = options
        self.description = description
        self.defaultValue = defaultValue
        self.required = required
        self.showInSM = showInSM
        self.indexed = indexed
    }
}

public struct DatabaseSummary: Sendable {
    public let database: ProfileDatabase
    public let profileCount: Int
    public let fieldCount: Int
}

/// What deleting a database would remove, and whether it is allowed.
public struct DeletionImpact: Sendable {
    public let profiles: Int
    /// Profiles with at least one customer interaction beyond their creation (sends, opens, subscriptions…).
    public let engagedProfiles: Int
    public let customFields: Int
    public var allowed: Bool { engagedProfiles == 0 }
}

/// Profile databases: their settings, standard-field settings, custom fields and attached resources.
public final class Databases: Sendable {
    let pool: DatabasePool
    let clock: Clock
    private let countCache = ReadMostly<[Int64: (count: Int, expires: Int64)]>([:])
    let catalogues: CatalogueCache

    public init(pool: DatabasePool, clock: Clock = .system, catalogues: CatalogueCache = CatalogueCache()) {
        self.pool = pool
        self.clock = clock
        self.catalogues = catalogues
    }

    public static let languages: [(code: String, label: String)] = [
        ("en", "English"), ("de", "Deutsch"), ("es", "Español"), ("fr", "Français"), ("it", "Italiano"),
        ("pt", "Português"), ("ru", "Русский"), ("tr", "Türkçe"), ("uk", "Українська"), ("zh", "中文"),
    ]

    // MARK: Reading

    /// Every database with its profile count. Counts are kept up to 10 seconds: counting millions of rows for
    /// every view of the list would cost more than the page.
    public func list() throws -> [DatabaseSummary] {
        let now = clock.now()
        return try pool.read { db in
            try db.query(DatabaseStore.all).map(ProfileDatabase.init(row:)).map { database in
                var count = countCache.read { $0[database.id] }.flatMap { $0.expires > now ? $0.count : nil }
                if count == nil {
                    let fresh = try db.scalar(ProfileTable.count(database.id)).int ?? 0
                    countCache.write { $0[database.id] = (fresh, now + 10) }
                    count = fresh
                }
                return DatabaseSummary(database: database, profileCount: count ?? 0,
                                       fieldCount: try db.query(DatabaseStore.fields, [database.id]).count)
            }
        }
    }

    public func get(_ id: Int64) throws -> ProfileDatabase? {
        try pool.read { try $0.queryOne(DatabaseStore.byID, [id]).map(ProfileDatabase.init(row:)) }
    }

    public func fields(of databaseID: Int64) throws -> [CustomField] {
        try pool.read { try catalogues.catalogue(databaseID, $0).custom }
    }

    static func fields(_ databaseID: Int64, _ db: Connection) throws -> [CustomField] {
        try db.query(DatabaseStore.fields, [databaseID]).map(CustomField.init(row:))
    }

    public func field(_ id: Int64) throws -> CustomField? {
        try pool.read { try $0.queryOne(DatabaseStore.fieldByID, [id]).map(CustomField.init(row:)) }
    }

    public func profileCount(_ databaseID: Int64) throws -> Int {
        try pool.read { try $0.scalar(ProfileTable.count(databaseID)).int ?? 0 }
    }

    public func standardSettings(of databaseID: Int64) throws -> [String: StandardFieldSetting] {
        try pool.read { try catalogues.catalogue(databaseID, $0).standard }
    }

    static func standardSettings(_ databaseID: Int64, _ db: Connection) throws -> [String: StandardFieldSetting] {
        var settings: [String: StandardFieldSetting] = [:]
        for row in try db.query(DatabaseStore.standardSettings, [databaseID]) {
            settings[row.string("field_key") ?? ""] = StandardFieldSetting(defaultValue: row.string("default_value"),
                                                                           required: row.bool("required"), showInSM: row.bool("show_in_sm"))
        }
        return settings
    }

    /// Attaches one more resource to a database (from the database's page), keeping the ones it has.
    public func attachResource(_ databaseID: Int64, resourceID: Int64) throws {
        try pool.write { db in
            guard try db.queryOne(DatabaseStore.byID, [databaseID]) != nil else { throw ValidationError(field: "database", "No such database.") }
            guard try db.queryOne(ResourceStore.byID, [resourceID]) != nil else {
                throw ValidationError(field: "resource", "Choose one of the resources.")
            }
            try db.run(DatabaseStore.attach, [databaseID, resourceID])
        }
    }

    public func attachedResources(_ databaseID: Int64) throws -> [Resource] {
        try pool.read { db in try db.query(DatabaseStore.attachedResources, [databaseID]).map { try ResourceStore.load(row: $0, db) } }
    }

    /// Counts for the database's charts: profiles by global status, subscriptions by channel and status,
    /// and history events per month over the last 12 months (from the statistics, which survive deletions).
    public struct Charts: Sendable {
        public let statuses: [(ProfileStatus, Int)]
        public let subscriptions: [(Channel, [(ProfileStatus, Int)])]
        public let months: [(String, Int)]
    }

    public func charts(_ databaseID: Int64, now: Int64) throws -> Charts {
        try pool.read { db in
            let statusRows = try db.prepare("SELECT status, COUNT(*) AS n FROM \(ProfileTable.name(databaseID)) GROUP BY status").query()
            var byStatus: [ProfileStatus: Int] = [:]
            for row in statusRows { if let s = ProfileStatus(rawValue: row.int("status") ?? -1) { byStatus[s] = row.int("n") ?? 0 } }
            let subRows = try db.prepare("SELECT channel, status, COUNT(*) AS n FROM subscriptions_\(databaseID) WHERE deleted = 0 GROUP BY channel, status").query()
            var byChannel: [Channel: [ProfileStatus: Int]] = [:]
            for row in subRows {
                guard let c = Channel(rawValue: row.string("channel") ?? ""), let s = ProfileStatus(rawValue: row.int("status") ?? -1) else { continue }
                byChannel[c, default: [:]][s] = row.int("n") ?? 0
            }
            // The last 12 calendar months, oldest first, including empty ones.
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
            let today = Date(timeIntervalSince1970: TimeInterval(now))
            let months: [String] = (0..<12).reversed().compactMap { back in
                calendar.date(byAdding: .month, value: -back, to: today).map {
                    let c = calendar.dateComponents([.year, .month], from: $0)
                    return String(format: "%04d-%02d", c.year ?? 0, c.month ?? 0)
                }
            }
            var counts: [String: Int] = [:]
            for row in try db.query(History.monthly, [databaseID, months[0] + "-01"]) { counts[row.string("month") ?? ""] = row.int("total") ?? 0 }
            return Charts(statuses: ProfileStatus.allCases.map { ($0, byStatus[$0] ?? 0) },
                          subscriptions: Channel.allCases.compactMap { c in byChannel[c].map { m in (c, ProfileStatus.allCases.map { ($0, m[$0] ?? 0) }) } },
                          months: months.map { ($0, counts[$0] ?? 0) })
        }
    }

    public func deletionImpact(_ databaseID: Int64) throws -> DeletionImpact {
        try pool.read { db in
            DeletionImpact(profiles: try db.scalar(ProfileTable.count(databaseID)).int ?? 0,
                           engagedProfiles: try db.scalar(ProfileTable.engagedCount(databaseID)).int ?? 0,
                           customFields: try db.query(DatabaseStore.fields, [databaseID]).count)
        }
    }

    // MARK: Databases

    struct CleanDatabase {
        var name: String, description: String, tags: [String], smTitle: String, smLanguage: String, smEditFields: Bool
        var resourceIDs: [Int64]
        var suppressionListIDs: [Int64]?
    }

    func validate(_ input: DatabaseInput, existingID: Int64?, _ db: Connection) throws -> CleanDatabase {
        var errors: [String: String] = [:]
        let name = input.name.trimmingCharacters(in: .whitespacesAndNewlines)
        if name.isEmpty { errors["name"] = "Enter a name." }
        else if name.count > 200 { errors["name"] = "A name has at most 200 characters." }
        else if let other = try db.queryOne(DatabaseStore.byName, [name]).map(ProfileDatabase.init(row:)), other.id != existingID {
            errors["name"] = "Another database is already called \(other.name)."
        }
        let description = input.description.trimmingCharacters(in: .whitespacesAndNewlines)
        if description.count > 2000 { errors["description"] = "A description has at most 2,000 characters." }
        let tags = FieldType.splitTags(input.tags)
        if tags.count > 50 { errors["tags"] = "At most 50 tags." }
        if let long = tags.first(where: { $0.count > 100 }) { errors["tags"] = "The tag \(long.prefix(20))… is longer than 100 characters." }
        let smTitle = input.smTitle.trimmingCharacters(in: .whitespacesAndNewlines)
        if smTitle.count > 200 { errors["sm_title"] = "A title has at most 200 characters." }
        if !Databases.languages.contains(where: { $0.code == input.smLanguage }) {
            errors["sm_language"] = "Choose one of the listed languages."
        }
        var resourceIDs: [Int64] = []
        for id in input.resourceIDs where !resourceIDs.contains(id) {
            guard try db.queryOne(ResourceStore.byID, [id]) != nil else {
                errors["resources"] = "Resource \(id) does not exist."
                break
            }
            resourceIDs.append(id)
        }
        var listIDs: [Int64]?
        if let wanted = input.suppressionListIDs {
            listIDs = []
            for id in wanted where !(listIDs ?? []).contains(id) {
                guard try db.queryOne(SuppressionStore.list, [id]) != nil else {
                    errors["suppression_lists"] = "Suppression list \(id) does not exist."
                    break
                }
                listIDs?.append(id)
            }
        }
        if !errors.isEmpty { throw ValidationError(errors) }
        return CleanDatabase(name: name, description: description, tags: tags, smTitle: smTitle, smLanguage: input.smLanguage,
                             smEditFields: input.smEditFields, resourceIDs: resourceIDs, suppressionListIDs: listIDs)
    }

    /// Creates the database and its profile table in one transaction.
    @discardableResult
    public func create(_ input: DatabaseInput) throws -> ProfileDatabase {
        let now = clock.now()
        return try pool.write { db in
            let id = try Databases.insert(try validate(input, existingID: nil, db), now: now, db)
            return ProfileDatabase(row: try readBack(try db.queryOne(DatabaseStore.byID, [id]), "database"))
        }
    }

    /// A validated database's row, its profile table and its resources: every way a database is made (the form,
    /// a structure file) comes here.
    static func insert(_ clean: CleanDatabase, now: Int64, _ db: Connection) throws -> Int64 {
        try db.run(DatabaseStore.insert, [clean.name, clean.description, JSONValue.encodeStrings(clean.tags), clean.smTitle,
                                          clean.smLanguage, clean.smEditFields, now, now])
        let id = try db.lastInsertedID()
        for statement in ProfileTable.createStatements(id, db.dialect) { try db.execute(statement) }
        for resource in clean.resourceIDs { try db.run(DatabaseStore.attach, [id, resource]) }
        try attachSuppressionLists(id, clean, db)
        return id
    }

    static func attachSuppressionLists(_ id: Int64, _ clean: CleanDatabase, _ db: Connection) throws {
        guard let lists = clean.suppressionListIDs else { return }
        try db.run(SuppressionStore.detachDatabase, [id])
        for list in lists { try db.run(SuppressionStore.attach, [list, id]) }
    }

    public func update(_ id: Int64, _ input: DatabaseInput) throws {
        let now = clock.now()
        try pool.write { db in
            guard try db.queryOne(DatabaseStore.byID, [id]) != nil else { throw ValidationError(field: "database", "No such database.") }
            let clean = try validate(input, existingID: id, db)
            try db.run(DatabaseStore.update, [clean.name, clean.description, JSONValue.encodeStrings(clean.tags), clean.smTitle,
                                              clean.smLanguage, clean.smEditFields, now, id])
            try db.run(DatabaseStore.detachAll, [id])
            for resource in clean.resourceIDs { try db.run(DatabaseStore.attach, [id, resource]) }
            try Databases.attachSuppressionLists(id, clean, db)
        }
    }

    /// Deletes a database with all its profiles, unless some profile has had interactions.
    public func delete(_ id: Int64) throws {
        try pool.write { db in
            guard try db.queryOne(DatabaseStore.byID, [id]) != nil else { throw ValidationError(field: "database", "No such database.") }
            let engaged = try db.scalar(ProfileTable.engagedCount(id)).int ?? 0
            if engaged > 0 {
                throw ValidationError(field: "database", "\(engaged) profiles in this database have had interactions (sends, opens, subscriptions…). Delete those profiles first; then the database can be deleted.")
            }
            for statement in ProfileTable.dropStatements(id) { try db.execute(statement) }
            try db.run(History.dropDatabase, [id])
            try db.run(UndoStore.dropDatabase, [id])
            try db.run(DatabaseStore.delete, [id])
        }
    }

    /// A new, empty database with the same custom fields, standard-field settings and resources.
    @discardableResult
    public func createWithSameStructure(from sourceID: Int64, name: String) throws -> ProfileDatabase {
        guard let structure = try structure(of: sourceID) else { throw ValidationError(field: "database", "No such database.") }
        var copy = structure
        copy.name = name
        return try create(from: copy)
    }

    // MARK: Standard fields

    /// Checks standard-field settings without writing: a default must fit its field; email has none.
    static func validateStandard(_ settings: [String: StandardFieldSetting]) throws -> [(String, StandardFieldSetting)] {
        var errors: [String: String] = [:]
        var clean: [(String, StandardFieldSetting)] = []
        for field in StandardField.all {
            var setting = settings[field.key] ?? StandardFieldSetting()
            let typed = setting.defaultValue ?? ""
            if typed.trimmingCharacters(in: .whitespaces).isEmpty {
                setting.defaultValue = nil
            } else if field.kind == .email {
                errors[field.key] = "Email cannot have a default: it is unique per profile."
            } else if case .failure(let e) = field.parse(typed) {
                errors[field.key] = "The default \(e.reason)."
            }
            clean.append((field.key, setting))
        }
        if !errors.isEmpty { throw ValidationError(errors) }
        return clean
    }

    static func writeStandard(_ databaseID: Int64, _ clean: [(String, StandardFieldSetting)], _ db: Connection) throws {
        for (key, s) in clean {
            try db.run(DatabaseStore.upsertStandard, [databaseID, key, s.defaultValue, s.required, s.showInSM])
        }
    }

    public func updateStandardSettings(_ databaseID: Int64, _ settings: [String: StandardFieldSetting]) throws {
        let clean = try Databases.validateStandard(settings)
        try pool.write { db in
            guard try db.queryOne(DatabaseStore.byID, [databaseID]) != nil else { throw ValidationError(field: "database", "No such database.") }
            try Databases.writeStandard(databaseID, clean, db)
        }
    }

    // MARK: Custom fields

    struct CleanField {
        var name: String, type: FieldType, options: [String], description: String, defaultValue: String?
        var required: Bool, showInSM: Bool, indexed: Bool
    }

    static func validateName(_ raw: String) -> String? {
        let name = raw.trimmingCharacters(in: .whitespaces)
        if name.isEmpty { return "Enter a name." }
        if name.utf8.count > 64 { return "A field name has at most 64 characters." }
        guard let first = name.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic else {
            return "A field name starts with a Latin letter."
        }
        guard name.unicodeScalars.allSatisfy({ ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == "-" }) else {
            return "A field name uses only Latin letters, digits, _ and -."
        }
        if StandardField.reservedNames.contains(name.lowercased()) { return "\(name) is the name of a standard field or reserved." }
        return nil
    }

    static func validate(_ input: FieldInput) throws -> CleanField {
        var errors: [String: String] = [:]
        let name = input.name.trimmingCharacters(in: .whitespaces)
        if let problem = validateName(name) { errors["name"] = problem }
        guard let type = FieldType(rawValue: input.type) else {
            errors["type"] = "Choose one of the ten field types."
            throw ValidationError(errors)
        }
        var options: [String] = []
        if type == .enum {
            for option in input.options.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !option.isEmpty {
                if options.contains(option) { errors["options"] = "The option \(option) is listed twice."; break }
                if option.utf8.count > 255 { errors["options"] = "An option has at most 255 bytes."; break }
                options.append(option)
            }
            if options.isEmpty && errors["options"] == nil { errors["options"] = "An enum needs at least one option (separate them with commas)." }
            if options.count > 1000 { errors["options"] = "An enum has at most 1,000 options." }
        }
        let description = input.description.trimmingCharacters(in: .whitespacesAndNewlines)
        if description.count > 1000 { errors["description"] = "A description has at most 1,000 characters." }
        var defaultValue: String?
        if !input.defaultValue.trimmingCharacters(in: .whitespaces).isEmpty {
            switch type.parse(input.defaultValue, options: options) {
            case .success: defaultValue = input.defaultValue
            case .failure(let e): errors["default_value"] = "The default \(e.reason)."
            }
        }
        if !errors.isEmpty { throw ValidationError(errors) }
        return CleanField(name: name, type: type, options: options, description: description, defaultValue: defaultValue,
                          required: input.required, showInSM: input.showInSM, indexed: input.indexed)
    }

    /// Adds a custom field: a row in custom_fields and a column in the profile table, in one transaction.
    @discardableResult
    public func addField(to databaseID: Int64, _ input: FieldInput) throws -> CustomField {
        let clean = try Databases.validate(input)
        let now = clock.now()
        return try pool.write { db in try Databases.insertField(databaseID, clean, now: now, db) }
    }

    static func insertField(_ databaseID: Int64, _ clean: CleanField, now: Int64, _ db: Connection) throws -> CustomField {
        guard try db.queryOne(DatabaseStore.byID, [databaseID]) != nil else { throw ValidationError(field: "database", "No such database.") }
        if let other = try db.queryOne(DatabaseStore.fieldByName, [databaseID, clean.name]).map(CustomField.init(row:)) {
            throw ValidationError(field: "name", "This database already has a field called \(other.name) (names ignore case).")
        }
        try db.run(DatabaseStore.insertField, [databaseID, clean.name, clean.type.rawValue, JSONValue.encodeStrings(clean.options),
                                                    clean.description, clean.defaultValue, clean.required, clean.showInSM, clean.indexed, now])
        let id = try db.lastInsertedID()
        try db.execute(ProfileTable.addColumn(databaseID, id, clean.type, db.dialect))
        if clean.indexed { try db.execute(ProfileTable.createIndex(databaseID, id)) }
        return CustomField(row: try readBack(try db.queryOne(DatabaseStore.fieldByID, [id]), "field"))
    }

    /// A value that would not survive a change of type or options.
    public struct Misfit: Sendable, Equatable {
        public let profileID: String
        public let value: String
        public let reason: String
    }

    /// Edits a field. When the type or the enum's options change, every stored value is converted in the same
    /// transaction, or, if any would not fit, nothing changes and the error gives the count and examples.
    public func updateField(_ fieldID: Int64, _ input: FieldInput) throws {
        let clean = try Databases.validate(input)
        try pool.write { db in
            guard let field = try db.queryOne(DatabaseStore.fieldByID, [fieldID]).map(CustomField.init(row:)) else {
                throw ValidationError(field: "field", "No such field.")
            }
            if let other = try db.queryOne(DatabaseStore.fieldByName, [field.databaseID, clean.name]).map(CustomField.init(row:)), other.id != fieldID {
                throw ValidationError(field: "name", "This database already has a field called \(other.name) (names ignore case).")
            }
            if clean.type != field.type || clean.options != field.options {
                try Databases.convertValues(field, to: clean.type, options: clean.options, db)
            }
            try db.run(DatabaseStore.updateField, [clean.name, clean.type.rawValue, JSONValue.encodeStrings(clean.options), clean.description,
                                                        clean.defaultValue, clean.required, clean.showInSM, clean.indexed, fieldID])
            if clean.indexed != field.indexed {
                try db.execute(clean.indexed ? ProfileTable.createIndex(field.databaseID, fieldID) : ProfileTable.dropIndex(field.databaseID, fieldID))
            }
        }
    }

    /// Rewrites every value of the field for the new type; throws (and writes nothing) if any value would not fit.
    static func convertValues(_ field: CustomField, to type: FieldType, options: [String], _ db: Connection) throws {
        // PostgreSQL's column has the type's own column type: when that changes, the column is emptied and retyped,
        // and every value is written again (SQLite's untyped column keeps what is bound, so only changes are written).
        let retyped = db.kind == .postgres && field.type.columnKind != type.columnKind
        var converted: [(Int64, SQLValue)] = []
        var misfits: [Misfit] = []
        var misfitCount = 0
        try db.prepare(ProfileTable.nonNullValues(field.databaseID, field.id)).forEach { row in
            let old = row["value"]
            let text = field.type.display(old)
            let result: Result<SQLValue, FieldValueError>
            if field.type == .tags && (type == .object || type == .array) {
                result = .failure(FieldValueError("tags cannot become JSON objects"))
            } else if [.object, .array, .tags].contains(field.type), type == .line {
                result = .success(.text(text))
            } else {
                result = type.parse(text, options: options)
            }
            switch result {
            case .success(let value): if value != old || retyped { converted.append((row.int64("id") ?? 0, value)) }
            case .failure(let error):
                misfitCount += 1
                if misfits.count < 5 { misfits.append(Misfit(profileID: row.string("profile_id") ?? "", value: String(text.prefix(60)), reason: error.reason)) }
            }
        }
        if misfitCount > 0 {
            let examples = misfits.map { "“\($0.value)” (\($0.reason))" }.joined(separator: "; ")
            throw ValidationError(field: "type", "\(misfitCount) stored value\(misfitCount == 1 ? "" : "s") would not fit the new type or options, so nothing was changed. For example: \(examples).")
        }
        if retyped {
            try db.execute("ALTER TABLE \(ProfileTable.name(field.databaseID)) ALTER COLUMN c_\(field.id) TYPE "
                           + "\(db.dialect.type(type.columnKind)) USING NULL")
        }
        let update = try db.prepare(ProfileTable.setValue(field.databaseID, field.id))
        for (id, value) in converted { try update.execute([value, id]) }
    }

    /// Deletes a custom field and its column with every value in it.
    public func deleteField(_ fieldID: Int64) throws {
        try pool.write { db in
            guard let field = try db.queryOne(DatabaseStore.fieldByID, [fieldID]).map(CustomField.init(row:)) else {
                throw ValidationError(field: "field", "No such field.")
            }
            try db.execute(ProfileTable.dropIndex(field.databaseID, fieldID))
            try db.execute(ProfileTable.dropColumn(field.databaseID, fieldID))
            try db.run(DatabaseStore.deleteField, [fieldID])
        }
    }

    /// How many profiles hold a value in the field (shown before deleting it).
    public func valueCount(_ field: CustomField) throws -> Int {
        try pool.read { try $0.scalar(ProfileTable.valueCount(field.databaseID, field.id)).int ?? 0 }
    }

    /// Sets (or, with nil, clears) one field on every profile of the database: one set-based statement (an operator's
    /// tool for a newly added field, so it writes no per-profile history). The value is judged by the profile write
    /// path's rules — the same messages, and a required field cannot be cleared.
    @discardableResult
    public func setFieldOnAllProfiles(_ field: CustomField, value: String?) throws -> Int {
        try pool.write { db in
            let stored = try ProfileWriter.judgeOne(field.name, .text(value ?? ""), try Profiles.catalogue(field.databaseID, db)).value
            return try db.run(ProfileTable.setAll(field.databaseID, field.id), [stored])
        }
    }
}
