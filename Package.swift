// swift-tools-version:6.0
import PackageDescription

// One settings list for every Swift target: strict concurrency (language mode 6) everywhere.
let settings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Roster",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "roster", targets: ["roster"]),
        // The parsers under libFuzzer: `make fuzz` builds this with -sanitize=fuzzer (see scripts/fuzz.sh).
        .executable(name: "roster-fuzz", targets: ["roster-fuzz"]),
    ],
    targets: [
        // C at the edges: system libraries from Debian, each behind a module map and a shim header.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CPostgres", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CQRencode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        .systemLibrary(name: "CGeoIP", pkgConfig: "geoip", providers: [.apt(["libgeoip-dev", "geoip-database"])]),

        // What both stores share: values, rows, named queries, migrations. No C.
        .target(name: "StoreCore", swiftSettings: settings),
        // The SQLite layer: the only Swift code that calls sqlite3_*.
        .target(name: "SQLiteStore", dependencies: ["CSQLite", "StoreCore"], swiftSettings: settings),
        // The PostgreSQL layer: the only Swift code that calls libpq's PQ*.
        .target(name: "PostgresStore", dependencies: ["CPostgres", "StoreCore"], swiftSettings: settings),
        // The one way store code reaches either store: Connection, Statement, DatabasePool.
        .target(name: "Store", dependencies: ["SQLiteStore", "PostgresStore", "StoreCore"], swiftSettings: settings),
        // Password hashing and secure random from libsodium; XXH64 from libxxhash; MD5 identifiers from OpenSSL.
        .target(name: "Secrets", dependencies: ["CSodium", "CXXHash", "COpenSSL"], swiftSettings: settings),
        // Countries of IPv4 addresses from Debian's packaged GeoIP database (libgeoip).
        .target(name: "GeoLocation", dependencies: ["CGeoIP"], swiftSettings: settings),
        // QR codes from libqrencode as a matrix of modules (the pages draw them as SVG).
        .target(name: "QRCode", dependencies: ["CQRencode"], swiftSettings: settings),
        // Plain HTTP values (request, response, headers) shared by the web layer and the FastCGI adapter.
        .target(name: "HTTP", swiftSettings: settings),
        // The domain: accounts, sessions, settings; later databases, profiles, segments, bulk actions.
        .target(name: "Roster", dependencies: ["Store", "SQLiteStore", "Secrets", "GeoLocation"], swiftSettings: settings),
        // Pages, router, templates, forms, CSRF. Knows nothing of FastCGI.
        .target(name: "Web", dependencies: ["Roster", "HTTP", "Store", "QRCode"], swiftSettings: settings),
        // libfcgi accept loop turning FastCGI requests into HTTP values. Knows nothing of pages.
        .target(name: "FastCGIServer", dependencies: ["CFastCGI", "HTTP"], swiftSettings: settings),
        .executableTarget(name: "roster", dependencies: ["Web", "FastCGIServer", "Roster"], swiftSettings: settings),
        // Every parser of outside input as a function of bytes; replayed by the tests, fuzzed by `make fuzz`.
        .target(name: "FuzzTargets", dependencies: ["Web", "FastCGIServer", "Roster", "HTTP"], swiftSettings: settings),
        .executableTarget(name: "roster-fuzz", dependencies: ["FuzzTargets"], swiftSettings: settings),

        // Shared by the test suites to run on either store; only test targets depend on it.
        .target(name: "StoreTestSupport", dependencies: ["Roster", "Store", "Secrets"], swiftSettings: settings),
        .testTarget(name: "SQLiteStoreTests", dependencies: ["SQLiteStore"], swiftSettings: settings),
        .testTarget(name: "PostgresStoreTests", dependencies: ["PostgresStore", "StoreTestSupport"], swiftSettings: settings),
        .testTarget(name: "RosterTests", dependencies: ["Roster", "Secrets", "Store", "SQLiteStore", "StoreTestSupport"], swiftSettings: settings),
        .testTarget(name: "WebTests", dependencies: ["Web", "FuzzTargets", "Store", "SQLiteStore", "StoreTestSupport", "GeoLocation"], swiftSettings: settings),
        .testTarget(name: "IntegrationTests", dependencies: [], swiftSettings: settings),
    ]
)
