/// The types of action-history events. Creation counts as an interaction for deletion by inactivity; marketers'
/// edits are an audit trail and do not (see the spec README's decisions).
public enum HistoryEvent {
    public static let created = "created"
    public static let fieldChanged = "field_changed"
    public static let statusChanged = "status_changed"
    public static let subscriptionAdded = "subscription_added"
    public static let subscriptionChanged = "subscription_changed"
    public static let subscriptionDeleted = "subscription_deleted"
    public static let unsubscribed = "unsubscribed"
    public static let promoAttached = "promo_attached"
    public static let promoDetached = "promo_detached"
    public static let promoActivated = "promo_activated"
    public static let segmentEntered = "segment_entered"
    public static let segmentLeft = "segment_left"
    public static let sent = "sent"
    public static let delivered = "delivered"
    public static let opened = "opened"
    public static let clicked = "clicked"
    public static let goal = "goal"
}
