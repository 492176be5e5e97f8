/// Bad input: which field, and why. Pages show each message beside its field; nothing is written.
public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var fieldErrors: [String: String]
    public init(_ fieldErrors: [String: String]) { self.fieldErrors = fieldErrors }
    public init(field: String, _ message: String) { self.fieldErrors = [field: message] }
    public var description: String {
        fieldErrors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
    }
}
