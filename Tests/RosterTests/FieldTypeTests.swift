@testable import Roster
import Store
import XCTest

/// Table-driven: each type with the values it accepts (and what it stores) and refuses.
final class FieldTypeTests: XCTestCase {
    func accepts(_ type: FieldType, _ cases: [(String, SQLValue)], options: [String] = [], file: StaticString = #filePath, line: UInt = #line) {
        for (input, stored) in cases {
            switch type.parse(input, options: options) {
            case .success(let value): XCTAssertEqual(value, stored, "\(type) \(input.debugDescription)", file: file, line: line)
            case .failure(let error): XCTFail("\(type) refused \(input.debugDescription): \(error.reason)", file: file, line: line)
            }
        }
    }

    func refuses(_ type: FieldType, _ inputs: [String], options: [String] = [], file: StaticString = #filePath, line: UInt = #line) {
        for input in inputs {
            if case .success(let value) = type.parse(input, options: options) {
                XCTFail("\(type) accepted \(input.prefix(60).debugDescription) as \(value)", file: file, line: line)
            }
        }
    }

    func testNumber() {
        accepts(.number, [("42", .integer(42)), ("-7", .integer(-7)), ("-0", .integer(0)), ("+5", .integer(5)), (" 12 ", .integer(12)),
                          ("9223372036854775807", .integer(.max)), ("-9223372036854775808", .integer(.min)), ("", .null), ("   ", .null)])
        refuses(.number, ["9223372036854775808", "-9223372036854775809", "1.5", "1e3", "12abc", "NaN", "0x10", "1 000", "--1", "١٢"])
        if case .failure(let e) = FieldType.number.parse("99999999999999999999") { XCTAssertTrue(e.reason.contains("64-bit"), e.reason) }
    }

    func testFloat() {
        accepts(.float, [("12.5", .real(12.5)), ("-0", .real(0)), ("1e3", .real(1000)), ("3", .real(3)), (" 0.25 ", .real(0.25)), ("1.7976931348623157e308", .real(1.7976931348623157e308))])
        refuses(.float, ["1e309", "-1e309", "NaN", "nan", "inf", "Infinity", "1,5", "0x1p3", "abc", "1.2.3", "e5"])
    }

    func testLineKeepsTextAsTyped() {
        accepts(.line, [("  spaced  ", .text("  spaced  ")), ("Ёлка 🎉 <b>", .text("Ёлка 🎉 <b>")), ("", .null), ("x\"; DROP TABLE users; --", .text("x\"; DROP TABLE users; --"))])
        refuses(.line, [String(repeating: "a", count: 1_048_576)])
        accepts(.line, [(String(repeating: "a", count: FieldType.maxLineBytes), .text(String(repeating: "a", count: FieldType.maxLineBytes)))])
    }

    func testDate() {
        accepts(.date, [
            ("2019-08-22T00:00:00.000Z", .text("2019-08-22T00:00:00.000Z")),
            ("2019-08-22", .text("2019-08-22T00:00:00.000Z")),
            ("2024-02-29", .text("2024-02-29T00:00:00.000Z")),
            ("2000-02-29T23:59:59Z", .text("2000-02-29T23:59:59.000Z")),
            ("2019-08-22T03:00:00+03:00", .text("2019-08-22T00:00:00.000Z")),
            ("2019-08-21T21:30:00.5-02:30", .text("2019-08-22T00:00:00.500Z")),
            ("2019-08-22t10:00:00z", .text("2019-08-22T10:00:00.000Z")),
            (" 2019-08-22 ", .text("2019-08-22T00:00:00.000Z")),
        ])
        refuses(.date, ["2024-02-30", "2023-02-29", "1900-02-29", "2019-13-01", "2019-00-10", "2019-04-31", "2019-08-22T24:00:00Z",
                        "2019-08-22T10:60:00Z", "2019-08-22T10:00:60Z", "2019-08-22T10:00:00", "2019-08-22 10:00:00Z",
                        "22.08.2019", "2019/08/22", "2019-8-22", "yesterday", "2019-08-22T10:00:00+3:00", "2019-08-22T10:00:00.Z", "0000-01-01"])
    }

    func testBoolean() {
        accepts(.boolean, [("true", .integer(1)), ("Yes", .integer(1)), ("1", .integer(1)), ("FALSE", .integer(0)), ("no", .integer(0)), ("0", .integer(0))])
        refuses(.boolean, ["maybe", "2", "t", "да"])
    }

    func testEnum() {
        let options = ["Basic", "Pro", "Enterprise"]
        accepts(.enum, [("Pro", .text("Pro")), (" Basic ", .text("Basic"))], options: options)
        refuses(.enum, ["pro", "Gold", "Pro,Basic"], options: options)
    }

    func testIPv4() {
        accepts(.ip, [("127.0.0.1", .integer(0x7F000001)), ("0.0.0.0", .integer(0)), ("255.255.255.255", .integer(0xFFFFFFFF)), (" 10.0.0.1 ", .integer(0x0A000001))])
        refuses(.ip, ["256.1.1.1", "01.02.03.04", "1.2.3", "1.2.3.4.5", "1.2.3.", "a.b.c.d", "::1", "1.2.3.-4", "1..2.3", "1.2.3.4/24", "+1.2.3.4"])
        XCTAssertEqual(FieldType.ip.display(.integer(0x7F000001)), "127.0.0.1")
    }

