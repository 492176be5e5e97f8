import Store

/// The SQL of the subscriber's side: the key that signs their links.
public enum SubscriberStore {
    static let secret = NamedQuery("subscriber.secret", "SELECT secret, created_at FROM link_secrets WHERE id = 1")
    /// The first host to need a key makes it; the others read that one.
    static let createSecret = NamedQuery("subscriber.createSecret", """
        INSERT INTO link_secrets (id, secret, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING
        """)
    static let rotateSecret = NamedQuery("subscriber.rotateSecret", """
        UPDATE link_secrets SET secret = ?, created_at = ? WHERE id = 1
        """)

    static var queries: [NamedQuery] { [secret, createSecret, rotateSecret] }
}
