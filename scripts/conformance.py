#!/usr/bin/env python3
"""Write CONFORMANCE.md: every normative statement of MQTT 5.0 and 3.1.1, and the tests that
show culex keeps it, or why it does not apply to a server.

    python3 scripts/conformance.py           # rewrite CONFORMANCE.md
    python3 scripts/conformance.py --check   # exit 1 if CONFORMANCE.md is not up to date

Where the facts come from:
- docs/conformance/statements-5.0.txt, statements-3.1.1.txt: the statement ids, one a line (the
  specifications' own numbering; the statements are in the specifications, Appendix B of 5.0).
  MQTT 3.1.1 has 139 distinct ids: lists of its statements that count 141 give MQTT-2.3.1-3 and
  MQTT-2.3.1-6 twice, each statement being split over two entries.
- The tests: a test function cites a statement by writing its id in its body or docstring.
  ``MQTT-3.3.1-4`` cites MQTT 5.0's statement, ``MQTT-3.3.1-4 (3.1.1)`` or
  ``3.1.1: MQTT-3.3.1-4`` MQTT 3.1.1's (the two specifications number differently),
  ``MQTT-3.3.1-4 (3.1.1 and 5.0)`` both. ``MQTT-3.1.2-24, -25`` cites two.
- docs/conformance/not-applicable.tsv: version, id and reason for statements that bind only
  clients, or that a server keeps by construction.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "conformance"
OUTPUT = ROOT / "CONFORMANCE.md"
VERSIONS = ("5.0", "3.1.1")

_CITATION = re.compile(r"(3\.1\.1:\s*)?MQTT-(\d+(?:\.\d+)*)-(\d+)((?:,\s*-\d+)*)"
                       r"(\s*\((?:3\.1\.1|5\.0|3\.1\.1 and 5\.0)\))?")


def statement_ids(version: str) -> list[str]:
    text = (DOCS / f"statements-{version}.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def not_applicable() -> dict[tuple[str, str], str]:
    reasons = {}
    for number, line in enumerate((DOCS / "not-applicable.tsv").read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        version, ident, reason = line.split("\t")
        if (version, ident) in reasons:
            raise SystemExit(f"not-applicable.tsv:{number}: {version} {ident} twice")
        reasons[version, ident] = reason
    return reasons


def citations(text: str) -> list[tuple[str, str]]:
    """(version, id) pairs cited in ``text``."""
    found = []
    for match in _CITATION.finditer(text):
        lead, prefix, first, more, qualifier = match.groups()
        numbers = [first, *re.findall(r"-(\d+)", more or "")]
        qualifier = "3.1.1" if lead else (qualifier or "").strip(" ()")
        versions = {"": ["5.0"], "5.0": ["5.0"], "3.1.1": ["3.1.1"],
                    "3.1.1 and 5.0": ["3.1.1", "5.0"]}[qualifier]
        for version in versions:
            for number in numbers:
                found.append((version, f"MQTT-{prefix}-{number}"))
    return found


def test_citations() -> dict[tuple[str, str], list[str]]:
    """(version, id) -> the tests that cite it, as path::name."""
    cited: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        if "node_modules" in path.parts or path.name == "test_conformance.py":
            continue  # the latter cites ids as examples of the syntax
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) \
                    and node.name.startswith("test_"):
                assert node.end_lineno is not None
                # With its decorators: parametrized cases often say what they show.
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                body = "\n".join(lines[first - 1:node.end_lineno])
                name = f"{path.relative_to(ROOT).as_posix()}::{node.name}"
                for key in dict.fromkeys(citations(body)):
                    cited[key].append(name)
    return cited


def render() -> tuple[str, dict[str, int], list[str]]:
    """The document, the number of untested statements per version, and the problems."""
    cited = test_citations()
    reasons = not_applicable()
    problems = []
    known = {(version, ident) for version in VERSIONS for ident in statement_ids(version)}
    for key, tests in cited.items():
        if key not in known:
            problems.append(f"{key[1]} ({key[0]}) is cited by {tests[0]} but is not a "
                            f"statement of MQTT {key[0]}")
    for key in reasons:
        if key not in known:
            problems.append(f"not-applicable.tsv: {key[1]} is not a statement of {key[0]}")
        elif key in cited:
            problems.append(f"not-applicable.tsv: {key[1]} ({key[0]}) is also tested")
    parts = [HEADER]
    untested: dict[str, int] = {}
    for version in VERSIONS:
        ids = statement_ids(version)
        rows = []
        counts = {"tested": 0, "n/a": 0, "untested": 0}
        for ident in ids:
            tests = cited.get((version, ident))
            if tests:
                counts["tested"] += 1
                cell = "<br>".join(f"`{test}`" for test in tests)
            elif (version, ident) in reasons:
                counts["n/a"] += 1
                cell = "n/a: " + reasons[version, ident]
            else:
                counts["untested"] += 1
                cell = "**not yet tested**"
            rows.append(f"| {ident} | {cell} |")
        untested[version] = counts["untested"]
        parts.append(f"## MQTT {version}\n\n{len(ids)} statements: {counts['tested']} shown "
                     f"by tests, {counts['n/a']} that bind only clients or that culex cannot "
                     f"break by construction (n/a, with the reason), {counts['untested']} not "
                     "yet tested.\n\n| statement | shown by |\n"
                     "|---|---|\n" + "\n".join(rows) + "\n")
    return "\n".join(parts), untested, problems


HEADER = """# Conformance

Every normative statement of the MQTT specifications (the `MQTT-x.y.z-n` identifiers; the
statements themselves are in [MQTT 5.0](https://docs.oasis-open.org/mqtt/mqtt/v5.0/mqtt-v5.0.html)
Appendix B and [MQTT 3.1.1](https://docs.oasis-open.org/mqtt/mqtt/v3.1.1/mqtt-v3.1.1.html)
Appendix B), with the tests that show culex keeps it, or why it does not bind a server.

Written by `python3 scripts/conformance.py` from the tests themselves: a test cites the
statements it shows by their ids (`MQTT-3.3.1-4` for MQTT 5.0, `MQTT-3.3.1-4 (3.1.1)` for
3.1.1). `tests/test_conformance.py` keeps this file up to date, every id real and every test
name existing, and the number of statements not yet tested from growing.
"""


def main() -> int:
    text, untested, problems = render()
    for problem in problems:
        print(f"conformance: {problem}", file=sys.stderr)
    if "--check" in sys.argv[1:]:
        if OUTPUT.read_text() != text:
            print("conformance: CONFORMANCE.md is out of date: run scripts/conformance.py",
                  file=sys.stderr)
            return 1
        return 1 if problems else 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.name}; not yet tested: "
          + ", ".join(f"{count} of MQTT {version}" for version, count in untested.items()))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
