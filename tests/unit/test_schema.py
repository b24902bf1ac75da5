"""The case-file JSON Schema: generated from scenario/keys.py, committed, and in agreement
with the loader on what is a case file -- QA's own files included.

Patterns are checked as editors run them (ECMA-262 with the ``u`` flag, through
``regress``), not only as Python's ``re`` reads them.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_tidb_ha import schema
from pytest_tidb_ha.scenario import keys
from pytest_tidb_ha.scenario.errors import ScenarioError
from pytest_tidb_ha.scenario.keys import SECTIONS, Key
from pytest_tidb_ha.scenario.loader import load_text

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "src" / "pytest_tidb_ha" / schema.SCHEMA_FILE
CORPUS = REPO / "tests" / "corpus"
REGENERATE = "python -m pytest_tidb_ha schema > src/pytest_tidb_ha/case.schema.json"

jsonschema = pytest.importorskip("jsonschema")
regress = pytest.importorskip("regress")


@functools.cache
def _ecma(pattern: str) -> Any:
    return regress.Regex(pattern, "u")


def _ecma_pattern(validator: Any, pattern: str, instance: object, _: object) -> Iterator[Any]:
    if validator.is_type(instance, "string") and _ecma(pattern).find(instance) is None:
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


#: Draft-07 as an editor applies it: ECMA-262 patterns.
EditorValidator = jsonschema.validators.extend(jsonschema.Draft7Validator,
                                               {"pattern": _ecma_pattern})


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    return EditorValidator(schema.case_schema())


def errors_of(document: object, validator: Any = None) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in (validator or _validator()).iter_errors(document)]


def _patterns(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "pattern" and isinstance(v, str):
                yield v
            else:
                yield from _patterns(v)
    elif isinstance(node, list):
        for v in node:
            yield from _patterns(v)


def test_committed_schema_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == schema.schema_text(), (
        f"case.schema.json is stale: regenerate it with `{REGENERATE}`")


def test_every_key_of_the_language_has_a_type() -> None:
    assert schema.untyped_keys() == [], (
        "keys of scenario/keys.py without a JSON type: give them a kind that "
        f"schema.kind_schema types (and `of` for lists and mappings), then `{REGENERATE}`")
    assert schema.unmapped_kinds() == [], "kinds of keys.Kind that schema.kind_schema lacks"


def test_a_new_key_is_one_row_in_keys_py(monkeypatch: pytest.MonkeyPatch) -> None:
    row = Key("allowFaultErrors", "boolean", "a new expectation", "ext")
    monkeypatch.setitem(SECTIONS, "expect", (*SECTIONS["expect"], row))
    typed = schema.case_schema()["definitions"]["expect"]["properties"]["allowFaultErrors"]
    assert typed == {"description": "a new expectation [pytest-tidb-ha extension]",
                     "type": "boolean"}
    validator = EditorValidator(schema.case_schema())
    doc: dict[str, Any] = {"cases": [{"name": "a", "expect": {"allowFaultErrors": True}}]}
    assert errors_of(doc, validator) == []
    doc["cases"][0]["expect"]["allowFaultErrors"] = "yes"
    assert errors_of(doc, validator) != []


def test_it_is_a_valid_draft7_schema_with_ecma_patterns() -> None:
    generated = schema.case_schema()
    jsonschema.Draft7Validator.check_schema(generated)
    patterns = set(_patterns(generated))
    assert len(patterns) > 10
    for pattern in patterns:
        _ecma(pattern)  # raises on what an editor's RegExp(pattern, "u") refuses


def test_printed_by_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest_tidb_ha", "schema"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == schema.schema_text()
    assert json.loads(done.stdout)["title"] == "pytest-tidb-ha QA case file"
    bad = subprocess.run([sys.executable, "-m", "pytest_tidb_ha", "nope"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2
    assert "unknown command 'nope'" in bad.stderr
    assert "schema" in bad.stderr


# ---- the loader and the schema agree ---------------------------------------------------

def loader_accepts(text: str, name: str = "x.yaml") -> bool:
    try:
        return bool(load_text(text, name))
    except ScenarioError:
        return False


def _documents(text: str) -> list[object]:
    """The file, and each case file QA's config list holds as a string (`default: |`)."""
    doc = yaml.safe_load(text)
    inner = [item["default"] for item in doc if isinstance(item.get("default"), str)] \
        if isinstance(doc, list) and doc and isinstance(doc[0], dict) else []
    return [doc, *(yaml.safe_load(t) for t in inner)]


