/// What a user may do. Viewers read; editors change data; only admins manage users and delete
/// profiles or databases.
public enum Role: String, Sendable, CaseIterable {
    case admin, editor, viewer

    public var canEdit: Bool { self != .viewer }
    public var canDelete: Bool { self == .admin }
    public var canManageUsers: Bool { self == .admin }
    /// Which suppression lists guard which databases: a list keeps mail from contacts, so admins decide it.
    public var canManageSuppressionLists: Bool { self == .admin }

    public var label: String {
        switch self {
        case .admin: return "Admin"
        case .editor: return "Editor"
        case .viewer: return "Viewer"
        }
    }
}

/// An action the user's role does not allow (pages answer 403).
public struct PermissionError: Error, Sendable {
    public let message: String
    public init(message: String) { self.message = message }
}
