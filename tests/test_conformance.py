"""CONFORMANCE.md stays true: complete, up to date with the tests, every name real, and the
number of statements not yet tested only goes down."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent

# Statements without a test or a reason, per version. Lower these as tests are added; the
# check fails if the count grows (a test renamed away, a citation lost).
NOT_YET_TESTED = {"5.0": 0, "3.1.1": 0}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("conformance", ROOT / "scripts" /
                                                  "conformance.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["conformance"] = module
    spec.loader.exec_module(module)
    return module


def test_the_table_is_up_to_date_and_its_names_real() -> None:
    conformance = _generator()
    text, untested, problems = conformance.render()
    assert problems == []
    assert (ROOT / "CONFORMANCE.md").read_text() == text, \
        "CONFORMANCE.md is out of date: run python3 scripts/conformance.py"
    for version, count in untested.items():
        assert count <= NOT_YET_TESTED[version], f"MQTT {version}: {count} untested"


def test_every_statement_is_in_the_table_once() -> None:
    conformance = _generator()
    text = (ROOT / "CONFORMANCE.md").read_text()
    sections = text.split("## MQTT ")[1:]
    for version, section in zip(conformance.VERSIONS, sections, strict=True):
        assert section.startswith(version)
        listed = [line.split("|")[1].strip() for line in section.splitlines()
                  if line.startswith("| MQTT-")]
        assert listed == conformance.statement_ids(version)
        assert len(set(listed)) == len(listed) > 100


def test_citations_are_read_as_written() -> None:
    citations = _generator().citations
    assert citations("MQTT-3.3.1-4") == [("5.0", "MQTT-3.3.1-4")]
    assert citations("MQTT-3.3.1-4 (3.1.1)") == [("3.1.1", "MQTT-3.3.1-4")]
    assert citations("(3.1.1: MQTT-3.1.2-24)") == [("3.1.1", "MQTT-3.1.2-24")]
    assert citations("MQTT-3.1.2-24, -25") == [("5.0", "MQTT-3.1.2-24"), ("5.0", "MQTT-3.1.2-25")]
    assert citations("MQTT-4.4.0-1 (3.1.1 and 5.0)") == [("3.1.1", "MQTT-4.4.0-1"),
                                                         ("5.0", "MQTT-4.4.0-1")]
