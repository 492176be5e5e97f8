import Foundation
@testable import Roster
import XCTest

final class UTCTimeTests: XCTestCase {
    func testAgreesWithFoundationAcrossCenturies() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let seconds = Int64.random(in: -2_208_988_800...4_102_444_800, using: &rng)  // 1900…2100
            let expected = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
            XCTAssertEqual(UTCTime.rfc3339(milliseconds: seconds * 1000), expected.replacingOccurrences(of: "Z", with: ".000Z"))
        }
        XCTAssertEqual(UTCTime.days(year: 2000, month: 3, day: 1), 11_017)
        XCTAssertEqual(UTCTime.time(0), "1970-01-01 00:00:00 UTC")
        XCTAssertEqual(UTCTime.grouped(1_234_567), "1,234,567")
        XCTAssertEqual(UTCTime.grouped(-1000), "-1,000")
        XCTAssertEqual(UTCTime.grouped(999), "999")
    }
}
