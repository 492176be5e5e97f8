import Secrets
import Synchronization

/// Request ids: a handle for finding a request's log line from its error page, not a secret. Each is a random
/// starting point drawn once per process, plus a counter, mixed through splitmix64's finaliser (a bijection on 64
/// bits): ids never repeat within a process and look random across processes and hosts. Drawing 8 random bytes per
/// request cost a getrandom(2) system call on every page.
enum RequestID {
    private static let start: UInt64 = Secrets.randomBytes(8).reduce(0) { $0 << 8 | UInt64($1) }
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        var z = start &+ counter.add(1, ordering: .relaxed).newValue &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Secrets.hex(z)
    }
}
