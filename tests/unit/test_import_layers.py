"""The package has no import loop between its units (issue 16 item 10).

A *unit* is a subpackage (``jobs``, ``report``, ...) or a top-level module
(``options``, ``stash``, ...). Every import counts -- module level, inside a
function, under ``TYPE_CHECKING`` -- since a late import is still a dependency:
it only hides the loop from the interpreter. Before the seams work ten units knot
together in one strongly connected component (through ``recording``,
``scenario -> workload.sizing``, ``jobs.fixtures -> facade``,
``record -> jobs.verdict``); the order they must keep is the import-linter layers
contract in pyproject.toml (``lint-imports``), this test the measure of the loop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "pytest_tidb_ha"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _unit(module: str) -> str:
    """``pytest_tidb_ha.jobs.watch`` -> ``jobs``; the package itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def unit_graph(root: Path) -> dict[str, set[str]]:
    """unit -> the other units it imports (every import statement, at any depth)."""
    files = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                targets.update(f"{target}.{a.name}" if f"{target}.{a.name}" in files else target
                               for a in node.names)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        own = _unit(module)
        graph.setdefault(own, set()).update(
            _unit(t) for t in targets
            if t.split(".")[0] == root.name and t in files and _unit(t) != own)
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_loop_through_three_units() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_sees_late_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "top.py").write_text("def f():\n    from .sub import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("from ..top import f\n")
    graph = unit_graph(pkg)
    assert graph["top"] == {"sub"}
    assert graph["sub"] == {"top"}
    assert cycles(graph) == [["sub", "top"]]


def test_the_package_has_no_import_loop_between_its_units() -> None:
    graph = unit_graph(PACKAGE)
    assert {"jobs", "report", "scenario", "cluster", "stash", "verdicts"} <= set(graph)
    assert cycles(graph) == []


@pytest.mark.parametrize(("low", "high"), [
    ("scenario", "workload"), ("scenario", "jobs"), ("cluster", "faults"),
    ("record", "jobs"), ("verdicts", "jobs"), ("stash", "recording"),
])
def test_a_lower_unit_does_not_reach_a_higher_one(low: str, high: str) -> None:
    """The knots that made the loop, each untied (the full order: lint-imports)."""
    graph = unit_graph(PACKAGE)
    seen, todo = set(), [low]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert high not in seen
