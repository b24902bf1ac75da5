"""Ordinary YAML in QA files: anchors, aliases, merge keys, tags (issue 14 item 9).

Everything PyYAML's safe loader accepts loads, with file:line kept; a loader
failure is a ScenarioError with file:line, never a traceback.
"""

from __future__ import annotations

import textwrap

import pytest

from pytest_tidb_ha.scenario.errors import ScenarioError
from pytest_tidb_ha.scenario.loader import load_text

MERGED = """\
tag: anchors
workloads:
  - &sysbench
    type: sysbench
    db: sbtest
cases:
  - &base
    name: partition
    warmUpTime: 1m
    faultType: network_partition
    selector: "tikv(random)_to_all"
    faultDuration: 30s
    ddl:
      addIndex:
        - &job {db: sbtest, table: sbtest1, timeout: 10m, index_col_name: c}
  - <<: *base
    name: kill
    faultType: kill
    selector: "tikv(random)"
    ddl:
      addIndex:
        - <<: *job
          times: 2
        - {<<: [*job], table: sbtest2}
"""


def test_merge_keys_and_aliases_load_with_lines() -> None:
    cases = load_text(MERGED, "anchors.yaml")
    assert cases is not None
    partition, kill = cases
    assert partition.name == "partition"
    assert kill.name == "kill"
    assert kill.faults[0].kind == "kill"
    assert str(kill.faults[0].selector) == "tikv(random)"
    # merged keys keep the base's values ...
    assert kill.warmup.seconds == 60
    assert kill.faults[0].schedule.duration.seconds == 30
    first, second = kill.jobs
    assert (first.table, first.times, first.timeout.seconds) == ("sbtest1", 2, 600)
    assert second.table == "sbtest2"
    # ... and every item its own line
    assert (kill.source.line, first.source.line, second.source.line) == (16, 22, 24)


def test_an_error_in_a_merged_value_points_at_the_anchor() -> None:
    text = MERGED.replace("faultDuration: 30s", "faultDuration: 30 seconds")
    with pytest.raises(ScenarioError) as info:
        load_text(text, "anchors.yaml")
    assert str(info.value).startswith("anchors.yaml:12: faultDuration")


def test_an_explicit_key_overrides_a_merged_one_but_duplicates_stay_errors() -> None:
    text = textwrap.dedent("""\
        cases:
          - &a {name: one, faultType: kill, selector: "tikv(random)", faultDuration: 1m}
          - <<: *a
            name: two
            name: three
        """)
    with pytest.raises(ScenarioError) as info:
        load_text(text, "dup.yaml")
    assert str(info.value).startswith("dup.yaml:5: ")
    assert "duplicate key 'name'" in str(info.value)


def test_merge_of_a_list_of_mappings_earlier_wins() -> None:
    text = textwrap.dedent("""\
        defaults:
        cases:
          - name: c
            <<: [{faultType: kill, selector: "tidb(random)"}, {faultType: pause, faultDuration: 1m}]
        """).replace("defaults:\n", "")
    (case,) = load_text(text, "m.yaml") or ()
    assert case.faults[0].kind == "kill"
    assert case.faults[0].schedule.duration.seconds == 60


def test_standard_tags_load() -> None:
    text = textwrap.dedent("""\
        cases:
          - name: !!str tagged
            faultType: kill
            selector: "tidb(random)"
            faultDuration: !!str 1m
            ddl:
              addIndex:
                - {db: d, table: t, timeout: 1m, index_col_name: c, times: !!int "3"}
        """)
    (case,) = load_text(text, "tags.yaml") or ()
    assert case.jobs[0].times == 3


@pytest.mark.parametrize(("body", "line", "words"), [
    # a merge key whose value is not a mapping
    ("cases:\n  - name: c\n    <<: 3\n", 3, "merge"),
    # a tag the safe loader refuses
    ("cases:\n  - name: !!python/name:os.system c\n", 2, "tag"),
    # a standard tag with a value it cannot hold
    ("cases:\n  - name: c\n    faultType: kill\n    selector: tidb\n    faultDuration: 1m\n"
     "    ddl: {addIndex: [{db: d, table: t, timeout: 1m, index_col_name: c, times: !!int x}]}\n",
     6, "int"),
    # an undefined alias
    ("cases:\n  - *nowhere\n", 2, "alias"),
    # a mapping that merges itself
    ("cases:\n  - &m\n    name: c\n    <<: *m\n", 4, "recursive"),
])
def test_loader_failures_are_errors_with_file_and_line(body: str, line: int, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_text(body, "bad.yaml")
    message = str(info.value)
    assert message.startswith(f"bad.yaml:{line}: "), message
    assert words in message.lower(), message


SCALARS = """\
plain_int: 1
quoted_int: '1'
plain_yes: yes
quoted_yes: "yes"
on: on
float: 1.5
null_word: ~
empty:
date: 2001-12-14
octal: 0o17
sexagesimal: 1:30
hex: 0x1F
tagged: !!str 12
list: [1, '1', yes, "yes", ~, 1.5]
"""


@pytest.mark.parametrize("rep", range(3))
def test_remembered_tags_and_values_match_the_safe_loader(rep: int) -> None:
    """The composer remembers each scalar's tag and plain values by their text; the same
    text quoted and unquoted must still differ, on the first file and on later ones."""
    import yaml

    from pytest_tidb_ha.scenario.yamlnodes import Ctx, compose

    root = compose(SCALARS, "scalars.yaml")
    assert root is not None
    assert Ctx("scalars.yaml").value(root) == yaml.safe_load(SCALARS)
    got = Ctx("scalars.yaml").value(root)
    assert isinstance(got, dict)
    assert got["plain_int"] == 1
    assert got["quoted_int"] == "1"
    assert got["plain_yes"] is True
    assert got["quoted_yes"] == "yes"


def test_remembered_tags_survive_clearing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bounded memo: when full it starts again, and the answers stay the safe loader's."""
    import functools

    import yaml

    from pytest_tidb_ha.scenario import yamlnodes

    small = functools.lru_cache(maxsize=3)(yamlnodes._RESOLVER.resolve)
    monkeypatch.setattr(yamlnodes, "_cached_resolve", small)
    monkeypatch.setattr(yamlnodes, "_TAGS_MAX", 3)
    monkeypatch.setattr(yamlnodes, "_PLAIN_VALUES", {})
    for _ in range(2):
        root = yamlnodes.compose(SCALARS, "scalars.yaml")
        assert root is not None
        assert yamlnodes.Ctx("scalars.yaml").value(root) == yaml.safe_load(SCALARS)
        assert small.cache_info().currsize <= 3
        assert small.cache_info().misses > 3  # it was asked, and it started again
        assert len(yamlnodes._PLAIN_VALUES) <= 3
