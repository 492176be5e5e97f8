import Foundation

/// Where the domain reads the time, so tests can move it.
public struct Clock: Sendable {
    public let now: @Sendable () -> Int64
    public init(now: @escaping @Sendable () -> Int64) { self.now = now }
    public static let system = Clock { Int64(Date().timeIntervalSince1970) }
}
