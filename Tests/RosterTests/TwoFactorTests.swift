import Foundation
@testable import Roster
import Secrets
import Store
import XCTest

/// Two-factor sign-in, from RFC 6238 and RFC 4648 and the sentences: a code after the password, ten
/// recovery codes that work once, wrong codes throttled like passwords, a requirement per role.
final class TwoFactorTests: XCTestCase {
    /// RFC 6238, appendix B, SHA-1 rows (8 digits there; the 6-digit code is the same number mod 10^6).
    func testCodesMatchTheRFCTestVectors() {
        Secrets.initialize()
        let secret = Array("12345678901234567890".utf8)
        let vectors: [(Int64, String)] = [(59, "287082"), (1_111_111_109, "081804"), (1_111_111_111, "050471"),
                                          (1_234_567_890, "005924"), (2_000_000_000, "279037"), (20_000_000_000, "353130")]
        for (time, code) in vectors {
            XCTAssertEqual(TOTP.code(secret: secret, step: TOTP.step(at: time)), code, "T = \(time)")
        }
    }

    /// RFC 4648, section 10 (without the padding, which authenticator apps do not want).
    func testBase32FollowsRFC4648() {
        let vectors = ["": "", "f": "MY", "fo": "MZXQ", "foo": "MZXW6", "foob": "MZXW6YQ", "fooba": "MZXW6YTB",
                       "foobar": "MZXW6YTBOI"]
        for (text, encoded) in vectors {
            XCTAssertEqual(Secrets.base32(Array(text.utf8)), encoded)
            XCTAssertEqual(Secrets.base32Decode(encoded.lowercased() + "=="), Array(text.utf8))
        }
        XCTAssertNil(Secrets.base32Decode("MZ1W"))
        let uri = TOTP.uri(secret: "MZXW6YTBOI", account: "ann+x@example.com")
        XCTAssertEqual(uri, "otpauth://totp/Roster:ann%2Bx@example.com?secret=MZXW6YTBOI&issuer=Roster&algorithm=SHA1&digits=6&period=30")
    }

    struct World {
        let clock = ManualClock()
        let accounts: Accounts
        let twoFactor: TwoFactor
        let user: User
        init(role: Role = .editor) throws {
            Secrets.initialize()
            let pool = try makePool()
            accounts = Accounts(pool: pool, clock: clock.clock)
            twoFactor = TwoFactor(pool: pool, clock: clock.clock)
            user = try accounts.createUser(email: "ann@example.com", name: "Ann", role: role, password: "ann's long password")
        }
        func code(at offset: Int64 = 0) throws -> String {
            let stored = try XCTUnwrap(try twoFactor.pool.read { try $0.queryOne("SELECT totp_secret FROM users WHERE id = ?", [user.id]) })
            let secret = try XCTUnwrap(Secrets.base32Decode(stored.string("totp_secret") ?? ""))
            return TOTP.code(secret: secret, step: TOTP.step(at: clock.seconds.load(ordering: .relaxed) + offset))
        }
        /// Sets it up the way the page does: a secret, then the app's code for it. Returns the recovery codes.
        func enable() throws -> [String] {
            let secret = try XCTUnwrap(Secrets.base32Decode(try twoFactor.pendingSecret(userID: user.id)))
            let code = TOTP.code(secret: secret, step: TOTP.step(at: clock.seconds.load(ordering: .relaxed)))
            return try twoFactor.confirmSetup(userID: user.id, code: code)
        }
        func challenge(from address: String = "10.0.0.1") throws -> String {
            guard case .secondFactorRequired(let challenge) = try accounts.login(email: user.email, password: "ann's long password",
                                                                                 remoteAddress: address) else {
                XCTFail("the password should open a challenge"); return ""
            }
            return challenge
        }
    }

    func testSetupNeedsTheAppsCodeAndGivesTenRecoveryCodes() throws {
        let w = try World()
        let secret = try w.twoFactor.pendingSecret(userID: w.user.id)
        XCTAssertEqual(Secrets.base32Decode(secret)?.count, 20)
        XCTAssertEqual(try w.twoFactor.pendingSecret(userID: w.user.id), secret, "a reload keeps the same secret")
        XCTAssertThrowsError(try w.twoFactor.confirmSetup(userID: w.user.id, code: "123456")) { error in
            XCTAssertNotNil((error as? ValidationError)?.fieldErrors["code"])
        }
        XCTAssertEqual(try w.accounts.user(id: w.user.id)?.twoFactorEnabled, false, "a wrong code turns nothing on")
        // Until it is on, the password alone signs in.
        guard case .success = try w.accounts.login(email: w.user.email, password: "ann's long password", remoteAddress: "10.0.0.9") else {
            return XCTFail("no second factor yet")
        }
        let codes = try w.enable()
        XCTAssertEqual(codes.count, 10)
        XCTAssertEqual(Set(codes).count, 10)
        for code in codes { XCTAssertNotNil(code.wholeMatch(of: /[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}/), code) }
        XCTAssertEqual(try w.accounts.user(id: w.user.id)?.twoFactorEnabled, true)
        XCTAssertEqual(try w.twoFactor.recoveryCodesLeft(userID: w.user.id), 10)
        // Only digests are stored.
        let stored = try w.twoFactor.pool.read { try $0.query("SELECT code_digest FROM recovery_codes").compactMap { $0.string("code_digest") } }
        XCTAssertEqual(stored.count, 10)
        for code in codes { XCTAssertFalse(stored.contains { $0.contains(code.replacingOccurrences(of: "-", with: "")) }) }
        XCTAssertThrowsError(try w.twoFactor.pendingSecret(userID: w.user.id), "a second app needs turning it off first")
    }

