import Foundation
import Secrets
import Store
import Synchronization

/// Time-based one-time passwords, RFC 6238 with its defaults (HMAC-SHA-1, 30 s steps, 6 digits): what every
/// authenticator app reads from an `otpauth://` link.
public enum TOTP {
    public static let period: Int64 = 30
    public static let digits = 6
    /// Codes one step either side of now are accepted: a phone's clock a little off, a code typed as it changed.
    static let window: Int64 = 1

    public static func step(at time: Int64) -> Int64 { time >= 0 ? time / period : -1 }

    /// RFC 4226's HOTP of the step, as `digits` decimal digits.
    public static func code(secret: [UInt8], step: Int64) -> String {
        let counter = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(bitPattern: step) >> (56 - 8 * UInt64($0))) }
        let mac = Secrets.hmacSHA1(key: secret, message: counter)
        let offset = Int(mac[19] & 0x0f)
        let binary = (UInt32(mac[offset] & 0x7f) << 24) | (UInt32(mac[offset + 1]) << 16)
            | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        let text = String(binary % 1_000_000)
        return String(repeating: "0", count: digits - text.count) + text
    }

    /// The step within the window whose code this is, or nil.
    static func matchingStep(_ code: String, secret: [UInt8], at time: Int64) -> Int64? {
        let now = step(at: time)
        for candidate in (now - window)...(now + window) where candidate >= 0 {
            if Secrets.constantTimeEquals(TOTP.code(secret: secret, step: candidate), code) { return candidate }
        }
        return nil
    }

    /// The link an authenticator app takes from the QR code.
    public static func uri(secret: String, account: String, issuer: String = "Roster") -> String {
        func escape(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~@"))) ?? ""
        }
        return "otpauth://totp/\(escape(issuer)):\(escape(account))?secret=\(secret)&issuer=\(escape(issuer))"
            + "&algorithm=SHA1&digits=\(digits)&period=\(period)"
    }
}

/// Who must sign in with a second factor (Settings → Security).
public enum TwoFactorRequirement: String, CaseIterable, Sendable {
    case nobody, admins, everyone

    public var label: String {
        switch self {
        case .nobody: return "Nobody (each user chooses)"
        case .admins: return "Admins"
        case .everyone: return "Everyone"
        }
    }

    public func applies(to role: Role) -> Bool {
        switch self {
        case .nobody: return false
        case .admins: return role == .admin
        case .everyone: return true
        }
    }
}

/// Two-factor sign-in for marketers: setting up TOTP, recovery codes, the requirement, and checking a code.
/// The sign-in itself (password, then code, with throttling) is `Accounts.login` and `Accounts.completeSignIn`.
public final class TwoFactor: Sendable {
    let pool: DatabasePool
    let clock: Clock
    /// The requirement is read on every page; a setting changed on another host is seen within this many seconds.
    private let cache = ReadMostly<(TwoFactorRequirement, expires: Int64)?>(nil)
    static let cacheSeconds: Int64 = 5
    public static let recoveryCodeCount = 10

    public init(pool: DatabasePool, clock: Clock = .system) {
        self.pool = pool
        self.clock = clock
    }

    // MARK: The requirement

    public func requirement() throws -> TwoFactorRequirement {
        let now = clock.now()
        if let (value, expires) = cache.read({ $0 }), now < expires { return value }
        let text = try pool.read { try $0.scalar(TwoFactorStore.requirement).string } ?? ""
        let value = TwoFactorRequirement(rawValue: text) ?? .nobody
        cache.write { $0 = (value, now + TwoFactor.cacheSeconds) }
        return value
    }

    public func setRequirement(_ raw: String) throws {
        guard let value = TwoFactorRequirement(rawValue: raw) else {
            throw ValidationError(field: "two_factor_required", "Choose nobody, admins or everyone.")
        }
        try pool.write { try $0.run(TwoFactorStore.setRequirement, [value.rawValue, clock.now()]) }
        cache.write { $0 = nil }
    }

    /// True when this user may do nothing but set up two-factor sign-in.
    public func mustSetUp(_ user: User) throws -> Bool {
        if user.twoFactorEnabled { return false }
        return try requirement().applies(to: user.role)
    }

    // MARK: Setting up

    /// The secret being set up (a new one when there is none yet), as base32 for the app. A user who has it on
    /// already gets nothing new: turning it off comes first.
    public func pendingSecret(userID: Int64) throws -> String {
        try pool.write { db in
            let row = try db.queryOne(TwoFactorStore.secrets, [userID])
            if let pending = row?.string("totp_pending"), !pending.isEmpty { return pending }
            if row?.string("totp_secret") != nil {
                throw ValidationError(field: "code", "Two-factor sign-in is already on; turn it off first to set up another app.")
            }
            let secret = Secrets.base32(Secrets.randomBytes(20))  // 160 bits, RFC 4226's recommended length
            try db.run(TwoFactorStore.setPending, [secret, clock.now(), userID])
            return secret
        }
    }

    /// The secret waiting for its first code, if a setup was started.
    public func waitingSecret(userID: Int64) throws -> String? {
        let pending = try pool.read { try $0.queryOne(TwoFactorStore.secrets, [userID])?.string("totp_pending") }
        return pending?.isEmpty == false ? pending : nil
    }