def _yaml_blocks(markdown: str) -> list[str]:
    return [textwrap.dedent(b) for b in re.findall(r"```yaml\n(.*?)```", markdown, re.S)]


def _doc_examples() -> list[str]:
    """docs/case-format.md's YAML: whole files as they are, excerpts of a case in a case."""
    out = []
    for block in _yaml_blocks((REPO / "docs" / "case-format.md").read_text()):
        data = yaml.safe_load(block)
        if not isinstance(data, dict):
            continue  # the `# yaml-language-server: ...` comment line
        if "cases" in data:
            out.append(block)
        else:
            assert set(data) <= set(keys.names("case")), data
            out.append(yaml.safe_dump({"cases": [{"name": "doc", **data}]}))
    return out


def test_the_seeds_their_triggered_variants_and_the_documented_examples_validate() -> None:
    texts = [p.read_text() for folder in ("seeds", "triggered")
             for p in sorted((REPO / "scenarios" / folder).glob("*.yaml"))]
    examples = _doc_examples()
    assert len(examples) >= 5
    for text in texts + examples:
        assert load_text(text, "x.yaml")  # the loader takes it ...
        for doc in _documents(text):
            assert errors_of(doc) == []  # ... and so does an editor


#: Corpus files the loader rejects for a reason the schema cannot express (none today).
CORPUS_BEYOND_SCHEMA: dict[str, str] = {}


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_qa_corpus_validates_exactly_where_the_loader_accepts(path: Path) -> None:
    """QA's own files: what collects validates; 48208 (kill with a two-sided selector) and
    48701 (indentation lost) are refused by both."""
    text = path.read_text()
    documents = _documents(text)
    if loader_accepts(text, path.name):
        for doc in documents:
            assert errors_of(doc) == []
    elif path.name in CORPUS_BEYOND_SCHEMA:
        assert errors_of(documents[0]) == []
    else:
        assert errors_of(documents[0]) != []


def test_the_corpus_covers_each_shape_and_the_qa_grammar() -> None:
    """The corpus test above is only as good as the corpus: it holds all three shapes,
    parametric fault types, roles in selectors and QA's importInto keys."""
    corpus = {p.name: p.read_text() for p in CORPUS.glob("*.yaml")}
    shapes = {type(yaml.safe_load(t)).__name__ for t in corpus.values()}
    assert shapes == {"dict", "list"}
    assert any("default: |" in t for t in corpus.values())
    for needle in ("iochaos_io_delay(", "pd(leader)", "tidb(ddl-owner)", "crc32Checksum",
                   "tidbGlobalVariables"):
        assert any(needle in t for t in corpus.values()), needle


