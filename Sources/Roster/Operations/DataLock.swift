import Foundation

/// The data folder's lock (`DATA/roster.lock`, flock): `serve` holds it while it runs, so a second server on the
/// same folder and a restore under a running server are refused. The kernel drops it when the process dies,
/// `kill -9` included, so a crash never leaves a stale lock.
public final class DataLock: Sendable {
    private let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    /// Takes the lock, or returns nil when another process holds it.
    public static func acquire(dataDirectory: String) throws -> DataLock? {
        let path = (dataDirectory as NSString).appendingPathComponent("roster.lock")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BackupError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        // The holder's pid, for the operator who wonders who holds it.
        _ = ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return DataLock(descriptor: fd)
    }

    /// The pid written by the holder, if any.
    public static func holder(dataDirectory: String) -> String? {
        let path = (dataDirectory as NSString).appendingPathComponent("roster.lock")
        return (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    deinit { close(descriptor) }
}
