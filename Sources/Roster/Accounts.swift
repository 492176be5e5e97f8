import Foundation
import Secrets
import Store

/// A signed-in user as pages see it.
public struct AuthenticatedSession: Sendable {
    public let user: User
    public let csrfToken: String
    public let tokenDigest: String
}

public enum LoginResult: Sendable {
    /// `token` goes into the cookie; only its digest is stored.
    case success(token: String, session: AuthenticatedSession)
    case invalidCredentials
    case throttled(retryAfterSeconds: Int)
    /// The password was right and the user signs in with a second factor: `challenge` goes into a short-lived
    /// cookie and `completeSignIn` takes the code.
    case secondFactorRequired(challenge: String)
    /// The pending sign-in is unknown or older than `SessionPolicy.challengeLifetime`: start again.
    case challengeExpired
}

public struct SessionPolicy: Sendable {
    /// A session unused for this long is gone.
    public var idleTimeout: Int64 = 12 * 3600
    /// And no session outlives this, used or not.
    public var absoluteTimeout: Int64 = 7 * 24 * 3600
    /// last_seen is written at most this often, so reading pages does not mean writing the database.
    public var touchInterval: Int64 = 60
    public var failureWindow: Int64 = 15 * 60
    /// Failures of one email from one address before it backs off.
    public var maxFailuresPerEmail = 5
    public var maxFailuresPerAddress = 30
    /// Failures of one email from all addresses before its attempts are spaced out.
    public var accountSlowdownAfter = 20
    public var accountSpacing: Int64 = 2
    /// How long the code may be typed after the password.
    public var challengeLifetime: Int64 = 5 * 60
    /// Wrong codes one pending sign-in takes before it is void (the password is asked again).
    public var maxCodeFailuresPerChallenge = 5
    /// Wrong codes of one user from all addresses within the window before codes are refused until it passes: with
    /// the password known, a guesser spread over many addresses gets this many tries per window, not thousands a day.
    public var maxCodeFailuresPerUser = 10
    public init() {}
}

/// Users, passwords, sessions and login throttling.
public final class Accounts: Sendable {
    let pool: DatabasePool
    let clock: Clock
    public let policy: SessionPolicy
    /// Verified against when the email is unknown, so an unknown user costs the same time as a wrong password.
    private let decoyHash: String

    public init(pool: DatabasePool, clock: Clock = .system, policy: SessionPolicy = SessionPolicy()) {
        self.pool = pool
        self.clock = clock
        self.policy = policy
        self.decoyHash = Secrets.hashPassword(Secrets.randomToken())
    }

    public static let minimumPasswordLength = 10
    public static let maximumPasswordLength = 1024

