import Foundation
import Secrets
import Store

/// An uploaded CSV waiting to be mapped and imported: its header, a few sample rows, its separator.
public struct ImportUpload: Sendable {
    public let token: String
    public let filename: String
    public let delimiter: UInt8
    public let header: [String]
    public let samples: [[String]]
    public let size: Int64

    /// The field each column maps to by default: a standard field key, a custom field name, or "status", matched by
    /// the header text without case, spaces, `_`, `-` or `.` (`First_Name`, `first-name` and `First name` are one),
    /// against each field's key, label and common spellings (`e-mail`, `mobile`, `date_of_birth`…). "" when none.
    public func suggestedTargets(custom: [CustomField]) -> [String] {
        ImportColumns.suggest(header, custom: custom)
    }

    /// The columns `targets` leaves out, by their header text (`(column 3)` for a column without a name).
    public func unmapped(_ targets: [String]) -> [String] {
        header.indices.filter { !targets.indices.contains($0) || targets[$0].isEmpty }.map {
            let name = header[$0].trimmingCharacters(in: .whitespaces)
            return name.isEmpty ? "(column \($0 + 1))" : name
        }
    }
}

/// How a CSV header names the fields it holds.
enum ImportColumns {
    /// Spellings seen in exports of other tools, compacted (see `compact`), per standard field key.
    static let synonyms: [String: [String]] = [
        "_fname": ["firstname", "fname", "first", "givenname", "forename", "name1"],
        "_lname": ["lastname", "lname", "last", "surname", "familyname", "name2"],
        "_mname": ["middlename", "mname", "middle", "patronymic", "secondname"],
        "_sex": ["sex", "gender"],
        "_bdate": ["birthday", "birthdate", "bdate", "dateofbirth", "dob", "birth", "bday"],
        "email": ["email", "emailaddress", "mail", "emailaddr"],
        "phones": ["phone", "phones", "mobile", "mobilephone", "mobilenumber", "phonenumber", "cell", "cellphone", "tel",
                   "telephone", "msisdn", "phonenumbers"],
        "_regdate": ["regdate", "registrationdate", "registered", "signupdate", "registeredat", "signedup"],
        "_regip": ["regip", "registrationip", "signupip"],
        "_regcountry": ["regcountry", "registrationcountry"],
        "_regcity": ["regcity", "registrationcity"],
        "_ip": ["ip", "ipaddress", "lastip"],
        "_country": ["country", "countryname"],
        "_region": ["region", "state", "province"],
        "_city": ["city", "town"],
        "_zip": ["zip", "zipcode", "postcode", "postalcode"],
        "_timezone": ["timezone", "tz"],
    ]

    /// Lower case without spaces, `_`, `-`, `.` or quotes: how two spellings of one name are compared.
    static func compact(_ text: String) -> String {
        String(text.lowercased().unicodeScalars.filter { !" _-.'\"\t".unicodeScalars.contains($0) }.map(Character.init))
    }

    static func suggest(_ header: [String], custom: [CustomField]) -> [String] {
        var byName: [String: String] = ["status": "status", "globalstatus": "status"]
        for field in StandardField.all {
            for name in [field.key, field.label] + (synonyms[field.key] ?? []) { byName[compact(name)] = field.key }
        }
        // A custom field named like a standard spelling wins for its own name: it is what this database calls it.
        for field in custom { byName[compact(field.name)] = field.name }
        var taken = Set<String>()
        return header.map { raw in
            guard let target = byName[compact(raw)], !taken.contains(target) else { return "" }
            taken.insert(target)
            return target
        }
    }
}

/// How an import matches rows to existing profiles.
public enum ImportMatch: Sendable, Equatable {
    case email
    case phone
    case field(String)

