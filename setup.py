"""Builds culex, compiling the modules every message goes through with mypyc.

The metadata is in pyproject.toml; this file only adds the compiled modules. They are the same
typed Python files, turned into C extensions by mypyc (part of mypy, a build requirement): the
import system takes an extension before the source beside it, and culex says which it runs at
start and in ``culex --version`` (README, "Compiled or pure Python").

No C compiler or Python headers, or CULEX_PURE_PYTHON=1 when installing: culex installs as pure
Python, with the same behaviour, slower. A build that fails half way leaves no extension behind
(a module compiled while one it calls into is not would not load).
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent

# The path of a PUBLISH through the broker: decoding, routing, delivery, encoding (and the
# counters it increments on its way); for a persistent session, the store's bookkeeping of each
# message and acknowledgement (the writer thread and the file stay interpreted: they wait on
# SQLite and the disk).
COMPILED = [
    "src/culex/protocol/_codec.py",
    "src/culex/protocol/_decoder.py",
    "src/culex/protocol/_packets.py",
    "src/culex/protocol/_properties.py",
    "src/culex/protocol/_subscribe_packets.py",
    "src/culex/protocol/_topics.py",
    "src/culex/broker/_message.py",
    "src/culex/broker/_router.py",
    "src/culex/broker/_fanout.py",
    "src/culex/broker/_outgoing.py",
    "src/culex/broker/_session.py",
    "src/culex/broker/_broker.py",
    "src/culex/broker/_flow.py",
    "src/culex/broker/_parts.py",
    "src/culex/broker/_held.py",
    "src/culex/broker/_enhanced_auth.py",
    "src/culex/broker/_handlers.py",
    "src/culex/broker/_connection.py",
    "src/culex/broker/_connect.py",
    "src/culex/broker/_deadlines.py",
    "src/culex/broker/_lifetime.py",
    "src/culex/broker/_throttle.py",
    "src/culex/broker/_subscriptions.py",
    "src/culex/broker/_retained.py",
    "src/culex/broker/_reasons.py",
    "src/culex/observability/_counters.py",
    "src/culex/persistence/_changes.py",
    "src/culex/persistence/_sqlite.py",
    "src/culex/transport/_tcp.py",
    "src/culex/transport/_setup.py",
]
GROUP = "culex"  # the shared library of the compiled modules: culex__mypyc


def _say(text: str) -> None:
    print(f"culex build: {text}", file=sys.stderr)


def _built_in_tree() -> list[Path]:
    """Extensions an earlier in-place build (pip install -e) left beside the sources."""
    found = []
    for source in [*COMPILED, f"src/{GROUP}__mypyc.py"]:
        stem = HERE / source[: -len(".py")]
        found += [Path(f"{stem}{suffix}") for suffix in EXTENSION_SUFFIXES]
    return [path for path in found if path.exists()]


def _pure() -> list[Any]:
    # Else an editable install would go on importing what an earlier build compiled.
    for path in _built_in_tree():
        path.unlink()
    return []


def _extensions() -> list[Any]:
    if os.environ.get("CULEX_PURE_PYTHON", "") not in ("", "0"):
        _say("CULEX_PURE_PYTHON is set: installing pure Python")
        return _pure()
    try:
        from mypyc.build import mypycify
    except ImportError:
        _say("mypyc (from mypy) is not available: installing pure Python")
        return _pure()
    try:
        # The same type analysis wherever it builds: without the installed packages (a fresh
        # virtualenv builds before it installs culex's dependencies; what the compiled
        # modules take from them is typed Any here), and without the lint-level checks
        # `mypy` runs in the tests.
        options = ["--no-site-packages", "--ignore-missing-imports", "--no-warn-unused-ignores"]
        return list(mypycify([*options, *COMPILED], opt_level="3", group_name=GROUP))
    except (Exception, SystemExit) as exc:  # mypyc reports a type error by exiting
        _say(f"mypyc could not compile ({exc}): installing pure Python")
        return _pure()


class OptionalBuildExt(build_ext):
    """Builds all the extensions, or none of them."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, no headers: distutils' errors, OSError
            _say(f"compiling failed ({exc}): installing pure Python")
            for ext in self.extensions:
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
            self.extensions = []
            _pure()


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
