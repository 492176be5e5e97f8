@testable import Web
import XCTest

final class TemplateTests: XCTestCase {
    func render(_ source: String, _ context: TemplateDict, extra: [String: String] = [:]) throws -> String {
        var templates = ["t.html": try Template(name: "t.html", source: source)]
        for (name, text) in extra { templates[name] = try Template(name: name, source: text) }
        return try TemplateSet(templates: templates).render("t.html", context)
    }

    func testEscapesTheFiveCharactersByDefault() throws {
        XCTAssertEqual(try render("<p>{{ x }}</p>", ["x": "<script>alert('x') & \"y\"</script>"]),
                       "<p>&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;</p>")
    }

    func testEscapingKeepsTheTextAroundEachEscapedCharacter() throws {
        XCTAssertEqual(try render("{{ x }}", ["x": "&"]), "&amp;")
        XCTAssertEqual(try render("{{ x }}", ["x": "a<b>c&&d\"é'"]), "a&lt;b&gt;c&amp;&amp;d&quot;é&#39;")
        XCTAssertEqual(try render("{{ x }}|{{ y }}", ["x": "", "y": "Ünïcødé, no change"]), "|Ünïcødé, no change")
        let long = String(repeating: "Привет <мир> ", count: 200)
        XCTAssertEqual(try render("{{ x }}", ["x": .string(long)]),
                       long.replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;"))
    }

    func testKeysOfTheSameLengthAreToldApart() {
        let object: TemplateDict = ["ab": 1, "ba": 2, "abc": 3, "é": 4, "e": 5]
        XCTAssertEqual(object["ba"], 2)
        XCTAssertEqual(object["ab"], 1)
        XCTAssertEqual(object["abc"], 3)
        XCTAssertEqual(object["é"], 4)
        XCTAssertEqual(object["e"], 5)
        XCTAssertNil(object["b"])
    }

    func testEscapesInsideAttributes() throws {
        XCTAssertEqual(try render("<input value=\"{{ v }}\">", ["v": "\" onfocus=\"alert(1)"]),
                       "<input value=\"&quot; onfocus=&quot;alert(1)\">")
    }

    func testRawOutputOnlyWithTripleBraces() throws {
        XCTAssertEqual(try render("{{{ svg }}}|{{ svg }}", ["svg": "<b>"]), "<b>|&lt;b&gt;")
        XCTAssertEqual(try render("{{ chart }}", ["chart": .trustedHTML("<svg></svg>")]), "<svg></svg>")
    }

    func testDottedPathsAndNumbers() throws {
        XCTAssertEqual(try render("{{ user.name }} {{ user.age }} {{ user.vip }}", ["user": ["name": "Ann", "age": 42, "vip": true]]), "Ann 42 true")
    }

    func testMissingKeyInOutputIsAnErrorWithLine() throws {
        XCTAssertThrowsError(try render("a\n{{ nope }}", [:])) { error in
            let e = error as? TemplateError
            XCTAssertEqual(e?.line, 2)
            XCTAssertTrue(e?.message.contains("nope") ?? false)
        }
        XCTAssertThrowsError(try render("{{ user.nope }}", ["user": ["name": "x"]]))
    }

    func testMissingKeyInConditionIsFalse() throws {
        XCTAssertEqual(try render("{% if nope %}yes{% else %}no{% end %}", [:]), "no")
    }

    func testConditionsTruthinessNegationAndComparison() throws {
        let t = "{% if a %}A{% end %}{% if not b %}!B{% end %}{% if c == \"x\" %}C{% end %}{% if c != d %}D{% end %}"
        XCTAssertEqual(try render(t, ["a": 1, "b": "", "c": "x", "d": "y"]), "A!BCD")
        XCTAssertEqual(try render(t, ["a": 0, "b": [1], "c": "z", "d": "z"]), "")
        XCTAssertEqual(try render("{% if l %}y{% else %}n{% end %}", ["l": []]), "n")
    }

    func testLoopsNestAndExposeLoopInfo() throws {
        let t = "{% for row in rows %}[{% for c in row.cells %}{{ c }}{% if not loop.last %},{% end %}{% end %}]{{ loop.number }}{% end %}"
        XCTAssertEqual(try render(t, ["rows": [["cells": ["a", "b"]], ["cells": ["<c>"]]]]), "[a,b]1[&lt;c&gt;]2")
    }

    func testInnerLoopInfoIsTheInnerLoopsAndOuterComesBack() throws {
        let t = "{% for a in as %}{% for b in a.bs %}{{ loop.index }}{% end %}-{{ loop.index }}|{% end %}"
        XCTAssertEqual(try render(t, ["as": [["bs": ["x", "y", "z"]], ["bs": []]]]), "012-0|-1|")
    }

    func testViewModelObjectsActLikeDictionaries() {
        var object: TemplateDict = ["a": 1, "b": "two"]
        XCTAssertEqual(object["b"], "two")
        object["a"] = 3
        object["c"] = true
        object["b"] = nil
        XCTAssertEqual(object.keys, ["a", "c"])
        XCTAssertEqual(object, ["c": true, "a": 3], "equal whatever the order")
        XCTAssertNotEqual(object, ["a": 3])
        XCTAssertEqual(object.merging(["a": 4, "d": .null]), ["a": 4, "c": true, "d": .null])
        XCTAssertEqual(TemplateDict(["x": "y"]), ["x": "y"])
    }

    func testLoopElseRendersWhenEmpty() throws {
        XCTAssertEqual(try render("{% for x in xs %}{{ x }}{% else %}none{% end %}", ["xs": []]), "none")
    }

    func testLoopVariableShadowsOuterAndIsRestored() throws {
        XCTAssertEqual(try render("{{ x }}{% for x in xs %}{{ x }}{% end %}{{ x }}", ["x": "o", "xs": ["1", "2"]]), "o12o")
    }

    func testIncludeSeesTheSameValues() throws {
        XCTAssertEqual(try render("<{% include \"p.html\" %}>", ["n": "&"], extra: ["p.html": "{{ n }}"]), "<&amp;>")
    }

    func testIncludeWithBindsIt() throws {
        let partial = "{% if it %}<p>{{ it }}</p>{% end %}"
        XCTAssertEqual(try render("{% include \"e.html\" with errors.name %}|{% include \"e.html\" with errors.other %}",
                                  ["errors": ["name": "<bad>"]], extra: ["e.html": partial]), "<p>&lt;bad&gt;</p>|")
    }

    func testExtendsFillsBlocksAndKeepsDefaults() throws {
        let layout = "<title>{% block title %}Default{% end %}</title><main>{% block content %}{% end %}</main>"
        let result = try render("{% extends \"layout.html\" %}{% block content %}<p>{{ x }}</p>{% end %}", ["x": "<hi>"], extra: ["layout.html": layout])
        XCTAssertEqual(result, "<title>Default</title><main><p>&lt;hi&gt;</p></main>")
    }

    func testSyntaxErrorsNameTheLine() {
        let cases: [(String, Int)] = [
            ("ok\n{% if x %}\nnever closed", 2),
            ("{{ unclosed", 1),
            ("a\nb\n{% end %}", 3),
            ("{% bogus %}", 1),
            ("{% for x of y %}{% end %}", 1),
            ("{{ a b }}", 1),
            ("{% else %}", 1),
        ]
        for (source, line) in cases {
            XCTAssertThrowsError(try Template(name: "bad.html", source: source), source) { error in
                XCTAssertEqual((error as? TemplateError)?.line, line, "\(source): \(error)")
                XCTAssertEqual((error as? TemplateError)?.file, "bad.html")
            }
        }
    }

    func testMissingIncludeStopsLoading() throws {
        let t = try Template(name: "a.html", source: "x\n{% include \"missing.html\" %}")
        XCTAssertThrowsError(try TemplateSet(templates: ["a.html": t])) { error in
            XCTAssertEqual((error as? TemplateError)?.line, 2)
        }
    }

    func testAnIncludeCycleStopsLoading() throws {
        let a = try Template(name: "a.html", source: "a{% include \"b.html\" %}")
        let b = try Template(name: "b.html", source: "b{% include \"a.html\" %}")
        XCTAssertThrowsError(try TemplateSet(templates: ["a.html": a, "b.html": b])) { error in
            XCTAssertTrue("\(error)".contains("more than 32 deep"), "\(error)")
        }
    }

    func testAnErrorInAChildsBlockNamesTheChild() throws {
        let layout = "<main>\n{% block content %}{% end %}</main>"
        XCTAssertThrowsError(try render("{% extends \"layout.html\" %}\n{% block content %}\n{{ nope }}{% end %}", [:],
                                        extra: ["layout.html": layout])) { error in
            XCTAssertEqual((error as? TemplateError)?.file, "t.html")
            XCTAssertEqual((error as? TemplateError)?.line, 3)
        }
    }

    func testBranchesAndLoopsInsideIncludesAndBlocksJumpToTheirOwnEnds() throws {
        // Text on both sides of every jump: text runs merge, and a merge across a jump target would print or skip
        // the wrong text.
        let layout = "[{% block b %}D{% end %}]{% if flag %}T{% else %}F{% end %}."
        let row = "<{% for c in it %}{{ c }}{% if loop.last %}!{% end %}{% else %}0{% end %}>"
        let page = "{% extends \"l.html\" %}{% block b %}{% for r in rows %}{% include \"r.html\" with r %}"
            + "{% else %}none{% end %}{% end %}"
        let partials = ["l.html": layout, "r.html": row]
        XCTAssertEqual(try render(page, ["flag": true, "rows": [["x", "y"], []]], extra: partials), "[<xy!><0>]T.")
        XCTAssertEqual(try render(page, ["flag": false, "rows": []], extra: partials), "[none]F.")
    }

    func testCommentsVanish() throws {
        XCTAssertEqual(try render("a{# {{ nope }} #}b", [:]), "ab")
    }

    func testListsCannotBePrinted() {
        XCTAssertThrowsError(try render("{{ xs }}", ["xs": ["a"]]))
    }

    func testTheProjectTemplatesAllParse() throws {
        let set = try TemplateSet.load(directory: projectTemplatesDirectory())
        XCTAssertTrue(set.names.contains("layout.html"))
        XCTAssertTrue(set.names.contains("databases/list.html"))
    }
}

func projectTemplatesDirectory() -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Templates").path
}
