import Foundation

/// The read transaction a thread is inside (a pool's `readScope`), kept in pthread thread-specific data, so every
/// read on that thread joins it. Reading it is one call per query; Foundation's `threadDictionary` would bridge a
/// string key through an NSDictionary each time. A scope of another pool on the same thread is saved and restored
/// around this one.
public final class ReadScope {
    let pool: ObjectIdentifier
    let connection: AnyObject

    public init(pool: AnyObject, connection: AnyObject) {
        self.pool = ObjectIdentifier(pool)
        self.connection = connection
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    /// The connection of `pool`'s scope this thread is inside, if any.
    public static func current<Connection: AnyObject>(of pool: AnyObject, as type: Connection.Type) -> Connection? {
        guard let raw = pthread_getspecific(key) else { return nil }
        let scope = Unmanaged<ReadScope>.fromOpaque(raw).takeUnretainedValue()
        guard scope.pool == ObjectIdentifier(pool) else { return nil }
        return scope.connection as? Connection
    }

    /// Makes `scope` the thread's current one (retained while it is) and returns the one it replaces.
    public static func swap(in scope: ReadScope?) -> ReadScope? {
        let outer = pthread_getspecific(key).map { Unmanaged<ReadScope>.fromOpaque($0).takeRetainedValue() }
        pthread_setspecific(key, scope.map { Unmanaged.passRetained($0).toOpaque() })
        return outer
    }

    /// Runs `body` with `scope` as the thread's current one, then puts back the one it replaced.
    public static func with<T>(_ scope: ReadScope, _ body: () throws -> T) rethrows -> T {
        let outer = swap(in: scope)
        defer { _ = swap(in: outer) }
        return try body()
    }
}

/// A first-come, first-served lock for a store's writer. A plain mutex lets the thread that just released it take
/// it again at once, so a background task's back-to-back chunks could keep an API call waiting for several chunks;
/// with tickets each waiter gets the writer right after the holder ahead of it.
public final class FairLock: @unchecked Sendable {
    private let condition = NSCondition()
    private var nextTicket: UInt64 = 0
    private var serving: UInt64 = 0
    private var acquiredAt: Double?

    public init() {}

    public func lock() {
        condition.lock()
        let ticket = nextTicket
        nextTicket &+= 1
        while serving != ticket { condition.wait() }
        acquiredAt = Date().timeIntervalSince1970
        condition.unlock()
    }

    /// Takes the lock only if nobody holds it or waits for it.
    public func `try`() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard serving == nextTicket else { return false }
        nextTicket &+= 1
        acquiredAt = Date().timeIntervalSince1970
        return true
    }

    /// Whether someone queues behind the holder.
    public var hasWaiters: Bool {
        condition.lock()
        defer { condition.unlock() }
        return nextTicket &- serving > 1
    }

    /// Since when (seconds since 1970) the holder has held it; nil while it is free.
    public var heldSince: Double? {
        condition.lock()
        defer { condition.unlock() }
        return acquiredAt
    }

    public func unlock() {
        condition.lock()
        acquiredAt = nil
        serving &+= 1
        condition.broadcast()
        condition.unlock()
    }
}
