"""One event vocabulary: what the nemesis writes is what the timeline and reports read."""

from __future__ import annotations

from pytest_tidb_ha import events
from pytest_tidb_ha.faults.api import record
from pytest_tidb_ha.report.derive import data_kind
from pytest_tidb_ha.timeline import Timeline


def test_fault_windows_carry_the_fault_kind_the_nemesis_recorded() -> None:
    tl = Timeline()
    record(tl, events.FAULT_INJECT, fault_id="f0.0", kind="network_partition", targets=["tikv-1"])
    record(tl, events.FAULT_HEALED, fault_id="f0.0", kind="network_partition")
    record(tl, events.FAULT_INJECT, fault_id="f1.0", kind="kill", targets=["tidb-0"])
    windows = tl.fault_windows()
    assert [(w.fault_id, w.kind) for w in windows] == [("f0.0", "network_partition"),
                                                       ("f1.0", "kill")]
    assert windows[0].end is not None
    assert windows[1].end is None


def test_events_store_the_kind_under_one_field_name() -> None:
    tl = Timeline()
    ev = record(tl, events.FAULT_INJECT, fault_id="f0.0", kind="pause")
    assert ev.data[events.FAULT_KIND] == "pause"
    assert "kind" not in ev.data
    assert data_kind(ev.data) == "pause"
    job = tl.record(events.JOB_SUBMIT, job_key="add_index#1", **{events.JOB_KIND: "add_index"})
    assert data_kind(job.data) == "add_index"


def test_every_fault_event_kind_is_in_the_vocabulary() -> None:
    assert {events.FAULT_INJECT, events.FAULT_APPLIED, events.FAULT_HEALED, events.FAULT_ERROR,
            events.FAULT_REAPPLIED} <= set(events.FAULT_EVENTS)
    assert all(k.startswith("fault.") for k in events.FAULT_EVENTS)
    assert all(k.startswith("job.") for k in events.JOB_EVENTS)
