"""A recorded-looking history of seed #48303 (bug mode) for docs and tests.

The report layer must be testable without Docker, and its example picture
must look like a real run: ``tikv(random)_to_all`` partitions every 5m for 3m,
ADD INDEX stalls in ``write reorganization`` under the second window, never
progresses again (stuck), and the next ADD INDEX queues behind it (stuck too).
The history is deterministic (fixed seed), and can be scaled like a case so
the 30-minute and the 18-second pictures come from the same story.

``python -m pytest_tidb_ha.report.sample OUT.svg [SCALE]`` writes the picture.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from ..timeline import Timeline
from ..verdicts import Verdict


class ManualClock:
    """A clock the sample (and tests) move by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(tl: Timeline, kind: str, data: dict[str, object]) -> None:
    """Record with the fault/job kind as ``fault_kind``/``job_kind`` (the timeline's rule)."""
    if "kind" in data:
        data = dict(data)
        data[kind.split(".")[0] + "_kind"] = data.pop("kind")
    tl.record(kind, **data)


def bug_48303(scale: float = 1.0) -> tuple[Timeline, list[Verdict]]:
    """The timeline and verdicts of a stalled ADD INDEX run, times × *scale*."""
    clock = ManualClock()
    tl = Timeline(clock=clock)
    rng = random.Random(48303)  # noqa: S311 - a fixed seed for the sample report
    nodes = ["pd-0", "pd-1", "pd-2", "tikv-0", "tikv-1", "tikv-2", "tidb-0", "tidb-1"]
    tl.record("cluster.ready", nodes=nodes, topology="pd=3,tikv=3,tidb=2")
    tl.record("workload.start", db="sbtest", tables=4, threads=8)
    tl.record("nemesis.start", seed=48303, scale=scale)

    end = 22 * 60.0
    windows = [(60.0 + 300.0 * i, 60.0 + 300.0 * i + 180.0) for i in range(5)]
    victims = ["tikv-2", "tikv-1", "tikv-1", "tikv-0", "tikv-2"]
    stall_at = windows[1][0] + 40.0  # backfill stops under the second partition
    total_rows = 10_000_000

    # Everything that happens, as (t, kind, data), then replayed in time order.
    script: list[tuple[float, str, dict[str, object]]] = []
    for i, ((s, e), victim) in enumerate(zip(windows, victims, strict=True)):
        others = [n for n in nodes if n != victim]
        fid = f"f{i + 1}"
        roles = {"pd_leader": "pd-0", "ddl_owner": "tidb-0"}
        script.append((s, "fault.inject", {"fault_id": fid, "kind": "network_partition",
                                           "sources": [victim], "targets": others,
                                           "roles": roles, "planned_start": s,
                                           "planned_end": e, "params": {"direction": "both"}}))
        script.append((s + 0.4, "fault.applied", {"fault_id": fid}))
        script.append((min(e, end), "fault.healed", {"fault_id": fid}))

    j1 = {"job_key": "add_index#1", "job_id": 475, "kind": "add_index"}
    script.append((60.0, "job.submit", {**j1, "query": "ALTER TABLE sbtest1 ADD INDEX idx_c_1 (c)"}))
    script.append((60.5, "job.state", {**j1, "state": "queueing", "schema_state": "none", "row_count": 0}))
    script.append((62.0, "job.state", {**j1, "state": "running", "schema_state": "delete only", "row_count": 0}))
    script.append((64.0, "job.state", {**j1, "state": "running", "schema_state": "write only", "row_count": 0}))
    t = 66.0
    rows = 0
    while t < stall_at:
        in_fault = any(s <= t < e for s, e in windows)
        rows += int((4_000 if in_fault else 11_000) * 30 * (0.8 + 0.4 * rng.random()))
        script.append((t, "job.state", {**j1, "state": "running",
                                        "schema_state": "write reorganization",
                                        "row_count": min(rows, total_rows)}))
        t += 30.0
    decided = 19 * 60.0 + 12.0
    last = t - 30.0
    reason = (f"no progress for 5m00s of fault-free time (state running, schema state write "
              f"reorganization, ROW_COUNT {min(rows, total_rows):,} since "
              f"{int(last // 60)}m{int(last % 60):02d}s)")
    script.append((decided, "job.verdict", {**j1, "verdict": "stuck", "reason": reason}))
    script.append((decided + 1, "job.cancel", {**j1, "accepted": True, "result": "successful",
                                               "reason": "probe after stuck"}))
    cancel_reason = "job 475 still running 5m00s after cancel (result: successful)"
    script.append((decided + 16, "job.verdict", {"job_key": "add_index#1/cancel", "job_id": 475,
                                                 "verdict": "cancel-ineffective",
                                                 "reason": cancel_reason}))

    j2 = {"job_key": "add_index#2", "job_id": 476, "kind": "add_index"}
    script.append((decided + 20, "job.submit", {**j2, "query": "ALTER TABLE sbtest1 ADD INDEX idx_c_2 (c)"}))
    script.append((decided + 21, "job.state", {**j2, "state": "queueing", "schema_state": "none", "row_count": 0}))
    reason2 = "queueing behind stuck job 475 for 1m0s"
    script.append((decided + 81, "job.verdict", {**j2, "verdict": "stuck", "reason": reason2}))

    for sec in range(1, int(end)):
        tt = float(sec)
        if scale < 1.0 and sec % max(1, round(1 / scale)) != 0:
            continue  # a scaled run samples once per real second
        in_fault = any(s <= tt < e for s, e in windows)
        tps = (310 if in_fault else 820) * (0.9 + 0.2 * rng.random())
        errors: dict[str, int] = {}
        if in_fault and rng.random() < 0.7:
            errors = {"9005": rng.randint(1, 12), "8022": rng.randint(0, 3)}
        script.append((tt, "workload.metrics", {
            "tps": round(tps, 1), "qps": round(tps * 20, 1), "errors": errors,
            "p50": 9.0, "p95": 31.0 if not in_fault else 480.0,
            "p99": 55.0 if not in_fault else 1900.0}))

    for t, kind, data in sorted(script, key=lambda x: x[0]):
        clock.now = t * scale
        _record(tl, kind, data)
    clock.now = end * scale

    verdicts = [
        Verdict("add_index#1", "add_index", 475, "stuck", reason, False,
                {"state": "running", "schema_state": "write reorganization"},
                started_at=60.0 * scale, decided_at=decided * scale),
        Verdict("add_index#1/cancel", "add_index", 475, "cancel-ineffective", cancel_reason,
                False, {"state": "running"}, started_at=(decided + 1) * scale,
                decided_at=(decided + 16) * scale),
        Verdict("add_index#2", "add_index", 476, "stuck", reason2, False,
                {"state": "queueing"}, started_at=(decided + 20) * scale,
                decided_at=(decided + 81) * scale),
    ]
    return tl, verdicts


def main(argv: list[str] | None = None) -> int:
    from .picture import render

    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "timeline-example.svg")
    scale = float(args[1]) if len(args) > 1 else 1.0
    tl, verdicts = bug_48303(scale)
    title = "seed-48303::ha_tikv(random)_to_all_network_partition (stand-in bug mode 48303)"
    cluster = "pd=3,tikv=3,tidb=2 images=tidb-standin:latest"
    out.write_text(render(tl.events(), verdicts=verdicts, title=title, time_scale=scale,
                          end=tl.now(), cluster=cluster), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
