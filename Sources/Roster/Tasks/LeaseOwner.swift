import Foundation
import Synchronization

/// A task runner as the holder of a task's lease: "host/pid/token". The host and pid let a runner tell an earlier
/// process on its own host (dead: its tasks can be taken over at once) from a runner on another host (alive until its
/// lease runs out); the token tells runners of one process apart.
public struct LeaseOwner: Sendable, Equatable {
    public let host: String
    public let pid: Int32
    public let token: String
    public var text: String { "\(host)/\(pid)/\(token)" }

    /// This host's name in leases: ROSTER_HOST_ID, else the host name (each app host must have its own).
    public static let localHost: String = {
        if let id = ProcessInfo.processInfo.environment["ROSTER_HOST_ID"], !id.isEmpty {
            return String(id.replacingOccurrences(of: "/", with: "_").prefix(64))
        }
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : String(name.replacingOccurrences(of: "/", with: "_").prefix(64))
    }()

    /// The tokens of this process's runners that have not stopped.
    private static let living = Mutex<Set<String>>([])

    static func make() -> LeaseOwner {
        let owner = LeaseOwner(host: localHost, pid: getpid(), token: UUID().uuidString.prefix(8).lowercased())
        living.withLock { _ = $0.insert(owner.token) }
        return owner
    }

    private init(host: String, pid: Int32, token: String) {
        self.host = host
        self.pid = pid
        self.token = token
    }

    init?(text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, let pid = Int32(parts[1]) else { return nil }
        self.init(host: String(parts[0]), pid: pid, token: String(parts[2]))
    }

    /// The runner stopped: what it held can be taken over by this process's other runners at once.
    func retire() {
        _ = LeaseOwner.living.withLock { $0.remove(token) }
    }

    /// Whether a running task's holder is gone: no holder or lease, a lease that ran out, or a holder on this host
    /// that no longer runs (an earlier process, or a stopped runner of this one). A living holder on another host is
    /// trusted until its lease runs out.
    static func isAbandoned(holder: String?, until: Int64?, now: Int64) -> Bool {
        guard let holder, let until, let owner = LeaseOwner(text: holder) else { return true }
        if until < now { return true }
        guard owner.host == localHost else { return false }
        if owner.pid == getpid() { return !living.withLock { $0.contains(owner.token) } }
        return kill(owner.pid, 0) != 0 && errno == ESRCH
    }
}
