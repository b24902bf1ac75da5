"""pytest-rerunfailures: one artifacts folder per attempt, the keep policy per attempt,
and a summary that names only folders that exist. No Docker: the tests fill ``ha_record``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("pytest_rerunfailures")

FLAKY = '''
from pathlib import Path

import pytest
from pytest_tidb_ha.verdicts import Verdict


def attempt(name):
    counter = Path(f"{name}.count")
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return n


def test_flaky(ha_record):
    n = attempt("flaky")
    ok = n > 1
    ha_record.verdicts.append(Verdict("add_index#1", "add_index", n,
                                      "converged" if ok else "stuck", f"attempt {n}", ok))
    assert ok, f"attempt {n} stuck"


def test_broken(ha_record):
    n = attempt("broken")
    ha_record.verdicts.append(Verdict("add_index#1", "add_index", n, "stuck", f"attempt {n}",
                                      False))
    pytest.fail(f"attempt {n} stuck")
'''


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, Path]:
    arts = pytester.path / "arts"
    result = pytester.runpytest_subprocess("-p", "rerunfailures", "--reruns", "1",
                                           "-p", "no:cacheprovider", f"--ha-artifacts={arts}",
                                           *args)
    return result, arts


def _named_folders(text: str) -> list[str]:
    return re.findall(r"artifacts: (\S+)", text)


def test_each_attempt_has_its_folder_and_policy(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    step = pytester.path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    pytester.makepyfile(test_fake=FLAKY)
    result, arts = _run(pytester)
    assert result.parseoutcomes() == {"passed": 1, "failed": 1, "rerun": 2}
    present = sorted(p.name for p in arts.iterdir())
    # flaky: attempt 1 failed (kept), attempt 2 passed (removed by keep=failed);
    # broken: both attempts failed, both kept
    assert present == ["test_fake.py_test_broken", "test_fake.py_test_broken-retry1",
                       "test_fake.py_test_flaky"]
    first = json.loads((arts / "test_fake.py_test_flaky" / "verdicts.json").read_text())
    assert first["outcome"] == "failed"
    assert first["verdicts"][0]["reason"] == "attempt 1"
    retry = json.loads((arts / "test_fake.py_test_broken-retry1" / "verdicts.json").read_text())
    assert retry["verdicts"][0]["reason"] == "attempt 2"
    named = _named_folders(result.stdout.str())
    assert sorted(Path(n).name for n in named) == present
    assert all(Path(n).is_dir() for n in named)
    table = step.read_text()
    assert "attempt 1" in table
    assert "attempt 2" in table
    assert all(Path(n).is_dir() for n in re.findall(r"`([^`]*arts[^`]*)`", table))
    assert "rerun: this attempt failed and was run again" in result.stdout.str()


def test_keep_all_keeps_every_attempt(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fake=FLAKY)
    result, arts = _run(pytester, "--ha-artifacts-keep=all", "-k", "flaky")
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1, "deselected": 1}
    assert sorted(p.name for p in arts.iterdir()) == ["test_fake.py_test_flaky",
                                                     "test_fake.py_test_flaky-retry1"]
    second = json.loads((arts / "test_fake.py_test_flaky-retry1" / "verdicts.json").read_text())
    assert second["outcome"] == "passed"


def test_a_later_run_clears_every_attempt_of_an_earlier_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fake=FLAKY)
    _, arts = _run(pytester, "--ha-artifacts-keep=all", "-k", "flaky")
    assert (arts / "test_fake.py_test_flaky-retry1").is_dir()
    result, _ = _run(pytester, "-k", "flaky")  # the counter says: passes at once now
    result.assert_outcomes(passed=1)
    assert list(arts.iterdir()) == []
