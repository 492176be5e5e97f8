#!/usr/bin/env python3
"""Fails when non-test Swift sources force-unwrap (`x!`), force-try (`try!`) or force-cast (`as!`) outside the
allow-list below. Input from outside must never be able to trap the process; a reviewed exception goes in ALLOWED
with the reason."""
import pathlib
import re
import sys

# file: number of reviewed force operations it may hold, and why (keep this list short).
ALLOWED = {
    # A non-null pointer for an empty blob: the literal 1 is never nil.
    "Sources/SQLiteStore/SQLiteStatement.swift": 1,
}

FORCE = re.compile(r"(try!|as!|[\w\)\]\}>\"]!(?![=]))")


def strip(line: str) -> str:
    """The line without string literals and its // comment."""
    out, i, quote = [], 0, False
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                quote = False
                out.append('""')
        elif c == '"':
            quote = True
        elif line.startswith("//", i):
            break
        else:
            out.append(c)
        i += 1
    return "".join(out)


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    found = {}
    for path in sorted((root / "Sources").rglob("*.swift")):
        rel = str(path.relative_to(root))
        in_block = False
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = raw
            if '"""' in line:
                in_block = not in_block if line.count('"""') == 1 else in_block
                continue
            if in_block:
                continue
            code = strip(line)
            if code.lstrip().startswith("///") or code.lstrip().startswith("*"):
                continue
            for match in FORCE.finditer(code):
                # `!` of a prefix negation follows an operator or `(`, never a name; `x!` after a name is an unwrap.
                found.setdefault(rel, []).append(f"{rel}:{number}: {raw.strip()}")
    problems = []
    for rel, hits in found.items():
        if len(hits) > ALLOWED.get(rel, 0):
            problems.extend(hits)
    if problems:
        print("Force unwraps, try! or as! in sources (input must never trap the process):")
        print("\n".join(problems))
        return 1
    print("check_unwraps: no force operations outside the allow-list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
