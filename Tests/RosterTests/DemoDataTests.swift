import Foundation
@testable import Roster
import Store
import XCTest

final class DemoDataTests: XCTestCase {
    func testSeedMakesEveryStatusSubscriptionsAndHistoryThatTheChartsCount() throws {
        let pool = try makePool()
        let db = try DemoData(pool: pool).seed(databaseName: "Demo", count: 1500)
        let databases = Databases(pool: pool)
        XCTAssertEqual(try databases.profileCount(db.id), 1500)
        XCTAssertEqual(try databases.fields(of: db.id).count, 10, "a field of each type")
        let charts = try databases.charts(db.id, now: Int64(Date().timeIntervalSince1970))
        XCTAssertEqual(charts.statuses.map(\.1).reduce(0, +), 1500)
        XCTAssertTrue(charts.statuses.allSatisfy { $0.1 > 0 }, "all seven statuses: \(charts.statuses)")
        XCTAssertGreaterThan(charts.statuses.first { $0.0 == .subscribed }!.1, 900)
        XCTAssertEqual(Set(charts.subscriptions.map(\.0)), [.email, .sms, .push])
        XCTAssertEqual(charts.months.count, 12)
        let since = charts.months[0].0 + "-01"
        let sinceSeconds = Int64(UTCTime.days(year: Int(since.prefix(4)) ?? 0, month: Int(since.dropFirst(5).prefix(2)) ?? 0, day: 1)) * 86_400
        let events = try pool.read { try $0.scalar("SELECT COUNT(*) FROM history_\(db.id) WHERE at >= ?", [sinceSeconds]).int ?? 0 }
        XCTAssertEqual(charts.months.map(\.1).reduce(0, +), events, "the activity chart counts every event of the 12 months")
        // Values written by the seed pass the field types' own validation.
        for field in try databases.fields(of: db.id) {
            let values = try pool.read { try $0.query("SELECT \(field.column) AS v FROM profiles_\(db.id) WHERE \(field.column) IS NOT NULL LIMIT 50").map { $0["v"] } }
            for v in values {
                if case .failure(let e) = field.type.parse(field.type.display(v), options: field.options) { XCTFail("\(field.name): \(v) \(e.reason)") }
            }
        }
        // Statistics survive deleting profiles.
        let before = charts.months.map(\.1).reduce(0, +)
        try pool.write { try $0.run("DELETE FROM profiles_\(db.id)") }
        XCTAssertEqual(try databases.charts(db.id, now: Int64(Date().timeIntervalSince1970)).months.map(\.1).reduce(0, +), before)
    }
}
