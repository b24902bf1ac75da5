"""Progress lines: state changes at once, one heartbeat per minute of case time, no flood."""

from __future__ import annotations

import logging

import pytest

from pytest_tidb_ha.report.progress import Heartbeat, TimelineProgress, heartbeat_interval
from pytest_tidb_ha.timeline import Event


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def ev(t: float, kind: str, /, **data: object) -> Event:
    return Event(t, t, kind, dict(data))


def test_interval_scales_with_floor() -> None:
    assert heartbeat_interval(1.0) == 60.0
    assert heartbeat_interval(0.1) == pytest.approx(6.0)
    assert heartbeat_interval(0.01) == 5.0  # never more often than every 5 s


def test_heartbeat_state_changes_and_rate(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    hb = Heartbeat("add_index#1", time_scale=0.1, clock=clock)
    caplog.set_level(logging.INFO, logger="pytest_tidb_ha")
    logged = []
    for i in range(121):  # 60 s real at 0.5 s polls = 10 minutes of case time
        clock.t = i * 0.5
        state = "queueing" if i < 4 else "running / write reorganization"
        logged.append(hb.update(state, f"ROW_COUNT {i * 100}"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "add_index#1: queueing — ROW_COUNT 0"
    assert lines[1] == "add_index#1: running / write reorganization — ROW_COUNT 400"
    still = [ln for ln in lines if "still" in ln]
    assert 8 <= len(still) <= 10  # one per 6 s real = one per case minute
    assert "(1m00s case time)" in still[0]
    assert sum(logged) == len(lines)


def test_timeline_progress(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    follow = TimelineProgress(time_scale=1.0, clock=clock)
    caplog.set_level(logging.INFO, logger="pytest_tidb_ha")
    url = "s3://b/x?access-key=AKIAEXAMPLE&secret-access-key=SECRETEXAMPLE"
    follow(ev(1, "fault.inject", fault_id="f1", fault_kind="network_partition",
              sources=["pd-0"], targets=["pd-1", "pd-2"]))
    follow(ev(2, "job.submit", job_key="import_into#1", query=f"IMPORT INTO t FROM '{url}'"))
    follow(ev(3, "job.state", job_key="import_into#1", state="running", import_step="importing",
              imported_rows=5))
    for s in range(4, 200):  # workload samples every second; job state unchanged
        clock.t = float(s)
        follow(ev(s, "workload.metrics", tps=10.0, errors={"1105": 1}, p99=3.0))
    follow(ev(200, "fault.healed", fault_id="f1"))
    follow(ev(201, "job.verdict", job_key="import_into#1", verdict="stuck", reason=url))
    lines = [r.getMessage() for r in caplog.records]
    text = "\n".join(lines)
    assert "SECRETEXAMPLE" not in text
    assert "AKIAEXAMPLE" not in text
    assert lines[0] == "fault f1: partition pd-0 ⟂ pd-1,pd-2 at 1.0s"
    assert "import_into#1: running / importing — imported rows 5" in lines
    assert len([ln for ln in lines if ln.startswith("import_into#1: still")]) == 3
    assert len([ln for ln in lines if ln.startswith("workload: still")]) == 3
    assert len(lines) < 15, "no flood"
    assert "fault f1: healed after 3m19s" in lines
    assert [r.levelno for r in caplog.records][-1] == logging.WARNING


def test_fixture_mode_echoes_layers_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """The nemesis and the watcher log faults/jobs themselves: no INFO duplicates."""
    follow = TimelineProgress(time_scale=1.0, clock=Clock(), layer_level=logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="pytest_tidb_ha")
    follow(ev(1, "fault.inject", fault_id="f1", fault_kind="kill", targets=["tidb-0"]))
    follow(ev(2, "job.state", job_key="add_index#1", state="running"))
    follow(ev(3, "job.verdict", job_key="add_index#1", verdict="stuck", reason="r"))
    follow(ev(4, "workload.metrics", tps=5.0, errors={}, p99=None))
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert levels == {"fault f1: kill at 1.0s": logging.DEBUG,
                      "add_index#1: running": logging.DEBUG,
                      "add_index#1: verdict stuck — r": logging.DEBUG,
                      "workload: running — tps 5.0, errors 0/s": logging.INFO}