    func testThePasswordAloneNoLongerSignsInAndTheCodeDoesOnce() throws {
        let w = try World()
        _ = try w.enable()
        w.clock.advance(60)
        let challenge = try w.challenge()
        guard case .invalidCredentials = try w.accounts.completeSignIn(challenge: challenge, code: "000000", remoteAddress: "10.0.0.1") else {
            return XCTFail("a wrong code")
        }
        guard case .success(let token, let session) = try w.accounts.completeSignIn(challenge: challenge, code: try w.code(),
                                                                                     remoteAddress: "10.0.0.1") else {
            return XCTFail("the app's code signs in")
        }
        XCTAssertEqual(session.user.id, w.user.id)
        XCTAssertNotNil(try w.accounts.session(token: token))
        // The challenge is spent, and the same code does not sign in again (someone who saw it over a shoulder).
        guard case .challengeExpired = try w.accounts.completeSignIn(challenge: challenge, code: try w.code(), remoteAddress: "10.0.0.1") else {
            return XCTFail("a spent challenge")
        }
        let second = try w.challenge()
        guard case .invalidCredentials = try w.accounts.completeSignIn(challenge: second, code: try w.code(), remoteAddress: "10.0.0.1") else {
            return XCTFail("a code works once")
        }
        // A code one step old (the phone's clock a little behind) still works once its step is new.
        w.clock.advance(60)
        guard case .success = try w.accounts.completeSignIn(challenge: second, code: try w.code(at: -30), remoteAddress: "10.0.0.1") else {
            return XCTFail("one step either side is accepted")
        }
        let third = try w.challenge()
        guard case .invalidCredentials = try w.accounts.completeSignIn(challenge: third, code: try w.code(at: -90), remoteAddress: "10.0.0.1") else {
            return XCTFail("three steps old is too old")
        }
        // A challenge is good for five minutes.
        w.clock.advance(301)
        guard case .challengeExpired = try w.accounts.completeSignIn(challenge: third, code: try w.code(), remoteAddress: "10.0.0.1") else {
            return XCTFail("an old challenge")
        }
        guard case .challengeExpired = try w.accounts.completeSignIn(challenge: "made-up", code: try w.code(), remoteAddress: "10.0.0.1") else {
            return XCTFail("an unknown challenge")
        }
    }

    func testRecoveryCodesWorkOnceInAnyCaseAndSpacing() throws {
        let w = try World()
        let codes = try w.enable()
        let typed = codes[3].uppercased().replacingOccurrences(of: "-", with: " ")
        guard case .success = try w.accounts.completeSignIn(challenge: try w.challenge(), code: typed, remoteAddress: "10.0.0.1") else {
            return XCTFail("a recovery code signs in")
        }
        XCTAssertEqual(try w.twoFactor.recoveryCodesLeft(userID: w.user.id), 9)
        guard case .invalidCredentials = try w.accounts.completeSignIn(challenge: try w.challenge(), code: codes[3], remoteAddress: "10.0.0.1") else {
            return XCTFail("a recovery code works once")
        }
        // New codes need a current code; the old ones stop working.
        XCTAssertThrowsError(try w.twoFactor.regenerateRecoveryCodes(userID: w.user.id, code: "111111"))
        w.clock.advance(30)
        let renewed = try w.twoFactor.regenerateRecoveryCodes(userID: w.user.id, code: try w.code())
        XCTAssertEqual(renewed.count, 10)
        guard case .invalidCredentials = try w.accounts.completeSignIn(challenge: try w.challenge(), code: codes[4], remoteAddress: "10.0.0.1") else {
            return XCTFail("old recovery codes are void")
        }
    }

