import Foundation
import Secrets
import Store

/// The batch API: `update_batch` (update only), `import_batch` (update or create) and `add_batch` (create only),
/// in JSON or XML, with the answer in the format of the request.
///
/// Each item is applied whole or not at all (a savepoint per item); a bad item never stops the others. A fault of
/// the request itself (token, database, unreadable body, limits) changes nothing and gets a request-level error.
public final class BatchAPI: Sendable {
    public enum Mode: String, Sendable { case update, `import`, add }

    /// Request-level errors: HTTP status, code and text.
    public struct RequestError: Error, Sendable {
        public let status: Int
        public let code: Int
        public let text: String
    }

    /// Per-item error codes (documented in the README).
    public enum ItemCode {
        public static let ok = 0
        public static let notFound = 1
        public static let invalidData = 2
        public static let exists = 3
        public static let invalidSubscription = 4
        public static let matchingData = 5
    }

    public static let maxItems = 10_000
    public static let maxBytes = 10 * 1024 * 1024
    static let matchings: Set<String> = ["email", "email_profile", "email_sub", "phone", "phone_sub", "profile_id", "push_sub", "custom", "custom_sub", "email_phone", "email_phone_sub"]

    let pool: DatabasePool
    let tokens: APITokens
    let clock: Clock

    /// Signs the subscription-manager link a profile read returns.
    let links: SubscriberLinks
    public init(pool: DatabasePool, tokens: APITokens, links: SubscriberLinks, clock: Clock = .system) {
        self.links = links
        self.pool = pool
        self.tokens = tokens
        self.clock = clock
    }

    /// Reads a request body (JSON or XML) into its parameters and checks the token; `databaseRequired` also checks
    /// db_id against the token's scope.
    func authenticate(_ body: [UInt8], xml: Bool, databaseRequired: Bool, address: String) throws -> (params: [String: JSONValue], token: APIToken, databaseID: Int64?) {
        if body.count > BatchAPI.maxBytes { throw RequestError(status: 413, code: 413, text: "The request is larger than 10 MB; send the profiles in several requests.") }
        let request: JSONValue
        if xml {
            do { request = try XMLRequest.parse(body) } catch let e as XMLRequest.Failure { throw RequestError(status: 400, code: 400, text: e.description) }
        } else {
            guard let text = String(validating: body, as: UTF8.self), let json = JSONValue.parse(text) else {
                throw RequestError(status: 400, code: 400, text: "The body is not valid JSON.")
            }
            request = json
        }
        guard case .object(let params) = request else { throw RequestError(status: 400, code: 400, text: "The body must be an object with the token and the parameters.") }
        let token: APIToken
        do {
            guard let tokenText = params["token"]?.stringValue, let found = try tokens.authenticate(tokenText, from: address) else {
                throw RequestError(status: 401, code: 401, text: "The token is missing, wrong, expired or revoked.")
            }
            token = found
        } catch is APITokens.Throttled {
            throw RequestError(status: 429, code: 429, text: "Too many requests with wrong tokens from this address; wait 15 minutes.")
        }
        guard databaseRequired else { return (params, token, nil) }
        guard let databaseID = BatchAPI.int(params["db_id"]) else { throw RequestError(status: 400, code: 400, text: "db_id is missing or not a number.") }
        guard token.databaseIDs.contains(databaseID), try pool.read({ try $0.queryOne(DatabaseStore.byID, [databaseID]) }) != nil else {
            throw RequestError(status: 404, code: 404, text: "No database \(databaseID) for this token.")
        }
        return (params, token, databaseID)
    }

