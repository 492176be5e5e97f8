import CQRencode

/// A QR code as a square of modules, from libqrencode. Drawing is the caller's business.
public struct QRCode: Sendable {
    public let size: Int
    /// Row-major, `size * size` entries; true is a dark module.
    public let modules: [Bool]

    /// Encodes text (as bytes, error correction M), or nil when it does not fit or libqrencode fails.
    public init?(_ text: String) {
        guard text.utf8.count <= 1024 else { return nil }
        guard let code = text.withCString({ QRcode_encodeString8bit($0, 0, QR_ECLEVEL_M) }) else { return nil }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        guard width > 0, let data = code.pointee.data else { return nil }
        size = width
        // libqrencode marks a dark module with the lowest bit of each byte.
        modules = (0..<(width * width)).map { data[$0] & 1 == 1 }
    }

    public func isDark(x: Int, y: Int) -> Bool { modules[y * size + x] }
}
