import GeoLocation
import Store

/// Location from IP, in one place: when an address arrives in the tracked `_ip` or the registration `_regip`, the
/// matching location fields that are empty and not given alongside are filled from Debian's packaged GeoIP country
/// database (no network at run time). A value anyone set is never overwritten. The packaged database knows countries
/// (and the time zone of single-zone countries); region and city are left as they are.
enum Geolocation {
    /// Opened once, on first use; nil when the database is not installed (then nothing is filled).
    static let database: GeoIPDatabase? = GeoIPDatabase()

    /// Each address field with the location fields it fills.
    static let rules: [(ip: String, fields: [(key: String, value: @Sendable (IPLocation) -> String?)])] = [
        ("_ip", [("_country", { $0.country }), ("_timezone", { $0.timeZone })]),
        ("_regip", [("_regcountry", { $0.country })]),
    ]

    /// The location values to add, as (field key, column, value): `given` holds the columns this change sets (a
    /// `.null` is a value being cleared, and is left alone too), `current` the profile as it is (nil when new).
    static func fill(given: [String: SQLValue], current: Row?) -> [(key: String, column: String, value: SQLValue)] {
        guard let database else { return [] }
        var out: [(String, String, SQLValue)] = []
        for rule in rules {
            // IP fields hold the address as a 32-bit number (FieldType.ip).
            guard let ipColumn = StandardField.named(rule.ip)?.column, case .integer(let number)? = given[ipColumn],
                  let address = UInt32(exactly: number).map(FieldType.formatIPv4),
                  let location = database.locate(address) else { continue }
            for (key, value) in rule.fields {
                guard let column = StandardField.named(key)?.column, given[column] == nil else { continue }
                if let current, current[column] != .null, current[column] != .text("") { continue }
                if let text = value(location) { out.append((key, column, .text(text))) }
            }
        }
        return out
    }
}
