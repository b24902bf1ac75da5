"""QA's keys really run (issue 17): tidbGlobalVariables, importInto schema + cmd + crc32Checksum,
a parametric fault type and recoveryTime, end to end on the stand-in.

A QA-style case file (written the way #47125 and #47684 write theirs: a flow mapping
with a space before the colon, a multi-line ``schema`` string, the whole IMPORT INTO
statement in ``cmd``) runs in a pytest subprocess with ``--standin``:

* the right checksum converges; a wrong one is ``failed-unexpected`` naming both
  numbers -- so the check is real, not a pass-through;
* beforeCase ran before the workload and afterCase after the case (timeline);
* the network_latency(...) fault was applied and healed on the DDL owner.

The expected checksum is computed here from the very CSV rows the runner
generates (same seed), with the formula of jobs/checksum.py.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_tidb_ha.jobs.checksum import crc32_of_rows
from pytest_tidb_ha.jobs.submit import write_import_data
from pytest_tidb_ha.scenario.loader import load_text
from pytest_tidb_ha.scenario.model import ImportIntoJob

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
TIME_SCALE = "0.1"
WORKLOAD_SCALE = "0.001"

CASES = """\
tidbGlobalVariables : {
    "beforeCase": [ tidb_enable_dist_task='on' ],
    "afterCase": [ "tidb_enable_dist_task='off'" ]
}
cases:
  - name: "qa_import_checksum"
    warmUpTime: 10s
    faultType: network_latency(latency:20ms)
    selector: "tidb(ddl-owner)"
    faultDuration: 30s
    recoveryTime: 10s
    importInto:
      - db: "importtest"
        schema: "CREATE TABLE `user_data1` (
          `id` bigint NOT NULL,
          `k` int NOT NULL,
          `c` char(120) NOT NULL,
          `pad` char(60) NOT NULL,
          PRIMARY KEY (`id`));"
        cmd: "import into user_data1 from '/import/user_data1.*.csv' WITH DETACHED,skip_rows=1"
        timeout: 10m
        crc32Checksum: CHECKSUM
        generate: {rows: 3000, files: 2}
  - name: "qa_import_wrong_checksum"
    importInto:
      - db: "importtest2"
        schema: "CREATE TABLE `user_data1` (`id` bigint NOT NULL, `k` int NOT NULL,
          `c` char(120) NOT NULL, `pad` char(60) NOT NULL, PRIMARY KEY (`id`))"
        cmd: "import into user_data1 from '/import/user_data1.*.csv' WITH skip_rows=1"
        timeout: 10m
        crc32Checksum: 12345
        generate: {rows: 3000, files: 2}
"""

CONFTEST = f'''
import importlib.util
import sys

_spec = importlib.util.spec_from_file_location("tidb_ha_repo_conftest", {str(REPO / "conftest.py")!r})
_mod = importlib.util.module_from_spec(_spec)
sys.modules["tidb_ha_repo_conftest"] = _mod
_spec.loader.exec_module(_mod)
pytest_plugins = ["tidb_ha_repo_conftest"]
'''


def expected_checksum(tmp: Path) -> int:
    """The checksum of the rows the runner will generate for the first case."""
    (case, _) = load_text(CASES.replace("CHECKSUM", "0"), "qa.yaml") or ()
    (job,) = case.jobs
    assert isinstance(job, ImportIntoJob)
    write_import_data(tmp, job, float(WORKLOAD_SCALE))
    rows: list[tuple[str, ...]] = []
    for name in job.generated_files():
        with (tmp / name).open(newline="") as fh:
            rows += [tuple(r) for r in list(csv.reader(fh))[1:]]
    assert len(rows) == 3000
    return crc32_of_rows(rows)


def artifact(folder: Path, case: str, name: str) -> Any:
    (path,) = [p for p in folder.rglob(name) if case in str(p)]
    return json.loads(path.read_text())


def test_qa_keys_run_on_the_standin(pytester: pytest.Pytester, tmp_path: Path) -> None:
    checksum = expected_checksum(tmp_path)
    pytester.makeconftest(CONFTEST)
    (pytester.path / "qa.yaml").write_text(CASES.replace("CHECKSUM", str(checksum)))
    artifacts = pytester.path / "ha-artifacts"
    result = pytester.runpytest_subprocess(
        "qa.yaml", "--standin", f"--ha-time-scale={TIME_SCALE}",
        f"--ha-workload-scale={WORKLOAD_SCALE}", f"--ha-artifacts={artifacts}",
        "--ha-artifacts-keep=all", "-p", "no:cacheprovider", "-rA", timeout=600)
    story = "\n".join(result.outlines[-80:])
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "qa::qa_import_wrong_checksum: 1 of 1 verdicts not ok: import_into#1: failed-unexpected "
        "-- * crc32_checksum: crc32Checksum of `importtest2`."
        f"`user_data1` is {checksum}, the case expects 12345 (BIT_XOR(*",
    ])

    good = artifact(artifacts, "qa_import_checksum", "verdicts.json")
    (verdict,) = good["verdicts"]
    assert verdict["verdict"] == "converged", story
    assert "crc32_checksum passed" in verdict["reason"] or \
        any(c["name"] == "crc32_checksum" and c["ok"] for c in verdict["evidence"]["checks"]), \
        verdict

    events = artifact(artifacts, "qa_import_checksum", "timeline.json")["events"]
    kinds = [(e["kind"], e.get("data", e)) for e in events]
    settings = [d for k, d in kinds if k == "jobs.setting" and "statement" in d]
    assert [s["phase"] for s in settings] == ["beforeCase", "afterCase"], settings
    assert settings[0]["statement"] == "SET GLOBAL tidb_enable_dist_task='on'"
    first_job = next(i for i, (k, _) in enumerate(kinds) if k == "job.submit")
    before = next(i for i, (k, d) in enumerate(kinds) if k == "jobs.setting")
    assert before < first_job
    faults = [k for k, d in kinds if k.startswith("fault.")]
    assert "fault.applied" in faults, faults
    assert "fault.healed" in faults, faults
    assert result.ret == 1
