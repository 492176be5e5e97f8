import Foundation
@testable import Roster
import Store
import XCTest

/// A database of a dozen profiles with two resources and three users, for the bulk-update tests and their undo.
struct BulkSetup {
    let pool: DatabasePool
    let db: ProfileDatabase
    let news: Resource
    let promo: Resource
    let profiles: Profiles
    let subs: Subscriptions
    let bulk: BulkUpdates
    let runner: TaskRunner
    let admin: User
    let editor: User
    let viewer: User
    var now: Int64

    static let now: Int64 = 1_790_000_000   // 2026-09-21
}


protocol BulkFixtures {}

extension BulkFixtures {

    func makeSetup(count: Int = 12, chunkSize: Int = 5) throws -> BulkSetup {
        let pool = try makePool()
        let clock = Clock { BulkSetup.now }
        let resources = Resources(pool: pool, clock: clock)
        let news = try resources.create(ResourceInput(name: "News", channels: ["email", "sms"]))
        let promo = try resources.create(ResourceInput(name: "Promo", channels: ["email", "push"]))
        let databases = Databases(pool: pool, clock: clock)
        let db = try databases.create(DatabaseInput(name: "Shop", resourceIDs: [news.id, promo.id]))
        _ = try databases.addField(to: db.id, FieldInput(name: "score", type: "number"))
        _ = try databases.addField(to: db.id, FieldInput(name: "vip", type: "boolean"))
        let profiles = Profiles(pool: pool, clock: clock)
        for i in 0..<count {
            _ = try profiles.create(databaseID: db.id, ProfileInput(values: ["email": "p\(i)@x.io", "phones": i % 2 == 0 ? "+7900000\(1000 + i)" : "",
                                                                             "score": String(i), "_city": i < count / 2 ? "Moscow" : "Paris"]), actor: nil)
        }
        let accounts = Accounts(pool: pool, clock: clock)
        let admin = try accounts.createUser(email: "a@x.io", name: "", role: .admin, password: "password for admin")
        let editor = try accounts.createUser(email: "e@x.io", name: "", role: .editor, password: "password for editor")
        let viewer = try accounts.createUser(email: "v@x.io", name: "", role: .viewer, password: "password for viewer")
        let runner = TaskRunner(pool: pool, handlers: [BulkUpdateTask.kind: BulkUpdateTask(clock: clock)], clock: clock, chunkSize: chunkSize)
        return BulkSetup(pool: pool, db: db, news: news, promo: promo, profiles: profiles, subs: Subscriptions(pool: pool, clock: clock),
                     bulk: BulkUpdates(pool: pool, tasks: runner, clock: clock, previewChunk: 2), runner: runner, admin: admin, editor: editor, viewer: viewer, now: BulkSetup.now)
    }

    func all(_ s: BulkSetup) throws -> [Profile] {
        var q = ProfileQuery()
        q.limit = 1000
        return try s.profiles.list(databaseID: s.db.id, q).profiles.sorted { $0.rowID < $1.rowID }
    }

    func moscow() -> Selection { Selection(rules: .group(.and, [.rule(Rule(subject: "field:_city", op: "eq", value: "Moscow"))])) }

    /// Previews, runs, and checks that the preview's counts are the task's.
    @discardableResult
    func run(_ s: BulkSetup, _ request: BulkRequest, user: User? = nil) throws -> TaskRecord {
        let preview = try s.bulk.preview(request, actor: user ?? s.admin)
        let id = try s.bulk.start(request, title: "t", user: user ?? s.admin)
        s.runner.runUntilIdle()
        let task = try XCTUnwrap(s.runner.task(id))
        XCTAssertEqual(task.state, .done, task.message)
        XCTAssertEqual([preview.selected, preview.updated, preview.deleted, preview.skipped, preview.failed],
                       [task.total, task.updated, task.deleted, task.skipped, task.failed], "the preview counts what the task then does")
        XCTAssertEqual(preview.reasons, task.details)
        return task
    }
}
