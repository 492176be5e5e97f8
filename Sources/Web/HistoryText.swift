import Roster

/// History events in words, with names: "Subscribed to News — Email (ann@example.com)", never the stored JSON.
/// Names are looked up now (a renamed resource shows its new name); what the event itself recorded (a segment's name
/// at the time, a code) is used when the thing is gone.
struct HistoryText {
    /// Resource and program names and field labels: the same ones the change log uses.
    let labels: ChangeLabels

    init(app: WebApp) throws {
        labels = try ChangeLabels.read(app.services.pool)
    }

    /// The event type as a heading: "Field changed".
    static func typeLabel(_ type: String) -> String {
        switch type {
        case HistoryEvent.created: return "Created"
        case HistoryEvent.fieldChanged: return "Fields changed"
        case HistoryEvent.statusChanged: return "Global status changed"
        case HistoryEvent.subscriptionAdded: return "Subscription added"
        case HistoryEvent.subscriptionChanged: return "Subscription changed"
        case HistoryEvent.subscriptionDeleted: return "Subscription deleted"
        case HistoryEvent.unsubscribed: return "Unsubscribed"
        case HistoryEvent.promoAttached: return "Promo code attached"
        case HistoryEvent.promoDetached: return "Promo code detached"
        case HistoryEvent.promoActivated: return "Promo code activated"
        case HistoryEvent.segmentEntered: return "Added to a segment"
        case HistoryEvent.segmentLeft: return "Removed from a segment"
        case HistoryEvent.sent: return "Message sent"
        case HistoryEvent.delivered: return "Message delivered"
        case HistoryEvent.opened: return "Message opened"
        case HistoryEvent.clicked: return "Link clicked"
        case HistoryEvent.goal: return "Goal reached"
        default: return type
        }
    }

    /// One sentence for the event, then where the change came from.
    func describe(type: String, details text: String) -> String {
        guard case .object(let d)? = JSONValue.parse(text) else { return "" }
        func string(_ key: String) -> String? { d[key]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
        func int(_ key: String) -> Int64? { if case .int(let i)? = d[key] { return i } else { return nil } }
        func status(_ key: String) -> String? { string(key).map { ProfileStatus(text: $0)?.label ?? ($0 == "deleted" ? "Deleted" : $0) } }
        var target: String? {
            string("channel").map { labels.subscription(resourceID: int("resource"), recordedName: string("resource_name"), channel: $0) }
        }
        var sentence: String
        switch type {
        case HistoryEvent.created:
            sentence = "Profile created"
        case HistoryEvent.fieldChanged:
            let names: [String]
            if case .array(let items)? = d["fields"] { names = items.compactMap { $0.stringValue }.map(labels.field) } else { names = [] }
            sentence = names.isEmpty ? "Fields changed" : "Changed " + names.joined(separator: ", ")
        case HistoryEvent.statusChanged:
            sentence = "Global status: \(status("from") ?? "?") → \(status("to") ?? "?")"
        case HistoryEvent.subscriptionAdded:
            sentence = "Subscribed to \(target ?? "a resource")"
            if let contact = string("contact") { sentence += " (\(contact))" }
            if let s = status("status") { sentence += ", status \(s)" }
        case HistoryEvent.subscriptionChanged, HistoryEvent.unsubscribed:
            if d["restored"] == .bool(true) {
                sentence = "Subscription restored"
            } else {
                sentence = "\(target ?? "Subscription"): \(status("from") ?? "?") → \(status("status") ?? "?")"
                if let contact = string("contact") { sentence += " (\(contact))" }
            }
        case HistoryEvent.subscriptionDeleted:
            sentence = d["replaced_by_limit"] == .bool(true) ? "The oldest subscription was deleted to stay within the limit"
                : "Subscription\(target.map { " to \($0)" } ?? "") deleted (restorable)"
        case HistoryEvent.promoAttached:
            sentence = "Promo code \(string("code") ?? "?") attached"
            if let program = int("program").flatMap(labels.program) { sentence += " from \(program)" }
        case HistoryEvent.promoDetached:
            sentence = "Promo code \(string("code") ?? "?") detached"
        case HistoryEvent.promoActivated:
            sentence = "Promo code \(string("code") ?? "?") activated"
        case HistoryEvent.segmentEntered:
            sentence = "Added to the segment \(string("name") ?? "#\(int("segment") ?? 0)")"
        case HistoryEvent.segmentLeft:
            sentence = "Removed from the segment \(string("name") ?? "#\(int("segment") ?? 0)")"
        default:
            sentence = HistoryText.typeLabel(type)
            if let channel = string("channel") { sentence += " (\(Channel(rawValue: channel)?.label ?? channel))" }
        }
        switch string("how") {
        case "api": sentence += ", through the API"
        case "import": sentence += ", by a file import"
        case "bulk": sentence += ", by a bulk update"
        case "copy": sentence += ", by a copy from another database"
        case "cli": sentence += ", on the command line"
        case "subscriber": sentence += ", by the subscriber in the subscription manager"
        default: break
        }
        if let task = int("task") { sentence += " (task \(task))" }
        return sentence + "."
    }
}
