import Foundation
@testable import Roster
import Secrets
import Store
import Synchronization
import XCTest

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    let seconds = Atomic<Int64>(1_800_000_000)
    var clock: Clock { Clock { [self] in seconds.load(ordering: .relaxed) } }
    func advance(_ by: Int64) { seconds.add(by, ordering: .relaxed) }
}

func makeAccounts(clock: Clock = .system) throws -> Accounts {
    Secrets.initialize()
    return Accounts(pool: try makePool(), clock: clock)
}

final class AccountsTests: XCTestCase {
    func testPasswordsAreStoredAsArgon2idAndVerify() throws {
        let accounts = try makeAccounts()
        let user = try accounts.createUser(email: "a@example.com", name: "", role: .admin, password: "correct horse battery")
        XCTAssertTrue(user.passwordHash.hasPrefix("$argon2id$"), user.passwordHash)
        XCTAssertFalse(user.passwordHash.contains("correct horse"))
        XCTAssertTrue(Secrets.verifyPassword("correct horse battery", hash: user.passwordHash))
        XCTAssertFalse(Secrets.verifyPassword("correct horse batterY", hash: user.passwordHash))
        XCTAssertFalse(Secrets.verifyPassword("x", hash: "garbage"))
    }

    func testCreateUserValidatesEachFieldAndWritesNothingOnError() throws {
        let accounts = try makeAccounts()
        XCTAssertThrowsError(try accounts.createUser(email: "nope", name: String(repeating: "n", count: 201), role: .editor, password: "short")) { error in
            let fields = (error as? ValidationError)?.fieldErrors ?? [:]
            XCTAssertEqual(Set(fields.keys), ["email", "name", "password"])
        }
        for bad in ["", "a@", "@b.c", "a b@c.d", "a@b", "a@.b.c", "a@b.c.", String(repeating: "a", count: 250) + "@b.cd"] {
            XCTAssertThrowsError(try accounts.createUser(email: bad, name: "", role: .viewer, password: "long enough pw"), bad)
        }
        XCTAssertEqual(try accounts.userCount(), 0)
    }

    func testEmailsAreUniqueRegardlessOfCase() throws {
        let accounts = try makeAccounts()
        try accounts.createUser(email: "Ann@Example.com", name: "", role: .admin, password: "long enough pw")
        XCTAssertEqual(try accounts.user(email: "ann@example.com")?.email, "ann@example.com")
        XCTAssertThrowsError(try accounts.createUser(email: "ANN@example.COM", name: "", role: .viewer, password: "long enough pw"))
    }

    func testSessionsExpireWhenIdleAndWhenOld() throws {
        let time = ManualClock()
        let accounts = try makeAccounts(clock: time.clock)
        try accounts.createUser(email: "a@example.com", name: "", role: .viewer, password: "long enough pw")
        guard case .success(let token, _) = try accounts.login(email: "a@example.com", password: "long enough pw", remoteAddress: "1.1.1.1") else {
            return XCTFail("login")
        }
        XCTAssertNotNil(try accounts.session(token: token))
        time.advance(accounts.policy.idleTimeout - 10)
        XCTAssertNotNil(try accounts.session(token: token), "used just in time: the idle timer restarts")
        time.advance(accounts.policy.idleTimeout - 10)
        XCTAssertNotNil(try accounts.session(token: token))
        time.advance(accounts.policy.idleTimeout + 1)
        XCTAssertNil(try accounts.session(token: token), "idle too long")

        guard case .success(let second, _) = try accounts.login(email: "a@example.com", password: "long enough pw", remoteAddress: "1.1.1.1") else {
            return XCTFail("login")
        }
        var elapsed: Int64 = 0
        while elapsed < accounts.policy.absoluteTimeout - 3600 {
            time.advance(3600)
            elapsed += 3600
            XCTAssertNotNil(try accounts.session(token: second))
        }
        time.advance(7200)
        XCTAssertNil(try accounts.session(token: second), "no session outlives the absolute timeout")
    }

    func testUnknownAndOverlongTokensAreNoSession() throws {
        let accounts = try makeAccounts()
        XCTAssertNil(try accounts.session(token: "unknown"))
        XCTAssertNil(try accounts.session(token: ""))
        XCTAssertNil(try accounts.session(token: String(repeating: "x", count: 10_000)))
    }

    func testFailuresBackOffOneAddressButNeverLockTheOwnerOut() throws {
        let time = ManualClock()
        let accounts = try makeAccounts(clock: time.clock)
        try accounts.createUser(email: "a@example.com", name: "", role: .viewer, password: "long enough pw")
        for i in 0..<accounts.policy.maxFailuresPerEmail {
            guard case .invalidCredentials = try accounts.login(email: "a@example.com", password: "bad \(i)", remoteAddress: "10.0.0.1") else {
                return XCTFail("attempt \(i)")
            }
        }
        guard case .throttled(let wait) = try accounts.login(email: "A@example.com", password: "long enough pw", remoteAddress: "10.0.0.1") else {
            return XCTFail("the guessing address backs off, even with the right password")
        }
        XCTAssertEqual(wait, 30)
        guard case .success = try accounts.login(email: "a@example.com", password: "long enough pw", remoteAddress: "10.9.9.9") else {
            return XCTFail("the owner, from another address, is not locked out by someone else's guesses")
        }
        time.advance(31)
        guard case .success = try accounts.login(email: "a@example.com", password: "long enough pw", remoteAddress: "10.0.0.1") else {
            return XCTFail("the back-off passed")
        }
    }

