"""The collection fast paths give what the general paths give (issue 13 goal 1).

Collection reads every key of every case: :class:`~pytest_tidb_ha.scenario.yamlnodes.Map`
checks a mapping's own keys in one direct loop and falls back to the general walk
(merge keys resolved) at a ``<<``; a plain fault type name is parsed once per session;
the composer's resolver hooks run in C (tags remembered, path hooks no-ops when there
are no path resolvers); a fault's values are read in one pass; a fault's needs are
worked out once per (kind, selector) and its checked parameters shared.
These tests hold the fast paths to the general ones -- same nodes, keys, lines, same
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
    # a fault's values are read in one pass (loader._fault): parameters first, then the
    # fault's own keys in a fixed order; the first that cannot be read is the error
    "a parameter before the fault's own keys": ("""\
        cases:
          - name: a
            faultType: !!int kill
            selector: "tikv(random)"
            faultDuration: 1m
            latency: !!int slow
        """, 6, "cannot read 'slow' as !!int"),
    "faultType before faultDuration": ("""\
        cases:
          - name: a
            faultDuration: !!int long
            faultType: !!int kill
            selector: "tikv(random)"
        """, 4, "cannot read 'kill' as !!int"),
    "an entry's own warmUpTime is read": ("""\
        cases:
          - name: a
            faults:
              - faultType: kill
                selector: "tikv(random)"
                faultDuration: 1m
                warmUpTime: !!int soon
        """, 7, "cannot read 'soon' as !!int"),
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


# ---- the composer's resolver hooks (yamlnodes._Composer) --------------------------------

def _tree(node: yaml.Node | None) -> object:
    """Everything of a node tree the loader reads: kind, tag, value, style, lines."""
    if node is None:
        return None
    lines = (node.start_mark.line, node.start_mark.column, node.end_mark.line)
    if isinstance(node, yaml.ScalarNode):
        return ("scalar", node.tag, node.value, node.style, lines)
    if isinstance(node, yaml.SequenceNode):
        return ("seq", node.tag, lines, [_tree(n) for n in node.value])
    return ("map", node.tag, lines, [(_tree(k), _tree(v)) for k, v in node.value])


def _qa_texts() -> list[tuple[Path, str]]:
    return [(p, p.read_text(encoding="utf-8")) for p in QA_FILES]


@pytest.mark.parametrize("path", QA_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_composer_builds_the_nodes_pyyaml_builds(path: Path) -> None:
    """Cached tags and no-op path hooks: the same tree as PyYAML's own composer (the one
    the fast composer derives from, hooks untouched), on every QA file we hold."""
    from pytest_tidb_ha.scenario import yamlnodes

    text = path.read_text(encoding="utf-8")
    base = yamlnodes._BASE_COMPOSER
    try:
        expected = _tree(yaml.compose(text, Loader=base))
    except yaml.YAMLError:
        with pytest.raises(ScenarioError):
            compose(text, str(path))
        return
    for _ in range(2):  # the second time from the remembered tags
        assert _tree(compose(text, str(path))) == expected
    if base is not yaml.SafeLoader:  # and the pure loader agrees on tags, values and lines
        pure = yaml.compose(text, Loader=yaml.SafeLoader)

        def plain(t: object) -> object:
            if isinstance(t, tuple) and t and t[0] == "scalar":
                return (t[1], t[2], t[4][0])
            if isinstance(t, tuple):
                return tuple(plain(x) for x in t)
            if isinstance(t, list):
                return [plain(x) for x in t]
            return t

        assert plain(_tree(compose(text, str(path)))) == plain(_tree(pure))


def test_a_loader_with_path_resolvers_keeps_pyyamls_hooks() -> None:
    from pytest_tidb_ha.scenario import yamlnodes

    class WithPaths(yamlnodes._Composer):
        pass

    WithPaths.add_path_resolver("!custom", ["cases"], kind=None)
    loader = WithPaths("cases: \"1\"\n")
    try:
        assert loader.descend_resolver is not slice
        assert loader.resolve is not yamlnodes._cached_resolve
        node = loader.get_single_node()
    finally:
        loader.dispose()
    assert isinstance(node, yaml.MappingNode)
    assert node.value[0][1].tag == "!custom"  # the path resolver applied
    plain = yamlnodes._Composer("cases: 1\n")
    try:
        assert plain.descend_resolver is slice
        assert plain.ascend_resolver is tuple
    finally:
        plain.dispose()


# ---- needs: one answer per (kind, selector), the topology without the words -------------

@pytest.mark.parametrize("path", QA_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_needs_and_topologies_are_the_worked_out_ones(path: Path) -> None:
    from pytest_tidb_ha.scenario import needs
    from pytest_tidb_ha.scenario.model import Topology

    try:
        cases = load_text(path.read_text(encoding="utf-8"), str(path))
    except ScenarioError:
        pytest.skip("a corpus file the loader refuses")
    if not cases:
        pytest.skip("no cases")
    for case in cases:
        for fault in case.faults:
            for variant in fault.variants():
                fresh = needs._kind_needs.__wrapped__(variant.kind, variant.selector)
                assert needs.fault_needs(variant) == list(fresh)
        for requested in (None, Topology(pd=3, tikv=1, tidb=1)):
            plan = needs.plan_topology(case, requested)
            assert needs.required_topology(case, requested) == plan.topology
            assert needs.plan_topology(case, requested, explain=False).reasons == ()


# ---- a fault's checked parameters, shared between faults that give the same ones -------

PARAMS = [
    ("network_delay", {"latency": "50ms"}),
    ("network_delay", {"latency": "50ms", "direction": "to"}),
    ("network_loss", {"loss": "30%"}),
    ("network_loss", {"loss": 30}),
    ("network_partition", {}),
    ("network_partition", {"ports": [2379, 20160]}),
    ("disk_full", {"free": 1, "diskSize": 2 * 1024**2}),
    ("disk_full", {"free": True}),
    ("kill", {"latency": "1s"}),
    ("network_delay", {}),
]


@pytest.mark.parametrize(("kind", "params"), PARAMS)
def test_shared_parameters_are_the_checked_ones(kind: str, params: dict[str, object]) -> None:
    from pytest_tidb_ha.scenario import build

    params = {build.YAML_PARAM_KEYS.get(k, k) if k != "diskSize" else "disk_size": v
              for k, v in params.items()}
    for _ in range(2):  # the second time from the remembered result
        try:
            expected: object = build.fault_params(kind, params)
        except FieldError as exc:
            expected = ("error", exc.field, exc.message)
        try:
            got: object = build._shared_params(kind, params)
        except FieldError as exc:
            got = ("error", exc.field, exc.message)
        assert got == expected


def test_true_and_one_are_different_parameters() -> None:
    from pytest_tidb_ha.scenario import build

    assert build._shared_params("disk_full", {"free": 1})["free"] == 1
    with pytest.raises(FieldError):
        build.fault_params("disk_full", {"free": True})
    with pytest.raises(FieldError):
        build._shared_params("disk_full", {"free": True})


# ---- the timeout budget: a schedule's last window ends last ----------------------------

SCHEDULES = """\
cases:
  - {name: random, faultType: kill, selector: "tikv(random)", faultDuration: 7s,
     schedule: random, interval: 10s..60s, faultTotalRunTime: 5m, warmUpTime: 1m}
  - {name: periodic, faultType: pause, selector: "tikv(random)", faultDuration: 30s,
     period: 1m, faultTotalRunTime: 10m}
  - {name: one-shot, faultType: restart, selector: "pd(random)", recoveryTime: 2m}