#: Files the loader accepts; the schema must accept them too.
GOOD = {
    "one_shot": "cases:\n  - {name: a, faultType: kill, selector: tidb(ddl_owner), "
                "faultDuration: 1m, recoveryTime: 2m}\n",
    "instant": "cases:\n  - {name: a, faultType: pd_leader_resign}\n",
    "instant_on_its_role": "cases:\n  - {name: a, faultType: ddl_owner_resign, "
                           "selector: 'tidb(ddl-owner)', faultDuration: 0s}\n",
    "roles": "cases:\n  - {name: a, faultType: network_partition, selector: "
             "'pd(leader)_to_tidb(owner)', period: '@every 5m', faultDuration: 1m, "
             "faultTotalRunTime: 10m}\n",
    "quantifiers": "cases:\n  - {name: a, faultType: pause, selector: tikv(50%), "
                   "faultDuration: 1m}\n  - {name: b, faultType: kill, selector: tikv(2), "
                   "faultDuration: 1m}\n  - {name: c, faultType: kill, selector: pdfollower(one),"
                   " faultDuration: 1m}\n",
    "parametric_qa": "cases:\n  - {name: a, faultType: 'io_delay(volumeName:tikv,delay:60m)', "
                     "selector: tikv-0, faultDuration: 1m}\n"
                     "  - {name: b, faultType: 'network_latency(latency:1s,jitter:5ms)', "
                     "selector: pdleader_to_all, faultDuration: 1m, direction: to}\n",
    "parametric_ours": "cases:\n  - {name: a, faultType: 'network_delay(latency:1s)', "
                       "selector: tikv, faultDuration: 1m}\n"
                       "  - {name: b, faultType: 'kill()', selector: tikv, faultDuration: 1m}\n",
    "plain_qa_alias": "cases:\n  - {name: a, faultType: network_latency, latency: 1s, "
                      "selector: tikv, faultDuration: 1m}\n",
    "faults_list": """\
cases:
  - name: a
    warmUpTime: 30s
    faults:
      - {faultType: network_delay, selector: pdleader, latency: 1s, jitter: 10ms,
         faultDuration: 2m, direction: to}
      - {faultType: network_loss, selector: tikv-1_to_all, loss: 30%, faultDuration: 1m,
         warmUpTime: 2m}
      - {faultType: io_delay, selector: tikv(50%), latency: 100ms, faultDuration: 90}
""",
    "import_and_expect": """\
workloads: [{type: sysbench, db: w, tableNum: 2, ignoreErrors: [1062, "8028"]}]
tidbGlobalVariables: {beforeCase: ["tidb_enable_dist_task='on'"],
                      afterCase: ["SET GLOBAL tidb_ddl_reorg_worker_cnt = 4"]}
cases:
  - name: a
    distTask: off
    markers: [smoke]
    topology: {pd: 3, tikv: 3, tidb: 2}
    version: v8.5.1
    importInto:
      - {table: t, source: "/import/t.*.csv", timeout: 10m, format: csv,
         options: {skip_rows: 1, thread: 4, detached: true, disk_quota: 10GiB},
         generate: {rows: 1000, files: 2}, createTable: "CREATE TABLE t (a int)"}
      - {db: d, schema: "CREATE TABLE u (a int)", cmd: "import into u from 's3://b/u.csv'",
         timeout: 1h, crc32Checksum: 18446744073709551615}
    ddl:
      addIndex: [{table: t, index_col_name: a, timeout: 5m, job_type: txn, distTask: on}]
    expect: {outcome: success, allowErrors: ["lock wait"], stallWindow: 2m, cancelAfter: 1m}
""",
    "config_list_inline_and_bare": "- name: c1\n  default: {cases: [{name: a, faultType: kill, "
                          "selector: tikv, faultDuration: 1m}]}\n"
                          "- name: c2\n  default: '[{name: a, faultType: kill, selector: tikv, "
                          "faultDuration: 1m}]'\n",
    "bare_list": "- {name: a, faultType: kill, selector: tikv, faultDuration: 1m}\n"
                 "- {name: b, warmUpTime: 0, importInto: [{db: d, table: t, source: s3://b/x, "
                 "timeout: 1m}]}\n",
}

