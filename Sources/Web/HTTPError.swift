/// An error that is the client's to see: it carries its status and a message safe to show.
public struct HTTPError: Error, Sendable {
    public let status: Int
    public let title: String
    public let detail: String

    public init(_ status: Int, _ title: String, _ detail: String = "") {
        self.status = status
        self.title = title
        self.detail = detail
    }

    public static let notFound = HTTPError(404, "Page not found", "There is nothing at this address. It may have been deleted, or the link is wrong.")
    public static let forbidden = HTTPError(403, "Not allowed", "Your role does not allow this. Ask an admin if you need it.")
    public static let csrf = HTTPError(403, "The form could not be accepted",
                                       "It was not sent from a Roster page you have open, or it expired. Go back, reload the page and send it again.")
    public static func badRequest(_ detail: String) -> HTTPError { HTTPError(400, "Bad request", detail) }
}