    func testGuessesSpreadOverAddressesAreSlowedNotLocked() throws {
        let time = ManualClock()
        let accounts = try makeAccounts(clock: time.clock)
        try accounts.createUser(email: "a@example.com", name: "", role: .viewer, password: "long enough pw")
        for i in 0..<accounts.policy.accountSlowdownAfter {
            _ = try accounts.login(email: "a@example.com", password: "bad", remoteAddress: "10.1.\(i / 200).\(i % 200)")
        }
        guard case .throttled = try accounts.login(email: "a@example.com", password: "bad", remoteAddress: "10.2.0.1") else {
            return XCTFail("spaced out")
        }
        time.advance(accounts.policy.accountSpacing)
        guard case .success = try accounts.login(email: "a@example.com", password: "long enough pw", remoteAddress: "10.3.0.1") else {
            return XCTFail("the owner gets through after the spacing")
        }
    }

    func testParallelGuessesCannotPassOneCount() throws {
        let accounts = try makeAccounts()
        try accounts.createUser(email: "a@example.com", name: "", role: .viewer, password: "long enough pw")
        let results = Mutex<[LoginResult]>([])
        DispatchQueue.concurrentPerform(iterations: 12) { i in
            let r = (try? accounts.login(email: "a@example.com", password: "bad \(i)", remoteAddress: "10.0.0.7")) ?? .invalidCredentials
            results.withLock { $0.append(r) }
        }
        let checked = results.withLock { $0.filter { if case .invalidCredentials = $0 { return true } else { return false } }.count }
        XCTAssertEqual(checked, accounts.policy.maxFailuresPerEmail, "only 5 guesses reach the password check, however parallel")
    }

    func testThrottlePerAddressCoversManyEmails() throws {
        let accounts = try makeAccounts()
        for i in 0..<accounts.policy.maxFailuresPerAddress {
            _ = try accounts.login(email: "user\(i)@example.com", password: "x", remoteAddress: "192.0.2.1")
        }
        guard case .throttled = try accounts.login(email: "fresh@example.com", password: "x", remoteAddress: "192.0.2.1") else {
            return XCTFail("address throttled")
        }
        guard case .invalidCredentials = try accounts.login(email: "fresh@example.com", password: "x", remoteAddress: "192.0.2.2") else {
            return XCTFail("another address is not")
        }
    }

    func testUnknownUserCostsAboutAsMuchAsAWrongPassword() throws {
        let accounts = try makeAccounts()
        try accounts.createUser(email: "a@example.com", name: "", role: .viewer, password: "long enough pw")
        func time(_ email: String) throws -> Double {
            let start = Date()
            for i in 0..<3 { _ = try accounts.login(email: email, password: "wrong \(i)", remoteAddress: "198.51.100.\(i)") }
            return Date().timeIntervalSince(start)
        }
        let known = try time("a@example.com")
        let unknown = try time("nobody@example.com")
        // Both verify one Argon2id hash per attempt; without the decoy the unknown case would be ~100× faster.
        XCTAssertGreaterThan(unknown, known * 0.5, "unknown \(unknown)s vs known \(known)s")
    }

    func testLastAdminIsProtected() throws {
        let accounts = try makeAccounts()
        let admin = try accounts.createUser(email: "a@example.com", name: "", role: .admin, password: "long enough pw")
        XCTAssertThrowsError(try accounts.setRole(userID: admin.id, role: .viewer))
        let second = try accounts.createUser(email: "b@example.com", name: "", role: .admin, password: "long enough pw")
        XCTAssertNoThrow(try accounts.setRole(userID: admin.id, role: .viewer))
        XCTAssertThrowsError(try accounts.deleteUser(userID: second.id, actingUserID: second.id))
    }

    func testDeletingAUserEndsTheirSessions() throws {
        let accounts = try makeAccounts()
        let admin = try accounts.createUser(email: "a@example.com", name: "", role: .admin, password: "long enough pw")
        let bob = try accounts.createUser(email: "b@example.com", name: "", role: .editor, password: "long enough pw")
        guard case .success(let token, _) = try accounts.login(email: "b@example.com", password: "long enough pw", remoteAddress: "1.1.1.1") else {
            return XCTFail()
        }
        try accounts.deleteUser(userID: bob.id, actingUserID: admin.id)
        XCTAssertNil(try accounts.session(token: token))
    }

    func testRolesGrantWhatTheSpecSays() {
        XCTAssertTrue(Role.admin.canDelete && Role.admin.canEdit && Role.admin.canManageUsers)
        XCTAssertTrue(Role.editor.canEdit)
        XCTAssertFalse(Role.editor.canDelete || Role.editor.canManageUsers)
        XCTAssertFalse(Role.viewer.canEdit || Role.viewer.canDelete || Role.viewer.canManageUsers)
    }

    func testSessionTokensAreStoredOnlyAsDigests() throws {
        let accounts = try makeAccounts()
        try accounts.createUser(email: "a@example.com", name: "", role: .viewer, password: "long enough pw")
        guard case .success(let token, let session) = try accounts.login(email: "a@example.com", password: "long enough pw", remoteAddress: "1.1.1.1") else {
            return XCTFail()
        }
        let stored = try accounts.pool.read { try $0.query("SELECT token_digest FROM sessions").map { $0.string("token_digest") } }
        XCTAssertEqual(stored, [session.tokenDigest])
        XCTAssertNotEqual(stored.first, token)
        XCTAssertEqual(session.tokenDigest, Secrets.digest(token))
    }
}
