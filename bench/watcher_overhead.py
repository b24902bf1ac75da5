"""Watcher overhead: workload throughput with and without the job watcher polling.

While a case runs, the job watcher (:class:`pytest_tidb_ha.jobs.watch.Watcher`)
polls every job it watches through the same TiDBs the workload uses. Does watching
distort what it watches? On a 1 PD / 1 TiKV / 1 TiDB stand-in cluster:

1. the workload (:class:`pytest_tidb_ha.workload.sysbench.Sysbench`,
   ``oltp_read_write``) runs for the whole measurement;
2. one real ADD INDEX job (ingest, distributed task on) runs throughout: a table
   large enough, with ``tidb_ddl_reorg_batch_size`` at its minimum, keeps it in
   its backfill for longer than the measurement (checked, not assumed);
3. the time is cut into windows *off* (nobody polls the job) and *on* (a fresh
   ``Watcher`` polls it every ``poll`` seconds — 0.25 s, the
   interval a case run at ``--ha-time-scale`` 0.125 or less uses, i.e. the worst
   case; at time scale 1 the watcher polls every 2 s).

Reported: mean tps of the *on* windows over the *off* windows (1.00 = no cost),
and how many statements per second the watcher sent (counted by a proxy client).
The windows run in ABBA order (off, on, on, off, ...) so a steady drift of the
shared machine's load weighs on both sides alike; the first second after each
switch is left out.

Standalone: ``python bench/watcher_overhead.py [--window 10 --pairs 2]``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RESULTS,
    BenchError,
    Row,
    Section,
    leftovers,
    new_run_id,
    ratio,
    remove_run,
    write_json,
)

from pytest_tidb_ha.cluster.lifecycle import docker_client, start_cluster, stop_cluster
from pytest_tidb_ha.cluster.specs import ClusterSettings
from pytest_tidb_ha.jobs.handle import JobHandle, JobPolicy
from pytest_tidb_ha.jobs.submit import col, find_ddl_job, submit_add_index
from pytest_tidb_ha.jobs.watch import Watcher
from pytest_tidb_ha.scenario.model import AddIndexJob, Duration, Topology, Workload
from pytest_tidb_ha.scenario.timing import poll_interval
from pytest_tidb_ha.timeline import Timeline
from pytest_tidb_ha.workload.connections import round_robin_factory
from pytest_tidb_ha.workload.sysbench import Sysbench

log = logging.getLogger("pytest_tidb_ha.bench")

WORKLOAD = Workload(db="bench_watch", tables=2, table_size=1000, threads=4, ignore_errors="all")
#: The job's table: 12,000 rows at 32 rows a batch and 0.15 s a batch (stand-in pacing at
#: time scale 1) is a backfill of at least a minute.
JOB_ROWS = 12_000
JOB = AddIndexJob(db="bench_watch_job", table="sbtest1", index_col_name="c",
                  timeout=Duration(600.0), job_type="ingest", dist_task=True)
POLL = poll_interval(0.02)  # 0.25 s: the floor, what a CI-scaled case polls at
RUNNING = ("running", "queueing", "none")


class CountingClient:
    """Passes every call to the failover client and counts the statements."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.endpoints = getattr(inner, "endpoints", {})
        self.count = 0
        self._lock = threading.Lock()

    def _tick(self) -> None:
        with self._lock:
            self.count += 1

    def query(self, *args: Any, **kwargs: Any) -> Any:
        self._tick()
        return self._inner.query(*args, **kwargs)

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._tick()
        return self._inner.execute(*args, **kwargs)

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        return self._inner.connect(*args, **kwargs)


@dataclass(frozen=True)
class Window:
    mode: str  # "off" | "on"
    start: float  # timeline seconds
    end: float
    statements: int  # sent by the watcher in this window
    job_state: str  # state of the job at the window's end

    def tps(self, samples: list[Any], skip: float = 1.0) -> float:
        inside = [s for s in samples if self.start + skip <= s.second and
                  s.second + s.interval <= self.end]
        seconds = sum(s.interval for s in inside)
        return sum(s.transactions for s in inside) / seconds if seconds else float("nan")


def window_modes(pairs: int) -> list[str]:
    """off, on, on, off, off, on, ...: an ABBA order, so a steady drift of the shared
    machine's load (or of the job's backfill) weighs on both sides alike."""
    out: list[str] = []
    for k in range(pairs):
        out += ["off", "on"] if k % 2 == 0 else ["on", "off"]
    return out


def settings_for(image: str) -> ClusterSettings:
    env = MappingProxyType({"STANDIN_TIME_SCALE": "1.0"})
    return ClusterSettings(
        run_id=new_run_id("w"), topology=Topology(1, 1, 1),
        images=MappingProxyType({c: image for c in ("pd", "tikv", "tidb")}),
        env=MappingProxyType({c: env for c in ("pd", "tikv", "tidb")}),
        pull_missing=False, startup_timeout=120.0, name_prefix="tidb-ha-bench",
    )


def job_state(client: Any, job_id: int) -> str:
    """The job's state (the watcher's own query shape; a history row wins)."""
    rows = client.query("SELECT * FROM information_schema.ddl_jobs WHERE JOB_ID = %s",
                        (job_id,), timeout=5)
    states = [str(col(r, "STATE")) for r in rows]
    return next((s for s in states if s not in RUNNING), states[0] if states else "gone")


