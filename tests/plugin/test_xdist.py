"""Under pytest-xdist the controller alone writes the run's output, once and complete.

Real xdist (``-p xdist -n 2``) in a pytest subprocess; no Docker: the fake tests fill
``ha_record`` as the layers do, and the dry run needs no cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("xdist")

FAKE_TESTS = '''
import pytest
from pytest_tidb_ha.jobs.verdict import Verdict


@pytest.mark.parametrize("n", range(6))
def test_case(ha_record, n):
    ok = n != 3
    ha_record.verdicts.append(Verdict(f"add_index#{n}", "add_index", 100 + n,
                                      "converged" if ok else "stuck", f"reason {n}", ok))
    assert ok
'''

CASES = """\
cases:
  - name: alpha
    faultType: kill
    selector: tikv(random)
    faultDuration: 10s
  - name: beta
    faultType: pause
    selector: tidb(one)
    faultDuration: 5s
  - name: gamma
    faultType: restart
    selector: pd(one)
"""

MARKER_TESTS = '''
import pytest


@pytest.mark.fault("kill", selector="tikv(random)", duration="10s")
def test_marker(tidb_cluster):
    pass
'''


def test_step_summary_is_written_once_by_the_controller(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_fake=FAKE_TESTS)
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "-p", "no:cacheprovider",
                                           f"--ha-artifacts={pytester.path / 'arts'}")
    result.assert_outcomes(passed=5, failed=1)
    text = summary.read_text()
    assert text.count("## tidb-ha verdicts") == 1, text
    for n in range(6):
        assert text.count(f"add_index#{n} (job {100 + n})") == 1, text
    out = result.stdout.str()
    assert out.count("tidb-ha verdicts") == 1
    assert sum(1 for line in out.splitlines() if line.startswith("test_fake.py::test_case[")) == 6


def test_dry_run_plans_show_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", cases=CASES)
    pytester.makepyfile(test_marker=MARKER_TESTS)
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "-p", "no:cacheprovider",
                                           "--ha-dry-run")
    result.assert_outcomes(passed=3, skipped=1)
    lines = result.stdout.str().splitlines()
    assert sum(1 for line in lines if "tidb-ha plan" in line) == 1
    heads = [line.split()[0] for line in lines if line.startswith(("cases::", "test_marker"))]
    # every plan once, in collection order (the YAML file, then the Python module)
    assert heads == ["cases::alpha", "cases::beta", "cases::gamma", "test_marker"]


def test_plans_travel_from_worker_to_controller_in_order() -> None:
    from pytest_tidb_ha.parallel import merge_plans, plans_payload

    order = ["a", "b", "c", "d"]
    worker1 = plans_payload([("c", "plan c"), ("a", "plan a"), ("d", "plan d")], order)
    worker2 = plans_payload([("b", "plan b"), ("d", "plan d")], order)
    assert merge_plans([*worker2, *worker1]) == [("a", "plan a"), ("b", "plan b"),
                                                 ("c", "plan c"), ("d", "plan d")]


def test_without_xdist_the_summary_is_written_once_too(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    summary: Path = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_fake=FAKE_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           f"--ha-artifacts={pytester.path / 'arts'}")
    result.assert_outcomes(passed=5, failed=1)
    assert summary.read_text().count("## tidb-ha verdicts") == 1