    /// Handles one request body; returns the answer as JSON (or XML when `xml`), and whether it is a replay.
    public func handle(mode: Mode, body: [UInt8], xml: Bool, idempotencyKey: String?, address: String = "") -> (status: Int, body: String, replayed: Bool) {
        func answer(_ value: JSONValue) -> String { xml ? XMLRequest.write(value) : value.canonical + "\n" }
        func failure(_ e: RequestError) -> (Int, String, Bool) {
            (e.status, answer(.object(["error": .int(Int64(e.code)), "error_text": .string(e.text)])), false)
        }
        do {
            let (params, token, database) = try authenticate(body, xml: xml, databaseRequired: true, address: address)
            guard let databaseID = database else { throw RequestError(status: 400, code: 400, text: "db_id is missing or not a number.") }
            if let key = idempotencyKey, key.utf8.count > 200 { throw RequestError(status: 400, code: 400, text: "The Idempotency-Key is longer than 200 characters.") }
            // The key is bound to the request it first came with: the same body replays, another body is refused.
            let digest = Secrets.digest(mode.rawValue + (xml ? " xml " : " json ") + String(decoding: body, as: UTF8.self))
            if let key = idempotencyKey, let stored = try pool.read({ try $0.queryOne(APIStore.replay, [token.id, key, clock.now() - 86_400]) }) {
                guard stored.string("request_digest") == digest else {
                    throw RequestError(status: 422, code: 422,
                                       text: "This Idempotency-Key was used with a different request in the last 24 hours; use a new key.")
                }
                return (200, stored.string("response") ?? "", true)
            }
            var items: [JSONValue]
            switch params["data"] {
            case .array(let list)?: items = list
            case .object(let one)?: items = [.object(one)]   // XML with a single <data>
            default: throw RequestError(status: 400, code: 400, text: "data must be an array of profiles.")
            }
            if items.count > BatchAPI.maxItems { throw RequestError(status: 413, code: 413, text: "At most 10,000 profiles per request; this one has \(items.count).") }
            let matching = params["matching"]?.stringValue ?? "email"
            guard BatchAPI.matchings.contains(matching) else {
                throw RequestError(status: 400, code: 400, text: "matching must be one of: \(BatchAPI.matchings.sorted().joined(separator: ", ")).")
            }
            let resourceID = BatchAPI.int(params["resource_id"])
            let fieldName = params["field_name"]?.stringValue
            if matching.hasPrefix("custom") && (fieldName ?? "").isEmpty { throw RequestError(status: 400, code: 400, text: "matching \(matching) needs field_name.") }
            let options = BatchOptions(mode: mode, databaseID: databaseID, matching: matching, resourceID: resourceID, fieldName: fieldName,
                                       fieldValue: params["field_value"], skipInvalidSubscriptions: BatchAPI.bool(params["skip_invalid_subscriptions"]),
                                       skipTriggers: BatchAPI.bool(params["skip_triggers"]), now: clock.now(),
                                       detectLocation: params["detect_location"].map(BatchAPI.bool) ?? true)
            let text = try pool.write { db -> String in
                let catalogue = try Profiles.catalogue(databaseID, db)
                if matching.hasPrefix("phone") || matching.hasPrefix("email_phone") { try db.execute(ProfileTable.createFirstPhoneIndex(databaseID, db.dialect)) }
                var results: [JSONValue] = []
                for item in items {
                    try db.run("SAVEPOINT api_item")
                    do {
                        let profileID = try BatchItem(options: options, catalogue: catalogue, db: db).apply(item)
                        try db.run("RELEASE api_item")
                        results.append(.object(["error": .int(0), "error_text": .string("Successful operation"), "profile_id": .string(profileID)]))
                    } catch let e as ItemError {
                        try db.run("ROLLBACK TO api_item")
                        try db.run("RELEASE api_item")
                        results.append(.object(["error": .int(Int64(e.code)), "error_text": .string(e.text), "profile_id": e.profileID.map { .string($0) } ?? .string("")]))
                    } catch let e as any StoreFailure where e.isUnstorableValue {
                        // A value the store cannot hold (U+0000 on PostgreSQL) that no field rule caught: this item only.
                        try db.run("ROLLBACK TO api_item")
                        try db.run("RELEASE api_item")
                        results.append(.object(["error": .int(400), "error_text": .string(BatchAPI.unstorable), "profile_id": .string("")]))
                    }
                }
                let text = answer(.object(["error": .int(0), "error_text": .string("Successful operation"), "result": .array(results)]))
                try db.run(APIStore.used, [options.now, token.id])
                if let key = idempotencyKey {
                    try db.run(APIStore.forget, [options.now - 86_400])
                    try db.run(APIStore.remember, [token.id, key, xml ? "xml" : "json", text, options.now, digest])
                }
                return text
            }
            return (200, text, false)
        } catch let e as RequestError {
            return failure(e)
        } catch let e as any StoreFailure where e.isUnstorableValue {
            return failure(RequestError(status: 400, code: 400, text: BatchAPI.unstorable + " Nothing was changed."))
        } catch {
            return failure(RequestError(status: 500, code: 500, text: "The request could not be completed; nothing was changed."))
        }
    }

