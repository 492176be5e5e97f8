import Foundation
import HTTP
import Roster
import Secrets
import Store

public struct WebConfiguration: Sendable {
    /// Adds `Secure` to cookies even on plain-HTTP requests (when TLS ends in front of nginx).
    public var forceSecureCookies = false
    /// How the server's daily backup is set up, in words for the Settings page (nil: none scheduled).
    public var backupSchedule: String?
    public init() {}
}

/// The web application: routes a `Request` to a page or action and renders the answer.
/// It knows nothing of FastCGI; tests drive it in-process.
public final class WebApp: RequestHandler {
    public let services: Services
    public var accounts: Accounts { services.accounts }
    public let templates: TemplateSet
    public let configuration: WebConfiguration
    let router = Router(Routes.table)

    public static let sessionCookie = "roster_session"
    public static let loginCSRFCookie = "roster_login_csrf"

    public init(services: Services, templates: TemplateSet, configuration: WebConfiguration = WebConfiguration()) {
        self.services = services
        self.templates = templates
        self.configuration = configuration
    }

    /// What the request log and the metrics say of a request once it is answered.
    final class Trace {
        var route = "unmatched"
        var userID: Int64?
    }

    public func handle(_ request: Request) -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        let requestID = RequestID.next()
        let trace = Trace()
        var response: Response
        defer {
            let seconds = Double(DispatchTime.now().uptimeNanoseconds &- started) / 1e9
            Metrics.shared.request(method: request.method, route: trace.route, status: response.status, seconds: seconds)
            Log.info("request", ["method": request.method, "route": trace.route, "status": String(response.status),
                                 "ms": Log.milliseconds(seconds), "user": trace.userID.map(String.init) ?? "-",
                                 "request_id": requestID])
        }
        do {
            if request.method == "GET" || request.method == "HEAD" {
                // A page is rendered from one read snapshot (see DatabasePool.readScope).
                response = try services.pool.readScope { try route(request, requestID: requestID, trace: trace) }
            } else {
                response = try route(request, requestID: requestID, trace: trace)
            }
        } catch let error as HTTPError {
            response = errorPage(error, request: request, requestID: requestID)
        } catch let error as ValidationError {
            // Bad input that a page did not show beside its field: still a clear refusal, never a 500.
            response = errorPage(HTTPError(422, "Not done", error.fieldErrors.values.sorted().joined(separator: " ")), request: request,
                                 requestID: requestID)
        } catch let error as PermissionError {
            response = errorPage(HTTPError(403, "Not allowed", error.message), request: request, requestID: requestID)
        } catch let error as TemplateError {
            WebApp.logFailure(request, requestID: requestID, "template error \(error)")
            response = errorPage(HTTPError(500, "Something went wrong", ""), request: request, requestID: requestID)
        } catch let error as any StoreFailure where error.isUnstorableValue {
            // A NUL character in a search or a name, say: PostgreSQL cannot hold it. Bad input, never a 500.
            response = errorPage(HTTPError(400, "Not done", "A value in this request contains a character Roster cannot store or "
                                           + "search for (U+0000). Nothing was changed."), request: request, requestID: requestID)
        } catch {
            WebApp.logFailure(request, requestID: requestID, String(reflecting: error))
            response = errorPage(HTTPError(500, "Something went wrong", ""), request: request, requestID: requestID)
        }
        // Pages show personal data: never cache them, anywhere.
        if response.header("Cache-Control") == nil { response.addHeader("Cache-Control", "no-store") }
        response.addHeader("X-Request-Id", requestID)
        if request.method == "HEAD" { response.body = []; response.bodyFile = nil }
        return response
    }

    /// An unexpected error, for the operator: through the log (values quoted, so a path cannot forge a line), or as
    /// one quoted line on standard error when the log is off (tools, tests).
    static func logFailure(_ request: Request, requestID: String, _ error: String) {
        if Log.isEnabled {
            Log.error("request failed", ["request_id": requestID, "method": request.method, "path": request.path, "error": error])
        } else {
            FileHandle.standardError.write(Data("roster: request \(requestID) \(Log.quote(request.method)) \(Log.quote(request.path)): \(Log.quote(error))\n".utf8))
        }
    }

    /// Before a large upload is stored: the address must exist, the session be valid, the role one that changes
    /// data, and the disk have room. (The CSRF token travels in the body: it is checked before any part is written.)
    public func admit(_ request: Request, bodyLength: Int) -> Response? {
        let requestID = RequestID.next()
        guard case .found(let route, _) = router.resolve(method: request.method, path: request.path), route.access == .signedIn else {
            return nil
        }
        do {
            guard let token = request.cookie(WebApp.sessionCookie),
                  let session = try accounts.session(token: token) else {
                return errorPage(HTTPError(401, "Signed out", "Your session has ended. Sign in again, then repeat what you were doing."),
                                 request: request, requestID: requestID)
            }
            guard session.user.role.canEdit else { return errorPage(HTTPError.forbidden, request: request, requestID: requestID) }
            try services.files.requireFreeSpace(for: Int64(bodyLength) * 2)
        } catch let error as ValidationError {
            return errorPage(HTTPError(507, "Not enough disk space", error.fieldErrors.values.sorted().joined(separator: " ")),
                             request: request, requestID: requestID)
        } catch {
            return errorPage(HTTPError(503, "Try again", "The request could not be checked; try again."), request: request, requestID: requestID)
        }
        return nil
    }

    private func route(_ request: Request, requestID: String, trace: Trace) throws -> Response {
        let route: Route
        let params: [String: String]
        switch router.resolve(method: request.method, path: request.path) {
        case .notFound:
            throw HTTPError.notFound
        case .methodNotAllowed(let allowed):
            trace.route = "method_not_allowed"
            var response = errorPage(HTTPError(405, "Method not allowed", "This address does not accept \(request.method) requests."),
                                     request: request, requestID: requestID)
            response.setHeader("Allow", Array(Set(allowed)).sorted().joined(separator: ", "))
            return response
        case .found(let r, let p):
            route = r
            params = p
            trace.route = r.path
        }

        if route.access == .api {
            // No cookies are read: a browser's session can never be used through these addresses.
            return try route.handler(self, RequestContext(request: request, params: params, session: nil, requestID: requestID,
                                                          form: FormData(), files: [], sessionToken: nil))
        }

        if route.access == .subscriber {
            let form = request.method == "POST" ? try urlencodedForm(request) : FormData()
            return try route.handler(self, RequestContext(request: request, params: params, session: nil, requestID: requestID,
                                                          form: form, files: [], sessionToken: nil))
        }

        let token = request.cookie(WebApp.sessionCookie)
        let session = try token.flatMap { try accounts.session(token: $0) }
        trace.userID = session?.user.id
        if route.access == .signedIn && session == nil && request.method == "POST" {
            throw HTTPError(401, "Signed out", "Your session has ended. Sign in again, then repeat what you were doing.")
        }
        let expectedCSRF = session?.csrfToken ?? request.cookie(WebApp.loginCSRFCookie) ?? ""

        var form = FormData()
        var files: [UploadedFile] = []
        // Parts of a spooled upload that the page did not keep (moved away) are removed with the request, on every
        // path out of here.
        defer { for file in files { if let path = file.storedPath { unlink(path) } } }
        if request.method == "POST" {
            let type = (request.contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            if type == "application/x-www-form-urlencoded" {
                form = try urlencodedForm(request)
            } else if type == "multipart/form-data" {
                let boundary = Multipart.boundary(contentType: request.contentType ?? "")
                // A stored part is written only after the fields before it carried the right CSRF token.
                var refused = false
                let accept: (FormData) -> Bool = { fields in
                    let sent = fields["csrf_token"] ?? ""
                    refused = !(!sent.isEmpty && !expectedCSRF.isEmpty && Secrets.constantTimeEquals(sent, expectedCSRF))
                    return !refused
                }
                let parsed = boundary.flatMap { boundary in
                    request.bodyFile.map { Multipart.parse(fileAt: $0, boundary: boundary, directory: services.uploadDirectory, accept: accept) }
                        ?? Multipart.parse(body: request.body, boundary: boundary)
                }
                guard let (decoded, uploaded) = parsed else {
                    if refused { throw HTTPError.csrf }
                    throw HTTPError.badRequest("The form data could not be read (broken multipart body).")
                }
                form = decoded
                files = uploaded
            } else {
                throw HTTPError(415, "Unsupported form encoding", "Forms are sent as application/x-www-form-urlencoded or multipart/form-data.")
            }
        }

        if route.access == .signedIn && session == nil {
            if request.method == "GET" || request.method == "HEAD" {
                let next = request.path == "/" ? "" : "?next=" + FormData.encode(request.path)
                return Response.redirect(to: "/login" + next, status: 303)
            }
            throw HTTPError(401, "Signed out", "Your session has ended. Sign in again, then repeat what you were doing.")
        }

        // Every POST carries a CSRF token. Signed-in: the session's token. Login form: a double-submit cookie.
        if request.method == "POST" {
            let sent = form["csrf_token"] ?? ""
            guard !sent.isEmpty, !expectedCSRF.isEmpty, Secrets.constantTimeEquals(sent, expectedCSRF) else {
                throw HTTPError.csrf
            }
        }

        // Where Settings → Security requires a second factor, a user without one reaches only its setup (and sign-out).
        if let session, route.access == .signedIn, !TwoFactorPages.reachableWhileSettingUp(request.path),
           try services.twoFactor.mustSetUp(session.user) {
            if request.method == "GET" || request.method == "HEAD" {
                return Response.redirect(to: TwoFactorPages.path + "?done=required", status: 303)
            }
            throw HTTPError(403, "Two-factor sign-in required", "Set up two-factor sign-in on your settings page first.")
        }

        let context = RequestContext(request: request, params: params, session: session, requestID: requestID,
                                     form: form, files: files, sessionToken: token)
        return try route.handler(self, context)
    }

    /// The body of a POST sent as application/x-www-form-urlencoded (any other encoding is refused).
    private func urlencodedForm(_ request: Request) throws -> FormData {
        let type = (request.contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard type == "application/x-www-form-urlencoded" else {
            throw HTTPError(415, "Unsupported form encoding", "Forms are sent as application/x-www-form-urlencoded.")
        }
        guard let text = String(validating: request.body, as: UTF8.self), let decoded = FormData(strict: text) else {
            throw HTTPError.badRequest("The form data could not be read (broken encoding).")
        }
        return decoded
    }

    // MARK: Rendering

    /// Renders a page inside the layout, with the navigation and the account bar.
    func page(_ template: String, title: String, context: RequestContext, nav: NavItem? = nil, status: Int = 200,
              _ values: TemplateDict = [:]) throws -> Response {
        var all = values
        all["title"] = .string(title)
        all["request_id"] = .string(context.requestID)
        if let session = context.session {
            all["session"] = [
                "email": .string(session.user.email),
                "name": .string(session.user.name.isEmpty ? session.user.email : session.user.name),
                "role": .string(session.user.role.rawValue),
                "role_label": .string(session.user.role.label),
                "can_edit": .bool(session.user.role.canEdit),
                "is_admin": .bool(session.user.role.canManageUsers),
                "can_manage_lists": .bool(session.user.role.canManageSuppressionLists),
            ]
            all["csrf_token"] = .string(session.csrfToken)
            all["nav"] = NavItem.menus[nav] ?? .list([])
        } else {
            all["session"] = .null
            all["nav"] = .list([])
        }
        if all["csrf_token"] == nil { all["csrf_token"] = "" }
        return Response.html(bytes: try templates.renderBytes(template, all), status: status)
    }

    func errorPage(_ error: HTTPError, request: Request, requestID: String) -> Response {
        let values: TemplateDict = [
            "title": .string(error.title), "status": .int(error.status), "heading": .string(error.title),
            "detail": .string(error.detail), "request_id": .string(requestID), "session": .null, "nav": .list([]),
            "csrf_token": "", "is_server_error": .bool(error.status >= 500),
        ]
        if let html = try? templates.render("error.html", values) {
            return Response.html(html, status: error.status)
        }
        return Response.text("\(error.status) \(error.title)\nRequest id: \(requestID)\n", status: error.status)
    }

    func sessionCookie(value: String, request: Request, maxAge: Int?) -> String {
        var cookie = "\(WebApp.sessionCookie)=\(value); Path=/; HttpOnly; SameSite=Lax"
        if let maxAge { cookie += "; Max-Age=\(maxAge)" }
        if request.isHTTPS || configuration.forceSecureCookies { cookie += "; Secure" }
        return cookie
    }
}

/// The domain services the pages use.
public struct Services: Sendable {
    public let accounts: Accounts
    public let databases: Databases
    public let resources: Resources
    public let loyalty: Loyalty
    public let tasks: TaskRunner
    public let export: ExportProfilesTask
    public let profiles: Profiles
    public let subscriptions: Subscriptions
    public let extras: ProfileExtras
    public let imports: ProfileImports
    public let segments: Segments
    public let bulk: BulkUpdates
    public let webhooks: Webhooks
    public let apiTokens: APITokens
    public let batch: BatchAPI
    public let files: TaskFiles
    public let backups: Backups
    public let approvals: Approvals
    /// Profiles deleted by bulk tasks, kept for their undo (ROSTER_UNDO_DAYS); housekeeping purges older ones.
    public let archive: DeletionArchive
    /// Bulk updates launched by the clock (`startSchedules` looks for due ones).
    public let schedules: Schedules
    /// Second factors for marketers' sign-in, and whether Settings → Security requires them.
    public let twoFactor: TwoFactor
    /// Signed links for subscribers (the subscription manager), and the manager's changes.
    public let links: SubscriberLinks
    public let manager: SubscriptionManager
    /// Settings → Suppression lists.
    public let suppressions: Suppressions
    public let clock: Clock
    private let housekeeping = Webhooks.TimerBox()
    private let backupTimer = Webhooks.TimerBox()
    private let scheduleTimer = Webhooks.TimerBox()
    public var pool: DatabasePool { apiTokens.pool }
    /// Uploads being imported, and large request bodies while they are read (inside the data folder).
    public var uploadDirectory: String { imports.directory }

    public init(accounts: Accounts, databases: Databases, resources: Resources, loyalty: Loyalty, tasks: TaskRunner, export: ExportProfilesTask,
                profiles: Profiles, subscriptions: Subscriptions, extras: ProfileExtras, imports: ProfileImports, segments: Segments,
                bulk: BulkUpdates, webhooks: Webhooks, apiTokens: APITokens, files: TaskFiles, clock: Clock = .system,
                undoDays: Int = 30) {
        self.links = SubscriberLinks(pool: apiTokens.pool, clock: clock)
        self.manager = SubscriptionManager(pool: apiTokens.pool, links: links, clock: clock)
        self.suppressions = Suppressions(pool: apiTokens.pool, clock: clock)
        self.archive = DeletionArchive(pool: apiTokens.pool, days: undoDays)
        self.schedules = Schedules(pool: apiTokens.pool, bulk: bulk, clock: clock)
        self.twoFactor = TwoFactor(pool: apiTokens.pool, clock: clock)
        self.webhooks = webhooks
        self.clock = clock
        self.backups = Backups(pool: apiTokens.pool, clock: clock)
        self.approvals = Approvals(pool: apiTokens.pool, tasks: tasks, clock: clock)
        self.apiTokens = apiTokens
        self.files = files
        self.batch = BatchAPI(pool: apiTokens.pool, tokens: apiTokens, links: links, clock: clock)
        self.bulk = bulk
        self.imports = imports
        self.segments = segments
        self.subscriptions = subscriptions
        self.extras = extras
        self.export = export
        self.profiles = profiles
        self.accounts = accounts
        self.databases = databases
        self.resources = resources
        self.loyalty = loyalty
        self.tasks = tasks
    }

    /// Runs `files.sweep` now and every hour on a background queue (uploads of unfinished imports are kept).
    public func startHousekeeping(every seconds: Int = 3600) {
        let source = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "roster.housekeeping"))
        source.schedule(deadline: .now(), repeating: .seconds(seconds))
        source.setEventHandler { [self] in
            let removed = files.sweep()
            if removed > 0 { Log.info("housekeeping", ["removed_files": String(removed)]) }
            do {
                let purged = try archive.purge(now: clock.now())
                if purged > 0 { Log.info("housekeeping", ["purged_deleted_profiles": String(purged)]) }
            } catch {
                Log.error("archive purge failed", ["error": String(describing: error)])
            }
        }
        source.resume()
        housekeeping.replace(with: source)
    }

    /// Scheduled bulk updates: every `seconds`, each schedule whose slot has come launches its task (once per slot,
    /// whichever host gets there first).
    public func startSchedules(every seconds: Int = 15) {
        let source = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "roster.schedules"))
        source.schedule(deadline: .now() + 1, repeating: .seconds(seconds))
        source.setEventHandler { [self] in
            do {
                for id in try schedules.runDue() { Log.info("scheduled task launched", ["task": String(id)]) }
            } catch {
                Log.error("schedules failed", ["error": String(describing: error)])
            }
        }
        source.resume()
        scheduleTimer.replace(with: source)
    }

    /// Scheduled backups: every minute, `Backups.runSchedule` takes the day's backup once its hour has come.
    public func startBackups(directory: String, hour: Int, keep: Int) {
        let source = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "roster.backups"))
        source.schedule(deadline: .now() + 5, repeating: .seconds(60))
        source.setEventHandler { [self] in
            backups.runSchedule(directory: directory, hour: hour, keep: keep)
        }
        source.resume()
        backupTimer.replace(with: source)
    }

    /// Every service over one pool, with the task handlers registered.
    /// `exportDirectory` holds export files (inside the data folder: they carry personal data).
    /// `removalMinMonths`: PROFILES_REMOVAL_MIN_MONTHS, the months of inactivity before the current month that
    /// deletion by conditions requires.
    public static func make(pool: DatabasePool, exportDirectory: String, clock: Clock = .system, chunkSize: Int = 2000, removalMinMonths: Int = 1,
                            taskPauseMilliseconds: Int = 0, fileDays: Int = 7, minFreeMB: Int = 256, taskLeaseSeconds: Int = 60,
                            undoDays: Int = 30) -> Services {
        let export = ExportProfilesTask(directory: exportDirectory)
        let imports = ProfileImports(pool: pool, directory: ((exportDirectory as NSString).deletingLastPathComponent as NSString).appendingPathComponent("uploads"), clock: clock)
        let tasks = TaskRunner(pool: pool, handlers: [CopyProfilesTask.kind: CopyProfilesTask(clock: clock), ExportProfilesTask.kind: export,
                                                      ExportHistoryTask.kind: ExportHistoryTask(files: export),
                                                      ImportProfilesTask.kind: ImportProfilesTask(imports: imports),
                                                      BulkUpdateTask.kind: BulkUpdateTask(clock: clock, removalMinMonths: removalMinMonths)],
                               clock: clock, chunkSize: chunkSize, pauseMilliseconds: taskPauseMilliseconds, leaseSeconds: taskLeaseSeconds)
        let catalogues = CatalogueCache()
        return Services(accounts: Accounts(pool: pool, clock: clock), databases: Databases(pool: pool, clock: clock, catalogues: catalogues),
                        resources: Resources(pool: pool, clock: clock), loyalty: Loyalty(pool: pool, clock: clock),
                        tasks: tasks,
                        export: export, profiles: Profiles(pool: pool, clock: clock, catalogues: catalogues),
                        subscriptions: Subscriptions(pool: pool, clock: clock), extras: ProfileExtras(pool: pool, clock: clock), imports: imports,
                        segments: Segments(pool: pool, clock: clock, catalogues: catalogues),
                        bulk: BulkUpdates(pool: pool, tasks: tasks, clock: clock, removalMinMonths: removalMinMonths),
                        webhooks: Webhooks(pool: pool, clock: clock), apiTokens: APITokens(pool: pool, clock: clock),
                        files: TaskFiles(pool: pool, exportDirectory: exportDirectory, uploadDirectory: imports.directory, clock: clock,
                                         keepDays: fileDays, minFreeBytes: Int64(minFreeMB) << 20),
                        clock: clock, undoDays: undoDays)
    }
}

/// The main navigation, in order.
public enum NavItem: String, CaseIterable, Sendable {
    case databases, segments, tasks, settings
    var label: String { rawValue.prefix(1).uppercased() + rawValue.dropFirst() }
    var href: String { "/" + rawValue }

    /// The menu as the layout shows it, for each item that can be the active one (or none): built once, not per page.
    static let menus: [NavItem?: TemplateValue] = {
        let choices: [NavItem?] = [nil] + allCases.map { $0 }
        return Dictionary(uniqueKeysWithValues: choices.map { active in
            (active, .list(allCases.map { item in
                ["label": .string(item.label), "href": .string(item.href), "active": .bool(item == active)]
            }))
        })
    }()
}
