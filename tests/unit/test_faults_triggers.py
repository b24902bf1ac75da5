"""Faults that follow the job: ``when:`` triggers in the case language and the nemesis."""

from __future__ import annotations

import time
from typing import Any

import pytest
from test_faults_nemesis import ROLES, FakeCluster, Recorder

from pytest_tidb_ha.events import FAULT_TRIGGER, JOB_STATE
from pytest_tidb_ha.faults.nemesis import Nemesis
from pytest_tidb_ha.faults.triggers import Sighting, matches
from pytest_tidb_ha.scenario import build
from pytest_tidb_ha.scenario.errors import FieldError, ScenarioError
from pytest_tidb_ha.scenario.loader import load_text
from pytest_tidb_ha.scenario.markers import fault_from_marker
from pytest_tidb_ha.scenario.model import FaultSpec, SourceRef, Trigger
from pytest_tidb_ha.scenario.plan import render_plan
from pytest_tidb_ha.timeline import Timeline


def sighting(seq: int | None = 1, **kw: object) -> Sighting:
    data = {"job_key": "import_into#1", "job_seq": seq, "job_id": 7, **kw}
    s = Sighting.from_event(JOB_STATE, 3.0, data)
    assert s is not None
    return s


@pytest.mark.parametrize(("trigger", "seen", "hit"), [
    (Trigger(1, import_step="importing"), {"import_step": "importing", "state": "running"}, True),
    (Trigger(1, import_step="importing"), {"import_step": "validating"}, False),
    (Trigger(2, import_step="importing"), {"import_step": "importing"}, False),
    (Trigger(1, state="running", schema_state="write reorganization"),
     {"state": "running", "schema_state": "write reorganization"}, True),
    (Trigger(1, state="running", schema_state="write reorganization"),
     {"state": "running", "schema_state": "write only"}, False),
    (Trigger(1, progress=30.0), {"progress": 29.9}, False),
    (Trigger(1, progress=30.0), {"progress": 30.0}, True),
    (Trigger(1, progress=30.0), {"progress": None}, False),
])
def test_a_trigger_matches_only_its_job_in_every_named_state(
        trigger: Trigger, seen: dict[str, Any], hit: bool) -> None:
    assert matches(trigger, sighting(**seen)) is hit


def test_events_of_other_kinds_are_no_sighting() -> None:
    assert Sighting.from_event("job.submit", 1.0, {"job_seq": 1}) is None


CASE = """
cases:
  - name: kill_owner_when_importing
    warmUpTime: 10s
    faultType: kill
    selector: "tidb(ddl_owner)"
    faultDuration: 1m
    when: {job: 1, importStep: importing}
    importInto:
      - db: d
        table: t
        source: /import/t.csv
        timeout: 10m
"""


def test_yaml_when_makes_a_trigger_and_times_count_from_it() -> None:
    (case,) = load_text(CASE, "c.yaml") or ()
    (fault,) = case.faults
    assert fault.trigger == Trigger(1, import_step="importing")
    # the case's warm-up is for the jobs: the window opens at the trigger itself
    assert fault.schedule.windows(1.0) == [(0.0, 60.0)]
    plan = render_plan(case)
    assert "when: job 1 importStep=importing is first seen" in plan
    assert "window 1: trigger+0s -> trigger+1m" in plan


