"""The case-file JSON Schema: generated from the language's tables, committed, and in
agreement with the loader on what is a case file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_tidb_ha import schema
from pytest_tidb_ha.scenario.errors import ScenarioError
from pytest_tidb_ha.scenario.loader import load_text

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "src" / "pytest_tidb_ha" / schema.SCHEMA_FILE
REGENERATE = "python -m pytest_tidb_ha schema > src/pytest_tidb_ha/case.schema.json"

jsonschema = pytest.importorskip("jsonschema")


def validator() -> Any:
    return jsonschema.Draft7Validator(schema.case_schema())


def test_committed_schema_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == schema.schema_text(), (
        f"case.schema.json is stale: regenerate it with `{REGENERATE}`")


def test_every_key_of_the_language_has_a_type() -> None:
    assert schema.untyped_keys() == [], (
        "keys of scenario/loader.py's tables without a JSON type: add them to "
        f"schema.KEY_SCHEMAS, then `{REGENERATE}`")


def test_key_types_name_only_keys_the_language_has() -> None:
    keys = {k for table, _ in schema.MAPPINGS.values() for k in table}
    keys |= set(schema.loader.TOP_KEYS)
    assert set(schema.KEY_SCHEMAS) - keys == set()


def test_it_is_a_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(schema.case_schema())


def test_printed_by_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest_tidb_ha", "schema"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == schema.schema_text()
    assert json.loads(done.stdout)["title"] == "pytest-tidb-ha QA case file"
    bad = subprocess.run([sys.executable, "-m", "pytest_tidb_ha", "nope"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "unknown command 'nope'" in bad.stderr
    assert "schema" in bad.stderr


def _yaml_blocks(markdown: str) -> list[str]:
    return [textwrap.dedent(b) for b in re.findall(r"```yaml\n(.*?)```", markdown, re.S)]


def test_the_seeds_and_the_documented_example_validate() -> None:
    docs = [p.read_text() for p in sorted((REPO / "scenarios" / "seeds").glob("*.yaml"))]
    whole = [b for b in _yaml_blocks((REPO / "docs" / "case-format.md").read_text())
             if b.startswith(("tag:", "workloads:", "cases:"))]  # whole files, not excerpts
    assert whole
    docs += whole
    for text in docs:
        assert load_text(text, "x.yaml")  # the loader takes it ...
        errors = [e.message for e in validator().iter_errors(yaml.safe_load(text))]
        assert errors == [], errors  # ... and so does an editor


#: Case files the loader accepts; the schema must accept them too.
GOOD = {
    "one_shot": "cases:\n  - {name: a, faultType: kill, selector: tidb(ddl_owner), "
                "faultDuration: 1m}\n",
    "instant": "cases:\n  - {name: a, faultType: pd_leader_resign}\n",
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
    ddl:
      addIndex: [{table: t, index_col_name: a, timeout: 5m, job_type: txn, distTask: on}]
    expect: {outcome: success, allowErrors: ["lock wait"], stallWindow: 2m, cancelAfter: 1m}
""",
}

#: Case files the loader rejects for something a schema can say; the schema must too.
BAD = {
    "unknown_key": "cases:\n  - {name: a, faultTyp: kill}\n",
    "unknown_fault": "cases:\n  - {name: a, faultType: partition, selector: tikv, "
                     "faultDuration: 1m}\n",
    "unknown_group": "cases:\n  - {name: a, faultType: kill, selector: tivk(random), "
                     "faultDuration: 1m}\n",
    "bad_quantifier": "cases:\n  - {name: a, faultType: kill, selector: tikv(sum), "
                      "faultDuration: 1m}\n",
    "param_not_taken": "cases:\n  - {name: a, faultType: kill, selector: tikv, latency: 1s, "
                       "faultDuration: 1m}\n",
    "param_missing": "cases:\n  - {name: a, faultType: network_delay, selector: tikv, "
                     "faultDuration: 1m}\n",
    "duration_missing": "cases:\n  - {name: a, faultType: kill, selector: tikv}\n",
    "period_alone": "cases:\n  - {name: a, faultType: kill, selector: tikv, faultDuration: 1m, "
                    "period: '@every 5m'}\n",
    "bad_duration": "cases:\n  - {name: a, warmUpTime: 5 minutes}\n",
    "bad_job_type": "cases:\n  - {name: a, ddl: {addIndex: [{db: d, table: t, "
                    "index_col_name: c, timeout: 1m, job_type: fast}]}}\n",
    "zero_tables": "workloads: [{tableNum: 0}]\ncases:\n  - {name: a}\n",
    "unknown_option": "cases:\n  - {name: a, importInto: [{db: d, table: t, source: s3://b/x, "
                      "timeout: 1m, options: {skip_row: 1}}]}\n",
    "no_cases": "cases: []\n",
    "bad_name": "cases:\n  - {name: 'a::b'}\n",
    "bad_marker": "cases:\n  - {name: a, markers: ['not a name']}\n",
    "no_timeout": "cases:\n  - {name: a, ddl: {addIndex: [{db: d, table: t, "
                  "index_col_name: c}]}}\n",
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_schema_accepts_what_the_loader_accepts(name: str) -> None:
    assert load_text(GOOD[name], f"{name}.yaml")
    errors = [e.message for e in validator().iter_errors(yaml.safe_load(GOOD[name]))]
    assert errors == []


@pytest.mark.parametrize("name", sorted(BAD))
def test_schema_rejects_what_the_loader_rejects(name: str) -> None:
    with pytest.raises(ScenarioError):
        load_text(BAD[name], f"{name}.yaml")
    assert list(validator().iter_errors(yaml.safe_load(BAD[name]))) != []
