import Foundation
import FuzzTargets
import XCTest

/// Every input in Tests/fuzz-corpus — the seeds and each crash `make fuzz` ever found — replayed through its
/// parser: a crash that came back would end this test process.
final class FuzzCorpusTests: XCTestCase {
    func testEveryCorpusInputGoesThroughItsParser() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fuzz-corpus")
        var replayed = 0
        for (name, target) in FuzzTargets.all.sorted(by: { $0.key < $1.key }) {
            let folder = root.appendingPathComponent(name)
            let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            XCTAssertFalse(files.isEmpty, "\(name) has a seed corpus")
            for file in files {
                target(Array(try Data(contentsOf: folder.appendingPathComponent(file))))
                replayed += 1
            }
        }
        XCTAssertGreaterThanOrEqual(replayed, FuzzTargets.all.count)
    }
}