    public init?(text: String) {
        switch text {
        case "email": self = .email
        case "phone": self = .phone
        default:
            guard text.hasPrefix("field:"), text.count > 6 else { return nil }
            self = .field(String(text.dropFirst(6)))
        }
    }
    public var text: String {
        switch self {
        case .email: return "email"
        case .phone: return "phone"
        case .field(let name): return "field:" + name
        }
    }
}

/// What the person chose on the mapping form.
public struct ImportSettings: Sendable {
    /// Per column: a standard field key, a custom field name, "status", or "" (not imported).
    public var targets: [String]
    public var match: String = "email"
    /// "update" or "skip" existing profiles.
    public var existing: String = "update"
    public var resourceID: Int64?
    public var channel: String = ""
    public var subscriptionStatus: String = "subscribed"
    /// Fill empty location fields from the file's IP columns (the spec: an option chosen before the import).
    public var detectLocation = false
    public init(targets: [String]) { self.targets = targets }
}

/// Uploads for profile imports, kept in the data folder until their import task finishes.
public final class ProfileImports: Sendable {
    let pool: DatabasePool
    public let directory: String
    let clock: Clock

    public init(pool: DatabasePool, directory: String, clock: Clock = .system) {
        self.pool = pool
        self.directory = directory
        self.clock = clock
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    func uploadPath(_ token: String) -> String { (directory as NSString).appendingPathComponent("import-\(token).csv") }
    public func failedRowsPath(taskID: Int64) -> String { (directory as NSString).appendingPathComponent("failed-\(taskID).csv") }

    static func validToken(_ token: String) -> Bool { token.count == 32 && token.allSatisfy { $0.isHexDigit && !$0.isUppercase } }

    /// Keeps an uploaded file and reads its header; refuses what cannot be a CSV of profiles.
    public func store(_ file: UploadSource) throws -> ImportUpload {
        let token = Secrets.randomHex(bytes: 16)
        let path = uploadPath(token)
        try file.save(path)
        do {
            return try inspect(token: token, filename: file.filename)
        } catch {
            unlink(path)
            throw error
        }
    }

    /// The header and first rows of a stored upload.
    public func inspect(token: String, filename: String) throws -> ImportUpload {
        guard ProfileImports.validToken(token) else { throw ValidationError(field: "file", "No such upload.") }
        let path = uploadPath(token)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw ValidationError(field: "file", "The upload is gone (it was imported, or removed after a day). Upload the file again.")
        }
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        if size == 0 { throw ValidationError(field: "file", "The file is empty.") }
        if CSVReader.looksBinary(path: path) {
            throw ValidationError(field: "file", "This file is not CSV text (it holds binary data). Export it from your spreadsheet as CSV, UTF-8.")
        }
        let delimiter = CSVReader.detectDelimiter(path: path)
        let reader = try CSVReader(path: path, delimiter: delimiter)
        guard let first = reader.next() else { throw ValidationError(field: "file", "The file has no rows.") }
        guard case .fields(let header) = first else {
            if case .malformed(let reason) = first { throw ValidationError(field: "file", "The header row cannot be read: \(reason)") }
            throw ValidationError(field: "file", "The header row cannot be read.")
        }
        let names = header.map { $0.trimmingCharacters(in: .whitespaces) }
        if names.allSatisfy(\.isEmpty) { throw ValidationError(field: "file", "The first row must name the columns; it is empty.") }
        if names.count > 500 { throw ValidationError(field: "file", "The file has \(names.count) columns; at most 500 can be imported.") }
        var samples: [[String]] = []
        while samples.count < 3, let record = reader.next() {
            if case .fields(let f) = record { samples.append(f) }
        }
        return ImportUpload(token: token, filename: filename, delimiter: delimiter, header: names, samples: samples, size: size)
    }

