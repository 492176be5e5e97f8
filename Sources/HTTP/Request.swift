import Foundation

public enum HTTPMethod: String, Sendable, CaseIterable {
    case GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS
}

/// An HTTP request as the application sees it, whatever carried it (FastCGI in production, a test in-process).
public struct Request: Sendable {
    public var method: String
    /// The path without the query string, percent-decoded.
    public var path: String
    public var query: FormData
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: [UInt8]
    /// Set instead of `body` when the server spooled a large upload to disk; the server removes the file after the answer.
    public var bodyFile: String?
    /// The peer address as the web server saw it (FastCGI REMOTE_ADDR), never taken from a client header.
    public var remoteAddress: String
    /// True when the web server says the request arrived over TLS.
    public var isHTTPS: Bool

    public init(method: String, path: String, query: FormData = FormData(), headers: [String: String] = [:],
                body: [UInt8] = [], remoteAddress: String = "127.0.0.1", isHTTPS: Bool = false) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { _, last in last })
        self.body = body
        self.remoteAddress = remoteAddress
        self.isHTTPS = isHTTPS
    }

    /// Builds a request from a target such as `/a/b?x=1`.
    public init(method: String, target: String, headers: [String: String] = [:], body: [UInt8] = [], remoteAddress: String = "127.0.0.1") {
        // A fragment never reaches a server; drop it as a browser would.
        let withoutFragment = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
        let parts = withoutFragment.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let rawPath = parts.first.map(String.init) ?? "/"
        self.init(method: method, path: FormData.decodePath(rawPath) ?? rawPath,
                  query: parts.count > 1 ? FormData(urlEncoded: String(parts[1])) : FormData(),
                  headers: headers, body: body, remoteAddress: remoteAddress)
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    public var contentType: String? { header("content-type") }

    /// Cookies sent with the request; the first of a repeated name wins (the most specific path, per RFC 6265).
    public var cookies: [String: String] {
        guard let raw = header("cookie") else { return [:] }
        var result: [String: String] = [:]
        for pair in raw.split(separator: ";") {
            guard let eq = pair.firstIndex(of: "=") else { continue }
            let name = Self.trimmed(pair[..<eq])
            if result[name] == nil { result[name] = Self.trimmed(pair[pair.index(after: eq)...]) }
        }
        return result
    }

    /// One cookie's value, as `cookies[name]` gives it (the first of that name), without building the dictionary:
    /// every request reads its session cookie.
    public func cookie(_ name: String) -> String? {
        guard let raw = header("cookie") else { return nil }
        for pair in raw.split(separator: ";") {
            guard let eq = pair.firstIndex(of: "=") else { continue }
            if Self.trimmed(pair[..<eq]) == name { return Self.trimmed(pair[pair.index(after: eq)...]) }
        }
        return nil
    }

    /// Plain Substring work: Foundation's trimming bridges through NSString, and this runs on every request.
    private static func trimmed(_ text: Substring) -> String {
        var start = text.startIndex, end = text.endIndex
        while start < end, text[start] == " " || text[start] == "\t" { start = text.index(after: start) }
        while end > start {
            let before = text.index(before: end)
            guard text[before] == " " || text[before] == "\t" else { break }
            end = before
        }
        return String(text[start..<end])
    }
}
