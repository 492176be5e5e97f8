import Store

public struct ProfileDatabase: Sendable, Equatable {
    public let id: Int64
    public let name: String
    public let description: String
    public let tags: [String]
    public let smTitle: String
    public let smLanguage: String
    /// Subscribers may change the fields shown to them in the subscription manager.
    public let smEditFields: Bool
    public let createdAt: Int64
    public let updatedAt: Int64

    init(row: Row) {
        id = row.int64("id") ?? 0
        name = row.string("name") ?? ""
        description = row.string("description") ?? ""
        tags = JSONValue.stringList(row.string("tags"))
        smTitle = row.string("sm_title") ?? ""
        smLanguage = row.string("sm_language") ?? "en"
        smEditFields = row.bool("sm_edit_fields")
        createdAt = row.int64("created_at") ?? 0
        updatedAt = row.int64("updated_at") ?? 0
    }
}

public struct CustomField: Sendable, Equatable {
    public let id: Int64
    public let databaseID: Int64
    public let name: String
    public let type: FieldType
    public let options: [String]
    public let description: String
    public let defaultValue: String?
    public let required: Bool
    public let showInSM: Bool
    public let indexed: Bool
    public let createdAt: Int64

    /// The column in profiles_<databaseID>; derived from the id, never from the name a user typed.
    public var column: String { "c_\(id)" }

    init(row: Row) {
        id = row.int64("id") ?? 0
        databaseID = row.int64("database_id") ?? 0
        name = row.string("name") ?? ""
        type = FieldType(rawValue: row.string("type") ?? "") ?? .line
        options = JSONValue.stringList(row.string("options"))
        description = row.string("description") ?? ""
        defaultValue = row.string("default_value")
        required = row.bool("required")
        showInSM = row.bool("show_in_sm")
        indexed = row.bool("indexed")
        createdAt = row.int64("created_at") ?? 0
    }
}

public struct StandardFieldSetting: Sendable, Equatable {
    public var defaultValue: String?
    public var required: Bool
    public var showInSM: Bool
    public init(defaultValue: String? = nil, required: Bool = false, showInSM: Bool = false) {
        self.defaultValue = defaultValue
        self.required = required
        self.showInSM = showInSM
    }
}

extension JSONValue {
    /// A JSON array of strings stored in a TEXT column, read back; anything else reads as empty.
    static func stringList(_ text: String?) -> [String] {
        guard let text, case .array(let items)? = JSONValue.parse(text) else { return [] }
        return items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }

    /// The strings of a JSON array value (task parameters); anything else reads as empty.
    static func stringList(_ value: JSONValue?) -> [String] {
        guard case .array(let items)? = value else { return [] }
        return items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }

    static func encodeStrings(_ list: [String]) -> String {
        JSONValue.array(list.map { .string($0) }).canonical
    }
}