    public static func normalizeEmail(_ email: String) -> String {
        email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    static func validate(email: String) -> String? {
        if email.isEmpty { return "Enter an email address." }
        return EmailAddress.problem(email).map { "This \($0)." }
    }

    static func validate(password: String) -> String? {
        if password.count < minimumPasswordLength { return "A password has at least \(minimumPasswordLength) characters." }
        if password.utf8.count > maximumPasswordLength { return "A password has at most \(maximumPasswordLength) bytes." }
        return nil
    }

    // MARK: Users

    public func userCount() throws -> Int {
        try pool.read { try UserStore.countAll($0) }
    }

    public func listUsers() throws -> [User] {
        try pool.read { try UserStore.list($0) }
    }

    public func user(id: Int64) throws -> User? {
        try pool.read { try UserStore.find(id: id, $0) }
    }

    public func user(email: String) throws -> User? {
        try pool.read { try UserStore.find(email: Accounts.normalizeEmail(email), $0) }
    }

    /// Creates a user; a bad email, password or a taken email is a `ValidationError` and nothing is written.
    @discardableResult
    public func createUser(email rawEmail: String, name: String, role: Role, password: String) throws -> User {
        let email = Accounts.normalizeEmail(rawEmail)
        var errors: [String: String] = [:]
        if let message = Accounts.validate(email: email) { errors["email"] = message }
        if let message = Accounts.validate(password: password) { errors["password"] = message }
        let trimmedName = name.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmedName.count > 200 { errors["name"] = "A name has at most 200 characters." }
        if !errors.isEmpty { throw ValidationError(errors) }
        let hash = Secrets.hashPassword(password)
        let now = clock.now()
        return try pool.write { db in
            if try UserStore.find(email: email, db) != nil {
                throw ValidationError(field: "email", "A user with this email already exists.")
            }
            let id = try UserStore.create(email: email, name: trimmedName, role: role, passwordHash: hash, now: now, db)
            guard let user = try UserStore.find(id: id, db) else { throw ValidationError(field: "email", "The user could not be read back.") }
            return user
        }
    }

    /// Changes a role. The last admin cannot be demoted, so the installation never locks itself out.
    public func setRole(userID: Int64, role: Role) throws {
        let now = clock.now()
        try pool.write { db in
            guard let user = try UserStore.find(id: userID, db) else { throw ValidationError(field: "user", "No such user.") }
            let admins = try UserStore.countAdmins(db)
            if user.role == .admin && role != .admin && admins <= 1 {
                throw ValidationError(field: "role", "This is the only admin; make another user admin first.")
            }
            try UserStore.setRole(id: userID, role: role, now: now, db)
        }
    }

    /// Sets a new password and ends every session of that user (except `keepingSession`, when the user changes their own).
    public func setPassword(userID: Int64, password: String, keepingSession digest: String? = nil) throws {
        if let message = Accounts.validate(password: password) { throw ValidationError(field: "password", message) }
        let hash = Secrets.hashPassword(password)
        let now = clock.now()
        try pool.write { db in
            guard try UserStore.find(id: userID, db) != nil else { throw ValidationError(field: "user", "No such user.") }
            try UserStore.setPasswordHash(id: userID, hash: hash, now: now, db)
            if let digest {
                try db.run(SessionStore.deleteForUserExcept, [userID, digest])
            } else {
                try db.run(SessionStore.deleteForUser, [userID])
            }
        }
    }

    public func changeOwnPassword(session: AuthenticatedSession, current: String, new: String) throws {
        guard Secrets.verifyPassword(current, hash: session.user.passwordHash) else {
            throw ValidationError(field: "current_password", "The current password is not right.")
        }
        try setPassword(userID: session.user.id, password: new, keepingSession: session.tokenDigest)
    }

    public func deleteUser(userID: Int64, actingUserID: Int64) throws {
        if userID == actingUserID { throw ValidationError(field: "user", "You cannot delete your own account.") }
        try pool.write { db in
            guard let user = try UserStore.find(id: userID, db) else { throw ValidationError(field: "user", "No such user.") }
            let admins = try UserStore.countAdmins(db)
            if user.role == .admin && admins <= 1 {
                throw ValidationError(field: "user", "This is the only admin.")
            }
            try UserStore.remove(id: userID, db)  // sessions go with it (ON DELETE CASCADE)
        }
    }

    // MARK: Login and sessions

    /// The throttling buckets of one attempt: the email everywhere, the address, and the email from that address.
    struct ThrottleKeys {
        let email: String, address: String, pair: String
        init(email: String, remoteAddress: String) {
            let address = String(remoteAddress.prefix(64))
            self.email = "email:" + String(email.prefix(320))
            self.address = "ip:" + address
            self.pair = "pair:" + address + "|" + String(email.prefix(320))
        }
        var all: [String] { [email, address, pair] }
    }

    /// Counts the failures behind these keys and, when the attempt may go ahead, records it as a failure (ids
    /// returned, to forget when it succeeds); nil plus the wait when it may not.
    ///
    /// - An address with `maxFailuresPerAddress` failures in the window is refused until the window passes (the
    ///   attacker's own address).
    /// - An email *from one address* with `maxFailuresPerEmail` failures backs off: 30 s, doubling per further
    ///   failure, at most the window. Other addresses are not affected, so nobody can lock an account from outside.
    /// - An email with `accountSlowdownAfter` failures from all addresses together takes one attempt every
    ///   `accountSpacing` seconds: a slowdown for a spread-out guesser, never a lock for the owner.
    ///
    /// Passwords and second-factor codes count in the same buckets, so guessing codes is throttled like passwords.
    private func admit(_ keys: ThrottleKeys, now: Int64, _ db: Connection) throws -> (attempt: [Int64], wait: Int) {
        let since = now - policy.failureWindow
        func count(_ key: String) throws -> Int { try db.scalar(LoginThrottle.countSince, [key, since]).int ?? 0 }
        func last(_ key: String) throws -> Int64 { try db.scalar(LoginThrottle.lastSince, [key, since]).int64 ?? 0 }
        if try count(keys.address) >= policy.maxFailuresPerAddress { return ([], Int(policy.failureWindow)) }
        let pairFailures = try count(keys.pair)
        if pairFailures >= policy.maxFailuresPerEmail {
            let steps = min(pairFailures - policy.maxFailuresPerEmail, 10)
            let wait = min(policy.failureWindow, Int64(30) << steps)
            let until = try last(keys.pair) + wait
            if now < until { return ([], Int(max(1, until - now))) }
        }
        if try count(keys.email) >= policy.accountSlowdownAfter {
            let until = try last(keys.email) + policy.accountSpacing
            if now < until { return ([], Int(max(1, until - now))) }
        }
        var ids: [Int64] = []
        for key in keys.all {
            try db.run(LoginThrottle.insert, [key, now])
            ids.append(try db.lastInsertedID())
        }
        try db.run(LoginThrottle.prune, [now - 24 * 3600])
        return (ids, 0)
    }

    /// Checks the password with throttling (`admit`). The peer address comes from the web server, never
    /// X-Forwarded-For.
    ///
    /// The attempt is recorded as a failure *before* the (slow) password check, in the same transaction as the
    /// counting, and removed when the password is right: parallel guesses cannot all pass one count. For a user
    /// with two-factor sign-in the right password only opens a challenge; the failures of this email from this
    /// address are cleared by the right code, not by the password, so a known password does not reset the count
    /// of wrong codes.
    public func login(email rawEmail: String, password: String, remoteAddress: String) throws -> LoginResult {
        let email = Accounts.normalizeEmail(rawEmail)
        let now = clock.now()
        let keys = ThrottleKeys(email: email, remoteAddress: remoteAddress)
        let (attempt, wait, user) = try pool.write { db in
            let (attempt, wait) = try admit(keys, now: now, db)
            return (attempt, wait, wait > 0 ? nil : try UserStore.find(email: email, db))
        }
        if wait > 0 { return .throttled(retryAfterSeconds: wait) }
        let passwordLengthOK = password.utf8.count <= Accounts.maximumPasswordLength
        let matches = Secrets.verifyPassword(passwordLengthOK ? password : "", hash: user?.passwordHash ?? decoyHash)
        guard let user, matches, passwordLengthOK else { return .invalidCredentials }  // the attempt stays a failure
        if user.twoFactorEnabled {
            let challenge = Secrets.randomToken()
            try pool.write { db in
                for id in attempt { try db.run(LoginThrottle.forget, [id]) }
                try db.run(TwoFactorStore.pruneChallenges, [now - policy.challengeLifetime])
                try db.run(TwoFactorStore.insertChallenge, [Secrets.digest(challenge), user.id, now])
            }
            return .secondFactorRequired(challenge: challenge)
        }
        return try pool.write { db in
            for id in attempt { try db.run(LoginThrottle.forget, [id]) }
            try db.run(LoginThrottle.clear, [keys.pair])
            return try startSession(user, remoteAddress: remoteAddress, now: now, db)
        }
    }

    /// The second step of a sign-in: a TOTP code or a recovery code for the challenge `login` opened. Wrong codes
    /// are failures in the same buckets as wrong passwords; the challenge lasts until it expires or succeeds.
    public func completeSignIn(challenge: String, code: String, remoteAddress: String) throws -> LoginResult {
        guard !challenge.isEmpty, challenge.utf8.count <= 128 else { return .challengeExpired }
        let digest = Secrets.digest(challenge)
        let now = clock.now()
        return try pool.write { db -> LoginResult in
            guard let row = try db.queryOne(TwoFactorStore.challenge, [digest]),
                  let userID = row.int64("user_id"), let createdAt = row.int64("created_at"),
                  now - createdAt <= policy.challengeLifetime,
                  let user = try UserStore.find(id: userID, db), user.twoFactorEnabled else {
                try db.run(TwoFactorStore.deleteChallenge, [digest])
                return .challengeExpired
            }
            let since = now - policy.failureWindow
            let (userKey, challengeKey) = ("code:\(user.id)", "challenge:" + String(digest.prefix(32)))
            if try db.scalar(LoginThrottle.countSince, [challengeKey, since]).int ?? 0 >= policy.maxCodeFailuresPerChallenge {
                try db.run(TwoFactorStore.deleteChallenge, [digest])
                return .challengeExpired
            }
            if try db.scalar(LoginThrottle.countSince, [userKey, since]).int ?? 0 >= policy.maxCodeFailuresPerUser {
                let last = try db.scalar(LoginThrottle.lastSince, [userKey, since]).int64 ?? now
                return .throttled(retryAfterSeconds: Int(max(1, last + policy.failureWindow - now)))
            }
            let keys = ThrottleKeys(email: user.email, remoteAddress: remoteAddress)
            var (attempt, wait) = try admit(keys, now: now, db)
            if wait > 0 { return .throttled(retryAfterSeconds: wait) }
            for key in [userKey, challengeKey] {
                try db.run(LoginThrottle.insert, [key, now])
                attempt.append(try db.lastInsertedID())
            }
            guard try TwoFactor.consume(code, userID: user.id, at: now, db) else { return .invalidCredentials }
            for id in attempt { try db.run(LoginThrottle.forget, [id]) }
            try db.run(LoginThrottle.clear, [keys.pair])
            try db.run(LoginThrottle.clear, [userKey])
            try db.run(TwoFactorStore.deleteChallenge, [digest])
            return try startSession(user, remoteAddress: remoteAddress, now: now, db)
        }
    }

    private func startSession(_ user: User, remoteAddress: String, now: Int64, _ db: Connection) throws -> LoginResult {
        let token = Secrets.randomToken()
        let digest = Secrets.digest(token)
        let csrf = Secrets.randomToken()
        try db.run(SessionStore.insert, [digest, user.id, csrf, now, now, remoteAddress])
        try db.run(SessionStore.deleteExpired, [now - policy.idleTimeout, now - policy.absoluteTimeout])
        return .success(token: token, session: AuthenticatedSession(user: user, csrfToken: csrf, tokenDigest: digest))
    }

    /// The session behind a cookie token, or nil when unknown, idle too long, or too old.
    public func session(token: String) throws -> AuthenticatedSession? {
        guard token.utf8.count <= 128, !token.isEmpty else { return nil }
        let digest = Secrets.digest(token)
        let now = clock.now()
        let found = try pool.read { try SessionStore.findWithUser(digest: digest, $0) }
        guard let (record, user) = found else { return nil }
        if now - record.lastSeenAt > policy.idleTimeout || now - record.createdAt > policy.absoluteTimeout {
            try pool.write { try $0.run(SessionStore.delete, [digest]) }
            return nil
        }
        if now - record.lastSeenAt >= policy.touchInterval {
            // Skipped when a background task holds the writer: a later request records it.
            try pool.writeIfFree { try $0.run(SessionStore.touch, [now, digest]) }
        }
        return AuthenticatedSession(user: user, csrfToken: record.csrfToken, tokenDigest: digest)
    }

    public func logout(token: String) throws {
        let digest = Secrets.digest(token)
        try pool.write { try $0.run(SessionStore.delete, [digest]) }
    }
}
