"""``python -m pytest_tidb_ha merge``: the shards' results read as one.

The fake tests fill ``ha_record`` as the layers do (verdicts, a note) and pass or
fail; the project is run whole once and as three shards, and the merge of the
shards must say what the whole run said.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_tidb_ha.report.merge import junit_address

FAKE = '''
import pytest
from pytest_tidb_ha.verdicts import Verdict

VERDICTS = {0: "converged", 1: "converged", 2: "stuck", 3: "converged", 4: "failed-sensible",
            5: "converged", 6: "cancel-ineffective", 7: "converged"}


def fill(rec, verdict):
    ok = verdict in ("converged", "failed-sensible")
    rec.timeline.record("job.submit", job_key="add_index#1", job_kind="add_index", job_id=None)
    rec.verdicts.append(Verdict("add_index#1", "add_index", 40, verdict, f"judged {verdict}", ok,
                                started_at=0.0, decided_at=1.5))
    rec.notes.append(f"note of {verdict}")
    return ok


@pytest.mark.parametrize("n", sorted(VERDICTS))
def test_case(ha_record, n):
    if not fill(ha_record, VERDICTS[n]):
        pytest.fail(f"job not ok: {VERDICTS[n]}")


class TestGroup:
    @pytest.mark.parametrize("p", ["a::b", "x[1]"])
    def test_param(self, p):
        pass


def test_plain():
    pass
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_fake=FAKE)
    return pytester


def _run(pytester: pytest.Pytester, out: str, *args: str) -> None:
    pytester.runpytest("-p", "no:cacheprovider", f"--junitxml={out}/junit.xml",
                       "-o", "junit_family=xunit2", "--ha-artifacts", f"{out}/ha-artifacts",
                       *args)


def _merge(cwd: Path, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_tidb_ha", "merge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def _verdicts(junit: Path) -> dict[tuple[str, str], tuple[str | None, str]]:
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        failed = any(child.tag in ("failure", "error") for child in case)
        out[(case.get("classname", ""), case.get("name", ""))] = (props.get("ha_verdict"),
                                                                  "failed" if failed else "ok")
    return out


def test_merged_shards_equal_the_whole_run(project: pytest.Pytester) -> None:
    _run(project, "whole", "--ha-shard", "1/1")
    for k in (1, 2, 3):
        _run(project, f"shard{k}", "--ha-shard", f"{k}/3")
    summary = project.path / "step-summary.md"
    proc = _merge(project.path, "shard1", "shard2", "shard3", "--junitxml", "merged.xml",
                  "--title", "nightly 42", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 1, proc.stdout + proc.stderr  # stuck and cancel-ineffective fail
    merged = _verdicts(project.path / "merged.xml")
    assert merged == _verdicts(project.path / "whole" / "junit.xml")
    assert len(merged) == 11
    out = proc.stdout
    assert "tidb-ha merge: 3 shard(s) of 3: 11 tests: 9 passed, 2 failed, 0 error, 0 skipped" in out
    assert "PROBLEM" not in out
    assert "FAILED test_fake.py::test_case[2]\nFAILED test_fake.py::test_case[6]\n" in out
    # the failing tests' kept verdicts.json give their notes; nodeids come from the shard records
    assert "test_fake.py::test_case[2]  add_index#1 (job 40)  stuck" in out
    assert "    note: note of stuck" in out
    assert "    artifacts: shard" in out
    text = summary.read_text()
    assert "## tidb-ha verdicts" in text
    assert "nightly 42" in text
    assert "⏳ stuck" in text
    assert "tidb-ha merge: 3 shard(s) of 3" in text


def test_missing_shard_or_lost_test_fails_the_gate(project: pytest.Pytester) -> None:
    for k in (1, 2, 3):
        _run(project, f"shard{k}", "--ha-shard", f"{k}/3", "-k", "plain or TestGroup")
    ok = _merge(project.path, "shard1", "shard2", "shard3")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "3 passed, 0 failed" in ok.stdout

    missing = _merge(project.path, "shard1", "shard3")
    assert missing.returncode == 1
    assert "PROBLEM: no results of shard(s) 2/3" in missing.stdout

    (project.path / "shard3" / "junit.xml").unlink()  # the job died before writing JUnit
    lost = _merge(project.path, "shard1", "shard2", "shard3")
    assert lost.returncode == 1
    assert "PROBLEM: shard 3/3 was given 1 test(s) that no JUnit file reports" in lost.stdout

    twice = _merge(project.path, "shard1", "shard2", "shard1/junit.xml", "shard2/junit.xml",
                   "shard1")
    assert "is reported by both" not in twice.stdout  # the same file given twice counts once


def test_usage_errors(project: pytest.Pytester) -> None:
    nothing = _merge(project.path, ".")
    assert nothing.returncode == 2
    assert "no JUnit results" in nothing.stderr
    absent = _merge(project.path, "nope")
    assert absent.returncode == 2
    assert "no such file or folder: nope" in absent.stderr


def test_junit_address_is_what_junitxml_writes(project: pytest.Pytester) -> None:
    project.mkpydir("pkg")
    (project.path / "pkg" / "test_deep.py").write_text(
        "import pytest\n@pytest.mark.parametrize('v', ['a/b', 'c::d'])\n"
        "def test_v(v):\n    pass\n")
    result = project.runpytest("-p", "no:cacheprovider", "--junitxml=j.xml", "-v")
    nodeids = [line.split(" ")[0] for line in result.outlines if " PASSED" in line
               or " FAILED" in line]
    assert len(nodeids) == 13
    written = set(_verdicts(project.path / "j.xml"))
    assert {junit_address(n) for n in nodeids} == written
