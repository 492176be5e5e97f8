import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file sent in a `multipart/form-data` body. Small bodies (pages, under nginx's 1 MB limit) arrive in
/// memory and the file is in `bytes`; a large body was spooled to disk by the server, and then each file part
/// is copied to its own file at `storedPath` (never loaded into memory), and `bytes` is empty.
public struct UploadedFile: Sendable, Equatable {
    public let fieldName: String
    public let filename: String
    public let contentType: String
    public let bytes: [UInt8]
    public let storedPath: String?
    public let size: Int

    public init(fieldName: String, filename: String, contentType: String, bytes: [UInt8], storedPath: String? = nil, size: Int? = nil) {
        self.fieldName = fieldName
        self.filename = filename
        self.contentType = contentType
        self.bytes = bytes
        self.storedPath = storedPath
        self.size = size ?? bytes.count
    }

    /// Moves or writes the file's content to `path` (created 0600: uploads hold personal data).
    public func save(to path: String) throws {
        if let storedPath {
            try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.moveItem(atPath: storedPath, toPath: path)
            chmod(path, 0o600)
        } else {
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteUnknown)
            }
        }
    }
}

public enum Multipart {
    /// The boundary from a `Content-Type: multipart/form-data; boundary=…` header.
    public static func boundary(contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.first?.lowercased() == "multipart/form-data" else { return nil }
        for part in parts.dropFirst() where part.lowercased().hasPrefix("boundary=") {
            var value = String(part.dropFirst("boundary=".count))
            if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value.isEmpty || value.utf8.count > 200 ? nil : value
        }
        return nil
    }

    /// Splits an in-memory body into fields and files; nil when it is not well-formed (missing boundaries, bad
    /// headers, invalid UTF-8 in a field).
    public static func parse(body: [UInt8], boundary: String) -> (FormData, [UploadedFile])? {
        body.withUnsafeBytes { raw in
            parse(raw, boundary: boundary) { name, filename, type, content, _ in
                UploadedFile(fieldName: name, filename: filename, contentType: type, bytes: Array(content))
            }
        }
    }

    /// Splits a body that the server spooled to `path`. The file is memory-mapped, not read into memory, and
    /// each file part is copied to a new file in `directory` — only once `accept` has approved the fields before it
    /// (the CSRF token). On any failure every part written so far is removed again.
    public static func parse(fileAt path: String, boundary: String, directory: String,
                             accept: (FormData) -> Bool = { _ in true }) -> (FormData, [UploadedFile])? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { return nil }
        var written: [String] = []
        let result = data.withUnsafeBytes { raw in
            parse(raw, boundary: boundary) { name, filename, type, content, fields in
                guard accept(fields) else { return nil }
                let target = (directory as NSString).appendingPathComponent("part-" + UUID().uuidString)
                guard FileManager.default.createFile(atPath: target, contents: nil, attributes: [.posixPermissions: 0o600]) else { return nil }
                written.append(target)
                guard let handle = FileHandle(forWritingAtPath: target) else { return nil }
                defer { try? handle.close() }
                var offset = 0
                while offset < content.count {
                    let end = min(content.count, offset + (4 << 20))
                    handle.write(Data(content[offset..<end]))
                    offset = end
                }
                return UploadedFile(fieldName: name, filename: filename, contentType: type, bytes: [], storedPath: target, size: content.count)
            }
        }
        if result == nil { for path in written { unlink(path) } }
        return result
    }

    static func parse(_ body: UnsafeRawBufferPointer, boundary: String,
                      file: (String, String, String, UnsafeRawBufferPointer, FormData) -> UploadedFile?) -> (FormData, [UploadedFile])? {
        let delimiter = Array(("--" + boundary).utf8)
        let nextDelimiter: [UInt8] = [13, 10] + delimiter
        var form = FormData()
        var files: [UploadedFile] = []
        guard var position = find(delimiter, in: body, from: 0) else { return nil }
        position += delimiter.count
        while true {
            // After a delimiter: "--" ends the body, CRLF starts a part.
            if body.count >= position + 2 && body[position] == UInt8(ascii: "-") && body[position + 1] == UInt8(ascii: "-") { break }
            guard body.count >= position + 2, body[position] == 13, body[position + 1] == 10 else { return nil }
            position += 2
            guard let headerEnd = find([13, 10, 13, 10], in: body, from: position), headerEnd - position < 16_384 else { return nil }
            guard let headerText = String(validating: body[position..<headerEnd], as: UTF8.self) else { return nil }
            let contentStart = headerEnd + 4
            guard let next = find(nextDelimiter, in: body, from: contentStart) else { return nil }
            let content = UnsafeRawBufferPointer(rebasing: body[contentStart..<next])
            var name: String?
            var filename: String?
            var type = "application/octet-stream"
            for line in headerText.split(separator: "\r\n") {
                let lower = line.lowercased()
                if lower.hasPrefix("content-disposition:") {
                    name = parameter("name", in: String(line))
                    filename = parameter("filename", in: String(line))
                } else if lower.hasPrefix("content-type:") {
                    type = line.dropFirst("content-type:".count).trimmingCharacters(in: .whitespaces)
                }
            }
            guard let name else { return nil }
            if let filename {
                guard let uploaded = file(name, filename, type, content, form) else { return nil }
                files.append(uploaded)
            } else {
                // A plain field is a form value: a huge one is not a form.
                guard content.count <= 1 << 20, let value = String(validating: content, as: UTF8.self) else { return nil }
                form.append(name, value)
            }
            position = next + nextDelimiter.count
        }
        return (form, files)
    }

    static func parameter(_ key: String, in header: String) -> String? {
        for piece in header.split(separator: ";").dropFirst() {
            let kv = piece.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces).lowercased() == key else { continue }
            var value = kv[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    /// The first occurrence of `needle` at or after `start`: memchr finds candidates for the first byte and
    /// memcmp checks them, so a 100 MB upload is searched at memory speed.
    static func find(_ needle: [UInt8], in haystack: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard !needle.isEmpty, start <= haystack.count, let base = haystack.baseAddress else { return nil }
        return needle.withUnsafeBytes { n -> Int? in
            guard let needleBase = n.baseAddress else { return nil }
            var i = start
            let last = haystack.count - n.count
            while i <= last {
                guard let hit = memchr(base + i, Int32(n[0]), last - i + 1) else { return nil }
                let at = base.distance(to: UnsafeRawPointer(hit))
                if memcmp(base + at, needleBase, n.count) == 0 { return at }
                i = at + 1
            }
            return nil
        }
    }
}