"""


@pytest.mark.parametrize("path", [*QA_FILES, None],
                         ids=lambda p: p.relative_to(ROOT).as_posix() if p else "schedules")
def test_the_last_window_of_a_schedule_ends_last(path: Path | None) -> None:
    from pytest_tidb_ha.scenario import timing

    try:
        cases = (load_text(path.read_text(encoding="utf-8"), str(path)) if path is not None
                 else load_text(SCHEDULES, "schedules.yaml"))
    except ScenarioError:
        pytest.skip("a corpus file the loader refuses")
    if not cases:
        pytest.skip("no cases")
    for case in cases:
        for scale in (1.0, 0.05, 0.1):
            every_end = max((end for f in case.faults for _, end in f.schedule.windows(scale)),
                            default=0.0)
            last_end = max((w[-1][1] for f in case.faults if (w := f.schedule.windows(scale))),
                           default=0.0)
            assert last_end == every_end
            assert timing.case_budget(case, scale) >= every_end


# ---- schedules and generate specs: one object for the faults that give the same parts ------

SHARED = """\
cases:
  - {name: a, faultType: kill, selector: "tikv(random)", faultDuration: 1m, period: 4m,
     faultTotalRunTime: 30m, warmUpTime: 1m}
  - {name: b, faultType: pause, selector: "tikv(random)", faultDuration: 1m, period: 4m,
     faultTotalRunTime: 30m, warmUpTime: 1m}
  - {name: c, faultType: pause, selector: "tikv(random)", faultDuration: 60s, period: 4m,
     faultTotalRunTime: 30m, warmUpTime: 1m}
  - {name: d, faultType: restart, selector: "pd(random)"}
  - {name: e, faultType: restart, selector: "pd(random)"}
  - name: f
    faultType: kill
    selector: "tikv(random)"
    faultDuration: 7s
    schedule: random
    interval: 10s..60s
    faultTotalRunTime: 5m
    importInto:
      - {db: d, table: t, source: "/import/t.*.csv", timeout: 10m,
         generate: {rows: 1000, files: 2}}
      - {db: d, table: u, source: "/import/u.*.csv", timeout: 10m,
         generate: {rows: 1000, files: 2}}
      - {db: d, table: v, source: "/import/v.*.csv", timeout: 10m,
         generate: {rows: 1000, files: 3}}