    static let unstorable = "A value contains a character Roster cannot store (U+0000)."

    static func int(_ value: JSONValue?) -> Int64? {
        switch value {
        case .int(let i)?: return i
        case .double(let d)?: return Int64(exactly: d)
        case .string(let s)?: return Int64(s.trimmed)
        default: return nil
        }
    }

    static func bool(_ value: JSONValue?) -> Bool {
        switch value {
        case .bool(let b)?: return b
        case .int(let i)?: return i != 0
        case .string(let s)?: return ["true", "1", "yes"].contains(s.trimmed.lowercased())
        default: return false
        }
    }
}

struct BatchOptions {
    let mode: BatchAPI.Mode
    let databaseID: Int64
    let matching: String
    let resourceID: Int64?
    let fieldName: String?
    let fieldValue: JSONValue?
    let skipInvalidSubscriptions: Bool
    let skipTriggers: Bool
    let now: Int64
    /// Location from IP: on for API imports unless `detect_location` is false (as the spec says).
    var detectLocation = true
}

struct ItemError: Error {
    let code: Int
    let text: String
    var profileID: String? = nil
}

/// One item of a batch: find the profile, check every value, write, subscribe.
struct BatchItem {
    let options: BatchOptions
    let catalogue: Profiles.Catalogue
    let db: Connection

    var table: String { ProfileTable.name(options.databaseID) }
    var subscriptionsTable: String { Subscriptions.table(options.databaseID) }
    /// Keys of an item that are not profile fields.
    static let control: Set<String> = ["subscriptions", "profile_id", "phone", "subscription_id", "provider"]

    var writer: ProfileWriter {
        var writer = ProfileWriter(db, databaseID: options.databaseID, catalogue: catalogue, actor: nil, origin: .api, now: options.now,
                                   skipTriggers: options.skipTriggers)
        writer.detectLocation = options.detectLocation
        return writer
    }

    /// Matching by a subscription's contact: the item's email or phone is that subscription's address, which is not
    /// the profile's own email (and may be another profile's).
    var matchesBySubscription: Bool { options.matching.hasSuffix("_sub") }

    func string(_ v: JSONValue?) -> String? {
        switch v {
        case .string(let s)?: return s.trimmed.isEmpty ? nil : s.trimmed
        case .int(let i)?: return String(i)
        case .double(let d)?: return d.isFinite ? String(d) : nil
        default: return nil
        }
    }

    static func itemError(_ error: ValidationError, _ code: Int, profileID: String?) -> ItemError {
        ItemError(code: code, text: error.fieldErrors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
            .joined(separator: " "), profileID: profileID)
    }

