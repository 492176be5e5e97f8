/// Store code writes one placeholder, `?`, for both stores; PostgreSQL numbers its own (`$1`, `$2`, …).
/// This rewrites the first into the second once per statement text (the result is cached with the prepared
/// statement), leaving every `?` inside a string literal, a quoted identifier or a comment alone.
public enum Placeholders {
    /// The statement with `$n` for each `?`, and how many there were.
    public static func numbered(_ sql: String) -> (sql: String, count: Int) {
        let bytes = Array(sql.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        var count = 0
        var index = 0
        let quote = UInt8(ascii: "'"), doubleQuote = UInt8(ascii: "\""), dash = UInt8(ascii: "-")
        let slash = UInt8(ascii: "/"), star = UInt8(ascii: "*"), newline = UInt8(ascii: "\n")
        func next(_ i: Int) -> UInt8? { i + 1 < bytes.count ? bytes[i + 1] : nil }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case quote, doubleQuote:
                // A literal or identifier runs to the matching quote; a doubled quote inside is an escaped one.
                out.append(byte)
                index += 1
                while index < bytes.count {
                    out.append(bytes[index])
                    if bytes[index] == byte {
                        if next(index) == byte { index += 1; out.append(byte) } else { break }
                    }
                    index += 1
                }
                index += 1
            case dash where next(index) == dash:
                while index < bytes.count && bytes[index] != newline { out.append(bytes[index]); index += 1 }
            case slash where next(index) == star:
                out.append(contentsOf: [slash, star])
                index += 2
                while index < bytes.count && !(bytes[index] == star && next(index) == slash) { out.append(bytes[index]); index += 1 }
                if index < bytes.count { out.append(contentsOf: [star, slash]); index += 2 }
            case UInt8(ascii: "?"):
                count += 1
                out.append(UInt8(ascii: "$"))
                out.append(contentsOf: String(count).utf8)
                index += 1
            default:
                out.append(byte)
                index += 1
            }
        }
        return (String(decoding: out, as: UTF8.self), count)
    }
}
