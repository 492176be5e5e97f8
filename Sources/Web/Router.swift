import HTTP

/// One route table for the whole app: method, path pattern (`/settings/users/:id`), whether it needs a
/// signed-in user, and the handler.
public struct Route: Sendable {
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

    /// The path parameters when `path` matches, nil otherwise.
    func match(_ components: [Substring]) -> [String: String]? {
        guard components.count == pattern.count else { return nil }
        var params: [String: String] = [:]
        for (segment, component) in zip(pattern, components) {
            switch segment {
            case .literal(let text): if text != component { return nil }
            case .parameter(let name): params[name] = String(component)
            }
        }
        return params
    }
}

public struct Router: Sendable {
    public let routes: [Route]

    public init(_ routes: [Route]) { self.routes = routes }

    public enum Outcome {
        case found(Route, [String: String])
        /// The path exists but not for this method: the allowed methods, for the Allow header.
        case methodNotAllowed([String])
        case notFound
    }

    public func resolve(method: String, path: String) -> Outcome {
        let components = path.split(separator: "/")
        var allowed: [String] = []
        for route in routes {
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
