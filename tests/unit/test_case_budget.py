"""``timing.case_budget``: the longest a case's own schedule may take (pytest-timeout deadline)."""

from __future__ import annotations

import pytest

from pytest_tidb_ha.scenario import timing
from pytest_tidb_ha.scenario.loader import load_text
from pytest_tidb_ha.scenario.model import Case


def case(body: str) -> Case:
    (c,) = load_text("cases:\n" + body, "c.yaml") or ()
    return c


FAULTS_ONLY = """\
  - name: f
    warmUpTime: 30s
    faultType: network_partition
    selector: tikv(random)_to_all
    period: "@every 5m"
    faultDuration: 3m
    faultTotalRunTime: 30m
"""


def test_faults_only_last_window_end() -> None:
    c = case(FAULTS_ONLY)
    # windows start at 30s, every 5m while before 30s + 30m: the last at 25m30s, ends 28m30s
    assert timing.case_budget(c, 1.0) == pytest.approx(28 * 60 + 30)
    assert timing.case_budget(c, 0.1) == pytest.approx((28 * 60 + 30) * 0.1)


def test_job_entries_run_side_by_side_and_times_in_a_row() -> None:
    c = case("""\
  - name: j
    warmUpTime: 1m
    ddl:
      addIndex:
        - {db: d, table: t, index_col_name: c, timeout: 10m, times: 3}
      importInto:
        - {db: d, table: u, source: "s3://b/x.csv", timeout: 20m}
""")
    stall = timing.stall_window(c, 1.0)
    per_run = stall + timing.cancel_window(1.0) + 2 * timing.WAIT_SLACK
    longest = max(3 * (600 + per_run), 1200 + per_run)
    assert timing.case_budget(c, 1.0) == pytest.approx(60 + longest + stall)


def test_the_case_stall_window_counts() -> None:
    base = """\
  - name: j
    ddl:
      addIndex:
        - {db: d, table: t, index_col_name: c, timeout: 10m}
"""
    short = case(base)
    long = case(base + "    expect: {stallWindow: 30m}\n")
    assert timing.case_budget(long, 1.0) - timing.case_budget(short, 1.0) == pytest.approx(
        2 * (1800 - timing.stall_window(short, 1.0)))


def test_python_tests_get_the_undeclared_job_allowance() -> None:
    c = case(FAULTS_ONLY)
    assert timing.case_budget(c, 1.0, jobs_declared=False) > timing.UNDECLARED_JOBS
    assert timing.case_budget(c, 0.01, jobs_declared=False) < timing.UNDECLARED_JOBS


def test_never_shorter_than_what_the_runner_waits() -> None:
    """The runner's own per-run wait (timeout + stall + slack, then cancel + slack)."""
    c = case("""\
  - name: j
    ddl:
      addIndex:
        - {db: d, table: t, index_col_name: c, timeout: 1m}
""")
    for scale in (1.0, 0.1, 0.001):
        stall = timing.stall_window(c, scale)
        runner_wait = (60 * scale + stall + timing.WAIT_SLACK
                       + timing.cancel_window(scale) + timing.WAIT_SLACK)
        assert timing.case_budget(c, scale) >= runner_wait
