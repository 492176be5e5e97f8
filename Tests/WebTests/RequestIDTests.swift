import Secrets
import XCTest
@testable import Web

/// Every answer carries a request id that finds its log line: it must never repeat.
final class RequestIDTests: XCTestCase {
    func testIdsAreSixteenHexDigitsAndNeverRepeat() {
        _ = Secrets.initialize()
        var seen = Set<String>()
        for _ in 0..<20_000 {
            let id = RequestID.next()
            XCTAssertEqual(id.utf8.count, 16)
            XCTAssertTrue(id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }, id)
            seen.insert(id)
        }
        XCTAssertEqual(seen.count, 20_000)
    }
}
