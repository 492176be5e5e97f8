import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Where a webhook may post. A receiver is somebody else's server on the internet: an address on this machine,
/// the local network, link-local (cloud metadata at 169.254.169.254) or any other special range is refused,
/// after resolving the name, unless `ROSTER_WEBHOOK_ALLOW_PRIVATE=1` (tests with a receiver on 127.0.0.1).
enum WebhookAddress {
    /// nil when every address `host` resolves to is public; otherwise the reason.
    static func problem(host: String, allowPrivate: Bool) -> String? {
        if allowPrivate { return nil }
        let addresses = resolve(host)
        if addresses.isEmpty { return "\(host) does not resolve to an address." }
        for bytes in addresses where isSpecial(bytes) {
            return "\(host) is a private, loopback or link-local address; webhooks go to servers on the internet."
        }
        return nil
    }

    /// The IPv4 (4 bytes) and IPv6 (16 bytes) addresses of a name or literal.
    static func resolve(_ host: String) -> [[UInt8]] {
        let name = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(list) }
        var out: [[UInt8]] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let address = entry.pointee.ai_addr {
                if entry.pointee.ai_family == AF_INET {
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                        var a = sin.pointee.sin_addr.s_addr  // network byte order
                        out.append(withUnsafeBytes(of: &a) { Array($0) })
                    }
                } else if entry.pointee.ai_family == AF_INET6 {
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                        var a = sin6.pointee.sin6_addr
                        out.append(withUnsafeBytes(of: &a) { Array($0) })
                    }
                }
            }
            cursor = entry.pointee.ai_next
        }
        return out
    }

    /// Loopback, private, shared (CGNAT), link-local, unique-local, multicast, reserved and unspecified ranges,
    /// including IPv4 inside IPv6 (mapped, NAT64).
    static func isSpecial(_ b: [UInt8]) -> Bool {
        if b.count == 4 {
            switch (b[0], b[1]) {
            case (0, _), (10, _), (127, _): return true
            case (100, 64...127): return true
            case (169, 254): return true
            case (172, 16...31): return true
            case (192, 168): return true
            case (192, 0) where b[2] == 0 || b[2] == 2: return true
            case (198, 18...19): return true
            case (198, 51) where b[2] == 100: return true
            case (203, 0) where b[2] == 113: return true
            default: return b[0] >= 224
            }
        }
        guard b.count == 16 else { return true }
        if b.allSatisfy({ $0 == 0 }) { return true }                                   // ::
        if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return true }             // ::1
        if b[0] & 0xFE == 0xFC { return true }                                          // fc00::/7
        if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return true }                          // fe80::/10
        if b[0] == 0xFF { return true }                                                 // multicast
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF { return isSpecial(Array(b[12...])) }  // ::ffff:a.b.c.d
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B { return isSpecial(Array(b[12...])) }        // 64:ff9b::/96
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8 { return true }                               // documentation
        return false
    }
}

/// Refuses every redirect: a receiver that answers 3xx has not taken the batch, and following it could lead the
/// request to an address the check above would refuse.
final class NoRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        completionHandler(nil)
    }
}
