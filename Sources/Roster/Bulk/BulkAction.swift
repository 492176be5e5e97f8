import Foundation
import Store

/// One field of a field update: set to a value, or delete the value.
public struct FieldChange: Sendable, Equatable {
    /// A standard field key or a custom field name.
    public var field: String
    /// nil: delete the value.
    public var value: String?
    public init(field: String, value: String?) {
        self.field = field
        self.value = value
    }
}

/// The six actions of a bulk update (one per task).
public enum BulkAction: Sendable, Equatable {
    case updateFields([FieldChange])
    /// A subscription to `resourceID`/`channel` with `status`; the contact comes from the profile's fields, or
    /// (when `sourceResourceID` is set) from the profile's subscription in that resource on the same channel.
    case addSubscription(resourceID: Int64, channel: String, status: String, sourceResourceID: Int64?, includeUnsafe: Bool)
    case updateSubscriptionStatus(resourceID: Int64, channel: String, status: String, includeUnsafe: Bool)
    case promoCodes(programID: Int64, attach: Bool)
    case deleteInactive
    case unsubscribe
    /// Puts back what an earlier bulk task changed, where nothing changed it since (see `Undo`).
    case undo(taskID: Int64)

    public var kind: String {
        switch self {
        case .updateFields: return "update_fields"
        case .addSubscription: return "add_subscription"
        case .updateSubscriptionStatus: return "subscription_status"
        case .promoCodes(_, let attach): return attach ? "attach_promo" : "detach_promo"
        case .deleteInactive: return "delete_inactive"
        case .unsubscribe: return "unsubscribe"
        case .undo: return "undo"
        }
    }

    public var label: String {
        switch self {
        case .updateFields: return "Update profile fields"
        case .addSubscription: return "Add a subscription"
        case .updateSubscriptionStatus: return "Change subscription status"
        case .promoCodes(_, let attach): return attach ? "Attach promo codes" : "Detach promo codes"
        case .deleteInactive: return "Delete inactive profiles"
        case .unsubscribe: return "Global unsubscribe"
        case .undo: return "Undo a task"
        }
    }


    public var json: JSONValue {
        var o: [String: JSONValue] = ["action": .string(kind)]
        switch self {
        case .updateFields(let changes):
            o["fields"] = .array(changes.map { c in .object(["field": .string(c.field), "value": c.value.map { .string($0) } ?? .null]) })
        case .addSubscription(let r, let ch, let st, let source, let unsafe):
            o["resource_id"] = .int(r); o["channel"] = .string(ch); o["status"] = .string(st); o["include_unsafe"] = .bool(unsafe)
            if let source { o["source_resource_id"] = .int(source) }
        case .updateSubscriptionStatus(let r, let ch, let st, let unsafe):
            o["resource_id"] = .int(r); o["channel"] = .string(ch); o["status"] = .string(st); o["include_unsafe"] = .bool(unsafe)
        case .promoCodes(let program, _):
            o["program_id"] = .int(program)
        case .undo(let id):
            o["task_id"] = .int(id)
        case .deleteInactive, .unsubscribe: break
        }
        return .object(o)
    }

    public init?(json: JSONValue) {
        guard case .object(let o) = json, let kind = o["action"]?.stringValue else { return nil }
        func int(_ k: String) -> Int64? { if case .int(let i)? = o[k] { return i } else { return nil } }
        func bool(_ k: String) -> Bool { if case .bool(let b)? = o[k] { return b } else { return false } }
        switch kind {
        case "update_fields":
            guard case .array(let items)? = o["fields"] else { return nil }
            self = .updateFields(items.compactMap { item in
                guard case .object(let f) = item, let field = f["field"]?.stringValue else { return nil }
                return FieldChange(field: field, value: f["value"]?.stringValue)
            })
        case "add_subscription":
            guard let r = int("resource_id"), let ch = o["channel"]?.stringValue, let st = o["status"]?.stringValue else { return nil }
            self = .addSubscription(resourceID: r, channel: ch, status: st, sourceResourceID: int("source_resource_id"), includeUnsafe: bool("include_unsafe"))
        case "subscription_status":
            guard let r = int("resource_id"), let ch = o["channel"]?.stringValue, let st = o["status"]?.stringValue else { return nil }
            self = .updateSubscriptionStatus(resourceID: r, channel: ch, status: st, includeUnsafe: bool("include_unsafe"))
        case "attach_promo", "detach_promo":
            guard let p = int("program_id") else { return nil }
            self = .promoCodes(programID: p, attach: kind == "attach_promo")
        case "delete_inactive": self = .deleteInactive
        case "unsubscribe": self = .unsubscribe
        case "undo":
            guard let id = int("task_id") else { return nil }
            self = .undo(taskID: id)
        default: return nil
        }
    }
}

/// A bulk update as launched: where, which profiles, what, and whether triggers fire.
public struct BulkRequest: Sendable {
    public var databaseID: Int64
    public var segmentID: Int64?
    /// The rules, range and limit added in the form (or on the CLI), within the segment's selection if any.
    public var selection: Selection
    public var action: BulkAction
    public var skipTriggers: Bool
    public init(databaseID: Int64, segmentID: Int64? = nil, selection: Selection, action: BulkAction, skipTriggers: Bool = false) {
        self.databaseID = databaseID
        self.segmentID = segmentID
        self.selection = selection
        self.action = action
        self.skipTriggers = skipTriggers
    }

    /// What the update selects (see `ProfileSelection`).
    public var scope: ProfileSelection { ProfileSelection(databaseID: databaseID, segmentID: segmentID, narrowing: selection) }
}

/// Reasons items are skipped, with the words the preview and the task page use.
public enum SkipReason {
    public static let unchanged = "unchanged"
    public static let unsafeStatus = "unsafe_status"
    public static let noContact = "no_contact"
    public static let noSource = "no_source_subscription"
    public static let recentInteraction = "recent_interaction"
    public static let noFreeCode = "no_free_code"
    public static let hasCode = "has_code"
    public static let noSubscription = "no_subscription"
    public static let noCode = "no_code"
    public static let changedSince = "changed_since"
    public static let profileGone = "profile_gone"
    public static let fieldGone = "field_gone"
    public static let profileExists = "profile_exists"
    public static let codeTaken = "code_taken"
    public static let purged = "purged"
    public static let suppressed = "suppressed"
    public static let awaitingConfirmation = "awaiting_confirmation"

    public static func label(_ reason: String) -> String {
        switch reason {
        case unchanged: return "already had these values"
        case unsafeStatus: return "unsafe status (unsubscribed, complainer, hard bounced, invalid)"
        case noContact: return "no contact for the channel in the profile"
        case noSource: return "no subscription in the source resource to take the contact from"
        case recentInteraction: return "interactions since the cut-off date"
        case noFreeCode: return "no free promo code left"
        case hasCode: return "already has a code of this program"
        case noSubscription: return "no subscription in that resource and channel"
        case suppressed: return "the contact is on a suppression list"
        case awaitingConfirmation: return "waiting for the subscriber's confirmation (double opt-in)"
        case noCode: return "no code of this program to detach"
        case changedSince: return "changed since the task: left as they are"
        case profileGone: return "the profile was deleted since"
        case fieldGone: return "the field was deleted since, or can no longer hold the earlier value"
        case profileExists: return "a profile with the same id or email exists now"
        case purged: return "purged from the archive (its period ended) while the undo ran"
        case codeTaken: return "the code changed since, or the profile has another code of the program"
        default: return reason
        }
    }
}
