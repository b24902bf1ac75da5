"""bench/mainjob.py: the main job's figure — plan estimate as anchor, verdicts checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_bench_page import BENCH, _load, common

mainjob = _load("tidb_ha_bench_mainjob", BENCH / "mainjob.py", common=common)

PLAN = """\
46735::ha_kill  [scenarios/seeds/46735.yaml:11]
  estimate: ~29s wall (setup 11s, faults end 12s, jobs end 18s); --ha-shard balances by it
48303::ha_partition  [scenarios/seeds/48303.yaml:12]
  estimate: ~1m30s wall (setup 3s, faults end 1m27s, jobs end 1m18s); --ha-shard balances by it
"""


@pytest.mark.parametrize(("text", "seconds"), [("29s", 29.0), ("1m30s", 90.0),
                                               ("1h2m3s", 3723.0), ("1.5s", 1.5)])
def test_plan_durations(text: str, seconds: float) -> None:
    assert mainjob.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "12", "1m30", "soon"])
def test_bad_plan_durations_are_named(text: str) -> None:
    with pytest.raises(common.BenchError, match="not a plan duration"):
        mainjob.duration_seconds(text)


def test_estimate_sums_every_case() -> None:
    assert mainjob.plan_estimate(PLAN) == 119.0
    with pytest.raises(common.BenchError, match="no 'estimate:'"):
        mainjob.plan_estimate("no plan here")


def test_junit_verdicts(tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite><testcase classname="s" name="a"><properties>'
        '<property name="ha_verdict" value="converged,converged"/></properties></testcase>'
        '<testcase classname="s" name="b"/></testsuite></testsuites>')
    assert mainjob.junit_verdicts(junit) == {"a": "converged,converged", "b": "(none)"}


def result(wall: float, verdicts: dict[str, str], code: int = 0) -> dict[str, object]:
    return {"time_scale": 0.05, "wall_seconds": wall, "plan_estimate_seconds": 200.0,
            "exit_code": code, "verdicts": verdicts}


def test_goal_met_only_in_time_with_every_job_converged() -> None:
    ok = mainjob.summarize(result(250.0, {"a": "converged", "b": "converged,converged"}))
    (row,) = ok.rows
    assert (row.verdict, row.ratio) == ("met", "1.25x")
    assert "unchanged" in row.detail
    slow = mainjob.summarize(result(301.0, {"a": "converged"})).rows[0]
    assert slow.verdict == "NOT met"
    changed = mainjob.summarize(result(100.0, {"a": "converged,stuck"})).rows[0]
    assert changed.verdict == "NOT met"
    assert "CHANGED" in changed.detail
    failed = mainjob.summarize(result(100.0, {"a": "converged"}, code=1)).rows[0]
    assert failed.verdict == "NOT met"


def test_verdict_summary_keeps_the_section_without_artifact_lines() -> None:
    out = ("collecting...\n== tidb-ha verdicts ==\na  converged\n    artifacts: /tmp/x\n"
           "3 passed in 9s\n")
    assert mainjob.verdict_summary(out) == ["== tidb-ha verdicts ==", "a  converged",
                                            "3 passed in 9s"]
    assert mainjob.verdict_summary("no summary") == []
