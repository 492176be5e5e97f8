import HTTP
import Roster

/// Promo codes and relations on the profile page, and the personal-data export:
/// POST …/promo, POST …/promo/:code/detach, POST …/relations, POST …/relations/:relation/delete, GET …/personal-data.json.
enum ProfileExtraPages {
    static func section(_ app: WebApp, _ db: ProfileDatabase, _ p: Profile) throws -> TemplateDict {
        [
            "codes": .list(try app.services.extras.codes(databaseID: db.id, profileID: p.profileID).map {
                ["id": .string(String($0.id)), "program": .string($0.program), "code": .string($0.code), "status": .string($0.status),
                 "attached": .string(View.time($0.attachedAt)), "active": .bool($0.status == "attached" || $0.status == "activated")]
            }),
            "programs": .list(try app.services.loyalty.list().map {
                ["id": .string(String($0.id)), "name": .string($0.name), "free": .string(View.count($0.free))]
            }),
            "relations": .list(try app.services.extras.relations(databaseID: db.id, profileID: p.profileID).map {
                ["id": .string(String($0.id)), "name": .string($0.name), "other_id": .string($0.otherProfileID), "other_email": .string($0.otherEmail),
                 "outgoing": .bool($0.outgoing), "properties": .string($0.properties == "{}" ? "" : $0.properties)]
            }),
        ]
    }

    static func redirect(_ db: ProfileDatabase, _ p: Profile, _ anchor: String, error: String? = nil) -> Response {
        var target = "/databases/\(db.id)/profiles/\(p.profileID)"
        if let error { target += "?problem=\(error)" }
        return Response.redirect(to: target + "#" + anchor)
    }

    static let problems = [
        "no-free-codes": "That program has no free codes left.",
        "relation": "The relation was not added: name it, and give the other profile's email or profile id (key=value lines for properties).",
    ]

    static func attachCode(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        let p = try ProfilePages.load(app, ctx, db)
        guard let program = Int64(ctx.form["program"] ?? ""), try app.services.loyalty.get(program) != nil else { throw HTTPError(422, "Choose a program", "") }
        do {
            try app.services.extras.attachCode(databaseID: db.id, profileID: p.profileID, programID: program, actor: user.id)
        } catch is ValidationError {
            return redirect(db, p, "promo", error: "no-free-codes")
        }
        return redirect(db, p, "promo")
    }

    static func detachCode(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        let p = try ProfilePages.load(app, ctx, db)
        do {
            try app.services.extras.detachCode(databaseID: db.id, profileID: p.profileID, codeID: try ctx.int64Param("code"), actor: user.id)
        } catch is ValidationError {
            throw HTTPError.notFound
        }
        return redirect(db, p, "promo")
    }

    static func addRelation(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        let p = try ProfilePages.load(app, ctx, db)
        do {
            try app.services.extras.addRelation(databaseID: db.id, profileID: p.profileID, name: ctx.form["relation_name"] ?? "",
                                                other: ctx.form["other"] ?? "", properties: ctx.form["properties"] ?? "", actor: user.id)
        } catch is ValidationError {
            return redirect(db, p, "relations", error: "relation")
        }
        return redirect(db, p, "relations")
    }

    static func deleteRelation(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        let p = try ProfilePages.load(app, ctx, db)
        do {
            try app.services.extras.deleteRelation(databaseID: db.id, profileID: p.profileID, relationID: try ctx.int64Param("relation"))
        } catch is ValidationError {
            throw HTTPError.notFound
        }
        return redirect(db, p, "relations")
    }

    static func personalData(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let db = try ctx.database(app)
        let p = try ProfilePages.load(app, ctx, db)
        let json = try app.services.extras.personalData(databaseID: db.id, profile: p, database: db.name)
        var response = Response(status: 200, headers: [("Content-Type", "application/json; charset=utf-8")], body: Array(json.utf8))
        response.addHeader("Content-Disposition", "attachment; filename=\"profile-\(p.profileID).json\"")
        return response
    }
}