    func apply(_ item: JSONValue) throws -> String {
        guard case .object(let data) = item else {
            throw ItemError(code: BatchAPI.ItemCode.invalidData, text: "Each item of data must be an object of profile fields.")
        }
        let existing = try find(data)
        switch (options.mode, existing) {
        case (.update, nil):
            throw ItemError(code: BatchAPI.ItemCode.notFound,
                            text: "No profile matches (matching \(options.matching)); update_batch never creates profiles.")
        case (.add, let row?):
            throw ItemError(code: BatchAPI.ItemCode.exists, text: "A profile matches already; add_batch only creates.",
                            profileID: row.string("profile_id"))
        default: break
        }
        var inputs: [String: FieldValueInput] = [:]
        for (key, value) in data where !BatchItem.control.contains(key) { inputs[key] = .json(value) }
        let rowID: Int64
        let profileID: String
        let writer = self.writer
        if let existing {
            rowID = existing.int64("id") ?? 0
            profileID = existing.string("profile_id") ?? ""
            if matchesBySubscription { inputs["email"] = nil }
            do { try writer.update(existing, inputs) } catch let e as ValidationError {
                throw BatchItem.itemError(e, BatchAPI.ItemCode.invalidData, profileID: profileID)
            }
        } else {
            if matchesBySubscription, let email = inputs["email"], case .json(let v) = email, let text = string(v),
               try db.queryOne("SELECT 1 FROM \(table) WHERE email = ?", [text.lowercased()]) != nil {
                inputs["email"] = nil  // the subscription's address is another profile's email: not this one's
            }
            do { (rowID, profileID) = try writer.create(inputs) } catch let e as ValidationError {
                let code = e.fieldErrors["email"]?.hasPrefix("Another profile") == true ? BatchAPI.ItemCode.exists : BatchAPI.ItemCode.invalidData
                throw BatchItem.itemError(e, code, profileID: nil)
            }
        }
        if let subs = data["subscriptions"] {
            let list: [JSONValue]
            switch subs {
            case .array(let a): list = a
            case .object: list = [subs]
            default:
                throw ItemError(code: BatchAPI.ItemCode.invalidSubscription, text: "subscriptions must be an array.", profileID: profileID)
            }
            for sub in list {
                do {
                    try db.run("SAVEPOINT api_subscription")
                    try subscribe(sub, writer: writer, rowID: rowID, profileID: profileID)
                    try db.run("RELEASE api_subscription")
                } catch let e as ItemError {
                    try db.run("ROLLBACK TO api_subscription")
                    try db.run("RELEASE api_subscription")
                    if options.skipInvalidSubscriptions { continue }  // skipped: the profile is still updated
                    throw e
                }
            }
        }
        return profileID
    }

    // MARK: Matching