    func testTags() {
        accepts(.tags, [
            ("Product-1, Product 2, Product_3", .text("[\"Product-1\",\"Product 2\",\"Product_3\"]")),
            ("a|b;c,,a", .text("[\"a\",\"b\",\"c\"]")),
            (" , ; ", .null),
        ])
        XCTAssertEqual(FieldType.tags.display(.text("[\"a\",\"b\"]")), "a, b")
        if case .success = FieldType.tags.validate(json: .array([.string("ok"), .string("no,pe")])) { XCTFail("a tag containing a separator") }
        if case .success(let v) = FieldType.tags.validate(json: .array([.string("x"), .string("y")])) {
            XCTAssertEqual(v, .text("[\"x\",\"y\"]"))
        } else { XCTFail() }
        refuses(.tags, [String(repeating: "t", count: 300)])
    }

    // The document's examples, judged as the document says.
    func testObjectAndArrayExamplesFromTheSpec() {
        let valid: [(FieldType, String)] = [
            (.array, #"[ { "key1": 12.3, "key2": 12, "key3": true, "key4": "text" } ]"#),
            (.array, #"[ {"x":1}, {"y":2} ]"#),
            (.object, #"{ "key_1": { "sub_key_1": {"x":1,"y":2} }, "key_2": { "sub_key_1": {"x":5,"y":3} } }"#),
            (.array, #"[ {"key": "value_1", "new_key": "new_value1"}, {"key": "value_2", "new_key": "new_value2"} ]"#),
        ]
        let invalid: [(FieldType, String)] = [
            (.array, #"[ ["x","y"], ["z","w"] ]"#),
            (.object, #"{ "key": [ ["x","y"], ["z","w"] ] }"#),
            (.array, #"[ {"key1": "value_1", "new_key10": "new_value1"}, {"key7": "value_2", "new_key300": "new_value2"} ]"#),
        ]
        for (type, text) in valid {
            if case .failure(let e) = type.parse(text) { XCTFail("valid example refused: \(text) — \(e.reason)") }
        }
        for (type, text) in invalid {
            if case .success = type.parse(text) { XCTFail("invalid example accepted: \(text)") }
        }
    }

    func testObjectEdgeCases() {
        refuses(.object, [#"{"a key": 1}"#, #"{"ключ": 1}"#, #"{"k": null}"#, #"{"k": [1]}"#, "[]", "{", "42", #"{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}"#])
        accepts(.object, [(#"{"a":{"b":{"c":{"d":{"e":1}}}}}"#, .text(#"{"a":{"b":{"c":{"d":{"e":1}}}}}"#)),
                          (#"{"b": 1, "a": "x"}"#, .text(#"{"a":"x","b":1}"#)), ("{}", .text("{}"))])
        refuses(.array, [#"[1, 2]"#, #"{"x":1}"#, #"[{"x":[1]}]"#, #"[{"x":1},{"x":2,"y":3}]"#])
        accepts(.array, [("[]", .text("[]"))])
        refuses(.object, ["{\"k\":\"" + String(repeating: "a", count: 1_048_576) + "\"}"])
    }

    func testJSONInputTypesAreStrict() {
        if case .success = FieldType.number.validate(json: .double(1.5)) { XCTFail() }
        if case .success = FieldType.number.validate(json: .bool(true)) { XCTFail() }
        if case .success = FieldType.boolean.validate(json: .int(1)) { XCTFail() }
        if case .success(let v) = FieldType.number.validate(json: .string("77")) { XCTAssertEqual(v, .integer(77)) } else { XCTFail() }
        if case .success(let v) = FieldType.float.validate(json: .int(3)) { XCTAssertEqual(v, .real(3)) } else { XCTFail() }
    }

    func testJSONValueKeepsBooleansApartFromNumbers() {
        XCTAssertEqual(JSONValue.parse("[true, 1, 1.5, \"s\", null]"), .array([.bool(true), .int(1), .double(1.5), .string("s"), .null]))
    }
}

final class JSONParserTests: XCTestCase {
    func testParsesWhatJSONDecoderParses() throws {
        let samples = [#"{"a":[1,-2,3.5,true,false,null,"x\"y\\z\u00e9\ud83c\udf89"],"b":{}}"#, "[]", "{}", "0", "-0", "\"\"", "  [ 1 , 2 ]  ",
                       "9223372036854775807", "9223372036854775808", "[[[[]]]]"]
        for text in samples {
            let expected = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            XCTAssertEqual(JSONValue.parse(text), expected, text)
        }
        // Where the two differ on purpose: an exponent makes a float; a repeated key keeps its last value.
        XCTAssertEqual(JSONValue.parse("1e3"), .double(1000))
        XCTAssertEqual(JSONValue.parse(#"{"a":1,"a":2}"#), .object(["a": .int(2)]))
        if case .success(let v) = FieldType.number.validate(json: .double(1000)) { XCTAssertEqual(v, .integer(1000)) } else { XCTFail() }
    }

    func testRefusesWhatIsNotJSON() {
        for bad in ["", "[1,]", "{\"a\"}", "{a:1}", "01", "1.", ".5", "+1", "[1 2]", "\"\\x\"", "\"\u{01}\"", "[1]]", "nul", "\"\\ud800\"", "tru",
                    String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "'a'", "NaN"] {
            XCTAssertNil(JSONValue.parse(bad), bad)
        }
    }
}