    /// Turns two-factor sign-in on once the app shows a right code for the pending secret; returns the recovery
    /// codes, shown this once.
    public func confirmSetup(userID: Int64, code rawCode: String) throws -> [String] {
        let code = TwoFactor.digitsOnly(rawCode)
        let now = clock.now()
        return try pool.write { db in
            guard let pending = try db.queryOne(TwoFactorStore.secrets, [userID])?.string("totp_pending"),
                  let secret = Secrets.base32Decode(pending) else {
                throw ValidationError(field: "code", "Start the setup again: there is no secret waiting for a code.")
            }
            guard code.count == TOTP.digits, let step = TOTP.matchingStep(code, secret: secret, at: now) else {
                throw ValidationError(field: "code", "This is not the code the app shows now. Check the phone's clock.")
            }
            guard try db.run(TwoFactorStore.enable, [now, step, now, userID, pending]) == 1 else {
                throw ValidationError(field: "code", "The setup changed meanwhile; start it again.")
            }
            return try TwoFactor.replaceRecoveryCodes(userID: userID, db)
        }
    }

    /// New recovery codes in place of the old ones; needs a current code (or an unused recovery code).
    public func regenerateRecoveryCodes(userID: Int64, code: String) throws -> [String] {
        let now = clock.now()
        return try pool.write { db in
            guard try TwoFactor.consume(code, userID: userID, at: now, db) else {
                throw ValidationError(field: "code", "This code is not right (or was already used).")
            }
            return try TwoFactor.replaceRecoveryCodes(userID: userID, db)
        }
    }

    /// The user turns it off, with their password; refused where the requirement applies to their role.
    public func disable(user: User, password: String) throws {
        guard Secrets.verifyPassword(password, hash: user.passwordHash) else {
            throw ValidationError(field: "password", "The password is not right.")
        }
        if try requirement().applies(to: user.role) {
            throw ValidationError(field: "password", "Two-factor sign-in is required for your role; it stays on.")
        }
        try pool.write { db in
            try db.run(TwoFactorStore.disable, [clock.now(), user.id])
            try db.run(TwoFactorStore.deleteCodes, [user.id])
        }
    }

    /// An admin resets another user's second factor (a lost phone): it is off, and that user's sessions end, so
    /// they sign in again and set it up anew where it is required.
    public func reset(userID: Int64, actingUserID: Int64) throws {
        if userID == actingUserID {
            throw ValidationError(field: "user", "Turn your own two-factor sign-in off on your settings page.")
        }
        try pool.write { db in
            guard try UserStore.find(id: userID, db) != nil else { throw ValidationError(field: "user", "No such user.") }
            try db.run(TwoFactorStore.disable, [clock.now(), userID])
            try db.run(TwoFactorStore.deleteCodes, [userID])
            try db.run(SessionStore.deleteForUser, [userID])
        }
    }

    public func recoveryCodesLeft(userID: Int64) throws -> Int {
        try pool.read { try $0.scalar(TwoFactorStore.codesLeft, [userID]).int ?? 0 }
    }

    // MARK: Checking a code

    /// Uses a code of this user: a TOTP code of a step later than any used before, or an unused recovery code.
    /// False when it is neither; a code that worked never works again.
    static func consume(_ raw: String, userID: Int64, at now: Int64, _ db: Connection) throws -> Bool {
        guard raw.utf8.count <= 64 else { return false }
        let digits = digitsOnly(raw)
        if digits.count == TOTP.digits && digits.count == raw.filter({ !$0.isWhitespace }).count {
            guard let stored = try db.queryOne(TwoFactorStore.secrets, [userID])?.string("totp_secret"),
                  let secret = Secrets.base32Decode(stored),
                  let step = TOTP.matchingStep(digits, secret: secret, at: now) else { return false }
            return try db.run(TwoFactorStore.useStep, [step, userID, step]) == 1
        }
        let code = normalizedRecoveryCode(raw)
        guard code.count == 16 else { return false }
        return try db.run(TwoFactorStore.useCode, [now, userID, recoveryDigest(code, userID: userID)]) == 1
    }

    static func replaceRecoveryCodes(userID: Int64, _ db: Connection) throws -> [String] {
        try db.run(TwoFactorStore.deleteCodes, [userID])
        return try (0..<recoveryCodeCount).map { _ in
            // 80 random bits each: a fast digest is enough to store them (nobody guesses 2^80).
            let code = Secrets.base32(Secrets.randomBytes(10)).lowercased()
            try db.run(TwoFactorStore.insertCode, [userID, recoveryDigest(code, userID: userID)])
            return stride(from: 0, to: 16, by: 4).map { i in
                String(code[code.index(code.startIndex, offsetBy: i)..<code.index(code.startIndex, offsetBy: i + 4)])
            }.joined(separator: "-")
        }
    }

    static func recoveryDigest(_ code: String, userID: Int64) -> String { Secrets.digest("recovery:\(userID):\(code)") }

    static func normalizedRecoveryCode(_ raw: String) -> String {
        String(raw.lowercased().filter { $0 != "-" && !$0.isWhitespace })
    }

    static func digitsOnly(_ raw: String) -> String { String(raw.prefix(64).filter { $0.isASCII && $0.isNumber }) }
}
