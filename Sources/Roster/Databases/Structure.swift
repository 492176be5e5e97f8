import Foundation
import Store

/// A database's structure as a JSON file: settings, standard-field settings, custom fields and resources.
/// Documented in docs/structure-file.md.
public struct DatabaseStructure: Codable, Sendable, Equatable {
    public static let formatName = "roster-database-structure/1"

    public struct StandardSetting: Codable, Sendable, Equatable {
        public var `default`: String?
        public var required: Bool?
        public var show_in_sm: Bool?
    }

    public struct Field: Codable, Sendable, Equatable {
        public var name: String
        public var type: String
        public var options: [String]?
        public var description: String?
        public var `default`: String?
        public var required: Bool?
        public var show_in_sm: Bool?
        public var indexed: Bool?
    }

    public struct ResourceSpec: Codable, Sendable, Equatable {
        public var name: String
        public var description: String?
        public var channels: [String]
        public var categories: [String]?
        public var subscription_fields: [String: String]?
        public var increase_priority: Bool?
        public var double_opt_in: Bool?
    }

    public var format: String
    public var name: String
    public var description: String?
    public var tags: [String]?
    public var sm_title: String?
    public var sm_language: String?
    /// Subscribers may change the fields shown to them (absent: no).
    public var sm_edit_fields: Bool?
    public var standard_fields: [String: StandardSetting]?
    public var custom_fields: [Field]
    public var resources: [ResourceSpec]?

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Parses a structure file; every problem names where it is.
    public static func parse(_ text: String) throws -> DatabaseStructure {
        guard text.utf8.count <= 4 << 20 else { throw ValidationError(field: "structure", "The file is larger than 4 MB.") }
        let structure: DatabaseStructure
        do {
            structure = try JSONDecoder().decode(DatabaseStructure.self, from: Data(text.utf8))
        } catch let DecodingError.keyNotFound(key, context) {
            throw ValidationError(field: "structure", "Missing \"\(key.stringValue)\" at \(path(context.codingPath)).")
        } catch let DecodingError.typeMismatch(_, context) {
            throw ValidationError(field: "structure", "Wrong type at \(path(context.codingPath)): \(context.debugDescription)")
        } catch {
            throw ValidationError(field: "structure", "This is not a structure file (invalid JSON).")
        }
        guard structure.format == formatName else {
            throw ValidationError(field: "structure", "Unknown format \"\(structure.format)\"; expected \"\(formatName)\".")
        }
        return structure
    }

    static func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty ? "the top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}

extension Databases {
    public func structure(of id: Int64) throws -> DatabaseStructure? {
        try pool.read { db in
            guard let database = try db.queryOne(DatabaseStore.byID, [id]).map(ProfileDatabase.init(row:)) else { return nil }
            let settings = try Databases.standardSettings(id, db)
            let resources = try db.query(DatabaseStore.attachedResources, [id]).map { try ResourceStore.load(row: $0, db) }
            return DatabaseStructure(
                format: DatabaseStructure.formatName, name: database.name, description: database.description, tags: database.tags,
                sm_title: database.smTitle, sm_language: database.smLanguage, sm_edit_fields: database.smEditFields,
                standard_fields: settings.mapValues { .init(default: $0.defaultValue, required: $0.required, show_in_sm: $0.showInSM) },
                custom_fields: try Databases.fields(id, db).map {
                    .init(name: $0.name, type: $0.type.rawValue, options: $0.type == .enum ? $0.options : nil, description: $0.description,
                          default: $0.defaultValue, required: $0.required, show_in_sm: $0.showInSM, indexed: $0.indexed)
                },
                resources: resources.map {
                    .init(name: $0.name, description: $0.description, channels: $0.channels.map(\.rawValue), categories: $0.categories,
                          subscription_fields: Dictionary(uniqueKeysWithValues: $0.fields.map { ($0.name, $0.type.rawValue) }),
                          increase_priority: $0.increasePriority, double_opt_in: $0.doubleOptIn)
                })
        }
    }

    /// Creates a database from a structure: everything is validated first and written in one transaction,
    /// so nothing is half-created. Resources are matched by name; missing ones are created.
    @discardableResult
    public func create(from structure: DatabaseStructure) throws -> ProfileDatabase {
        var errors: [String: String] = [:]
        var cleanFields: [CleanField] = []
        for (index, field) in structure.custom_fields.enumerated() {
            do {
                let clean = try Databases.validate(FieldInput(
                    name: field.name, type: field.type, options: (field.options ?? []).joined(separator: ","), description: field.description ?? "",
                    defaultValue: field.default ?? "", required: field.required ?? false, showInSM: field.show_in_sm ?? false, indexed: field.indexed ?? false))
                if cleanFields.contains(where: { $0.name.lowercased() == clean.name.lowercased() }) {
                    errors["custom_fields[\(index)]"] = "\(field.name): the name is used twice."
                }
                cleanFields.append(clean)
            } catch let error as ValidationError {
                errors["custom_fields[\(index)]"] = "\(field.name): " + error.description
            }
        }
        var standard: [String: StandardFieldSetting] = [:]
        for (key, setting) in structure.standard_fields ?? [:] {
            guard StandardField.named(key) != nil else { errors["standard_fields.\(key)"] = "\(key) is not a standard field."; continue }
            standard[key] = StandardFieldSetting(defaultValue: setting.default, required: setting.required ?? false, showInSM: setting.show_in_sm ?? false)
        }
        if !errors.isEmpty { throw ValidationError(errors) }
        let cleanStandard = try Databases.validateStandard(standard)
        let resources = Resources(pool: pool, clock: clock)
        let now = clock.now()
        let id: Int64 = try pool.write { db in
            var resourceIDs: [Int64] = []
            for spec in structure.resources ?? [] {
                if let row = try db.queryOne(ResourceStore.byName, [spec.name]) {
                    resourceIDs.append(row.int64("id") ?? 0)
                    continue
                }
                let input = ResourceInput(name: spec.name, description: spec.description ?? "", channels: spec.channels,
                                          categories: (spec.categories ?? []).joined(separator: "\n"),
                                          fields: (spec.subscription_fields ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: "\n"),
                                          increasePriority: spec.increase_priority ?? false, doubleOptIn: spec.double_opt_in ?? false)
                let clean: Resources.Clean
                do { clean = try resources.validate(input, existingID: nil, db) } catch let error as ValidationError {
                    throw ValidationError(field: "resources", "\(spec.name): \(error.description)")
                }
                resourceIDs.append(try resources.insert(clean, now: now, db))
            }
            let clean = try validate(DatabaseInput(name: structure.name, description: structure.description ?? "",
                                                   tags: (structure.tags ?? []).joined(separator: ","), smTitle: structure.sm_title ?? "",
                                                   smLanguage: structure.sm_language ?? "en", smEditFields: structure.sm_edit_fields ?? false,
                                                   resourceIDs: resourceIDs), existingID: nil, db)
            let id = try Databases.insert(clean, now: now, db)
            for field in cleanFields { _ = try Databases.insertField(id, field, now: now, db) }
            try Databases.writeStandard(id, cleanStandard, db)
            return id
        }
        return try readBack(try get(id), "database")
    }
}
