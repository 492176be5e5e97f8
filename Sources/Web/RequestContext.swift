import HTTP
import Roster

/// What a handler gets: the request, its path parameters, the signed-in session, and a request id.
public struct RequestContext: Sendable {
    public let request: Request
    public let params: [String: String]
    public let session: AuthenticatedSession?
    public let requestID: String
    /// The decoded form body of a POST (empty otherwise).
    public let form: FormData
    /// Files of a multipart POST.
    public let files: [UploadedFile]
    /// The raw session cookie value, for logout.
    public let sessionToken: String?

    public var user: User? { session?.user }

    /// The signed-in user; routes marked `.signedIn` always have one.
    public func requireUser() throws -> User {
        guard let user = session?.user else { throw HTTPError(401, "Sign in first") }
        return user
    }

    /// Throws 403 unless the user's role may change data.
    public func requireEditor() throws -> User {
        let user = try requireUser()
        guard user.role.canEdit else { throw HTTPError.forbidden }
        return user
    }

    public func requireAdmin() throws -> User {
        let user = try requireUser()
        guard user.role.canManageUsers else { throw HTTPError.forbidden }
        return user
    }

    public func param(_ name: String) -> String { params[name] ?? "" }

    public func int64Param(_ name: String) throws -> Int64 {
        guard let value = Int64(param(name)), value > 0 else { throw HTTPError.notFound }
        return value
    }
}
