"""The README's examples are configuration a user will copy: they must load as written."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from culex.auth import parse_acl
from culex.config import config_from_mapping

README = (Path(__file__).parent.parent / "README.md").read_text()
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", README, re.S)
ACL_BLOCKS = [b for b in re.findall(r"```\n(.*?)```", README, re.S) if "acl_file syntax" in b]


def test_the_readme_has_examples() -> None:
    assert len(TOML_BLOCKS) >= 2 and len(ACL_BLOCKS) == 1


@pytest.mark.parametrize("block", TOML_BLOCKS)
def test_toml_examples_are_valid_configurations(block: str) -> None:
    config_from_mapping(tomllib.loads(block))


def test_acl_example_parses() -> None:
    acl = parse_acl(ACL_BLOCKS[0])
    assert set(acl.users) == {"alice", "dashboard"} and len(acl.patterns) == 1
