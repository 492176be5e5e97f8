import Dispatch
import Foundation
import Synchronization
import XCTest
@testable import FastCGIServer

/// The FastCGI server lets a fixed number of requests run at once and the rest wait in arrival order.
final class FairGateTests: XCTestCase {
    func testNeverMoreThanThePermitsRunAtOnce() {
        let gate = FairGate(permits: 3)
        let running = Atomic<Int>(0)
        let most = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 24) { _ in
            let turn = DispatchSemaphore(value: 0)
            gate.enter(turn)
            let now = running.add(1, ordering: .sequentiallyConsistent).newValue
            _ = most.max(now, ordering: .sequentiallyConsistent)
            usleep(2_000)
            running.subtract(1, ordering: .sequentiallyConsistent)
            gate.leave()
        }
        XCTAssertLessThanOrEqual(most.load(ordering: .sequentiallyConsistent), 3)
        XCTAssertEqual(running.load(ordering: .sequentiallyConsistent), 0)
        // Every permit came back: three more can enter without waiting.
        for _ in 0..<3 { gate.enter(DispatchSemaphore(value: 0)) }
        XCTAssertEqual(gate.waitingCount, 0)
    }

    func testOnlyPageReadsTakeTurns() {
        XCTAssertTrue(FastCGIServer.takesTurn("GET"))
        XCTAssertTrue(FastCGIServer.takesTurn("HEAD"))
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get", ""] {
            XCTAssertFalse(FastCGIServer.takesTurn(method), method)
        }
    }

    func testWaitersEnterInTheOrderTheyCame() {
        let gate = FairGate(permits: 1)
        gate.enter(DispatchSemaphore(value: 0))   // the only permit is taken: everyone after waits
        let order = Mutex<[Int]>([])
        let done = DispatchGroup()
        for index in 0..<6 {
            done.enter()
            Thread.detachNewThread {
                gate.enter(DispatchSemaphore(value: 0))
                order.withLock { $0.append(index) }
                gate.leave()
                done.leave()
            }
            // The next thread starts only once this one is queued, so arrival order is known.
            let deadline = Date().addingTimeInterval(5)
            while gate.waitingCount < index + 1 && Date() < deadline { usleep(1_000) }
        }
        XCTAssertEqual(gate.waitingCount, 6)
        gate.leave()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(order.withLock { $0 }, [0, 1, 2, 3, 4, 5])
    }
}
