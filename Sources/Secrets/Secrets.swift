#if canImport(Glibc)
import Glibc
#endif
import COpenSSL
import CSodium
import CXXHash

/// Password hashing, secure random and token digests, all from libsodium. Nothing here is hand-rolled.
public enum Secrets {
    /// Argon2id cost: 2 passes over 19 MiB, the OWASP baseline. Kept below libsodium's "interactive"
    /// 64 MiB so concurrent logins do not push the app past its memory budget.
    public static let passwordOpsLimit: UInt64 = 2
    public static let passwordMemLimit: Int = 19 * 1024 * 1024

    private static let initialized: Bool = sodium_init() >= 0

    /// Must be called once before anything else; returns false if libsodium could not start.
    @discardableResult
    public static func initialize() -> Bool { initialized }

    public static func randomBytes(_ count: Int) -> [UInt8] {
        precondition(initialized)
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            randombytes_buf(base, count)
        }
        return bytes
    }

    /// A random token of 32 bytes as URL-safe base64 without padding (43 characters).
    public static func randomToken(bytes: Int = 32) -> String {
        base64URL(randomBytes(bytes))
    }

    public static func randomHex(bytes: Int) -> String {
        hex(randomBytes(bytes))
    }

    /// A uniformly random integer in 0..<upperBound.
    public static func randomUniform(_ upperBound: UInt32) -> UInt32 {
        precondition(initialized)
        return randombytes_uniform(upperBound)
    }

    /// Argon2id hash in libsodium's self-describing string form (`$argon2id$v=19$m=…`).
    public static func hashPassword(_ password: String) -> String {
        precondition(initialized)
        var out = [CChar](repeating: 0, count: crypto_pwhash_strbytes())
        let length = UInt64(password.utf8.count)
        let rc = password.withCString { pw in
            crypto_pwhash_str_alg(&out, pw, length, passwordOpsLimit, passwordMemLimit, crypto_pwhash_alg_argon2id13())
        }
        precondition(rc == 0, "out of memory while hashing a password")
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// True when the password matches the stored hash. Takes the hash's full cost whatever the outcome.
    public static func verifyPassword(_ password: String, hash: String) -> Bool {
        precondition(initialized)
        var stored = Array(hash.utf8CString)
        if stored.count > crypto_pwhash_strbytes() { return false }
        stored += [CChar](repeating: 0, count: crypto_pwhash_strbytes() - stored.count)
        let length = UInt64(password.utf8.count)
        return password.withCString { pw in crypto_pwhash_str_verify(stored, pw, length) == 0 }
    }

    /// A keyed-free BLAKE2b-256 digest, hex encoded: how session and API tokens are stored,
    /// so a copy of the database does not hand out live sessions.
    public static func digest(_ text: String) -> String {
        precondition(initialized)
        var out = [UInt8](repeating: 0, count: 32)
        let bytes = Array(text.utf8)
        _ = crypto_generichash(&out, 32, bytes, UInt64(bytes.count), nil, 0)
        return hex(out)
    }

    /// SHA-256 of a file's bytes, hex, read 1 MB at a time: how a backup's manifest pins the file it describes.
    /// Nil when the file cannot be read.
    public static func sha256Hex(fileAt path: String) -> String? {
        precondition(initialized)
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var state = crypto_hash_sha256_state()
        crypto_hash_sha256_init(&state)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { return nil }
            if n == 0 { break }
            crypto_hash_sha256_update(&state, buffer, UInt64(n))
        }
        var out = [UInt8](repeating: 0, count: 32)
        crypto_hash_sha256_final(&state, &out)
        return hex(out)
    }

    /// Compares two strings in time that depends only on their length.
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        if x.isEmpty { return true }
        return sodium_memcmp(x, y, x.count) == 0
    }

    /// MD5 of the text, hex: an identifier format some integrations expect (not used for security).
    public static func md5Hex(_ text: String) -> String {
        var out = [UInt8](repeating: 0, count: 16)
        var text = text
        _ = text.withUTF8 { roster_md5(md5Implementation, $0.baseAddress, $0.count, &out) }
        return hex(out)
    }

    /// Fetched once (every profile page shows an MD5): nil leaves the shim to its per-call lookup. Never changed
    /// after the fetch, and OpenSSL lets any number of threads digest with one EVP_MD at once.
    nonisolated(unsafe) private static let md5Implementation: OpaquePointer? = EVP_MD_fetch(nil, "MD5", nil)

    /// XXH64 (seed 0) of the text, as 16 hex digits.
    public static func xxh64Hex(_ text: String) -> String {
        let bytes = Array(text.utf8)
        return hex(bytes.withUnsafeBytes { XXH64($0.baseAddress, $0.count, 0) })
    }

    /// HMAC-SHA-256 of `message` under `key` (libsodium), hex: webhook receivers check it to know a batch is ours.
    public static func hmacSHA256Hex(key: String, message: [UInt8]) -> String {
        precondition(initialized)
        var mac = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        var state = crypto_auth_hmacsha256_state()
        let keyBytes = Array(key.utf8)
        _ = crypto_auth_hmacsha256_init(&state, keyBytes, keyBytes.count)
        _ = crypto_auth_hmacsha256_update(&state, message, UInt64(message.count))
        _ = crypto_auth_hmacsha256_final(&state, &mac)
        return hex(mac)
    }

    /// HMAC-SHA-1 (OpenSSL): the function RFC 6238 builds one-time codes on. Not for anything new.
    public static func hmacSHA1(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 20)
        let ok = key.withUnsafeBytes { k in roster_hmac_sha1(k.baseAddress, Int32(key.count), message, message.count, &out) }
        precondition(ok == 1, "HMAC-SHA-1 failed")
        return out
    }

    private static let base32Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// RFC 4648 base32 without padding: how authenticator apps take a shared secret.
    public static func base32(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        var buffer: UInt32 = 0, bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(base32Alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(base32Alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of an RFC 4648 base32 text (case, spaces and padding ignored), or nil when it is not base32.
    public static func base32Decode(_ text: String) -> [UInt8]? {
        var out = [UInt8]()
        var buffer: UInt32 = 0, bits = 0
        for char in text.uppercased().utf8 where char != UInt8(ascii: " ") && char != UInt8(ascii: "=") {
            guard let value = base32Alphabet.firstIndex(of: char) else { return nil }
            buffer = (buffer << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                out.append(UInt8((buffer >> UInt32(bits - 8)) & 255))
                bits -= 8
            }
        }
        return out
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        // Written straight into the string's storage: one allocation (none up to 15 characters), where an array of
        // digits and one of output took three. Every request id, session digest and profile hash passes here.
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            for (i, b) in bytes.enumerated() {
                out[2 * i] = hexDigit(b >> 4)
                out[2 * i + 1] = hexDigit(b & 15)
            }
            return bytes.count * 2
        }
    }

    /// The value as 16 hex digits, most significant first.
    public static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { out in
            for i in 0..<16 { out[i] = hexDigit(UInt8(truncatingIfNeeded: value >> (60 - 4 * UInt64(i))) & 15) }
            return 16
        }
    }

    @inline(__always) private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? 0x30 + nibble : 0x57 + nibble  // "0"..."9", then "a"..."f" (0x57 + 10 = 0x61)
    }

    /// The bytes of URL-safe base64 without padding, or nil when the text is not that.
    public static func base64URLDecode(_ text: String) -> [UInt8]? {
        precondition(initialized)
        let input = Array(text.utf8)
        var out = [UInt8](repeating: 0, count: input.count * 3 / 4 + 3)
        var length = 0
        let rc = sodium_base642bin(&out, out.count, text, input.count, nil, &length, nil, sodium_base64_VARIANT_URLSAFE_NO_PADDING)
        return rc == 0 ? Array(out.prefix(length)) : nil
    }

    public static func base64URL(_ bytes: [UInt8]) -> String {
        let maxLen = sodium_base64_encoded_len(bytes.count, sodium_base64_VARIANT_URLSAFE_NO_PADDING)
        var out = [CChar](repeating: 0, count: maxLen)
        _ = sodium_bin2base64(&out, maxLen, bytes, bytes.count, sodium_base64_VARIANT_URLSAFE_NO_PADDING)
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
