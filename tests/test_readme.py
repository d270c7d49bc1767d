"""The README's examples are configuration a user will copy: they must load as written."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from culex.auth import parse_acl
from culex.config import config_from_mapping

README = (Path(__file__).parent.parent / "README.md").read_text()


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, fences paired in order."""
    blocks, language, lines = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if language is None:
                language, lines = line[3:].strip(), []
            else:
                blocks.append((language, "\n".join(lines)))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


TOML_BLOCKS = [body for language, body in code_blocks(README) if language == "toml"]
ACL_BLOCKS = [body for _, body in code_blocks(README) if "acl_file syntax" in body]


def test_the_readme_has_examples() -> None:
    assert len(TOML_BLOCKS) >= 2 and len(ACL_BLOCKS) == 1


@pytest.mark.parametrize("block", TOML_BLOCKS)
def test_toml_examples_are_valid_configurations(block: str) -> None:
    config_from_mapping(tomllib.loads(block))


def test_acl_example_parses() -> None:
    acl = parse_acl(ACL_BLOCKS[0])
    assert set(acl.users) == {"alice", "dashboard"} and len(acl.patterns) == 1


PYTHON_BLOCKS = [body for language, body in code_blocks(README) if language == "python"]


@pytest.mark.parametrize("block", PYTHON_BLOCKS)
def test_python_examples_import_what_exists(block: str) -> None:
    """The names a Python example imports from culex are there (the rest is the user's)."""
    imports = "\n".join(line for line in block.splitlines() if line.startswith("from culex"))
    assert imports
    exec(compile(imports, "README.md", "exec"), {})