    /// "Wrong codes are throttled like passwords": five wrong codes from one address back off, and typing the right
    /// password again does not reset the count.
    func testWrongCodesAreThrottledLikePasswords() throws {
        let w = try World()
        _ = try w.enable()
        w.clock.advance(60)
        let challenge = try w.challenge()
        for i in 0..<5 {
            guard case .invalidCredentials = try w.accounts.completeSignIn(challenge: challenge, code: String(format: "%06d", i),
                                                                           remoteAddress: "10.0.0.1") else {
                return XCTFail("wrong code \(i)")
            }
        }
        guard case .challengeExpired = try w.accounts.completeSignIn(challenge: challenge, code: try w.code(), remoteAddress: "10.0.0.1") else {
            return XCTFail("five wrong codes void the pending sign-in, even for the right code")
        }
        guard case .throttled = try w.accounts.login(email: w.user.email, password: "ann's long password", remoteAddress: "10.0.0.1") else {
            return XCTFail("the password does not reset the count of wrong codes")
        }
        // The owner elsewhere is not locked out.
        guard case .success = try w.accounts.completeSignIn(challenge: try w.challenge(from: "10.0.0.2"), code: try w.code(),
                                                            remoteAddress: "10.0.0.2") else {
            return XCTFail("another address signs in")
        }
    }

    func testTheRequirementNamesRolesAndKeepsItOn() throws {
        let w = try World(role: .admin)
        XCTAssertEqual(try w.twoFactor.requirement(), .nobody)
        XCTAssertThrowsError(try w.twoFactor.setRequirement("all")) { error in
            XCTAssertNotNil((error as? ValidationError)?.fieldErrors["two_factor_required"])
        }
        let editor = try w.accounts.createUser(email: "ed@example.com", name: "", role: .editor, password: "ed's long password")
        XCTAssertFalse(try w.twoFactor.mustSetUp(w.user))
        try w.twoFactor.setRequirement("admins")
        XCTAssertTrue(try w.twoFactor.mustSetUp(w.user))
        XCTAssertFalse(try w.twoFactor.mustSetUp(editor))
        try w.twoFactor.setRequirement("everyone")
        XCTAssertTrue(try w.twoFactor.mustSetUp(editor))
        _ = try w.enable()
        let admin = try XCTUnwrap(try w.accounts.user(id: w.user.id))
        XCTAssertFalse(try w.twoFactor.mustSetUp(admin))
        XCTAssertThrowsError(try w.twoFactor.disable(user: admin, password: "ann's long password"), "required for the role")
        try w.twoFactor.setRequirement("nobody")
        XCTAssertThrowsError(try w.twoFactor.disable(user: admin, password: "wrong password!"))
        try w.twoFactor.disable(user: admin, password: "ann's long password")
        XCTAssertEqual(try w.accounts.user(id: w.user.id)?.twoFactorEnabled, false)
        XCTAssertEqual(try w.twoFactor.recoveryCodesLeft(userID: w.user.id), 0)
    }

    func testAnAdminResetsAnotherUsersSecondFactorAndEndsTheirSessions() throws {
        let w = try World()
        _ = try w.enable()
        w.clock.advance(60)
        guard case .success(let token, _) = try w.accounts.completeSignIn(challenge: try w.challenge(), code: try w.code(),
                                                                          remoteAddress: "10.0.0.1") else { return XCTFail("sign-in") }
        let admin = try w.accounts.createUser(email: "boss@example.com", name: "", role: .admin, password: "boss long password")
        XCTAssertThrowsError(try w.twoFactor.reset(userID: admin.id, actingUserID: admin.id))
        try w.twoFactor.reset(userID: w.user.id, actingUserID: admin.id)
        XCTAssertNil(try w.accounts.session(token: token))
        XCTAssertEqual(try w.accounts.user(id: w.user.id)?.twoFactorEnabled, false)
        guard case .success = try w.accounts.login(email: w.user.email, password: "ann's long password", remoteAddress: "10.0.0.1") else {
            return XCTFail("the password alone again")
        }
    }

    /// A guesser who knows the password and spreads over many addresses still gets a handful of codes per window.
    func testWrongCodesFromManyAddressesStopAtTheUsersLimit() throws {
        let w = try World()
        _ = try w.enable()
        w.clock.advance(60)
        for i in 0..<10 {
            let address = "10.1.\(i / 2).1"
            guard case .invalidCredentials = try w.accounts.completeSignIn(challenge: try w.challenge(from: address), code: "00000\(i % 10)",
                                                                           remoteAddress: address) else {
                return XCTFail("wrong code \(i)")
            }
        }
        guard case .throttled(let wait) = try w.accounts.completeSignIn(challenge: try w.challenge(from: "10.9.9.9"), code: try w.code(),
                                                                        remoteAddress: "10.9.9.9") else {
            return XCTFail("the user's limit holds on a new address, even for the right code")
        }
        XCTAssertGreaterThan(wait, 0)
        w.clock.advance(15 * 60 + 1)
        guard case .success = try w.accounts.completeSignIn(challenge: try w.challenge(from: "10.9.9.9"), code: try w.code(),
                                                            remoteAddress: "10.9.9.9") else {
            return XCTFail("after the window the owner signs in")
        }
    }
}
