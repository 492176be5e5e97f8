/// Small server-rendered SVG charts. Every label and number is written as text beside its bar, so colour is
/// never the only carrier of meaning; all text is escaped; colours are presentation attributes (the CSP forbids
/// inline styles).
enum SVGChart {
    struct Bar {
        let label: String
        let value: Int
        let color: String
    }

    static func format(_ n: Int) -> String { View.count(n) }

    /// One horizontal bar per item, scaled to the largest.
    static func bars(title: String, _ items: [Bar], width: Int = 560) -> String {
        let rowHeight = 26, labelWidth = 130, countWidth = 90
        let height = items.count * rowHeight + 8
        let maxValue = max(1, items.map(\.value).max() ?? 1)
        let barSpace = width - labelWidth - countWidth
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"\(escapeHTML(title))\"><title>\(escapeHTML(title))</title>"
        for (i, item) in items.enumerated() {
            let y = i * rowHeight + 4
            let w = item.value == 0 ? 0 : max(2, item.value * barSpace / maxValue)
            svg += "<text x=\"0\" y=\"\(y + 16)\" font-size=\"13\" fill=\"#1d2433\">\(escapeHTML(item.label))</text>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y + 3)\" width=\"\(w)\" height=\"17\" rx=\"3\" fill=\"\(item.color)\"></rect>"
            svg += "<text x=\"\(labelWidth + w + 6)\" y=\"\(y + 16)\" font-size=\"13\" fill=\"#1d2433\">\(format(item.value))</text>"
        }
        return svg + "</svg>"
    }

    /// One column per period (e.g. month), with the count above and the period below.
    static func columns(title: String, _ items: [(label: String, value: Int)], width: Int = 640, height: Int = 200) -> String {
        let maxValue = max(1, items.map(\.value).max() ?? 1)
        let slot = width / max(1, items.count)
        let plot = height - 40
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\" role=\"img\" aria-label=\"\(escapeHTML(title))\"><title>\(escapeHTML(title))</title>"
        svg += "<line x1=\"0\" y1=\"\(plot + 16)\" x2=\"\(width)\" y2=\"\(plot + 16)\" stroke=\"#d9dee8\"></line>"
        for (i, item) in items.enumerated() {
            let h = item.value == 0 ? 0 : max(2, item.value * (plot - 16) / maxValue)
            let x = i * slot + slot / 6
            let w = slot * 2 / 3
            svg += "<rect x=\"\(x)\" y=\"\(plot + 16 - h)\" width=\"\(w)\" height=\"\(h)\" rx=\"2\" fill=\"#2456c7\"></rect>"
            svg += "<text x=\"\(x + w / 2)\" y=\"\(plot + 12 - h)\" font-size=\"11\" text-anchor=\"middle\" fill=\"#1d2433\">\(format(item.value))</text>"
            svg += "<text x=\"\(x + w / 2)\" y=\"\(height - 6)\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5b6476\">\(escapeHTML(item.label))</text>"
        }
        return svg + "</svg>"
    }

    static func color(_ status: String) -> String {
        switch status {
        case "subscribed": return "#1e7a3c"
        case "unconfirmed", "suspended": return "#c98a00"
        default: return "#b3261e"
        }
    }
}
