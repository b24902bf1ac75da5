"""The plugin uses pytest's and pluggy's public API only (the project's rule).

A private attribute (``item._fixtureinfo``, ``session._fixturemanager``, ...) can change
in any pytest release without notice; the plugin must keep working on the next one. The
check walks the plugin's source for every access to a private attribute of pytest's and
pluggy's public classes -- as ``obj._name`` or as ``getattr(obj, "_name")`` -- on anything
but ``self``/``cls`` (a subclass's own state).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pluggy
import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "pytest_tidb_ha"

CLASSES = (pytest.Function, pytest.Item, pytest.File, pytest.Collector, pytest.Session,
           pytest.Config, pytest.FixtureRequest, pytest.FixtureDef, pytest.Mark,
           pytest.MarkDecorator, pytest.Stash, pytest.TestReport, pytest.CollectReport,
           pytest.CallInfo, pytest.Parser, pytest.Metafunc, pytest.Pytester,
           pytest.TerminalReporter, pytest.Cache, pluggy.PluginManager, pluggy.HookCaller,
           pluggy.HookRelay)


def _private_names() -> frozenset[str]:
    names: set[str] = set()
    for cls in CLASSES:
        names.update(n for n in dir(cls) if n.startswith("_") and not n.startswith("__"))
    # attributes set on instances, not visible on the class
    names.update({"_fixtureinfo", "_fixturemanager", "_request", "_arg2fixturedefs",
                  "_pyfuncitem", "_obj", "_nodeid", "_store", "_name2pseudofixturedef",
                  "_inifile", "_tw", "_session"})
    return frozenset(names)


PRIVATE = _private_names()


def private_uses(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: expression`` for each private pytest/pluggy attribute read in *source*."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        name = None
        if isinstance(node, ast.Attribute):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                name = node.attr
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
              and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)):
            name = str(node.args[1].value)
        if name is not None and name in PRIVATE and isinstance(node, ast.expr):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_check_finds_a_private_read() -> None:
    source = ("info = getattr(item, '_fixtureinfo', None)\n"
              "fm = item.session._fixturemanager\n"
              "self._fixtureinfo = None\n")
    assert private_uses(source) == [
        "<source>:1: getattr(item, '_fixtureinfo', None)",
        "<source>:2: item.session._fixturemanager",
    ]


def test_the_plugin_reads_no_private_pytest_or_pluggy_attribute() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        found += private_uses(path.read_text(encoding="utf-8"), str(path.relative_to(SRC)))
    assert found == []
