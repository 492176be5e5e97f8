import QRCode

/// A QR code drawn on the server as one SVG path, so the setup page needs no script and no image request.
enum QRCodeSVG {
    /// Nil when the text does not fit a QR code.
    static func svg(_ text: String, title: String, modulePixels: Int = 5) -> String? {
        guard let code = QRCode(text) else { return nil }
        let quiet = 4  // the four-module light border readers need
        let side = code.size + 2 * quiet
        var path = ""
        for y in 0..<code.size {
            var x = 0
            while x < code.size {
                guard code.isDark(x: x, y: y) else { x += 1; continue }
                var run = 1
                while x + run < code.size && code.isDark(x: x + run, y: y) { run += 1 }
                path += "M\(x + quiet) \(y + quiet)h\(run)v1h-\(run)z"
                x += run
            }
        }
        let pixels = side * modulePixels
        return "<svg class=\"qr\" viewBox=\"0 0 \(side) \(side)\" width=\"\(pixels)\" height=\"\(pixels)\" role=\"img\""
            + " aria-label=\"\(escapeHTML(title))\" shape-rendering=\"crispEdges\"><title>\(escapeHTML(title))</title>"
            + "<rect width=\"\(side)\" height=\"\(side)\" fill=\"#fff\"></rect><path d=\"\(path)\" fill=\"#000\"></path></svg>"
    }
}
