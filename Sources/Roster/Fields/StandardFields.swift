/// The standard profile fields, grouped as the profile page shows them, with their stable API names
/// (the names the batch API uses: `_fname`, `email`, `phones`, …) and their columns in the profile table.
public struct StandardField: Sendable, Equatable {
    public enum Group: String, Sendable, CaseIterable {
        case personal, contact, registration, tracked
        public var label: String {
            switch self {
            case .personal: return "Personal"
            case .contact: return "Contact"
            case .registration: return "Registration data"
            case .tracked: return "Tracked (latest action)"
            }
        }
    }

    public enum Kind: Sendable, Equatable {
        case typed(FieldType)
        /// The email address: unique within a database.
        case email
        /// A list of phone numbers.
        case phones
    }

    public let key: String
    public let label: String
    public let group: Group
    public let kind: Kind
    public let column: String
    public let options: [String]

    public static let genders = ["male", "female", "other"]

    public static let all: [StandardField] = [
        .init(key: "_fname", label: "First name", group: .personal, kind: .typed(.line), column: "s_fname", options: []),
        .init(key: "_lname", label: "Last name", group: .personal, kind: .typed(.line), column: "s_lname", options: []),
        .init(key: "_mname", label: "Middle name", group: .personal, kind: .typed(.line), column: "s_mname", options: []),
        .init(key: "_sex", label: "Gender", group: .personal, kind: .typed(.enum), column: "s_sex", options: genders),
        .init(key: "_bdate", label: "Birthday", group: .personal, kind: .typed(.date), column: "s_bdate", options: []),
        .init(key: "email", label: "Email", group: .contact, kind: .email, column: "email", options: []),
        .init(key: "phones", label: "Phones", group: .contact, kind: .phones, column: "phones", options: []),
        .init(key: "_regdate", label: "Registration date", group: .registration, kind: .typed(.date), column: "s_regdate", options: []),
        .init(key: "_regip", label: "Reg. IP", group: .registration, kind: .typed(.ip), column: "s_regip", options: []),
        .init(key: "_regcountry", label: "Reg. country", group: .registration, kind: .typed(.line), column: "s_regcountry", options: []),
        .init(key: "_regcity", label: "Reg. city", group: .registration, kind: .typed(.line), column: "s_regcity", options: []),
        .init(key: "_ip", label: "Last IP", group: .tracked, kind: .typed(.ip), column: "s_ip", options: []),
        .init(key: "_country", label: "Country", group: .tracked, kind: .typed(.line), column: "s_country", options: []),
        .init(key: "_region", label: "Region", group: .tracked, kind: .typed(.line), column: "s_region", options: []),
        .init(key: "_city", label: "City", group: .tracked, kind: .typed(.line), column: "s_city", options: []),
        .init(key: "_zip", label: "ZIP code", group: .tracked, kind: .typed(.line), column: "s_zip", options: []),
        .init(key: "_timezone", label: "Time zone", group: .tracked, kind: .typed(.line), column: "s_timezone", options: []),
    ]

    public static func named(_ key: String) -> StandardField? { all.first { $0.key == key } }

    /// Names a custom field may not take (compared without case): the standard names and the profile's own columns.
    public static let reservedNames: Set<String> = Set(all.map { $0.key.lowercased() } + all.map { $0.key.lowercased().trimmingPrefix("_") }.map(String.init)
        + ["id", "profile_id", "status", "range_bucket", "created_at", "updated_at", "last_interaction_at", "engaged_at", "version",
           "subscriptions", "db_id", "token", "matching", "field_name", "field_value", "resource_id", "data", "md5", "xxh",
           "phone", "email_data", "cc_data", "skip_triggers", "skip_invalid_subscriptions"])

    /// Judges a value for this field the way a custom field of the same type would.
    public func parse(_ input: String) -> Result<SQLValueBox, FieldValueError> {
        switch kind {
        case .typed(let type): return type.parse(input, options: options).map(SQLValueBox.init)
        case .email:
            let text = input.trimmed
            if text.isEmpty { return .success(SQLValueBox(.null)) }
            guard let error = EmailAddress.problem(text) else { return .success(SQLValueBox(.text(text.lowercased()))) }
            return .failure(FieldValueError(error))
        case .phones:
            var phones: [String] = []
            for part in input.split(whereSeparator: { $0 == "," || $0 == ";" || $0 == "\n" }) {
                let raw = part.trimmingCharacters(in: .whitespaces)
                if raw.isEmpty { continue }
                guard let phone = PhoneNumber.normalize(raw) else { return .failure(FieldValueError("\(raw) is not a phone number like +79000000000")) }
                if !phones.contains(phone) { phones.append(phone) }
            }
            return .success(SQLValueBox(phones.isEmpty ? .null : .text(JSONValue.array(phones.map { .string($0) }).canonical)))
        }
    }
}

import Foundation
import Store

/// Wraps an SQLValue for APIs that should not leak SQLiteStore types into pages.
public struct SQLValueBox: Sendable, Equatable {
    public let value: SQLValue
    public init(_ value: SQLValue) { self.value = value }
}

public enum EmailAddress {
    /// nil when the address looks deliverable in form (one @, a dotted domain, no spaces); otherwise the reason.
    public static func problem(_ email: String) -> String? {
        let bad = "is not an email address like name@example.com"
        let bytes = email.utf8
        if bytes.count > 254 { return "is longer than 254 characters" }
        // One pass over the bytes (imports check a million of these): one @, a local part of 1…64 bytes, a domain
        // with a dot that neither starts nor ends it, no "..", no leading dot, no white space.
        var at = -1, index = 0, previous: UInt8 = 0, domainDot = false
        for b in bytes {
            switch b {
            case UInt8(ascii: "@"):
                if at >= 0 { return bad }
                at = index
            case UInt8(ascii: "."):
                if previous == UInt8(ascii: ".") || index == 0 || index == at + 1 { return bad }
                if at >= 0 { domainDot = true }
            case 9, 10, 11, 12, 13, 32: return bad
            default: break
            }
            previous = b
            index += 1
        }
        guard at > 0, at <= 64, domainDot, previous != UInt8(ascii: "."), previous != UInt8(ascii: "@") else { return bad }
        // Non-ASCII white space (a no-break space pasted from a document) is rare: checked only when present.
        if !email.utf8.allSatisfy({ $0 < 128 }), email.contains(where: { $0.isWhitespace }) { return bad }
        return nil
    }
}

public enum PhoneNumber {
    /// Keeps a leading + and the digits; refuses anything with letters or fewer than 7 or more than 15 digits (E.164).
    public static func normalize(_ text: String) -> String? {
        var digits = ""
        for (i, c) in text.enumerated() {
            if c.isASCII && c.isNumber { digits.append(c) }
            else if c == "+" && i == 0 { continue }
            else if " -().".contains(c) { continue }
            else { return nil }
        }
        guard (7...15).contains(digits.count) else { return nil }
        return "+" + digits
    }
}