    func find(_ data: [String: JSONValue]) throws -> Row? {
        func need(_ what: String) -> ItemError {
            ItemError(code: BatchAPI.ItemCode.matchingData, text: "matching \(options.matching) needs the item's \(what).")
        }
        func byEmail() throws -> Row? {
            guard let email = string(data["email"]) else { throw need("email") }
            return try db.queryOne("SELECT * FROM \(table) WHERE email = ?", [email.lowercased()])
        }
        func phoneValue() -> String? {
            if let p = string(data["phone"]) { return PhoneNumber.normalize(p) }
            if case .array(let items)? = data["phones"], let first = items.first.flatMap({ string($0) }) { return PhoneNumber.normalize(first) }
            return string(data["phones"]).flatMap { PhoneNumber.normalize($0.split(separator: ",").first.map(String.init) ?? $0) }
        }
        func byPhone() throws -> Row? {
            guard let phone = phoneValue() else { throw need("phone (or phones)") }
            return try db.queryOne("SELECT * FROM \(table) WHERE \(ProfileTable.firstPhone(db.dialect)) = ?", [phone])
        }
        /// The profile with a live subscription on one of `channels` with this contact, in the request's resource
        /// or, without one, in every resource attached to the database. Two profiles found: the item says so.
        func bySubscription(_ channels: [String], _ contact: String, provider: String? = nil) throws -> Row? {
            var sql = """
                SELECT DISTINCT s.profile FROM \(subscriptionsTable) s
                WHERE s.channel IN (\(channels.map { _ in "?" }.joined(separator: ", "))) AND s.contact = ? AND s.deleted = 0
                """
            var params: [SQLValue] = channels.map { .text($0) } + [.text(contact)]
            if let resourceID = options.resourceID {
                sql += " AND s.resource_id = ?"
                params.append(.integer(resourceID))
            } else {
                sql += " AND s.resource_id IN (SELECT resource_id FROM database_resources WHERE database_id = ?)"
                params.append(.integer(options.databaseID))
            }
            if let provider {
                sql += " AND s.provider = ?"
                params.append(.text(provider))
            }
            let found = try db.prepare(sql + " LIMIT 2").query(params).compactMap { $0.int64("profile") }
            if found.count > 1 {
                throw ItemError(code: BatchAPI.ItemCode.matchingData,
                                text: "Several profiles have this \(channels[0]) subscription; name the resource (resource_id) to choose one.")
            }
            guard let id = found.first else { return nil }
            return try db.queryOne("SELECT * FROM \(table) WHERE id = ?", [id])
        }
        func byEmailSub() throws -> Row? {
            guard let email = string(data["email"]) else { throw need("email") }
            return try bySubscription(["email"], email.lowercased())
        }
        func byPhoneSub() throws -> Row? {
            guard let phone = phoneValue() else { throw need("phone") }
            return try bySubscription(["sms", "whatsapp", "viber"], phone)
        }
        func byCustom() throws -> Row? {
            let name = options.fieldName ?? ""
            guard let field = catalogue.custom.first(where: { $0.name == name }) else {
                throw ItemError(code: BatchAPI.ItemCode.matchingData, text: "field_name \(name) is not a field of this database.")
            }
            guard let raw = data[name] ?? options.fieldValue else { throw need(name) }
            switch field.type.validate(json: raw, options: field.options) {
            case .success(let value):
                if value == .null { throw need(name) }
                if field.type == .tags {
                    // Tags match by their combination: the same set, in any order.
                    let wanted = JSONValue.encodeStrings(JSONValue.stringList(value.string).sorted())
                    return try db.queryOne("""
                        SELECT * FROM \(table) WHERE \(field.column) IS NOT NULL
                        AND \(db.dialect.jsonStringSetEquals(field.column))
                        ORDER BY id LIMIT 1
                        """, [wanted])
                }
                return try db.queryOne("SELECT * FROM \(table) WHERE \(field.column) = ? ORDER BY id LIMIT 1", [value])
            case .failure(let e): throw ItemError(code: BatchAPI.ItemCode.matchingData, text: "\(name) \(e.reason).")
            }
        }
        switch options.matching {
        case "email": return try byEmail()
        case "email_profile":
            if let found = try (string(data["email"]) != nil ? byEmail() : nil) { return found }
            guard let id = string(data["profile_id"]) else {
                if string(data["email"]) == nil { throw need("email or profile_id") }
                return nil
            }
            return try db.queryOne("SELECT * FROM \(table) WHERE profile_id = ?", [id.lowercased()])
        case "profile_id":
            guard let id = string(data["profile_id"]) else { throw need("profile_id") }
            return try db.queryOne("SELECT * FROM \(table) WHERE profile_id = ?", [id.lowercased()])
        case "phone": return try byPhone()
        case "email_phone":
            if string(data["email"]) == nil && phoneValue() == nil { throw need("email or phone") }
            if string(data["email"]) != nil, let found = try byEmail() { return found }
            return phoneValue() == nil ? nil : try byPhone()
        case "email_sub": return try byEmailSub()
        case "phone_sub": return try byPhoneSub()
        case "email_phone_sub":
            if string(data["email"]) == nil && phoneValue() == nil { throw need("email or phone") }
            if string(data["email"]) != nil, let found = try byEmailSub() { return found }
            return phoneValue() == nil ? nil : try byPhoneSub()
        case "push_sub":
            // The spec's push object: provider + subscription_id, at the item's top level or in its push subscription.
            var id = string(data["subscription_id"])
            var provider = string(data["provider"])
            if id == nil, case .array(let subs)? = data["subscriptions"] {
                for case .object(let o) in subs where o["channel"]?.stringValue == "push" {
                    id = string(o["subscription_id"])
                    provider = string(o["provider"])
                    break
                }
            }
            guard let id else { throw need("push provider and subscription_id") }
            return try bySubscription(["push"], id, provider: provider)
        case "custom": return try byCustom()
        case "custom_sub":
            guard let row = try byCustom() else { return nil }
            var sql = "SELECT 1 FROM \(subscriptionsTable) WHERE profile = ? AND deleted = 0"
            var params: [SQLValue] = [.integer(row.int64("id") ?? 0)]
            if let resourceID = options.resourceID {
                sql += " AND resource_id = ?"
                params.append(.integer(resourceID))
            }
            return try db.queryOne(sql, params) == nil ? nil : row
        default: return nil
        }
    }

