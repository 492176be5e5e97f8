import Foundation
@testable import Roster
import Secrets
import Store
import StoreTestSupport
import XCTest

/// The schema on PostgreSQL: every migration applies, the catalogue version moves as on SQLite, and every named
/// query of the stores prepares, except those still listed as not yet ported (#16).
final class PostgresSchemaTests: XCTestCase {
    func testMigrationsApplyAndTheCatalogueVersionMoves() throws {
        let database = try PostgresTestDatabase()
        let pool = try DatabasePool(postgresURL: database.url, migrations: Schema.migrations, queries: [])
        XCTAssertEqual(pool.kind, .postgres)
        let version = try pool.read { try $0.scalar("SELECT MAX(version) FROM schema_migrations").int }
        XCTAssertEqual(version, Schema.migrations.map(\.version).max())
        try pool.write { db in
            try db.run("INSERT INTO databases (name, created_at, updated_at) VALUES (?, 0, 0)", ["Shop"])
            let id = try db.lastInsertedID()
            try db.run("INSERT INTO custom_fields (database_id, name, type, created_at) VALUES (?, 'city', 'line', 0)", [id])
            try db.run("UPDATE custom_fields SET description = 'x' WHERE database_id = ?", [id])
            try db.run("INSERT INTO standard_field_settings (database_id, field_key, required) VALUES (?, '_fname', 1)", [id])
            try db.run("DELETE FROM custom_fields WHERE database_id = ?", [id])
            XCTAssertEqual(try db.scalar("SELECT catalogue_version FROM databases WHERE id = ?", [id]).int, 4)
        }
        // NOCASE: names differing only in case collide, as on SQLite.
        XCTAssertThrowsError(try pool.write { db in
            try db.run("INSERT INTO databases (name, created_at, updated_at) VALUES (?, 0, 0)", ["SHOP"])
        }) { error in XCTAssertTrue((error as? any StoreFailure)?.isConstraintViolation ?? false, "\(error)") }
        XCTAssertEqual(try pool.read { try $0.scalar("SELECT count(*) FROM databases WHERE name = ? COLLATE NOCASE", ["shop"]).int }, 1)
    }

    func testEveryNamedQueryPreparesOnPostgres() throws {
        let database = try PostgresTestDatabase()
        _ = try DatabasePool(postgresURL: database.url, migrations: Schema.migrations, queries: [])
        let connection = try DatabasePool.connect(postgresURL: database.url)
        var failing: Set<String> = []
        for query in Schema.queries {
            do { try connection.verify([query]) } catch { failing.insert(query.name) }
        }
        let unexpected = failing.subtracting(Self.notYetPorted).sorted()
        let ported = Self.notYetPorted.subtracting(failing).sorted()
        XCTAssertEqual(unexpected, [], "these queries do not prepare on PostgreSQL")
        XCTAssertEqual(ported, [], "these now prepare on PostgreSQL: take them off the list")
    }

    /// Named queries whose SQLite text PostgreSQL does not take yet. The list only shrinks.
    static let notYetPorted: Set<String> = []
}
