import Foundation
import Roster
#if canImport(Glibc)
import Glibc
#endif

/// `roster supervise`: runs `roster serve` as a child and starts it again within a second when it dies, so one crash
/// never leaves every user with a 502 until someone notices. SIGTERM or SIGINT is passed to the child, which stops
/// cleanly (its running task is queued again for the next start); then the supervisor exits. Under systemd, run
/// `roster serve` with Restart=always instead: systemd is the supervisor there.
enum Supervisor {
    static func run(arguments: [String]) -> Never {
        Log.enable()
        // SIGHUP (a closed terminal) stops the supervisor and its child like SIGTERM, never leaving the child orphaned.
        var hangup = sigset_t()
        sigemptyset(&hangup)
        sigaddset(&hangup, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &hangup, nil)
        // The running executable itself, even once a rebuild has replaced (deleted) the file it was started from.
        let executable = "/proc/self/exe"
        var restarts = 0
        var quickExits = 0
        while true {
            let started = Date()
            guard let pid = spawn(executable, ["serve"] + arguments) else {
                Log.error("supervise: cannot start roster serve", ["error": String(cString: strerror(errno))])
                exit(1)
            }
            Log.info("supervise: started roster serve", ["pid": String(pid), "restarts": String(restarts)])
            let status = waitForChild(pid)
            let signal = status & 0x7f
            let how = signal == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(signal)"
            // A child that stops by itself at once with an error (bad configuration, database unreadable) is retried
            // ever more slowly, up to 10 s apart; a crash or a kill comes back after half a second, every time.
            if signal == 0 && Date().timeIntervalSince(started) < 2 { quickExits += 1 } else { quickExits = 0 }
            let delay = quickExits == 0 ? 0.5 : min(10, 0.5 * pow(2, Double(quickExits - 1)))
            restarts += 1
            Log.error("supervise: roster serve \(how); restarting", ["pid": String(pid), "delay_s": String(delay),
                                                                     "restarts": String(restarts)])
            if sleepUnlessSignalled(delay) { exit(0) }
        }
    }

    /// posix_spawn of `path` with `args`, with a clean signal mask (the supervisor blocks SIGTERM/SIGINT to wait for them).
    private static func spawn(_ path: String, _ args: [String]) -> pid_t? {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, nil, &attributes, argv, environ)
        return rc == 0 ? pid : nil
    }

    private static func shutdownSignals() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGHUP)
        return set
    }

    /// Waits for the child to end; a SIGTERM or SIGINT meanwhile is passed on, and once the child has stopped the
    /// supervisor exits too.
    private static func waitForChild(_ pid: pid_t) -> Int32 {
        var set = shutdownSignals()
        var status: Int32 = 0
        while true {
            var timeout = timespec(tv_sec: 0, tv_nsec: 100_000_000)
            let signal = sigtimedwait(&set, nil, &timeout)
            if signal == SIGTERM || signal == SIGINT || signal == SIGHUP {
                kill(pid, signal == SIGHUP ? SIGTERM : signal)
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                Log.info("supervise: stopped", ["signal": String(signal)])
                exit(0)
            }
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r == -1 && errno == ECHILD) { return status }
        }
    }

    /// True when a shutdown signal came while waiting.
    private static func sleepUnlessSignalled(_ seconds: Double) -> Bool {
        var set = shutdownSignals()
        var timeout = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - floor(seconds)) * 1e9))
        let signal = sigtimedwait(&set, nil, &timeout)
        return signal == SIGTERM || signal == SIGINT || signal == SIGHUP
    }
}
