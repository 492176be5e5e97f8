/// Bad input: which field, and why. Pages show each message beside its field; nothing is written.
public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var fieldErrors: [String: String]
    public init(_ fieldErrors: [String: String]) { self.fieldErrors = fieldErrors }
    public init(field: String, _ message: String) { self.fieldErrors = [field: message] }
    public var description: String {
        fieldErrors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
    }
}

extension StringProtocol {
    /// Without white space or line breaks at either end. Most values have none, and then this costs two scalar
    /// checks instead of Foundation's full trim (which dominated the profile import's profile).
    var trimmed: String {
        guard let first = unicodeScalars.first, let last = unicodeScalars.last else { return "" }
        if !first.properties.isWhitespace && !last.properties.isWhitespace { return String(self) }
        return trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A row read back right after this process wrote it: missing only if another writer deleted it in between, which
/// is reported like any refusal instead of trapping.
func readBack<T>(_ value: T?, _ what: String) throws -> T {
    guard let value else { throw ValidationError(field: what, "The \(what) was deleted meanwhile.") }
    return value
}