#: Files the loader rejects for something a schema can say; the schema must say it too.
BAD = {
    "unknown_key": "cases:\n  - {name: a, faultTyp: kill}\n",
    "unknown_fault": "cases:\n  - {name: a, faultType: partition, selector: tikv, "
                     "faultDuration: 1m}\n",
    "plain_parametric_only": "cases:\n  - {name: a, faultType: iochaos_io_delay, selector: tikv, "
                             "faultDuration: 1m}\n",
    "parametric_unknown_param": "cases:\n  - {name: a, faultType: 'iochaos_io_delay(delay:1s,"
                                "size:1)', selector: tikv, faultDuration: 1m}\n",
    "parametric_needs_delay": "cases:\n  - {name: a, faultType: 'iochaos_io_delay(path:/x)', "
                              "selector: tikv, faultDuration: 1m}\n",
    "parametric_not_key_value": "cases:\n  - {name: a, faultType: 'network_latency(1s)', "
                                "selector: tikv, faultDuration: 1m}\n",
    "parametric_kill_takes_none": "cases:\n  - {name: a, faultType: 'kill(latency:1s)', "
                                  "selector: tikv, faultDuration: 1m}\n",
    "unknown_group": "cases:\n  - {name: a, faultType: kill, selector: tivk(random), "
                     "faultDuration: 1m}\n",
    "bad_quantifier": "cases:\n  - {name: a, faultType: kill, selector: tikv(sum), "
                      "faultDuration: 1m}\n",
    "tikv_has_no_leader": "cases:\n  - {name: a, faultType: kill, selector: tikv(leader), "
                          "faultDuration: 1m}\n",
    "percent_over_100": "cases:\n  - {name: a, faultType: kill, selector: tikv(101%), "
                        "faultDuration: 1m}\n",
    "two_sided_kill": "cases:\n  - {name: a, faultType: kill, selector: pdleader_to_all, "
                      "faultDuration: 1m}\n",  # #48208
    "resign_elsewhere": "cases:\n  - {name: a, faultType: pd_leader_resign, selector: tikv}\n",
    "selector_missing": "cases:\n  - {name: a, faultType: kill, faultDuration: 1m}\n",
    "param_not_taken": "cases:\n  - {name: a, faultType: kill, selector: tikv, latency: 1s, "
                       "faultDuration: 1m}\n",
    "param_not_taken_parametric": "cases:\n  - {name: a, faultType: 'io_delay(delay:1s)', "
                                  "selector: tikv, faultDuration: 1m, direction: to}\n",
    "param_missing": "cases:\n  - {name: a, faultType: network_delay, selector: tikv, "
                     "faultDuration: 1m}\n",
    "duration_missing": "cases:\n  - {name: a, faultType: kill, selector: tikv}\n",
    "zero_window": "cases:\n  - {name: a, faultType: kill, selector: tikv, faultDuration: 0s}\n",
    "period_alone": "cases:\n  - {name: a, faultType: kill, selector: tikv, faultDuration: 1m, "
                    "period: '@every 5m'}\n",
    "recovery_on_periodic": "cases:\n  - {name: a, faultType: kill, selector: tikv, "
                            "faultDuration: 1m, period: '@every 5m', faultTotalRunTime: 10m, "
                            "recoveryTime: 1m}\n",
    "fault_key_without_fault": "cases:\n  - {name: a, selector: tikv}\n",
    "bad_duration": "cases:\n  - {name: a, warmUpTime: 5 minutes}\n",
    "bad_loss": "cases:\n  - {name: a, faultType: network_loss, selector: tikv, loss: 0%, "
                "faultDuration: 1m}\n",
    "bad_job_type": "cases:\n  - {name: a, ddl: {addIndex: [{db: d, table: t, "
                    "index_col_name: c, timeout: 1m, job_type: fast}]}}\n",
    "zero_tables": "workloads: [{tableNum: 0}]\ncases:\n  - {name: a}\n",
    "unknown_option": "cases:\n  - {name: a, importInto: [{db: d, table: t, source: s3://b/x, "
                      "timeout: 1m, options: {skip_row: 1}}]}\n",
    "option_not_a_flag": "cases:\n  - {name: a, importInto: [{db: d, table: t, source: s3://b/x,"
                         " timeout: 1m, options: {detached: 'yes'}}]}\n",
    "cmd_and_source": "cases:\n  - {name: a, importInto: [{db: d, source: s3://b/x, "
                      "cmd: \"import into t from 's3://b/x'\", timeout: 1m}]}\n",
    "schema_and_create_table": "cases:\n  - {name: a, importInto: [{db: d, table: t, "
                               "source: s3://b/x, timeout: 1m, schema: x, createTable: y}]}\n",
    "import_without_source": "cases:\n  - {name: a, importInto: [{db: d, table: t, "
                             "timeout: 1m}]}\n",
    "checksum_too_big": "cases:\n  - {name: a, importInto: [{db: d, cmd: \"import into t from "
                        "'s3://b/x'\", timeout: 1m, crc32Checksum: 18446744073709551616}]}\n",
    "global_variable_not_sql": "tidbGlobalVariables: {beforeCase: [just words]}\n"
                               "cases:\n  - {name: a}\n",
    "no_cases": "cases: []\n",
    "bad_name": "cases:\n  - {name: 'a::b'}\n",
    "bad_marker": "cases:\n  - {name: a, markers: ['not a name']}\n",
    "no_timeout": "cases:\n  - {name: a, ddl: {addIndex: [{db: d, table: t, "
                  "index_col_name: c}]}}\n",
    "config_without_default": "- {name: c, cases: []}\n",
    "config_list_mixed_with_cases": "- {name: c, default: 'cases: [{name: a}]'}\n"
                                    "- {name: b, faultType: kill, selector: tikv, "
                                    "faultDuration: 1m}\n",
    "flattened": "tag: x\ncases:\n- name: a\nwarmUpTime: 1m\nfaultType: kill\n",  # as #48701
}