    // MARK: Subscriptions

    func subscribe(_ value: JSONValue, writer: ProfileWriter, rowID: Int64, profileID: String) throws {
        func bad(_ text: String) -> ItemError {
            ItemError(code: BatchAPI.ItemCode.invalidSubscription, text: "subscription: " + text, profileID: profileID)
        }
        guard case .object(let s) = value else { throw bad("each subscription is an object.") }
        guard let resourceID = BatchAPI.int(s["resource_id"]) else { throw bad("resource_id is missing.") }
        guard let channelText = s["channel"]?.stringValue, let channel = Channel(rawValue: channelText) else {
            throw bad("channel must be one of email, sms, push, telegram_bot, whatsapp, viber.")
        }
        var contact: String?
        var provider = ""
        func cc(_ key: String) -> String? { if case .object(let o)? = s["cc_data"] { return string(o[key]) } else { return nil } }
        switch channel {
        case .email:
            contact = string(s["email"])
            if contact == nil, case .object(let o)? = s["email_data"] { contact = string(o["email"]) }
        case .sms: contact = string(s["phone"])
        case .push: contact = string(s["subscription_id"]); provider = string(s["provider"]) ?? ""
        case .telegram_bot: contact = cc("id")
        case .whatsapp, .viber: contact = cc("phone")
        }
        guard let contact else { throw bad("the \(channel.rawValue) channel needs its contact (see the channel's fields).") }
        // -1 or absent: unchanged (a new subscription is subscribed); 0 is a value.
        var status: ProfileStatus?
        if let raw = s["status"] {
            if BatchAPI.int(raw) == -1 { status = nil }
            else if let text = string(raw), let parsed = ProfileStatus(text: text) { status = parsed }
            else { throw bad("status must be a status name or code 0–6 (or -1 for unchanged).") }
        }
        var priority: Int?
        if let raw = s["priority"] {
            guard let p = BatchAPI.int(raw), p >= -1, p <= 1_000_000 else { throw bad("priority must be a number from 0 to 1,000,000 (or -1).") }
            priority = p == -1 ? nil : Int(p)
        }
        var categories: [String]?
        switch s["cats"] {
        case .array(let items)?: categories = items.compactMap { string($0) }
        case .string(let one)?: categories = [one]
        case nil, .null?: categories = nil
        default: throw bad("cats must be a list of category names.")
        }
        var fields: [String: JSONValue] = [:]
        switch s["custom_fields"] {
        case .object(let custom)?: fields = custom
        case nil, .null?: break
        default: throw bad("custom_fields must be an object of field names and values.")
        }
        do {
            try writer.subscribe(rowID: rowID, profileID: profileID,
                                 SubscriptionChange(resourceID: resourceID, channel: channel.rawValue, contact: contact, provider: provider,
                                                    status: status, priority: priority, categories: categories, fields: fields))
        } catch let e as ValidationError {
            throw bad(e.fieldErrors.sorted { $0.key < $1.key }.map(\.value).joined(separator: " "))
        } catch let refusal as UnsafeStatusRefusal {
            throw bad(refusal.message)
        } catch let suppressed as SuppressedContact {
            throw bad(suppressed.message)
        }
    }
}

// MARK: The siblings: read a profile, list databases and fields, record interactions.

extension BatchAPI {
    public enum Sibling: String, Sendable { case getProfile, listDatabases, listFields, events }

