import Foundation
import XCTest

/// By default the app listens on a Unix socket in its data folder that only its owner and nginx's group may use:
/// on a TCP port any local user could speak FastCGI to it and claim any client address.
final class UnixSocketTests: XCTestCase {
    func testTheDefaultSocketIsPrivateAndServesThroughNginx() throws {
        let server = try RunningRoster()
        server.unixSocket = true
        try server.start()
        defer { server.stop() }
        var info = stat()
        XCTAssertEqual(lstat(server.socketPath, &info), 0, "the socket is in the data folder")
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(info.st_mode & 0o777, 0o660, "owner and group only")
        if let group = getgrnam("www-data") { XCTAssertEqual(info.st_gid, group.pointee.gr_gid, "nginx's group") }
        let login = try httpRequest(port: server.httpPort, method: "GET", path: "/login")
        XCTAssertEqual(login.status, 200)
        XCTAssertFalse(server.appLog.contains("127.0.0.1:\(server.appPort)"), "no TCP port")
    }
}
