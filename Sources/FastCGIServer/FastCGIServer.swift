import CFastCGI
import Foundation
import HTTP
import Synchronization

/// Serves `RequestHandler` over FastCGI with libfcgi: N threads, each looping on its own `FCGX_Request`.
///
/// Shutdown is deliberate rather than left to libfcgi's signal handling: `run()` blocks SIGTERM/SIGINT in
/// every thread and waits for them with `sigwait`; on a signal it stops accepting, lets requests in flight
/// finish (up to `drainSeconds`), and returns so the caller can close the database cleanly.
public final class FastCGIServer: Sendable {
    public struct Configuration: Sendable {
        /// `127.0.0.1:9009`, `:9009` or a Unix socket path.
        public var address: String
        public var workers: Int
        /// Page reads (GET, HEAD) handled at once; the others wait their turn in arrival order. Workers are many
        /// because libfcgi gives each kept nginx connection its own thread; letting them all run at once on a few
        /// cores made every request share the CPU with dozens of others (slower for all, and a long tail of late
        /// ones).
        public var concurrency: Int
        public var backlog: Int32
        /// Bodies above this are answered with 413 without being read (nginx enforces its own limit first).
        public var maxBodyBytes: Int
        public var drainSeconds: Double
        /// Where multipart bodies larger than `spoolThresholdBytes` are written while they are read (uploads of
        /// CSV files stream to disk instead of memory). nil: never spool.
        public var spoolDirectory: String?
        public var spoolThresholdBytes = 1 << 20
        /// The largest spooled upload accepted (nginx enforces the same limit on the import address first).
        public var maxSpooledBodyBytes = 512 << 20
        /// A Unix socket (an address without `:`) gets mode 0660 and this group (nginx's on Debian) when it exists.
        public var socketGroup: String? = "www-data"

        public init(address: String, workers: Int = 16, concurrency: Int? = nil, backlog: Int32 = 256,
                    maxBodyBytes: Int = 12 << 20, drainSeconds: Double = 10, spoolDirectory: String? = nil) {
            self.spoolDirectory = spoolDirectory
            self.address = address
            self.workers = workers
            self.concurrency = max(1, concurrency ?? workers)
            self.backlog = backlog
            self.maxBodyBytes = maxBodyBytes
            self.drainSeconds = drainSeconds
        }
    }

    public let configuration: Configuration
    private let handler: any RequestHandler
    private let stopping = Atomic<Bool>(false)
    private let inFlight = Atomic<Int>(0)
    private let exitedWorkers = Atomic<Int>(0)
    private let gate: FairGate

    public init(configuration: Configuration, handler: any RequestHandler) {
        self.configuration = configuration
        self.handler = handler
        gate = FairGate(permits: configuration.concurrency)
    }

    /// Call first thing in `main`, before any thread exists, so that no thread but the waiting one sees
    /// SIGTERM or SIGINT (threads inherit the mask) and a broken nginx connection never raises SIGPIPE.
    public static func blockShutdownSignals() {
        _ = roster_block_shutdown_signals()
    }

    public enum ServerError: Error, CustomStringConvertible {
        case initFailed
        case cannotListen(String)
        public var description: String {
            switch self {
            case .initFailed: return "FCGX_Init failed"
            case .cannotListen(let address): return "cannot listen on \(address) (in use, or not allowed)"
            }
        }
    }