def wait_job_id(client: Any, handle: JobHandle, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jid = find_ddl_job(client, handle)
        if jid is not None:
            return jid
        if handle.statement is not None and handle.statement.done:
            raise BenchError(f"ADD INDEX returned before its job showed up: {handle.statement.error}")
        time.sleep(0.2)
    raise BenchError(f"ADD INDEX job not visible in information_schema.ddl_jobs after {timeout:.0f}s")


def measure(cluster: Any, *, window: float, pairs: int, poll: float, job: AddIndexJob = JOB,
            job_rows: int = JOB_ROWS,
            prepare_job_table: Callable[[Any, AddIndexJob, int], None] | None = None
            ) -> dict[str, Any]:
    """*prepare_job_table(client, job, rows)*: how the job's table is filled (default: the
    workload's own prepare, which a Python client does at a few thousand rows a second)."""
    client = cluster.client(connect_timeout=3, read_timeout=30, write_timeout=30)
    timeline = Timeline()
    t = time.monotonic()
    if prepare_job_table is not None:
        prepare_job_table(client, job, job_rows)
    else:
        Sysbench(round_robin_factory(client, read_timeout=60),
                 Workload(db=job.db, tables=1, table_size=job_rows, threads=1),
                 timeline, loaders=1).prepare()
    workload = Sysbench(round_robin_factory(client), WORKLOAD, timeline)
    workload.prepare()
    prepare_s = time.monotonic() - t
    client.execute("SET GLOBAL tidb_ddl_reorg_batch_size = 32")
    policy = JobPolicy(timeout=600.0, stall_window=600.0)
    submitted = submit_add_index(client, job, 1, timeline, policy=policy, job_key="bench")
    windows: list[Window] = []
    try:
        job_id = wait_job_id(client, submitted)
        log.warning("watcher overhead: job %s running; workload %s", job_id, workload)
        workload.start()
        time.sleep(1.0)  # let the workers connect before the first window
        for i, mode in enumerate(window_modes(pairs)):
            start = timeline.now()
            counter = CountingClient(cluster.client(connect_timeout=2, read_timeout=5,
                                                    write_timeout=5))
            watcher = None
            if mode == "on":
                handle = JobHandle(f"watched#{i}", submitted.target, policy,
                                   query=submitted.query, submitted_at=timeline.now(),
                                   job_id=job_id)
                watcher = Watcher(counter, timeline, poll_interval=poll, call_timeout=5.0,
                                  heartbeat=3600.0)
                watcher.add(handle)
                watcher.start()
            time.sleep(window)
            if watcher is not None:
                watcher.stop()
            end = timeline.now()
            state = job_state(client, job_id)
            windows.append(Window(mode, start, end, counter.count, state))
            log.warning("watcher overhead: window %d %s %.1fs, %d statements, job %s",
                        i + 1, mode, end - start, counter.count, state)
            if state not in RUNNING:
                raise BenchError(f"the ADD INDEX job left its backfill ({state}) during window "
                                 f"{i + 1}: raise the job's rows ({job_rows})")
        totals = workload.stop()
    finally:
        if workload.running:
            with contextlib.suppress(Exception):
                workload.stop()
        if submitted.statement is not None:
            submitted.statement.abandon()
    samples = workload.samples
    off = [w for w in windows if w.mode == "off"]
    on = [w for w in windows if w.mode == "on"]
    tps_off = sum(w.tps(samples) for w in off) / len(off)
    tps_on = sum(w.tps(samples) for w in on) / len(on)
    stmts = sum(w.statements for w in on) / sum(w.end - w.start for w in on)
    return {
        "poll_interval": poll, "window_seconds": window, "pairs": pairs,
        "workload": {"tables": WORKLOAD.tables, "table_size": WORKLOAD.table_size,
                     "threads": WORKLOAD.threads, "subtype": WORKLOAD.subtype},
        "job": {"rows": job_rows, "kind": f"add_index {job.job_type}, dist task "
                f"{'on' if job.dist_task else 'off'}", "id": job_id},
        "prepare_seconds": round(prepare_s, 1),
        "windows": [{"mode": w.mode, "seconds": round(w.end - w.start, 2),
                     "tps": round(w.tps(samples), 1), "watcher_statements": w.statements,
                     "job_state": w.job_state} for w in windows],
        "tps_off": round(tps_off, 1), "tps_on": round(tps_on, 1),
        "ratio_on_over_off": round(tps_on / tps_off, 3) if tps_off else None,
        "watcher_statements_per_second": round(stmts, 1),
        "workload_errors": dict(totals.errors),
    }


def run(image: str, *, window: float = 10.0, pairs: int = 2, poll: float = POLL) -> Section:
    docker = docker_client()
    s = settings_for(image)
    section = Section("watcher_overhead")
    try:
        cluster = start_cluster(s, docker)
        try:
            data = measure(cluster, window=window, pairs=pairs, poll=poll)
        finally:
            stop_cluster(cluster)
    finally:
        if leftovers(docker, s.run_id):
            remove_run(docker, s.run_id)
        docker.close()
    section.data = data
    rate = data["ratio_on_over_off"]
    section.rows = [
        Row(f"workload tps with the watcher polling every {poll:g} s",
            f"{data['tps_on']:.1f} tps",
            f"1/1/1 stand-in, {WORKLOAD.threads} threads, {pairs} x {window:g} s windows each "
            f"way, ADD INDEX running throughout; watcher sent "
            f"{data['watcher_statements_per_second']:.1f} statements/s",
            anchor=f"not polling, same run: {data['tps_off']:.1f} tps",
            ratio=ratio(data["tps_on"], data["tps_off"]) if rate is not None else "-"),
    ]
    return section


def main(argv: list[str] | None = None) -> int:
    from common import standin_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--poll", type=float, default=POLL)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    section = run(standin_image(), window=args.window, pairs=args.pairs, poll=args.poll)
    for row in section.rows:
        print(f"{row.figure:45} {row.value:>10}  {row.detail}")
    write_json(RESULTS / "watcher_overhead.json", section.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
