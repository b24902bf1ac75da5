"""The timeline picture: lanes, shaded windows, labels, ticks — read back as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from pytest_tidb_ha.events import FAULT_KIND, JOB_KIND
from pytest_tidb_ha.report import derive
from pytest_tidb_ha.report.picture import render, tick_label, tick_step, ticks
from pytest_tidb_ha.report.sample import bug_48303
from pytest_tidb_ha.timeline import Event
from pytest_tidb_ha.verdicts import Verdict

NS = {"s": "http://www.w3.org/2000/svg"}
SVG = "{http://www.w3.org/2000/svg}"


def ev(t: float, kind: str, /, **data: Any) -> Event:
    """An event as the layers write it: a fault/job ``kind=`` goes under its field name."""
    if "kind" in data:
        data[FAULT_KIND if kind.startswith("fault.") else JOB_KIND] = data.pop("kind")
    return Event(t=t, wall=1_700_000_000 + t, kind=kind, data=data)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def lanes(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{{{NS['s']}}}g") if g.get("class") == f"lane {cls}"]


def rects(el: ET.Element, cls: str) -> list[ET.Element]:
    return [r for r in el.iter(f"{{{NS['s']}}}rect") if (r.get("class") or "").startswith(cls)]


def texts(el: ET.Element) -> list[str]:
    """Visible text of every <text> (not the hover <title>)."""
    return [t.text or "" for t in el.iter(SVG + "text")]


PARTITION = [
    ev(0.0, "cluster.ready", nodes=["pd-0", "pd-1", "pd-2", "tikv-0", "tidb-0"]),
    ev(2.0, "fault.inject", fault_id="f1", kind="network_partition", sources=["pd-0"],
       targets=["pd-1", "pd-2"], roles={"pd_leader": "pd-0"}, planned_start=2.0,
       planned_end=5.0, params={}),
    ev(2.1, "fault.applied", fault_id="f1"),
    ev(5.0, "fault.healed", fault_id="f1"),
    ev(6.0, "fault.inject", fault_id="f2", kind="kill", targets=["tidb-0"],
       roles={"ddl_owner": "tidb-0"}, planned_start=6.0, planned_end=9.0, params={}),
    ev(9.0, "fault.healed", fault_id="f2"),
    ev(10.0, "fault.inject", fault_id="f3", kind="network_delay", targets=["tikv-0"],
       params={"delay": 1}, planned_start=10.0, planned_end=14.0),
    ev(14.0, "fault.healed", fault_id="f3"),
    ev(1.0, "job.submit", job_key="add_index#1", kind="add_index", job_id=7, query="q"),
    ev(1.2, "job.state", job_key="add_index#1", job_id=7, state="queueing", row_count=0),
    ev(1.5, "job.state", job_key="add_index#1", job_id=7, state="running",
       schema_state="write reorganization", row_count=100),
    ev(3.0, "job.state", job_key="add_index#1", job_id=7, state="running",
       schema_state="write reorganization", row_count=500),
    ev(15.0, "job.verdict", job_key="add_index#1", verdict="stuck", reason="no progress"),
    *[ev(float(s), "workload.metrics", tps=100.0 - (50 if 2 <= s < 5 else 0), qps=2000.0,
         errors={"9005": 3} if 2 <= s < 5 else {}, p50=1, p95=2, p99=3) for s in range(1, 16)],
]


def test_one_lane_per_node_in_topology_order() -> None:
    root = parse(render(PARTITION))
    assert [g.get("data-node") for g in lanes(root, "node")] == [
        "pd-0", "pd-1", "pd-2", "tikv-0", "tidb-0"]


def test_partition_shaded_on_both_sides_and_labelled_with_peers() -> None:
    root = parse(render(PARTITION))
    by_node = {g.get("data-node"): g for g in lanes(root, "node")}
    primary = rects(by_node["pd-0"], "fault primary")
    assert [r.get("data-label") for r in primary] == ["partition pd-0 ⟂ pd-1,pd-2"]
    for peer in ("pd-1", "pd-2"):
        (r,) = rects(by_node[peer], "fault peer")
        assert r.get("data-fault-id") == "f1"
        assert float(r.get("fill-opacity", "1")) < float(primary[0].get("fill-opacity", "1"))
    # the far side names the isolated node
    assert "⟂ pd-0" in texts(by_node["pd-1"])
    assert rects(by_node["tikv-0"], "fault ")[0].get("data-label") == "delay 1s"
    assert rects(by_node["tidb-0"], "fault ")[0].get("data-label") == "kill"
    assert rects(by_node["tikv-0"], "fault peer") == []


def test_window_position_follows_time() -> None:
    root = parse(render(PARTITION))
    (kill,) = [r for r in rects(root, "fault ") if r.get("data-fault-id") == "f2"]
    (part,) = [r for r in rects(root, "fault primary") if r.get("data-fault-id") == "f1"]
    # f1 lasts 3s, f2 lasts 3s, f2 starts later
    assert float(kill.get("x", 0)) > float(part.get("x", 0))
    assert abs(float(kill.get("width", 0)) - float(part.get("width", 0))) < 1.0


def test_job_lane_bands_rowcount_and_stuck_marker() -> None:
    root = parse(render(PARTITION))
    (job,) = lanes(root, "job")
    assert job.get("data-job") == "add_index#1"
    assert job.get("data-verdict") == "stuck"
    states = [(r.get("class"), r.get("data-state")) for r in rects(job, "band")]
    assert states == [("band queueing", "submitted"), ("band queueing", "queueing"),
                      ("band running", "write reorg")]
    assert rects(job, "stuck"), "stuck job is hatched"
    assert [ln for ln in job.iter(f"{{{NS['s']}}}line") if ln.get("class") == "stuck-marker"]
    assert [p for p in job.iter(f"{{{NS['s']}}}polyline") if p.get("class") == "row-count"]
    assert "ADD INDEX #7" in texts(job)
    assert "stuck" in texts(job)


def test_workload_has_tps_errors_and_windows_behind() -> None:
    root = parse(render(PARTITION))
    (wl,) = [g for g in root.iter(f"{{{NS['s']}}}g") if g.get("class") == "workload"]
    shades = rects(wl, "fault-shade")
    assert sorted(r.get("data-fault-id", "") for r in shades) == ["f1", "f2", "f3"]
    assert len(rects(wl, "errors")) == 3  # seconds 2, 3, 4
    (tps,) = [p for p in wl.iter(f"{{{NS['s']}}}polyline") if p.get("class") == "tps"]
    assert len((tps.get("points") or "").split()) == 15
    children = list(wl)
    first_shade = children.index(shades[0])
    first_bar = children.index(rects(wl, "errors")[0])
    assert first_shade < first_bar, "windows are painted behind the data"


def test_overlapping_windows_stack_in_sub_rows() -> None:
    events = [
        ev(1.0, "fault.inject", fault_id="a", kind="kill", targets=["tikv-0"]),
        ev(2.0, "fault.inject", fault_id="b", kind="io_delay", targets=["tikv-0"],
           params={"delay": 0.5}),
        ev(3.0, "fault.healed", fault_id="a"),
        ev(4.0, "fault.healed", fault_id="b"),
    ]
    root = parse(render(events))
    (lane,) = lanes(root, "node")
    ys = {r.get("data-fault-id"): float(r.get("y", 0)) for r in rects(lane, "fault ")}
    assert ys["b"] > ys["a"]
    assert rects(lane, "fault ")[1].get("data-label") == "io delay 500ms"


def test_open_window_reaches_the_right_edge() -> None:
    events = [ev(1.0, "fault.inject", fault_id="a", kind="pause", targets=["pd-0"]),
              ev(9.0, "cluster.note")]
    root = parse(render(events))
    (r,) = rects(root, "fault ")
    assert "open" in texts(root)
    assert float(r.get("x", 0)) + float(r.get("width", 0)) == pytest.approx(1200 - 170, abs=1)


def test_empty_history_is_still_a_picture() -> None:
    root = parse(render([]))
    assert "no events recorded" in texts(root)


def test_deterministic() -> None:
    tl, verdicts = bug_48303(0.01)
    assert render(tl.events(), verdicts=verdicts) == render(tl.events(), verdicts=verdicts)


def test_verdicts_without_events_still_get_a_lane_and_reason_is_redacted() -> None:
    v = Verdict("import_into#1", "import_into", 3, "failed-unexpected",
                "failed: s3://b/x?access-key=AKIAEXAMPLE&secret-access-key=SECRETEXAMPLE", False,
                started_at=0.0, decided_at=2.0)
    svg = render([], verdicts=[v], title="t?secret-access-key=SECRETEXAMPLE")
    assert "SECRETEXAMPLE" not in svg
    assert "AKIAEXAMPLE" not in svg
    (job,) = lanes(parse(svg), "job")
    assert job.get("data-verdict") == "failed-unexpected"


@pytest.mark.parametrize(("span", "step"), [(0.8, 0.1), (18, 2), (60, 5), (600, 60),
                                            (1800, 300), (3600, 300), (7200, 600)])
def test_tick_step_adapts(span: float, step: float) -> None:
    assert tick_step(span) == step
    assert 2 <= len(ticks(0, span)) <= 13


def test_tick_labels() -> None:
    assert tick_label(2, 2) == "2s"
    assert tick_label(0.5, 0.1) == "0.5s"
    assert tick_label(300, 300) == "5m"
    assert tick_label(150, 30) == "2m30s"
    assert tick_label(3900, 900) == "1h05m"


def test_sample_bug_run_shows_stalled_job_under_fault_windows() -> None:
    tl, verdicts = bug_48303(0.01)
    root = parse(render(tl.events(), verdicts=verdicts, time_scale=0.01))
    jobs = lanes(root, "job")
    assert [j.get("data-verdict") for j in jobs] == ["stuck", "stuck"]  # no lane for /cancel
    assert "cancel-ineffective" in texts(jobs[0])
    assert [ln for ln in jobs[0].iter(SVG + "line") if ln.get("class") == "cancel-marker"]
    assert len([g for g in lanes(root, "node")]) == 8
    assert len({r.get("data-fault-id") for r in rects(root, "fault primary")}) == 5
    assert "4m" in texts(root)
    assert "2.4s" in texts(root)


def test_derive_last_state_and_fault_kind_aliases() -> None:
    events = [
        ev(0.0, "fault.inject", fault_id="x", fault_kind="kill", targets=["tidb-1"]),
        ev(0.5, "job.submit", job_key="import_into#1", job_kind="import_into", job_id=9),
        ev(1.0, "job.state", job_key="import_into#1", state="running",
           import_step="importing", imported_rows=10),
    ]
    h = derive.history(events)
    assert h.windows[0].kind == "kill"
    (job,) = h.jobs
    assert job.kind == "import_into"
    assert [b.label for b in job.bands] == ["submitted", "importing"]
    assert job.rows == ((1.0, 10),)


def test_lanes_for_every_node_of_the_topology() -> None:
    events = [ev(0.0, "cluster.ready", cluster="c1",
                 topology="pd=1,tikv=3,tidb=2 images=tidb-standin:latest"),
              ev(1.0, "fault.inject", fault_id="a", fault_kind="kill", targets=["tikv-1"]),
              ev(2.0, "fault.healed", fault_id="a")]
    root = parse(render(events, cluster="pd=1,tikv=3,tidb=2 images=tidb-standin:latest"))
    assert [g.get("data-node") for g in lanes(root, "node")] == [
        "pd-0", "tikv-0", "tikv-1", "tikv-2", "tidb-0", "tidb-1"]
    assert any("pd=1,tikv=3,tidb=2" in t for t in texts(root))


def test_setup_is_cropped_and_ticks_follow_case_time() -> None:
    """A 60 s cluster start-up must not squeeze the case; ticks are round case times."""
    events = [ev(0.0, "cluster.ready", topology="pd=1,tikv=1,tidb=1"),
              ev(60.0, "workload.start"), ev(62.0, "nemesis.start", scale=0.02),
              ev(63.2, "fault.inject", fault_id="a", fault_kind="kill", targets=["tikv-0"]),
              ev(66.8, "fault.healed", fault_id="a"), ev(80.0, "workload.stop")]
    root = parse(render(events, time_scale=0.02))
    ticks_ = [t.text for t in root.iter(SVG + "text") if t.get("class") == "tick"]
    assert ticks_[:3] == ["0s", "2m", "4m"]  # case time from t0 = nemesis start
    below = [t.text for t in root.iter(SVG + "text") if t.get("class") == "timeline-tick"]
    assert below[0] == "62.0s"
    assert any("set-up 0-60s not drawn" in t for t in texts(root))
    (kill,) = rects(root, "fault primary")
    assert float(kill.get("x", 0)) > 150 + 100  # not squeezed into the left corner


def test_stuck_hatch_starts_where_progress_stopped() -> None:
    events = [ev(1.0, "job.submit", job_key="add_index#1", job_kind="add_index"),
              ev(2.0, "job.state", job_key="add_index#1", state="running",
                 schema_state="write reorganization", row_count=5),
              ev(4.0, "job.state", job_key="add_index#1", state="running",
                 schema_state="write reorganization", row_count=9),
              ev(10.0, "job.verdict", job_key="add_index#1", verdict="stuck", reason="x"),
              ev(11.0, "job.cancel", job_key="add_index#1"),
              ev(12.0, "job.state", job_key="add_index#1", state="rollingback",
                 schema_state="write reorganization", row_count=9),
              ev(20.0, "job.verdict", job_key="add_index#1/cancel",
                 verdict="cancel-ineffective", reason="y")]
    root = parse(render(events))
    (job,) = lanes(root, "job")
    (hatch,) = rects(job, "stuck")
    (band,) = [r for r in rects(job, "band running")]
    # hatch from t=4 (last change before the verdict), not from the rollback at t=12
    x_band, w_band = float(band.get("x", 0)), float(band.get("width", 0))
    assert float(hatch.get("x", 0)) == pytest.approx(x_band + w_band * (4 - 2) / (12 - 2), abs=1)
    assert "cancel-ineffective" in texts(job)


def test_job_failed_before_it_was_seen_ends_at_the_verdict() -> None:
    events = [ev(1.0, "job.submit", job_key="import_into#1", job_kind="import_into"),
              ev(1.5, "job.verdict", job_key="import_into#1", verdict="failed-unexpected",
                 reason="Error 8158: No file matched"),
              ev(9.0, "workload.stop")]
    (job,) = derive.history(events).jobs
    assert [(b.start, b.end, b.category) for b in job.bands] == [
        (1.0, 1.5, "queueing"), (1.5, 9.0, "failed")]
    root = parse(render(events))
    (lane,) = lanes(root, "job")
    assert [r.get("class") for r in rects(lane, "band")] == ["band queueing", "band failed"]
