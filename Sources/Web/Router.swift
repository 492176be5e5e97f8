import HTTP

/// One route table for the whole app: method, path pattern (`/settings/users/:id`), whether it needs a
/// signed-in user, and the handler. A class: the router hands one out per request, and copying a struct of
/// strings, an array and a closure cost a handful of reference-count operations each time it was looked at.
public final class Route: Sendable {
    public enum Access: Sendable {
        /// Anyone (the login form).
        case anonymous
        /// Any signed-in user.
        case signedIn
        /// Scripts: authenticated by the API token in the body, no cookies, so no session and no CSRF token.
        case api
        /// Subscribers: the signed link in the path is the credential; no cookies are read, and the handler checks
        /// the form token bound to the link.
        case subscriber
    }

    public let method: String
    /// The pattern as written in the route table (`/databases/:id`): how logs and metrics name the route.
    public let path: String
    public let pattern: [Segment]
    public let access: Access
    public let handler: @Sendable (WebApp, RequestContext) throws -> Response

    public enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    public init(_ method: String, _ path: String, access: Access = .signedIn, _ handler: @escaping @Sendable (WebApp, RequestContext) throws -> Response) {
        self.method = method
        self.path = path
        self.pattern = Route.parse(path)
        self.access = access
        self.handler = handler
    }

    static func parse(_ path: String) -> [Segment] {
        path.split(separator: "/").map { part in
            part.hasPrefix(":") ? .parameter(String(part.dropFirst())) : .literal(String(part))
        }
    }

    /// The path parameters when `path` matches, nil otherwise. Literals are compared first, so a route that
    /// does not match allocates nothing.
    func match(_ components: [Substring]) -> [String: String]? {
        guard components.count == pattern.count else { return nil }
        for index in pattern.indices {
            if case .literal(let text) = pattern[index], text != components[index] { return nil }
        }
        var params: [String: String] = [:]
        for index in pattern.indices {
            if case .parameter(let name) = pattern[index] { params[name] = String(components[index]) }
        }
        return params
    }
}

public struct Router: Sendable {
    public let routes: [Route]
    /// The routes by their number of path segments, in table order: a request is compared only with those.
    private let bySegmentCount: [Int: [Route]]

    public init(_ routes: [Route]) {
        self.routes = routes
        bySegmentCount = Dictionary(grouping: routes, by: { $0.pattern.count })
    }

    public enum Outcome {
        case found(Route, [String: String])
        /// The path exists but not for this method: the allowed methods, for the Allow header.
        case methodNotAllowed([String])
        case notFound
    }

    public func resolve(method: String, path: String) -> Outcome {
        let components = path.split(separator: "/")
        var allowed: [String] = []
        for route in bySegmentCount[components.count] ?? [] {
            guard let params = route.match(components) else { continue }
            // HEAD is served by the GET route; the body is dropped on the way out.
            if route.method == method || (method == "HEAD" && route.method == "GET") {
                return .found(route, params)
            }
            allowed.append(route.method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed)
    }
}