#: Files the loader rejects for what a JSON Schema cannot say: the schema lets them through
#: (an editor cannot warn), the loader stops them at collection with file:line.
BEYOND_SCHEMA = {
    # values compared with each other
    "window_longer_than_period": "cases:\n  - {name: a, faultType: kill, selector: tikv, "
                                 "faultDuration: 6m, period: '@every 5m', "
                                 "faultTotalRunTime: 30m}\n",
    "duplicate_case_names": "cases:\n  - {name: a}\n  - {name: a}\n",
    # text inside a string that is itself a language (parsed by the loader)
    "config_string_not_a_case_file": "- {name: c, default: 'cases: [{name: a, faultTyp: x}]'}\n",
    "cmd_not_import_into": "cases:\n  - {name: a, importInto: [{db: d, cmd: 'select 1', "
                           "timeout: 1m}]}\n",
    "parameter_twice": "cases:\n  - {name: a, faultType: 'iochaos_io_delay(delay:1s,delay:2s)', "
                       "selector: tikv, faultDuration: 1m}\n",
    "parameter_in_type_and_key": "cases:\n  - {name: a, faultType: 'network_delay(latency:1s)', "
                                 "latency: 2s, selector: tikv, faultDuration: 1m}\n",
    "parametric_value_not_a_duration": "cases:\n  - {name: a, faultType: 'network_latency("
                                       "latency:soon)', selector: tikv, faultDuration: 1m}\n",
    "allow_errors_not_a_regex": "cases:\n  - {name: a, expect: {allowErrors: ['(']}}\n",
    # what the rest of the file decides
    "db_missing_without_workload": "cases:\n  - {name: a, ddl: {addIndex: [{table: t, "
                                   "index_col_name: c, timeout: 1m}]}}\n",
    "generate_outside_import": "cases:\n  - {name: a, importInto: [{db: d, table: t, "
                               "source: s3://b/x, timeout: 1m, generate: {rows: 1}}]}\n",
    "bare_list_item_is_no_case": "- {name: a, faultType: kill, selector: tikv, "
                                 "faultDuration: 1m}\n- {name: b}\n",
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_schema_accepts_what_the_loader_accepts(name: str) -> None:
    assert loader_accepts(GOOD[name])
    for doc in _documents(GOOD[name]):
        assert errors_of(doc) == []


@pytest.mark.parametrize("name", sorted(BAD))
def test_schema_rejects_what_the_loader_rejects(name: str) -> None:
    with pytest.raises(ScenarioError):
        load_text(BAD[name], f"{name}.yaml")
    assert errors_of(yaml.safe_load(BAD[name])) != []


@pytest.mark.parametrize("name", sorted(BEYOND_SCHEMA))
def test_what_only_the_loader_can_say(name: str) -> None:
    """If the schema learns to say one of these, move it to BAD."""
    with pytest.raises(ScenarioError):
        load_text(BEYOND_SCHEMA[name], f"{name}.yaml")
    assert errors_of(yaml.safe_load(BEYOND_SCHEMA[name])) == []


# ---- every key: a value of its kind passes both, a wrong one fails both ----------------

#: A valid mapping of each section (its required keys).
BASE: dict[str, dict[str, object]] = {
    "file": {}, "config": {"name": "c", "default": "cases: [{name: a}]"}, "workload": {},
    "case": {"name": "a"},
    "fault": {"faultType": "kill", "selector": "tikv", "faultDuration": "1m"},
    "ddl": {}, "addIndex": {"db": "d", "table": "t", "index_col_name": "c", "timeout": "1m"},
    "importInto": {"db": "d", "table": "t", "source": "/import/t.csv", "timeout": "1m"},
    "importInto.options": {}, "generate": {"rows": 1}, "expect": {}, "topology": {},
    "tidbGlobalVariables": {}, "when": {"state": "running"},
}
FAULT_BASE = BASE["fault"]
#: Keys that only make sense beside others (None removes a key of the base).
CONTEXT: dict[str, dict[str, object]] = {
    "latency": {"faultType": "network_delay"},
    "jitter": {"faultType": "network_delay", "latency": "1s"},
    "loss": {"faultType": "network_loss"},
    "direction": {"faultType": "network_partition"},
    "faultDuration": {"faultType": "restart"},  # instant: 0s is a duration too
    "period": {"faultTotalRunTime": "30m"},
    "faultTotalRunTime": {"period": "@every 5m"},
    "cmd": {"table": None, "source": None},
    "shape": {"faultType": "network_partition"},
    "ports": {"faultType": "network_partition"},
    "free": {"faultType": "disk_full"},
    "diskSize": {"faultType": "disk_full"},
    "rate": {"faultType": "bandwidth"},
    "faultTypes": {"faultType": None, "selector": "tikv", "faultDuration": "1m"},
    "interval": {"schedule": "random", "faultTotalRunTime": "30m"},
    "schemaState": {"state": None},
    "importStep": {"state": None},
    "progress": {"state": None},
}
#: Values a kind's sample cannot be (the statement QA's cmd must be).
GOOD_VALUE: dict[str, object] = {"cmd": "import into t from '/import/t.csv'"}


def _wrap(section: str, mapping: dict[str, object]) -> object:
    """A whole file with ``mapping`` in its place."""
    def case(**extra: object) -> dict[str, object]:
        return {"cases": [{"name": "a", **extra}]}
    builders: dict[str, Callable[[], object]] = {
        "file": lambda: {"cases": [{"name": "a"}], **mapping},
        "config": lambda: [mapping],
        "workload": lambda: {"workloads": [mapping], **case()},
        "case": lambda: {"cases": [mapping]},
        "fault": lambda: case(faults=[mapping]),
        "ddl": lambda: case(ddl=mapping),
        "addIndex": lambda: case(ddl={"addIndex": [mapping]}),
        "importInto": lambda: case(importInto=[mapping]),
        "importInto.options": lambda: case(importInto=[{**BASE["importInto"],
                                                        "options": mapping}]),
        "generate": lambda: case(importInto=[{**BASE["importInto"], "generate": mapping}]),
        "expect": lambda: case(expect=mapping),
        "topology": lambda: case(topology=mapping),
        "tidbGlobalVariables": lambda: {"tidbGlobalVariables": mapping, **case()},
        "when": lambda: case(faults=[{**FAULT_BASE, "when": mapping}]),
    }
    return builders[section]()


def _samples(kind: str, key: Key | None) -> tuple[list[object], list[object]]:
    """(good values, wrong values) of a kind."""
    low = key.minimum if key is not None else None
    if kind == "integer":
        start = 1 if low is None else low
        bad: list[object] = [start - 1, "x", 1.5]
        if key is not None and key.maximum is not None:
            bad.append(key.maximum + 1)
        return [start], bad
    if kind == "duration":
        return ["1m", *(["0s"] if low == 0 else [])], ["5 minutes", *([] if low == 0 else ["0s"])]
    if kind == "choice":
        assert key is not None
        return [key.choices[0]], ["nope"]
    if kind == "mapping":
        assert key is not None
        return [dict(BASE[key.of])], ["x"]
    if kind == "list":
        assert key is not None
        items: list[object]
        wrong: list[object]
        if key.of in SECTIONS:
            items, wrong = [dict(FAULT_BASE if key.of == "fault" else BASE[key.of])], []
        else:
            items, wrong = _samples(key.of, None)
        bad = ["x", *[[w] for w in wrong[:1]], *([[]] if low else [])]
        return [items], bad
    table: dict[str, tuple[list[object], list[object]]] = {
        "string": (["x"], [{"a": 1}]),
        "sql": (["CREATE TABLE t (a int)"], [{"a": 1}]),
        "name": (["a"], ["a::b", "a/b"]),
        "global_variable": (["tidb_enable_dist_task='on'", "SET GLOBAL x = 1"], ["just words"]),
        "boolean": ([True], ["yes"]),
        "on_off": (["on", False], ["maybe"]),
        "period": (["@every 5m"], ["@every soon"]),
        "percent": (["30%", 30], ["0%", "150%"]),
        "size": (["10MB", "2MiB", 2097152], ["x", -1, "10 parsecs"]),
        "rate": (["1mbit", "10MB/s"], ["x", "0mbit", 100]),
        "port": ([2379], [0, 65536, "x"]),
        "interval": (["10s..60s", ["1s", "5s"]], ["x", "10s", ["1s"]]),
        "selector": (["tikv(random)"], ["tivk"]),
        "fault_type": (["kill"], ["partition"]),
        "error_codes": ([[1062, "8028"], "all", "1062,8028"], ["x", "1062 8028"]),
        "marker": (["smoke"], ["not a name"]),
        "regex": (["lock wait"], [{"a": 1}]),
        "scalar": (["x", 1, True], [["a"]]),
        "case_file": (["cases: [{name: a}]"], [42]),
    }
    return table[kind]


ROWS = [(section, k) for section, rows in SECTIONS.items() for k in rows]


@pytest.mark.parametrize(("section", "key"), ROWS, ids=[f"{s}.{k.name}" for s, k in ROWS])
def test_each_key_agrees_with_the_loader(section: str, key: Key) -> None:
    """Generated from keys.py: a new row is checked against the loader without a new test."""
    base = dict(BASE[section])
    if section == "case" and (key.requires or key.kind == "fault_type"):
        base.update(FAULT_BASE)
    for name, value in CONTEXT.get(key.name, {}).items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    good, bad = _samples(key.kind, key)
    if key.name in GOOD_VALUE:
        good = [GOOD_VALUE[key.name]]
    for value, accepted in [(v, True) for v in good] + [(v, False) for v in bad]:
        text = yaml.safe_dump(_wrap(section, {**base, key.name: value}), sort_keys=False)
        verdicts = (loader_accepts(text), errors_of(yaml.safe_load(text)) == [])
        assert verdicts == (accepted, accepted), f"{section}.{key.name}: {value!r}\n{text}"
