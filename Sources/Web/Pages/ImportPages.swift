import Foundation
import HTTP
import Roster

/// Importing profiles from CSV: GET /databases/:id/import (upload), POST /databases/:id/import (the file; answers
/// with the column mapping), POST /databases/:id/import/start (starts the task), GET /tasks/:id/failed.csv.
enum ImportPages {
    static func form(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        return try uploadPage(app, ctx, db, error: nil, status: 200)
    }

    static func uploadPage(_ app: WebApp, _ ctx: RequestContext, _ db: ProfileDatabase, error: String?, status: Int) throws -> Response {
        try app.page("profiles/import.html", title: "Import profiles into \(db.name)", context: ctx, nav: .databases, status: status, [
            "database": View.database(db), "error": TemplateValue(error),
        ])
    }

    static func upload(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        _ = try ctx.requireEditor()
        let db = try ctx.database(app)
        guard let file = ctx.files.first(where: { $0.fieldName == "file" }), !file.filename.isEmpty else {
            return try uploadPage(app, ctx, db, error: "Choose a CSV file to upload.", status: 422)
        }
        do {
            let upload = try app.services.imports.store(UploadSource(filename: file.filename) { try file.save(to: $0) })
            let custom = try app.services.databases.fields(of: db.id)
            var settings = ImportSettings(targets: upload.suggestedTargets(custom: custom))
            if !settings.targets.contains("email"), settings.targets.contains("phones") { settings.match = "phone" }
            return try mappingPage(app, ctx, db, upload, settings, errors: [:], status: 200)
        } catch let error as ValidationError {
            return try uploadPage(app, ctx, db, error: error.fieldErrors.values.sorted().joined(separator: " "), status: 422)
        }
    }

    static func start(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let user = try ctx.requireEditor()
        let db = try ctx.database(app)
        let upload: ImportUpload
        do {
            upload = try app.services.imports.inspect(token: ctx.form["upload"] ?? "", filename: ctx.form["filename"] ?? "")
        } catch let error as ValidationError {
            return try uploadPage(app, ctx, db, error: error.fieldErrors.values.sorted().joined(separator: " "), status: 422)
        }
        var settings = ImportSettings(targets: upload.header.indices.map { ctx.form["column_\($0)"] ?? "" })
        settings.match = ctx.form["match"] ?? "email"
        settings.existing = ctx.form["existing"] ?? "update"
        settings.detectLocation = ctx.form["detect_location"] != nil
        if let target = ctx.form["subscribe"], !target.isEmpty {
            let parts = target.split(separator: ":", maxSplits: 1)
            settings.resourceID = parts.first.flatMap { Int64($0) } ?? -1
            settings.channel = parts.count > 1 ? String(parts[1]) : ""
            settings.subscriptionStatus = ctx.form["subscription_status"] ?? "subscribed"
        }
        do {
            let parameters = try app.services.imports.parameters(databaseID: db.id, upload: upload, settings)
            let id = try app.services.tasks.enqueue(kind: ImportProfilesTask.kind, title: "Import profiles: \(db.name) ← \(upload.filename)",
                                                    databaseID: db.id, userID: user.id, parameters: parameters)
            return Response.redirect(to: "/tasks/\(id)")
        } catch let error as ValidationError {
            return try mappingPage(app, ctx, db, upload, settings, errors: error.fieldErrors, status: 422)
        }
    }

    static func mappingPage(_ app: WebApp, _ ctx: RequestContext, _ db: ProfileDatabase, _ upload: ImportUpload, _ settings: ImportSettings,
                            errors: [String: String], status: Int) throws -> Response {
        let custom = try app.services.databases.fields(of: db.id)
        let attached = try app.services.databases.attachedResources(db.id)
        func targets(selected: String) -> TemplateValue {
            var options: [TemplateValue] = [["value": "", "label": "— not imported —", "selected": .bool(selected.isEmpty)],
                                            ["value": "status", "label": "Global status", "selected": .bool(selected == "status")]]
            options += StandardField.all.map { ["value": .string($0.key), "label": .string($0.label), "selected": .bool($0.key == selected)] }
            options += custom.map { ["value": .string($0.name), "label": .string("\($0.name) (\($0.type.label))"), "selected": .bool($0.name == selected)] }
            return .list(options)
        }
        var matches: [TemplateValue] = [["value": "email", "label": "Email", "selected": .bool(settings.match == "email")],
                                        ["value": "phone", "label": "Phone (the first of the profile's phones)", "selected": .bool(settings.match == "phone")]]
        matches += custom.filter { ![.tags, .object, .array].contains($0.type) }.map {
            ["value": .string("field:" + $0.name), "label": .string($0.name), "selected": .bool(settings.match == "field:" + $0.name)]
        }
        let chosenSubscription = settings.resourceID.map { "\($0):\(settings.channel)" } ?? ""
        let subscribeOptions: [TemplateValue] = [["value": "", "label": "— no subscription —", "selected": .bool(chosenSubscription.isEmpty)]]
            + attached.flatMap { r in
                r.channels.filter { [.email, .sms, .whatsapp, .viber].contains($0) }.map { c -> TemplateValue in
                    let value = "\(r.id):\(c.rawValue)"
                    return ["value": .string(value), "label": .string("\(r.name) — \(c.label)"), "selected": .bool(value == chosenSubscription)]
                }
            }
        return try app.page("profiles/import_mapping.html", title: "Map the columns of \(upload.filename)", context: ctx, nav: .databases, status: status, [
            "database": View.database(db),
            "upload": .string(upload.token), "filename": .string(upload.filename),
            "size": .string(View.bytes(upload.size)),
            "delimiter": .string(upload.delimiter == UInt8(ascii: ";") ? "semicolon" : "comma"),
            "columns": .list(upload.header.enumerated().map { index, name in
                ["index": .int(index), "name": .string(name.isEmpty ? "(no name)" : name),
                 "samples": .string(upload.samples.compactMap { $0.indices.contains(index) ? $0[index] : nil }.map { String($0.prefix(40)) }.joined(separator: " · ")),
                 "targets": targets(selected: settings.targets.indices.contains(index) ? settings.targets[index] : ""),
                 "error": TemplateValue(errors["column_\(index)"])]
            }),
            "unmapped": .string(upload.unmapped(settings.targets).joined(separator: ", ")),
            "matches": .list(matches),
            "update_existing": .bool(settings.existing != "skip"),
            "detect_location": .bool(settings.detectLocation),
            "subscribe_options": .list(subscribeOptions),
            "statuses": .list(ProfileStatus.allCases.map { ["value": .string($0.name), "label": .string($0.label), "selected": .bool($0.name == settings.subscriptionStatus)] }),
            "errors": View.errors(errors),
            "has_errors": .bool(!errors.isEmpty),
        ])
    }

    /// GET /tasks/:id/failed.csv: the rows an import could not take, with the reason for each.
    static func failedRows(_ app: WebApp, _ ctx: RequestContext) throws -> Response {
        let task = try TasksPage.loadDownload(app, ctx)
        guard task.kind == ImportProfilesTask.kind, task.outputBytes > 0 else { throw HTTPError.notFound }
        var response = Response(status: 200, headers: [("Content-Type", "text/csv; charset=utf-8"),
                                                       ("Content-Disposition", "attachment; filename=\"import-\(task.id)-failed-rows.csv\"")])
        response.bodyFile = app.services.imports.failedRowsPath(taskID: task.id)
        return response
    }
}
