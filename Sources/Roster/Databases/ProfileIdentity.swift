import Secrets

/// Identifiers given to a profile when it is created.
public enum ProfileIdentity {
    /// 96 random bits as 24 hex characters: unique across all databases in practice, never sequential or guessable.
    public static func newProfileID() -> String { Secrets.randomHex(bytes: 12) }

    /// The profile's stable number for ranges, 0…9999: derived from its id, so the same profile always falls
    /// in the same range and new profiles spread evenly.
    public static func rangeBucket(_ profileID: String) -> Int {
        let digest = Secrets.digest(profileID)
        let value = UInt32(digest.prefix(8), radix: 16) ?? 0
        return Int(value % 10_000)
    }

    public static func placeholderEmail(_ profileID: String) -> String { "\(profileID)@localhost" }

    /// The email to show or offer for a profile: "" for none, or for the placeholder a profile without one gets.
    public static func shownEmail(_ stored: String?, profileID: String) -> String {
        guard let stored, stored != placeholderEmail(profileID) else { return "" }
        return stored
    }
}
