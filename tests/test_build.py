"""Compiled or pure Python: setup.py's list, what is imported, what culex says it runs."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from support import WAIT

ROOT = Path(__file__).resolve().parent.parent


def _compiled_list() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED":
            return [ast.literal_eval(item) for item in node.value.elts]  # type: ignore[attr-defined]
    raise AssertionError("no COMPILED list in setup.py")


def _modules() -> list[str]:
    return [path[len("src/"):-len(".py")].replace("/", ".") for path in _compiled_list()]


def _run(code: str, pure: bool) -> list[str]:
    env = dict(os.environ)
    env.pop("CULEX_PURE_PYTHON", None)
    if pure:
        env["CULEX_PURE_PYTHON"] = "1"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True, timeout=WAIT).stdout.splitlines()


def _origins(pure: bool) -> dict[str, str]:
    modules = _modules()
    code = ("import importlib\n"
            f"for name in {modules!r}:\n"
            "    print(name, importlib.import_module(name).__file__)\n")
    return dict(line.split(" ", 1) for line in _run(code, pure))  # type: ignore[misc]


def test_setup_compiles_existing_typed_modules() -> None:
    for path in _compiled_list():
        assert (ROOT / path).is_file(), path


def test_the_modules_are_all_compiled_or_none() -> None:
    """setup.py builds all or none; the running build is what `culex --version` says."""
    origins = _origins(pure=False)
    compiled = {name for name, file in origins.items() if file.endswith(tuple(EXTENSION_SUFFIXES))}
    assert compiled in (set(), set(origins)), origins
    [version] = _run("from culex.cli import main; main(['--version'])", pure=False)
    assert version.endswith("(compiled with mypyc)" if compiled else "(pure Python)")


def test_culex_pure_python_imports_the_sources() -> None:
    origins = _origins(pure=True)
    assert all(file.endswith(".py") for file in origins.values()), origins
    [version] = _run("from culex.cli import main; main(['--version'])", pure=True)
    assert version.endswith("(pure Python)")


def test_frozen_packet_parts_survive_pickle() -> None:
    """culex bench hands them to its worker processes; mypyc's frozen dataclasses need their
    own way (__reduce__) for that."""
    import pickle

    from culex.protocol import Properties, SubscriptionRequest

    for value in (Properties(payload_format_indicator=1, user_properties=[("a", "b")]),
                  SubscriptionRequest("a/#", 1, True, True, 2)):
        assert pickle.loads(pickle.dumps(value)) == value


def test_the_compiled_modules_type_check_without_installed_packages(tmp_path: Path) -> None:
    """setup.py's analysis, as in a fresh virtualenv, which builds culex before installing its
    dependencies: mypyc compiles only what this passes (else the build is pure Python)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    [options] = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 and getattr(node.targets[0], "id", "") == "options"]
    flags = ast.literal_eval(options)
    assert "--no-site-packages" in flags
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), *flags,
                             *_compiled_list()], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
