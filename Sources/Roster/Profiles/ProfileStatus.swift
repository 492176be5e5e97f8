/// A profile's global status, stored as its code.
public enum ProfileStatus: Int, Sendable, CaseIterable {
    case subscribed = 0, unsubscribed = 1, complainer = 2, hardBounced = 3, unconfirmed = 4, suspended = 5, invalid = 6

    public var name: String {
        switch self {
        case .subscribed: return "subscribed"
        case .unsubscribed: return "unsubscribed"
        case .complainer: return "complainer"
        case .hardBounced: return "hard_bounced"
        case .unconfirmed: return "unconfirmed"
        case .suspended: return "suspended"
        case .invalid: return "invalid"
        }
    }

    public var label: String {
        switch self {
        case .subscribed: return "Subscribed"
        case .unsubscribed: return "Unsubscribed"
        case .complainer: return "Complainer"
        case .hardBounced: return "Hard bounced"
        case .unconfirmed: return "Unconfirmed"
        case .suspended: return "Suspended"
        case .invalid: return "Invalid"
        }
    }

    /// A status given by name (`hard_bounced`) or code (`3`).
    public init?(text: String) {
        if let code = Int(text), let s = ProfileStatus(rawValue: code) { self = s; return }
        guard let s = ProfileStatus.allCases.first(where: { $0.name == text.lowercased() }) else { return nil }
        self = s
    }
}