    /// Serves until SIGTERM or SIGINT, then drains and returns. `onListening` runs once the socket is open.
    public func run(onListening: () -> Void = {}) throws {
        guard FCGX_Init() == 0 else { throw ServerError.initFailed }
        let isUnixSocket = !configuration.address.contains(":")
        if isUnixSocket {
            // A socket left by a previous run (a crash leaves it behind); never anything else at that path.
            var info = stat()
            if lstat(configuration.address, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK { unlink(configuration.address) }
        }
        let listenFD = FCGX_OpenSocket(configuration.address, configuration.backlog)
        guard listenFD >= 0 else { throw ServerError.cannotListen(configuration.address) }
        if isUnixSocket {
            // Only the owner and nginx's group may speak FastCGI: anyone who can would set REMOTE_ADDR and HTTPS.
            if let group = configuration.socketGroup, let entry = getgrnam(group) { _ = chown(configuration.address, UInt32.max, entry.pointee.gr_gid) }
            _ = chmod(configuration.address, 0o660)
        }
        onListening()

        for index in 0..<max(1, configuration.workers) {
            let thread = Thread { [self] in self.workerLoop(listenFD: listenFD) }
            thread.name = "fcgi-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }

        let signal = roster_wait_shutdown_signal()
        FileHandle.standardError.write(Data("roster: signal \(signal), stopping: no new requests, draining \(inFlight.load(ordering: .relaxed)) in flight\n".utf8))
        stopping.store(true, ordering: .sequentiallyConsistent)
        FCGX_ShutdownPending()
        _ = roster_fcgi_shutdown_listener(listenFD)

        let deadline = Date().addingTimeInterval(configuration.drainSeconds)
        while inFlight.load(ordering: .sequentiallyConsistent) > 0 && Date() < deadline {
            usleep(10_000)
        }
        let left = inFlight.load(ordering: .sequentiallyConsistent)
        if left > 0 {
            FileHandle.standardError.write(Data("roster: \(left) requests still running after \(configuration.drainSeconds)s; stopping anyway\n".utf8))
        }
        // Workers blocked on an idle kept-alive nginx connection are not waited for: the process exits.
    }

    private func workerLoop(listenFD: Int32) {
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        request.initialize(to: FCGX_Request())
        defer {
            request.deallocate()
            exitedWorkers.add(1, ordering: .relaxed)
        }
        guard FCGX_InitRequest(request, listenFD, 0) == 0 else { return }
        let turn = DispatchSemaphore(value: 0)
        while !stopping.load(ordering: .relaxed) {
            guard FCGX_Accept_r(request) >= 0 else {
                // Stopping, or a failed accept (out of descriptors, say): a worker must not die of the latter,
                // or the server would lose its threads one by one.
                if stopping.load(ordering: .relaxed) { break }
                usleep(10_000)
                continue
            }
            inFlight.add(1, ordering: .sequentiallyConsistent)
            serve(request, turn: turn)
            FCGX_Finish_r(request)
            inFlight.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    /// Runs the handler, for a page read when its turn comes (reading the request and writing the answer need no
    /// turn). Only GET and HEAD take turns: a change may wait seconds for the database's writer, and holding a turn
    /// meanwhile would stop the pages behind it.
    private func handle(_ request: Request, turn: DispatchSemaphore) -> Response {
        guard Self.takesTurn(request.method) else { return handler.handle(request) }
        gate.enter(turn)
        defer { gate.leave() }
        return handler.handle(request)
    }

    static func takesTurn(_ method: String) -> Bool { method == "GET" || method == "HEAD" }

    private func serve(_ fcgi: UnsafeMutablePointer<FCGX_Request>, turn: DispatchSemaphore) {
        // libfcgi reuses envp's memory for the next request: copy every parameter into Swift strings now.
        let params = Self.copyParameters(fcgi.pointee.envp)
        let contentLength = Int(params["CONTENT_LENGTH"] ?? "") ?? 0
        let response: Response
        let isMultipart = (params["CONTENT_TYPE"] ?? "").lowercased().hasPrefix("multipart/form-data")
        if let spool = configuration.spoolDirectory, isMultipart, contentLength > configuration.spoolThresholdBytes {
            if contentLength > configuration.maxSpooledBodyBytes {
                response = Response.text("Upload too large.\n", status: 413)
            } else if let refusal = handler.admit(Self.makeRequest(params: params, body: []), bodyLength: contentLength) {
                response = refusal
            } else if let path = Self.spoolBody(fcgi.pointee.in, length: contentLength, directory: spool) {
                var request = Self.makeRequest(params: params, body: [])
                request.bodyFile = path
                response = handle(request, turn: turn)
                unlink(path)
            } else {
                response = Response.text("The upload could not be stored (disk full, or it was cut short).\n", status: 500)
            }
        } else if contentLength > configuration.maxBodyBytes {
            response = Response.text("Request body too large.\n", status: 413)
            // Drain is not needed: FCGX_Finish_r discards unread input.
        } else {
            let body = Self.readBody(fcgi.pointee.in, length: contentLength)
            response = handle(Self.makeRequest(params: params, body: body), turn: turn)
        }
        Self.write(response, to: fcgi.pointee.out)
    }

    static func copyParameters(_ envp: FCGX_ParamArray?) -> [String: String] {
        var params: [String: String] = [:]
        params.reserveCapacity(32)
        guard var cursor = envp else { return params }
        while let entry = cursor.pointee {
            // Split "NAME=value" on the first "=" straight from the C string: one copy per part.
            let length = strlen(entry)
            entry.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
                let pair = UnsafeBufferPointer(start: bytes, count: length)
                if let eq = pair.firstIndex(of: UInt8(ascii: "=")) {
                    params[String(decoding: UnsafeBufferPointer(rebasing: pair[..<eq]), as: UTF8.self)] =
                        String(decoding: UnsafeBufferPointer(rebasing: pair[(eq + 1)...]), as: UTF8.self)
                }
            }
            cursor += 1
        }
        return params
    }

    /// `HTTP_ACCEPT_LANGUAGE` → `accept-language`, on bytes (the parameter names are ASCII).
    static func headerName(parameter key: String) -> String {
        var bytes = Array(key.utf8.dropFirst(5))
        for index in bytes.indices {
            switch bytes[index] {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): bytes[index] += 32
            case UInt8(ascii: "_"): bytes[index] = UInt8(ascii: "-")
            default: break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func readBody(_ stream: UnsafeMutablePointer<FCGX_Stream>?, length: Int) -> [UInt8] {
        guard length > 0, let stream else { return [] }
        var body = [UInt8](repeating: 0, count: length)
        var filled = 0
        body.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: CChar.self) else { return }
            while filled < length {
                let n = FCGX_GetStr(base + filled, Int32(min(length - filled, 1 << 20)), stream)
                if n <= 0 { break }
                filled += Int(n)
            }
        }
        if filled < length { body.removeSubrange(filled...) }
        return body
    }

    /// Copies a body from the FastCGI stream to a new file (0600) in 1 MiB pieces; nil if it is cut short.
    static func spoolBody(_ stream: UnsafeMutablePointer<FCGX_Stream>?, length: Int, directory: String) -> String? {
        guard let stream else { return nil }
        let path = (directory as NSString).appendingPathComponent("body-" + UUID().uuidString)
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var buffer = [CChar](repeating: 0, count: 1 << 20)
        var copied = 0
        while copied < length {
            let n = buffer.withUnsafeMutableBufferPointer { b -> Int32 in
                guard let base = b.baseAddress else { return -1 }
                return FCGX_GetStr(base, Int32(min(length - copied, b.count)), stream)
            }
            if n <= 0 { break }
            let written = buffer.withUnsafeBytes { b -> Int in
                guard let base = b.baseAddress else { return -1 }
                return Glibc.write(fd, base, Int(n))
            }
            if written != Int(n) { break }
            copied += Int(n)
        }
        if copied < length { unlink(path); return nil }
        return path
    }

    /// FastCGI parameters → a `Request`. Headers come from HTTP_* parameters; the peer is REMOTE_ADDR.
    public static func makeRequest(params: [String: String], body: [UInt8]) -> Request {
        var headers: [String: String] = [:]
        for (key, value) in params where key.hasPrefix("HTTP_") {
            headers[headerName(parameter: key)] = value
        }
        if let type = params["CONTENT_TYPE"], !type.isEmpty { headers["content-type"] = type }
        if let length = params["CONTENT_LENGTH"], !length.isEmpty { headers["content-length"] = length }
        let uri = params["REQUEST_URI"] ?? params["DOCUMENT_URI"] ?? "/"
        let rawPath = String(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "/")
        return Request(
            method: params["REQUEST_METHOD"] ?? "GET",
            path: FormData.decodePath(rawPath) ?? rawPath,
            query: FormData(urlEncoded: params["QUERY_STRING"] ?? ""),
            headers: headers,
            body: body,
            remoteAddress: params["REMOTE_ADDR"] ?? "",
            isHTTPS: (params["HTTPS"] ?? "").lowercased() == "on"
        )
    }

    static func write(_ response: Response, to stream: UnsafeMutablePointer<FCGX_Stream>?) {
        guard let stream else { return }
        var head = "Status: \(response.status) \(Response.reasonPhrase(response.status))\r\n"
        for (name, value) in response.headers {
            // Header injection guard: a value never carries a line break into the header block.
            let clean = value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A })
                ? value.replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\n", with: "") : value
            head += "\(name): \(clean)\r\n"
        }
        var file: FileHandle?
        var length = response.body.count
        if let path = response.bodyFile {
            guard let handle = FileHandle(forReadingAtPath: path),
                  let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue else {
                write(Response.text("The file is gone.\n", status: 410), to: stream)
                return
            }
            file = handle
            length = size
            if response.deleteBodyFileAfterSending { unlink(path) }
        }
        head += "Content-Length: \(length)\r\n\r\n"
        var headBytes = Array(head.utf8)
        headBytes.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            _ = FCGX_PutStr(base.assumingMemoryBound(to: CChar.self), Int32(raw.count), stream)
        }
        if let file {
            defer { try? file.close() }
            var sent = 0
            while sent < length, let chunk = try? file.read(upToCount: 1 << 16), !chunk.isEmpty {
                var bytes = [UInt8](chunk)
                let ok = bytes.withUnsafeMutableBytes { raw in
                    guard let base = raw.baseAddress else { return false }
                    return FCGX_PutStr(base.assumingMemoryBound(to: CChar.self), Int32(raw.count), stream) >= 0
                }
                if !ok { break }
                sent += bytes.count
            }
            return
        }
        var offset = 0
        var body = response.body
        body.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: CChar.self) else { return }
            while offset < raw.count {
                let chunk = min(raw.count - offset, 1 << 20)
                if FCGX_PutStr(base + offset, Int32(chunk), stream) < 0 { break }
                offset += chunk
            }
        }
    }
}

/// A counting gate that lets waiters in in the order they came: a leaving request hands its place straight to the
/// longest-waiting one (each waiter sleeps on its own semaphore, so only that one wakes).
final class FairGate: @unchecked Sendable {
    private let lock = NSLock()
    private var free: Int
    private var waiting: [DispatchSemaphore] = []
    private var head = 0

    init(permits: Int) { free = permits }

    /// Requests waiting for their turn (for tests and diagnostics).
    var waitingCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return waiting.count - head
    }

    func enter(_ turn: DispatchSemaphore) {
        lock.lock()
        if free > 0 {
            free -= 1
            lock.unlock()
            return
        }
        waiting.append(turn)
        lock.unlock()
        turn.wait()
    }

    func leave() {
        lock.lock()
        guard head < waiting.count else {
            free += 1
            lock.unlock()
            return
        }
        let next = waiting[head]
        head += 1
        if head == waiting.count { waiting.removeAll(keepingCapacity: true); head = 0 }
        lock.unlock()
        next.signal()
    }
}
