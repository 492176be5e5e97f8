import FastCGIServer
import Foundation
import HTTP
import Roster
import Web

/// The parsers that read what the outside sends, each a function of raw bytes that must never trap, hang or
/// grow without bound. `make fuzz` drives them with libFuzzer (coverage-guided); `swift test` replays the corpus
/// in Tests/fuzz-corpus (seeds and every crash found, kept as regression cases).
public enum FuzzTargets {
    public static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "form": form, "multipart": multipart, "csv": csv, "json": json, "xml": xml, "selection": selection, "fastcgi": fastcgi,
    ]

    /// Query strings and urlencoded bodies, and the rule builder's tree read from them.
    static func form(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let lenient = FormData(urlEncoded: text)
        _ = SegmentBuilder.tree(from: lenient)
        if let strict = FormData(strict: text) { _ = strict["csrf_token"]; _ = strict.all("node") }
    }

    /// multipart/form-data bodies with a fixed boundary (uploads).
    static func multipart(_ bytes: [UInt8]) {
        _ = Multipart.boundary(contentType: "multipart/form-data; boundary=" + String(decoding: bytes.prefix(80), as: UTF8.self))
        _ = Multipart.parse(body: bytes, boundary: "fuzzboundary")
    }

    /// CSV files as imports read them (from a file, record by record), with the separator detection.
    static func csv(_ bytes: [UInt8]) {
        let path = NSTemporaryDirectory() + "roster-fuzz-\(getpid()).csv"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        defer { unlink(path) }
        _ = CSVReader.looksBinary(path: path)
        let delimiter = CSVReader.detectDelimiter(path: path)
        guard let reader = try? CSVReader(path: path, delimiter: delimiter) else { return }
        var records = 0
        while reader.next() != nil, records < 100_000 { records += 1 }
    }

    /// API bodies in JSON, and what the app reads out of JSON: selections, bulk actions, field values.
    static func json(_ bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self), let value = JSONValue.parse(text) else { return }
        _ = value.canonical
        _ = Selection(json: value)
        _ = BulkAction(json: value)
        for type in FieldType.allCases { _ = type.validate(json: value, options: ["a", "b"]) }
    }

    /// API bodies in XML (a strict reader without DTDs), and the XML answers written back.
    static func xml(_ bytes: [UInt8]) {
        guard let value = try? XMLRequest.parse(bytes) else { return }
        _ = XMLRequest.write(value)
    }

    /// A selection as stored and as the CLI takes it, and the typed values rules compare with.
    static func selection(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        if let value = JSONValue.parse(text), let selection = Selection(json: value) { _ = selection.json.canonical }
        for type in FieldType.allCases { _ = type.parse(text, options: ["a", "b"]) }
        _ = PhoneNumber.normalize(text)
        _ = EmailAddress.problem(text)
    }

    /// FastCGI parameters (name-value pairs in the protocol's length-prefixed encoding) turned into a request:
    /// headers, cookies, the query string.
    static func fastcgi(_ bytes: [UInt8]) {
        var params: [String: String] = [:]
        var i = 0
        func length() -> Int? {
            guard i < bytes.count else { return nil }
            if bytes[i] < 128 { i += 1; return Int(bytes[i - 1]) }
            guard i + 4 <= bytes.count else { return nil }
            let n = (Int(bytes[i] & 0x7F) << 24) | (Int(bytes[i + 1]) << 16) | (Int(bytes[i + 2]) << 8) | Int(bytes[i + 3])
            i += 4
            return n
        }
        while let nameLength = length(), let valueLength = length(), i + nameLength + valueLength <= bytes.count {
            let name = String(decoding: bytes[i..<(i + nameLength)], as: UTF8.self)
            let value = String(decoding: bytes[(i + nameLength)..<(i + nameLength + valueLength)], as: UTF8.self)
            params[name] = value
            i += nameLength + valueLength
        }
        let request = FastCGIServer.makeRequest(params: params, body: [])
        _ = request.cookies
        _ = request.query["next"]
        _ = request.contentType
    }
}
