import Foundation
import HTTP
import Roster
import Secrets
import Store
@testable import Web
import XCTest

/// "Undo this task" on a bulk task's page, its preview and its launch; `roster task undo ID` on the command line.
final class UndoPageTests: XCTestCase {
    func makeDatabase(_ app: WebApp) throws -> ProfileDatabase {
        let db = try app.services.databases.create(DatabaseInput(name: "Shop"))
        _ = try app.services.databases.addField(to: db.id, FieldInput(name: "score", type: "number"))
        for i in 0..<6 {
            _ = try app.services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "p\(i)@x.io", "score": String(i)]), actor: nil)
        }
        return db
    }

    func scores(_ app: WebApp, _ db: ProfileDatabase) throws -> [String] {
        try app.services.profiles.list(databaseID: db.id, ProfileQuery()).profiles.sorted { $0.rowID < $1.rowID }.map { $0.values["score"] ?? "" }
    }

    /// Runs a bulk update of the first `limit` profiles as `email` to its end; returns its id.
    func runUpdate(_ app: WebApp, _ db: ProfileDatabase, as email: String, _ limit: Int, _ action: BulkAction) throws -> Int64 {
        let user = try XCTUnwrap(try app.services.accounts.user(email: email))
        let id = try app.services.bulk.start(BulkRequest(databaseID: db.id, selection: Selection(limit: limit), action: action),
                                             title: "Scores", user: user)
        app.services.tasks.runUntilIdle()
        return id
    }

    func testAnEditorPreviewsAndLaunchesTheUndoOfAFieldUpdateFromTheTaskPage() throws {
        let (b, app) = try signIn(.editor)
        let db = try makeDatabase(app)
        let id = try runUpdate(app, db, as: "editor@example.com", 4, .updateFields([FieldChange(field: "score", value: "99")]))
        XCTAssertEqual(try scores(app, db), ["99", "99", "99", "99", "4", "5"])
        // Someone changes one of the four afterwards: the undo leaves it alone.
        let third = try app.services.profiles.list(databaseID: db.id, ProfileQuery()).profiles.sorted { $0.rowID < $1.rowID }[2]
        try app.services.pool.write { try $0.run("UPDATE profiles_\(db.id) SET c_1 = 7 WHERE id = ?", [third.rowID]) }

        let page = b.get("/tasks/\(id)").bodyText
        XCTAssertTrue(page.contains("/tasks/\(id)/undo"), "the task page offers the undo")
        let plain = b.get("/tasks/\(id)/undo").bodyText
        XCTAssertTrue(plain.contains("/tasks/\(id)/undo?preview=1") && !plain.contains("Will be put back"), "the dry run only when asked")
        let preview = b.get("/tasks/\(id)/undo?preview=1")
        XCTAssertEqual(preview.status, 200, preview.bodyText)
        XCTAssertTrue(preview.bodyText.contains("Values the task changed</dt><dd class=\"big\">4</dd>"), preview.bodyText)
        XCTAssertTrue(preview.bodyText.contains("Will be put back</dt><dd class=\"big\">3</dd>"))
        XCTAssertTrue(preview.bodyText.contains("1 skipped: changed since the task: left as they are"))
        XCTAssertTrue(preview.bodyText.contains("<td>score</td><td>99</td><td>7</td>"), "the drift sample: what the task left, what it is now")
        XCTAssertEqual(try scores(app, db), ["99", "99", "7", "99", "4", "5"], "the preview changes nothing")

        XCTAssertEqual(b.post("/tasks/\(id)/undo", []).status, 403, "a POST without its CSRF token is refused")
        let launched = b.post("/tasks/\(id)/undo", [("csrf_token", b.csrfToken)])
        XCTAssertEqual(launched.status, 303, launched.bodyText)
        let undoPath = try XCTUnwrap(launched.header("Location"))
        app.services.tasks.runUntilIdle()
        XCTAssertEqual(try scores(app, db), ["0", "1", "7", "3", "4", "5"])
        let undoPage = b.get(undoPath).bodyText
        XCTAssertTrue(undoPage.contains("Undo task #\(id)"), "the undo's page says what was asked")
        XCTAssertTrue(b.get("/tasks/\(id)").bodyText.contains("Undone by <a href=\"\(undoPath)\">"))
        // Twice is refused, with the reason.
        let again = b.post("/tasks/\(id)/undo", [("csrf_token", b.csrfToken)])
        XCTAssertEqual(again.status, 422)
        XCTAssertTrue(again.bodyText.contains("already undone"), again.bodyText)
    }

    func testViewersCannotUndoAndOnlyBulkTasksHaveAnUndoPage() throws {
        let (b, app) = try signIn(.viewer)
        let db = try makeDatabase(app)
        let id = try runUpdate(app, db, as: "admin@example.com", 2, .updateFields([FieldChange(field: "score", value: "50")]))
        XCTAssertFalse(b.get("/tasks/\(id)").bodyText.contains("/undo"))
        XCTAssertEqual(b.get("/tasks/\(id)/undo").status, 403)
        XCTAssertEqual(b.post("/tasks/\(id)/undo", [("csrf_token", b.csrfToken)]).status, 403)
        XCTAssertEqual(b.get("/tasks/999999/undo").status, 403, "a viewer learns nothing of other ids either")
        XCTAssertEqual(try scores(app, db), ["50", "50", "2", "3", "4", "5"])
    }

    func testAnAdminRestoresADeletionAndSettingsShowTheArchive() throws {
        let (b, app) = try signIn(.admin)
        let db = try makeDatabase(app)
        XCTAssertEqual(b.get("/tasks/abc/undo").status, 404)
        try app.services.pool.write { try $0.run("UPDATE profiles_\(db.id) SET last_interaction_at = NULL") }
        let id = try runUpdate(app, db, as: "admin@example.com", 4, .deleteInactive)
        XCTAssertEqual(try scores(app, db), ["4", "5"])
        XCTAssertTrue(b.get("/settings").bodyText.contains("4 profiles"), "Settings show the archive's size")
        let plain = b.get("/tasks/\(id)/undo").bodyText
        XCTAssertTrue(plain.contains("/tasks/\(id)/undo?preview=1") && !plain.contains("Will be put back"), "the dry run only when asked")
        let preview = b.get("/tasks/\(id)/undo?preview=1").bodyText
        XCTAssertTrue(preview.contains("Archived profiles</dt><dd class=\"big\">4</dd>"), preview)
        XCTAssertTrue(preview.contains("Will be restored</dt><dd class=\"big\">4</dd>"))
        XCTAssertEqual(b.post("/tasks/\(id)/undo", [("csrf_token", b.csrfToken)]).status, 303)
        app.services.tasks.runUntilIdle()
        XCTAssertEqual(try scores(app, db), ["0", "1", "2", "3", "4", "5"])
        XCTAssertTrue(b.get("/settings").bodyText.contains("0 profiles"))
    }

    func testTheCommandLineUndoesATask() throws {
        Secrets.initialize()
        let dir = try temporaryFolder("roster-cli-undo")
        let pool = try DatabasePool(path: dir.appendingPathComponent("roster.sqlite").path, migrations: Schema.migrations, queries: Schema.queries)
        let services = Services.make(pool: pool, exportDirectory: dir.appendingPathComponent("exports").path)
        let admin = try services.accounts.createUser(email: "admin@example.com", name: "", role: .admin, password: "password for admin")
        let db = try services.databases.create(DatabaseInput(name: "Shop"))
        for i in 0..<3 { _ = try services.profiles.create(databaseID: db.id, ProfileInput(values: ["email": "p\(i)@x.io"]), actor: nil) }
        let id = try services.bulk.start(BulkRequest(databaseID: db.id, selection: Selection(limit: 3), action: .unsubscribe), title: "Out", user: admin)
        services.tasks.runUntilIdle()
        services.tasks.stop()
        // Read from the file each time (the page's counts are cached for a few seconds).
        let unsubscribed = { try pool.read { try $0.scalar("SELECT COUNT(*) FROM profiles_\(db.id) WHERE status = 1").int ?? -1 } }
        XCTAssertEqual(try unsubscribed(), 3)
        let preview = try runRoster(["--data", dir.path, "task", "undo", String(id), "--preview"])
        XCTAssertEqual(preview.status, 0, preview.output)
        XCTAssertTrue(preview.output.contains("3 items, 3 to put back"), preview.output)
        XCTAssertEqual(try unsubscribed(), 3, "a preview changes nothing")
        let run = try runRoster(["--data", dir.path, "task", "undo", String(id)])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertEqual(try unsubscribed(), 0, run.output)
        let twice = try runRoster(["--data", dir.path, "task", "undo", String(id)])
        XCTAssertNotEqual(twice.status, 0)
        XCTAssertTrue(twice.output.contains("already undone"), twice.output)
        XCTAssertNotEqual(try runRoster(["--data", dir.path, "task", "undo", "x"]).status, 0)
    }
}
