"""The collection fast paths give what the general paths give (issue 13 goal 1).

Collection reads every key of every case: :class:`~pytest_tidb_ha.scenario.yamlnodes.Map`
checks a mapping's own keys in one direct loop and falls back to the general walk
(merge keys resolved) at a ``<<``; a plain fault type name is parsed once per session.
These tests hold the fast paths to the general ones -- same keys, same lines, same
first error (file:line) -- on the repository's QA files and on hand-made mistakes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from pytest_tidb_ha.scenario import faulttypes
from pytest_tidb_ha.scenario.errors import FieldError, ScenarioError
from pytest_tidb_ha.scenario.loader import load_text
from pytest_tidb_ha.scenario.model import FAULT_KINDS
from pytest_tidb_ha.scenario.yamlnodes import Ctx, Map, compose

ROOT = Path(__file__).resolve().parents[2]
QA_FILES = sorted({*ROOT.glob("scenarios/**/*.yaml"), *ROOT.glob("tests/corpus/**/*.yaml")})
EVERY_KEY = (*(f"k{i}" for i in range(40)), "name", "faultType", "<<")


def _mappings(node: yaml.Node | None) -> list[yaml.MappingNode]:
    out: list[yaml.MappingNode] = []
    if isinstance(node, yaml.MappingNode):
        out.append(node)
        for k, v in node.value:
            out += _mappings(k) + _mappings(v)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out += _mappings(item)
    return out


def _general(ctx: Ctx, node: yaml.MappingNode, allowed: tuple[str, ...]) -> Map:
    """A Map read by the general walk only (what a mapping with ``<<`` gets)."""
    m = Map.__new__(Map)
    m.ctx, m.node, m.what, m.items, m.key_nodes = ctx, node, "a mapping", {}, {}
    m._merged(allowed, None)
    return m


def _outcome(build: object) -> object:
    try:
        m = build()  # type: ignore[operator]
    except ScenarioError as exc:
        return ("error", str(exc))
    return {k: (ctx_line(m.key_nodes[k]), ctx_line(vn)) for k, vn in m.items.items()}


def ctx_line(node: yaml.Node) -> int:
    return int(node.start_mark.line)


def test_there_are_qa_files_to_compare() -> None:
    assert len(QA_FILES) >= 3


@pytest.mark.parametrize("path", QA_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_mapping_of_the_qa_files_reads_the_same_both_ways(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        root = compose(text, str(path))
    except ScenarioError:
        pytest.skip("not YAML (a corpus file kept as pasted)")
    ctx = Ctx(str(path))
    mappings = _mappings(root)
    for node in mappings:
        keys = tuple(str(k.value) for k, _ in node.value if isinstance(k, yaml.ScalarNode))
        for allowed in (EVERY_KEY + keys, keys[1:], ()):
            fast = _outcome(lambda n=node, a=allowed: Map(ctx, n, "a mapping", a))
            slow = _outcome(lambda n=node, a=allowed: _general(ctx, n, a))
            if any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value):
                continue  # both ways are the general walk then
            assert fast == slow, (path, ctx.line(node), allowed)


MISTAKES = {
    "unknown key": ("""\
        cases:
          - name: a
            faultTyp: kill
        """, 3, "unknown key 'faultTyp' in a case"),
    "duplicate key": ("""\
        cases:
          - name: a
            faultType: kill
            selector: "tikv(random)"
            faultType: pause
        """, 5, "duplicate key 'faultType' (first on line 3)"),
    "non-string key": ("""\
        cases:
          - name: a
            [1, 2]: kill
        """, 3, "keys must be strings"),
    "unknown key before a merge": ("""\
        cases:
          - &b {name: a, faultType: kill, selector: "tikv(random)", faultDuration: 30s}
          - name: b
            faultTyp: kill
            <<: *b
        """, 4, "unknown key 'faultTyp' in a case"),
    "unknown key in a merged mapping": ("""\
        cases:
          - &b {name: a, faultType: kill, selector: "tikv(random)", bogus: 1}
          - <<: *b
            name: b
        """, 2, "unknown key 'bogus' in a case"),
}


@pytest.mark.parametrize("name", MISTAKES)
def test_a_bad_key_names_file_line_and_key(name: str) -> None:
    body, line, words = MISTAKES[name]
    with pytest.raises(ScenarioError) as info:
        load_text(textwrap.dedent(body), "qa/mistakes.yaml")
    assert f"qa/mistakes.yaml:{line}" in str(info.value)
    assert words in str(info.value)


def test_a_merged_key_loses_to_an_own_key_after_the_fast_loop_gave_up() -> None:
    cases = load_text(textwrap.dedent("""\
        cases:
          - &b {name: a, faultType: kill, selector: "tikv(random)", faultDuration: 30s,
                warmUpTime: 1m}
          - name: b
            <<: *b
            warmUpTime: 2m
        """), "merge.yaml")
    assert cases is not None
    assert [c.warmup.seconds for c in cases] == [60.0, 120.0]
    assert [c.source.line for c in cases] == [2, 4]


@pytest.mark.parametrize("name", [*FAULT_KINDS, "network_latency", "kill"])
def test_a_remembered_fault_type_is_the_parsed_one(name: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faulttypes, "_PLAIN", {})
    try:
        first = faulttypes.parse_fault_type(name)
    except FieldError:
        pytest.skip(f"{name} takes parameters")
    again = faulttypes.parse_fault_type(name)
    assert again is first  # remembered
    monkeypatch.setattr(faulttypes, "_PLAIN", {})
    assert faulttypes.parse_fault_type(name) == first  # and the same as parsing anew


def test_a_bad_fault_type_is_refused_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faulttypes, "_PLAIN", {})
    for _ in range(2):
        with pytest.raises(FieldError, match="unknown faultType 'kil'"):
            faulttypes.parse_fault_type("kil")
    assert faulttypes._PLAIN == {}
    parametric = "network_delay(latency:50ms)"
    assert faulttypes.parse_fault_type(parametric).params == {"latency": "50ms"}
    assert parametric not in faulttypes._PLAIN