    /// Checks a mapping against the database's catalogue; returns the task's parameters.
    public func parameters(databaseID: Int64, upload: ImportUpload, _ settings: ImportSettings) throws -> [String: JSONValue] {
        let (custom, resource) = try pool.read { db -> ([CustomField], Resource?) in
            let custom = try Databases.fields(databaseID, db)
            var resource: Resource?
            if let id = settings.resourceID {
                guard let row = try db.queryOne(DatabaseStore.attachedResource, [databaseID, id]) else {
                    throw ValidationError(field: "resource", "The resource is not attached to this database.")
                }
                resource = try ResourceStore.load(row: row, db)
            }
            return (custom, resource)
        }
        var errors: [String: String] = [:]
        guard settings.targets.count == upload.header.count else { throw ValidationError(field: "columns", "The mapping does not fit the file's columns.") }
        var seen: [String: Int] = [:]
        for (index, target) in settings.targets.enumerated() where !target.isEmpty {
            let known = target == "status" || StandardField.named(target) != nil || custom.contains { $0.name == target }
            if !known { errors["column_\(index)"] = "\(target) is not a field of this database." }
            if let other = seen[target] { errors["column_\(index)"] = "Columns \(other + 1) and \(index + 1) both go to \(target)." }
            seen[target] = index
        }
        if seen.isEmpty { errors["columns"] = "Choose a field for at least one column." }
        guard let match = ImportMatch(text: settings.match) else { throw ValidationError(field: "match", "Choose how rows find existing profiles.") }
        switch match {
        case .email: if seen["email"] == nil { errors["match"] = "Matching by email needs a column mapped to Email." }
        case .phone: if seen["phones"] == nil { errors["match"] = "Matching by phone needs a column mapped to Phones." }
        case .field(let name):
            guard let field = custom.first(where: { $0.name == name }) else { errors["match"] = "\(name) is not a field of this database."; break }
            if seen[name] == nil { errors["match"] = "Matching by \(name) needs a column mapped to it." }
            if [.tags, .object, .array].contains(field.type) { errors["match"] = "A \(field.type.label) field cannot identify a profile." }
        }
        if settings.existing != "update" && settings.existing != "skip" { errors["existing"] = "Choose update or skip for existing profiles." }
        if let resource {
            if let channel = Channel(rawValue: settings.channel), resource.channels.contains(channel) {
                switch channel {
                case .email: if seen["email"] == nil { errors["channel"] = "Subscribing to email needs a column mapped to Email." }
                case .sms, .whatsapp, .viber: if seen["phones"] == nil { errors["channel"] = "Subscribing to \(channel.label) needs a column mapped to Phones." }
                default: errors["channel"] = "An import can subscribe by email or phone channels only (the file has no push or Telegram ids)."
                }
            } else {
                errors["channel"] = "\(resource.name) has no \(settings.channel.isEmpty ? "such" : settings.channel) channel."
            }
            if ProfileStatus(text: settings.subscriptionStatus) == nil { errors["subscription_status"] = "Choose one of the seven statuses." }
        }
        if !errors.isEmpty { throw ValidationError(errors) }
        var parameters: [String: JSONValue] = [
            "upload": .string(upload.token),
            "filename": .string(upload.filename),
            "delimiter": .string(String(UnicodeScalar(upload.delimiter))),
            "header": .array(upload.header.map { .string($0) }),
            "targets": .array(settings.targets.map { .string($0) }),
            "match": .string(match.text),
            "existing": .string(settings.existing),
            "detect_location": .bool(settings.detectLocation),
        ]
        if let resource {
            parameters["resource_id"] = .int(resource.id)
            parameters["channel"] = .string(settings.channel)
            parameters["subscription_status"] = .string(settings.subscriptionStatus)
        }
        return parameters
    }
}

/// An uploaded file as the import needs it: a name and a way to put its bytes at a path. (The HTTP layer's
/// upload type adapts to this, so the domain does not depend on HTTP.)
public struct UploadSource: Sendable {
    public let filename: String
    public let save: @Sendable (String) throws -> Void
    public init(filename: String, save: @escaping @Sendable (String) throws -> Void) {
        self.filename = filename
        self.save = save
    }
}