"""


def _written(schedule: object) -> tuple[object, ...]:
    """A schedule's parts with the text each was written as (equality ignores the text)."""
    from pytest_tidb_ha.scenario.model import Duration, Schedule

    assert isinstance(schedule, Schedule)

    def part(d: Duration | None) -> object:
        return None if d is None else (d.seconds, d.text)

    return (part(schedule.warmup), part(schedule.duration), part(schedule.period),
            part(schedule.total), part(schedule.recovery),
            None if schedule.interval is None else tuple(part(d) for d in schedule.interval))


@pytest.mark.parametrize("path", [*QA_FILES, None],
                         ids=lambda p: p.relative_to(ROOT).as_posix() if p else "shared")
def test_a_shared_schedule_is_the_one_its_fault_wrote(path: Path | None) -> None:
    """Loaded twice (the second time from the remembered schedules), every fault's
    schedule is what a schedule made of its own parts would be, texts included."""
    from pytest_tidb_ha.scenario.model import Schedule

    text = path.read_text(encoding="utf-8") if path is not None else SHARED
    try:
        first = load_text(text, "f.yaml")
    except ScenarioError:
        pytest.skip("a corpus file the loader refuses")
    second = load_text(text, "f.yaml")
    if not first or not second:
        pytest.skip("no cases")
    for a, b in zip(first, second, strict=True):
        for fa, fb in zip(a.faults, b.faults, strict=True):
            s = fb.schedule
            fresh = Schedule(warmup=s.warmup, duration=s.duration, period=s.period,
                             total=s.total, recovery=s.recovery, interval=s.interval)
            assert s == fresh == fa.schedule
            assert _written(s) == _written(fresh) == _written(fa.schedule)


def test_faults_with_the_same_parts_share_a_schedule_and_texts_stay_apart() -> None:
    cases = {c.name: c for c in load_text(SHARED, "shared.yaml") or ()}
    a, b, c, d, e = (cases[n].faults[0].schedule for n in "abcde")
    assert a is b  # same parts: one object
    assert d is e  # one-shot, no duration written: the shared zero
    assert a == c  # 60s == 1m ...
    assert a is not c  # ... but c shows what it wrote
    assert str(c.duration) == "60s"
    assert str(a.duration) == "1m"
    f = cases["f"].faults[0].schedule
    assert f.is_random
    assert f is not load_text(SHARED, "shared.yaml")[-1].faults[0].schedule  # type: ignore[index]


def test_equal_generate_specs_are_one_object() -> None:
    from pytest_tidb_ha.scenario.model import GenerateSpec, ImportIntoJob

    jobs = [j for c in load_text(SHARED, "shared.yaml") or () for j in c.jobs]
    specs = [j.generate for j in jobs if isinstance(j, ImportIntoJob)]
    assert specs == [GenerateSpec(1000, 2), GenerateSpec(1000, 2), GenerateSpec(1000, 3)]
    assert specs[0] is specs[1]
    assert specs[2] is not specs[0]
