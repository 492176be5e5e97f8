import CGeoIP
import Foundation

/// A country found for an IPv4 address, with its time zone where the country has one.
public struct IPLocation: Sendable, Equatable {
    public let countryCode: String
    public let country: String
    /// nil for countries spanning several time zones (the country database has no regions to tell them apart).
    public let timeZone: String?

    public init(countryCode: String, country: String, timeZone: String?) {
        self.countryCode = countryCode
        self.country = country
        self.timeZone = timeZone
    }
}

/// Debian's packaged GeoIP country database (geoip-database, read through libgeoip): no network at run time.
public final class GeoIPDatabase: @unchecked Sendable {
    public static let packagedPath = "/usr/share/GeoIP/GeoIP.dat"
    private let handle: UnsafeMutablePointer<GeoIP>
    /// libgeoip keeps per-handle state between calls; one lookup at a time.
    private let lock = NSLock()

    public init?(path: String = GeoIPDatabase.packagedPath) {
        guard FileManager.default.isReadableFile(atPath: path), let handle = roster_geoip_open(path) else { return nil }
        self.handle = handle
    }

    deinit { GeoIP_delete(handle) }

    /// The country of a dotted IPv4 address; nil for private, reserved, unknown or malformed addresses.
    public func locate(_ address: String) -> IPLocation? {
        let parts = address.split(separator: ".", omittingEmptySubsequences: false)
        guard address.utf8.count <= 15, parts.count == 4, parts.allSatisfy({ !$0.isEmpty && UInt8($0) != nil }) else { return nil }
        return lock.withLock {
            guard let code = GeoIP_country_code_by_addr(handle, address), let name = GeoIP_country_name_by_addr(handle, address) else {
                return nil
            }
            let zone = GeoIP_time_zone_by_country_and_region(code, nil).map { String(cString: $0) }
            return IPLocation(countryCode: String(cString: code), country: String(cString: name), timeZone: zone)
        }
    }
}
