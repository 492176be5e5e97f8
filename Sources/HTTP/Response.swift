/// An HTTP response: a status, headers in order, and a body.
public struct Response: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// A file sent as the body instead of `body`, streamed from disk by the server (large exports stay out of memory).
    public var bodyFile: String?
    /// The body file is a temporary one: the server removes it once it has it open.
    public var deleteBodyFileAfterSending = false

    public init(status: Int = 200, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func html(_ text: String, status: Int = 200) -> Response {
        html(bytes: Array(text.utf8), status: status)
    }

    /// A page already rendered to UTF-8 bytes.
    public static func html(bytes: [UInt8], status: Int = 200) -> Response {
        Response(status: status, headers: [("Content-Type", "text/html; charset=utf-8")], body: bytes)
    }

    public static func text(_ text: String, status: Int = 200) -> Response {
        Response(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array(text.utf8))
    }

    /// 303 See Other: after a POST the browser follows with a GET.
    public static func redirect(to location: String, status: Int = 303) -> Response {
        Response(status: status, headers: [("Location", location)], body: [])
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public mutating func setHeader(_ name: String, _ value: String) {
        headers.removeAll { $0.0.lowercased() == name.lowercased() }
        headers.append((name, value))
    }

    public mutating func addHeader(_ name: String, _ value: String) {
        headers.append((name, value))
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 413: return "Payload Too Large"
        case 415: return "Unsupported Media Type"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        default: return "Status \(status)"
        }
    }
}

/// Anything that answers requests: the web application, or a test double.
public protocol RequestHandler: Sendable {
    func handle(_ request: Request) -> Response
    /// Asked with the headers only, before a large body is read and stored: a response here is sent instead, and
    /// the body is never written anywhere (a request that cannot be allowed costs no disk).
    func admit(_ request: Request, bodyLength: Int) -> Response?
}

extension RequestHandler {
    public func admit(_ request: Request, bodyLength: Int) -> Response? { nil }
}
