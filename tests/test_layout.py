"""The shape of the code, checked: no import circle between packages (at run time or for the
type checker), a sans-IO protocol package, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "culex"
MAX_LINES = 500


def _part(path: Path) -> str:
    """The package (or top-level module) a source file belongs to: "broker", "app" ..."""
    relative = path.relative_to(SRC).parts
    return relative[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """The culex parts a module imports, TYPE_CHECKING imports included."""
    tree = ast.parse(path.read_text())
    found = set()
    package = path.relative_to(SRC).parent.parts
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = [*base, *(node.module.split(".") if node.module else [])]
                if not target:  # "from . import x" at the top: x is the part
                    target = [alias.name for alias in node.names]
                found.add(target[0])
            elif node.module and node.module.startswith("culex."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("culex."):
                    found.add(alias.name.split(".")[1])
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        part = _part(path)
        graph.setdefault(part, set()).update(_imports(path) - {part, "__init__"})
    return graph


def _stdlib_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_import_circle_between_packages() -> None:
    graph = _graph()

    def visit(part: str, path: list[str]) -> None:
        for target in sorted(graph.get(part, ())):
            assert target not in path, "import circle: " + " -> ".join([*path, target])
            visit(target, [*path, target])

    for part in graph:
        visit(part, [part])


def test_the_layers() -> None:
    graph = _graph()
    assert graph["protocol"] == set()  # shared by everything, depends on nothing
    assert "broker" not in graph["persistence"]  # the store reads the broker's objects
    assert "transport" not in graph["broker"] and "app" not in graph["transport"]
    assert graph["observability"] == set()


def test_the_protocol_and_broker_packages_are_sans_io() -> None:
    for path in (SRC / "protocol").glob("*.py"):
        assert not _stdlib_imports(path) & {"asyncio", "socket", "time", "logging"}, path
    for path in (SRC / "broker").glob("*.py"):
        assert not _stdlib_imports(path) & {"asyncio", "socket", "time", "ssl"}, path


def test_no_source_file_over_500_lines() -> None:
    long = {str(path.relative_to(SRC)): n for path in SRC.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
