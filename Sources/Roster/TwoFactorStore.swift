import Store

/// The SQL of two-factor sign-in: the user's TOTP columns, recovery codes, pending sign-ins and the requirement.
public enum TwoFactorStore {
    static let secrets = NamedQuery("twoFactor.secrets", "SELECT totp_secret, totp_pending FROM users WHERE id = ?")
    static let setPending = NamedQuery("twoFactor.setPending", "UPDATE users SET totp_pending = ?, updated_at = ? WHERE id = ?")
    static let enable = NamedQuery("twoFactor.enable", """
        UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_enabled_at = ?, totp_last_step = ?,
               updated_at = ?
        WHERE id = ? AND totp_pending = ?
        """)
    static let disable = NamedQuery("twoFactor.disable", """
        UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_enabled_at = NULL, totp_last_step = 0,
               updated_at = ?
        WHERE id = ?
        """)
    /// A step is used once: the update succeeds only for a step later than every one used before.
    static let useStep = NamedQuery("twoFactor.useStep", """
        UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?
        """)
    static let insertCode = NamedQuery("twoFactor.insertCode", "INSERT INTO recovery_codes (user_id, code_digest) VALUES (?, ?)")
    static let deleteCodes = NamedQuery("twoFactor.deleteCodes", "DELETE FROM recovery_codes WHERE user_id = ?")
    static let useCode = NamedQuery("twoFactor.useCode", """
        UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_digest = ? AND used_at IS NULL
        """)
    static let codesLeft = NamedQuery("twoFactor.codesLeft", """
        SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL
        """)
    static let insertChallenge = NamedQuery("twoFactor.insertChallenge", """
        INSERT INTO login_challenges (token_digest, user_id, created_at) VALUES (?, ?, ?)
        """)
    static let challenge = NamedQuery("twoFactor.challenge", """
        SELECT user_id, created_at FROM login_challenges WHERE token_digest = ?
        """)
    static let deleteChallenge = NamedQuery("twoFactor.deleteChallenge", "DELETE FROM login_challenges WHERE token_digest = ?")
    static let pruneChallenges = NamedQuery("twoFactor.pruneChallenges", "DELETE FROM login_challenges WHERE created_at < ?")
    static let requirement = NamedQuery("twoFactor.requirement", "SELECT two_factor_required FROM security_settings WHERE id = 1")
    static let setRequirement = NamedQuery("twoFactor.setRequirement", """
        UPDATE security_settings SET two_factor_required = ?, updated_at = ? WHERE id = 1
        """)

    static var queries: [NamedQuery] {
        [secrets, setPending, enable, disable, useStep, insertCode, deleteCodes, useCode, codesLeft, insertChallenge,
         challenge, deleteChallenge, pruneChallenges, requirement, setRequirement]
    }
}