    public func handle(_ sibling: Sibling, body: [UInt8], xml: Bool, address: String = "") -> (status: Int, body: String) {
        func answer(_ value: JSONValue) -> String { xml ? XMLRequest.write(value) : value.canonical + "\n" }
        let ok: [String: JSONValue] = ["error": .int(0), "error_text": .string("Successful operation")]
        do {
            let (params, token, scoped) = try authenticate(body, xml: xml, databaseRequired: sibling != .listDatabases, address: address)
            // Every sibling but listDatabases names its database (authenticate checked it against the token).
            let databaseID = scoped ?? 0
            switch sibling {
            case .listDatabases:
                let list = try pool.read { db in
                    try db.query(DatabaseStore.all).compactMap { row -> JSONValue? in
                        guard let id = row.int64("id"), token.databaseIDs.contains(id) else { return nil }
                        let count = try db.scalar(ProfileTable.count(id)).int ?? 0
                        return .object(["id": .int(id), "name": .string(row.string("name") ?? ""), "profiles": .int(Int64(count))])
                    }
                }
                return (200, answer(.object(ok.merging(["databases": .array(list)]) { $1 })))
            case .listFields:
                let (standard, custom) = try pool.read { db in (try Databases.standardSettings(databaseID, db), try Databases.fields(databaseID, db)) }
                var fields: [JSONValue] = StandardField.all.map { f in
                    let type: String = { switch f.kind { case .typed(let t): return t.rawValue; case .email: return "email"; case .phones: return "phones" } }()
                    return .object(["name": .string(f.key), "label": .string(f.label), "type": .string(type), "standard": .bool(true),
                                    "required": .bool(standard[f.key]?.required ?? false), "options": .array(f.options.map { .string($0) })])
                }
                fields += custom.map { f in
                    .object(["name": .string(f.name), "label": .string(f.name), "type": .string(f.type.rawValue), "standard": .bool(false),
                             "required": .bool(f.required), "options": .array(f.options.map { .string($0) })])
                }
                return (200, answer(.object(ok.merging(["fields": .array(fields)]) { $1 })))
            case .getProfile:
                let profile = try pool.read { db -> JSONValue? in
                    let catalogue = try Profiles.catalogue(databaseID, db)
                    let options = BatchOptions(mode: .update, databaseID: databaseID, matching: params["matching"]?.stringValue ?? "email", resourceID: BatchAPI.int(params["resource_id"]),
                                               fieldName: params["field_name"]?.stringValue, fieldValue: params["field_value"], skipInvalidSubscriptions: false, skipTriggers: true, now: clock.now())
                    guard BatchAPI.matchings.contains(options.matching) else { throw RequestError(status: 400, code: 400, text: "Unknown matching \(options.matching).") }
                    let item = BatchItem(options: options, catalogue: catalogue, db: db)
                    let row: Row?
                    do { row = try item.find(params) } catch let e as ItemError { throw RequestError(status: 400, code: e.code, text: e.text) }
                    guard let row else { return nil }
                    let p = Profiles.profile(row, catalogue.columns)
                    let subs = try db.query("SELECT * FROM subscriptions_\(databaseID) WHERE profile = ? AND deleted = 0 ORDER BY resource_id, channel, priority", [p.rowID]).map(Subscription.init(row:))
                    return .object([
                        "subscription_manager_url": .string(try links.managerURL(databaseID: databaseID, profileID: p.profileID)),
                        "profile_id": .string(p.profileID), "status": .string(p.status.name), "status_code": .int(Int64(p.status.rawValue)),
                        "fields": .object(p.values.filter { !$0.value.isEmpty }.mapValues { .string($0) }),
                        "subscriptions": .array(subs.map { sub in .object(["resource_id": .int(sub.resourceID), "channel": .string(sub.channel.rawValue), "contact": .string(sub.contact),
                                                                           "status": .string(sub.status.name), "priority": .int(Int64(sub.priority)),
                                                                           "cats": .array(sub.categories.map { .string($0) })]) }),
                    ])
                }
                guard let profile else { throw RequestError(status: 404, code: ItemCode.notFound, text: "No profile matches.") }
                return (200, answer(.object(ok.merging(["profile": profile]) { $1 })))
            case .events:
                guard case .array(let items)? = params["data"] else { throw RequestError(status: 400, code: 400, text: "data must be an array of events.") }
                if items.count > BatchAPI.maxItems { throw RequestError(status: 413, code: 413, text: "At most 10,000 events per request.") }
                let allowed: Set<String> = [HistoryEvent.sent, HistoryEvent.delivered, HistoryEvent.opened, HistoryEvent.clicked, HistoryEvent.goal]
                let now = clock.now()
                let results = try pool.write { db -> [JSONValue] in
                    let catalogue = try Profiles.catalogue(databaseID, db)
                    let options = BatchOptions(mode: .update, databaseID: databaseID, matching: params["matching"]?.stringValue ?? "email", resourceID: BatchAPI.int(params["resource_id"]),
                                               fieldName: params["field_name"]?.stringValue, fieldValue: nil, skipInvalidSubscriptions: false, skipTriggers: true, now: now)
                    guard BatchAPI.matchings.contains(options.matching) else { throw RequestError(status: 400, code: 400, text: "Unknown matching \(options.matching).") }
                    let finder = BatchItem(options: options, catalogue: catalogue, db: db)
                    return try items.map { item -> JSONValue in
                        func fail(_ code: Int, _ text: String) -> JSONValue { .object(["error": .int(Int64(code)), "error_text": .string(text), "profile_id": .string("")]) }
                        guard case .object(let event) = item else { return fail(ItemCode.invalidData, "Each event is an object.") }
                        guard let type = event["type"]?.stringValue, allowed.contains(type) else {
                            return fail(ItemCode.invalidData, "type must be one of: \(allowed.sorted().joined(separator: ", ")).")
                        }
                        var at = now
                        if let raw = event["at"] {
                            if let seconds = BatchAPI.int(raw) { at = seconds }
                            else if let text = raw.stringValue, let instant = FieldType.instant(text) {
                                at = instant  // with its time of day
                            } else { return fail(ItemCode.invalidData, "at is a Unix time or an RFC 3339 date.") }
                            if at > now + 300 { return fail(ItemCode.invalidData, "at is in the future.") }
                            if at < 0 { return fail(ItemCode.invalidData, "at is before 1970.") }
                        }
                        let row: Row?
                        do { row = try finder.find(event) } catch let e as ItemError { return fail(e.code, e.text) }
                        guard let row, let rowID = row.int64("id") else { return fail(ItemCode.notFound, "No profile matches.") }
                        var details: [String: JSONValue] = ["how": .string("api")]
                        if case .object(let extra)? = event["details"] { details["details"] = .object(extra) }
                        // Recorded in the history; as an interaction it also moves the profile's last-interaction time.
                        var writer = ProfileWriter(db, databaseID: databaseID, catalogue: catalogue, actor: nil, origin: .api, now: at,
                                                   skipTriggers: true)
                        // An event with the customer's address: the latest action's IP, and the location it gives.
                        if let ip = event["ip"] {
                            writer.detectLocation = params["detect_location"].map(BatchAPI.bool) ?? true
                            do { try writer.update(row, ["_ip": .json(ip)], empty: .keep) } catch let e as ValidationError {
                                return fail(ItemCode.invalidData, e.fieldErrors.values.sorted().joined(separator: " "))
                            }
                        }
                        try writer.record(rowID, type, details)
                        return .object(["error": .int(0), "error_text": .string("Successful operation"), "profile_id": .string(row.string("profile_id") ?? "")])
                    }
                }
                return (200, answer(.object(ok.merging(["result": .array(results)]) { $1 })))
            }
        } catch let e as RequestError {
            return (e.status, answer(.object(["error": .int(Int64(e.code)), "error_text": .string(e.text)])))
        } catch {
            return (500, answer(.object(["error": .int(500), "error_text": .string("The request could not be completed; nothing was changed.")])))
        }
    }
}