@pytest.mark.parametrize(("when", "message"), [
    ("{job: 0, state: running}", "job is the n-th job run"),
    ("{job: 1}", "name what job 1 must be seen in"),
    ("{job: 1, schemaState: write reorg}", "is not one TiDB shows (did you mean 'write reorganization'?)"),
    ("{job: 1, importStep: importin}", "did you mean 'importing'?"),
    ("{job: 1, stage: running}", "unknown condition 'stage'"),
    ("{job: 1, progress: 130%}", "between 0% (exclusive) and 100%"),
    ("running", "must be a mapping"),
])
def test_bad_triggers_are_errors_at_their_line(when: str, message: str) -> None:
    text = CASE.replace("{job: 1, importStep: importing}", when)
    with pytest.raises(ScenarioError) as err:
        load_text(text, "c.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("c.yaml:8:")


def test_marker_when_takes_python_names() -> None:
    spec = fault_from_marker(("kill",), {"selector": "tidb(ddl_owner)", "duration": "30s",
                                          "when": {"job": 2, "schema_state": "write reorganization"}},
                             SourceRef(nodeid="t.py::x"))
    assert spec.trigger == Trigger(2, schema_state="write reorganization")


def test_a_triggered_fault_entry_warmup_is_a_delay_after_the_trigger() -> None:
    spec = build.make_fault("pause", selector="tikv-0", duration_value="5s", warmup="2s",
                            when={"job": 1, "state": "running"})
    assert spec.schedule.windows(1.0) == [(2.0, 7.0)]


def test_progress_trigger_parses_a_percentage() -> None:
    assert build.trigger({"job": 1, "progress": "30%"}).progress == 30.0
    with pytest.raises(FieldError):
        build.trigger({"job": 1, "progress": "lots"})


# -- the nemesis fires triggers from the timeline -------------------------------------------

def triggered(kind: str = "pause", **when: object) -> FaultSpec:
    return build.make_fault(kind, selector="tikv-1", duration_value="0.2s",
                            when={"job": 1, **when})


def wait_for(cond: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("condition not met")


def test_the_nemesis_opens_a_window_on_the_first_matching_observation() -> None:
    tl, rec = Timeline(), Recorder()
    spec = triggered(import_step="importing")
    n = Nemesis(FakeCluster(), [spec], tl, 1.0, seed=1, roles=ROLES, factory=rec.factory)
    with n:
        tl.record(JOB_STATE, job_key="import_into#1", job_seq=1, state="running",
                  import_step="")
        time.sleep(0.05)
        assert n.book.records[0].waiting
        seen = tl.record(JOB_STATE, job_key="import_into#1", job_seq=1, state="running",
                         import_step="importing")
        tl.record(JOB_STATE, job_key="import_into#1", job_seq=1, state="running",
                  import_step="importing")  # a later sighting does not fire again
        wait_for(lambda: tl.events("fault.healed"))
    fired = tl.events(FAULT_TRIGGER)
    assert len(fired) == 1
    assert fired[0].data["fired"] is True
    assert fired[0].data["observation"]["observed_at"] == round(seen.t, 3)
    applied = tl.events("fault.applied")[0]
    assert applied.t >= seen.t
    assert applied.data["planned_start"] == round(seen.t, 3)
    assert [c[0] for c in rec.calls] == ["apply", "heal"]
    assert n.fault_failures() == ([], [])
    r = n.book.records[0]
    assert r.fired_at == round(seen.t, 3)
    assert r.status() == "healed"


def test_a_trigger_that_never_fires_fails_naming_the_last_observation() -> None:
    tl, rec = Timeline(), Recorder()
    n = Nemesis(FakeCluster(), [triggered(schema_state="write reorganization")], tl, 1.0,
                seed=1, roles=ROLES, factory=rec.factory)
    with n:
        tl.record(JOB_STATE, job_key="add_index#1", job_seq=1, state="running",
                  schema_state="write only", job_id=9)
        time.sleep(0.05)
    failing, allowed = n.fault_failures()
    assert rec.calls == []
    assert len(failing) == 1
    assert not allowed
    assert "never fired" in failing[0]
    assert "schema state write only" in failing[0]
    assert "when: job 1 schemaState=write reorganization" in failing[0]
    assert n.missed
    assert "never fired" in n.missed[0]
    missed = [e for e in tl.events(FAULT_TRIGGER) if e.data["fired"] is False]
    assert missed


def test_a_missed_trigger_is_a_note_when_the_case_allows_fault_errors() -> None:
    tl, rec = Timeline(), Recorder()
    n = Nemesis(FakeCluster(), [triggered(state="running")], tl, 1.0, seed=1, roles=ROLES,
                factory=rec.factory, allow_errors=True)
    with n:
        pass
    failing, allowed = n.fault_failures()
    assert failing == []
    assert "job 1 was never seen" in allowed[0]


def test_untriggered_windows_run_on_the_clock_beside_a_waiting_trigger() -> None:
    tl, rec = Timeline(), Recorder()
    clock = build.make_fault("kill", selector="tikv-0", duration_value="0.1s")
    n = Nemesis(FakeCluster(), [triggered(state="running"), clock], tl, 1.0, seed=1, roles=ROLES,
                factory=rec.factory)
    with n:
        wait_for(lambda: tl.events("fault.healed"))
        tl.record(JOB_STATE, job_key="add_index#1", job_seq=1, state="running")
        wait_for(lambda: len(tl.events("fault.healed")) == 2)
    assert [c[:2] for c in rec.calls] == [("apply", "kill"), ("heal", "kill"),
                                          ("apply", "pause"), ("heal", "pause")]
    assert n.fault_failures() == ([], [])
