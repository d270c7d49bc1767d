"""Which culex runs: the modules compiled by mypyc at install time, or pure Python.

The compiled modules are the same files, built into C extensions (setup.py lists them), which
the import system takes before the sources beside them. ``CULEX_PURE_PYTHON=1`` in the
environment makes culex import the sources instead (to compare, to debug with tracebacks into
every line, or to run the tests on both); it is read once, when culex is first imported.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

# One module of the compiled set: whether it came from an extension tells for all of them
# (setup.py builds all of them or none).
_PROBE = "culex.protocol._decoder"


def pure_python_asked() -> bool:
    return os.environ.get("CULEX_PURE_PYTHON", "") not in ("", "0")


class _SourcesFirst:
    """Finds culex's modules among the sources only, passing over any extension. (A meta
    path finder by its method alone: importlib.abc would import importlib.resources, and
    with it tempfile, shutil, zipfile and the compression modules: 1 MB of an idle broker.)"""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if path is None or not fullname.startswith("culex."):
            return None
        loaders = [(importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)]
        for entry in path:
            spec = importlib.machinery.FileFinder(entry, *loaders).find_spec(fullname)
            if spec is not None:
                return spec
        return None


def prefer_sources() -> None:
    if not any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourcesFirst())


def build() -> str:
    """"compiled with mypyc" or "pure Python", as culex says it at start and in --version."""
    module = sys.modules.get(_PROBE) or importlib.import_module(_PROBE)
    loader = getattr(module.__spec__, "loader", None)
    return ("compiled with mypyc" if isinstance(loader, importlib.machinery.ExtensionFileLoader)
            else "pure Python")
