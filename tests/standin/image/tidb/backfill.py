"""ADD INDEX backfill: read rows from TiKV in batches, write index entries, checkpoint.

Used by the DDL owner (``tidb_enable_dist_task`` OFF) and by DXF subtask executors.
Ingest (fast reorg) writes go to *every* replica like Lightning's SST ingest, so a
partitioned TiKV makes them time out and retry; txn writes need a quorum.

Bug modes act here, each only when its physical trigger is observed:
- 48303: an ingest write that times out makes the backfill worker take the
  engine lock then the flush lock while the flush path (the job's runner) takes
  them the other way round — a real deadlock.
- 48546: the ingest flush takes an etcd distributed lock with the etcd session
  captured when the backfill started; once that session's lease has expired the
  flush fails with ``mutex: session is expired`` instead of re-creating a session.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.env import bug_enabled, scaled
from common.etcd import Compare, EtcdError, Op
from common.log import get_logger

from . import codec, triggers
from .catalog import Table
from .kv import TiKVTimeout, WriteReport
from .locks import TrackedLock

if TYPE_CHECKING:
    from .owner import LeaseSession
    from .server import Node

log = get_logger("tidb.ddl")


class BackfillError(Exception):
    """A non-retryable backfill failure; the message is what the ALTER returns."""

    def __init__(self, message: str, code: int = 1105) -> None:
        super().__init__(message)
        self.code = code


class Stopped(Exception):
    """The caller asked the backfill to stop (ownership lost, cancel)."""


class IngestEngine:
    """Per-node, per-job ingest backend context with its two locks (cf. litBackendCtx)."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.engine_mu = TrackedLock(f"ingest.engine[{job_id}]")
        self.flush_mu = TrackedLock(f"ingest.flush[{job_id}]")
        self.need_flush = threading.Event()
        self.flush_entered = threading.Event()

    def flush_from_runner(self) -> None:
        """The periodic flush the job's runner does (flush lock, then engine lock)."""
        with self.flush_mu:
            self.flush_entered.set()
            if self.need_flush.is_set():
                with self.engine_mu:
                    self.need_flush.clear()
            self.flush_entered.clear()


_engines: dict[int, IngestEngine] = {}
_engines_lock = threading.Lock()


def engine_for(job_id: int) -> IngestEngine:
    with _engines_lock:
        eng = _engines.get(job_id)
        if eng is None:
            eng = _engines[job_id] = IngestEngine(job_id)
        return eng


def runner_attached(job_id: int) -> bool:
    with _engines_lock:
        return job_id in _runners


_runners: set[int] = set()


def attach_runner(job_id: int, attached: bool) -> None:
    with _engines_lock:
        if attached:
            _runners.add(job_id)
        else:
            _runners.discard(job_id)


@dataclass
class Range:
    start: int  # first handle (inclusive)
    end: int | None  # last handle exclusive; None = to the end


def batch_size(node: Node) -> int:
    try:
        return max(32, min(10240, int(node.global_sysvar("tidb_ddl_reorg_batch_size"))))
    except (ValueError, TypeError, EtcdError):
        return 256


def distributed_lock(node: Node, job_id: int, session: LeaseSession | None) -> str:
    """Take ``/tidb/distributeLock/<job>`` with the etcd session; returns the key."""
    if session is None or not session.alive:
        raise BackfillError("mutex: session is expired")
    key = f"/tidb/distributeLock/{job_id}/{session.lease_id:x}"
    node.etcd.txn([Compare.version(key, "=", 0)], [Op.put(key, node.exec_id, session.lease_id)])
    return key


def current_session(node: Node, stop: Callable[[], bool]) -> LeaseSession:
    """The node's live etcd session, waiting for a new one after an expiry (the fix of 48546)."""
    while True:
        sess = node.owner.session
        if sess is not None and sess.alive:
            return sess
        if stop():
            raise Stopped()
        time.sleep(scaled(0.2, 0.05))


def flush_session(
    node: Node, job_id: int, captured: LeaseSession | None, stop: Callable[[], bool]
) -> LeaseSession:
    """The etcd session a DXF ingest flush takes its distributed lock with.

    The trigger of #48546: the flush starts while this TiDB's session cannot be renewed —
    its PD member is cut off from the quorum — or after it expired; the member is asked at
    every flush (`LeaseSession.renews`), so every flush overlapping the cut meets it. In
    v7.5 the flush's ``Mutex.Lock`` then waits until the lease is gone and fails ``mutex:
    session is expired`` (pkg/ddl/ingest/backend.go Flush, acquireLock; bug mode: the
    captured session is used and left to expire). Fixed: the flush waits until the session
    renews again, or for a new live one.
    """
    sess = captured if captured is not None else node.owner.session
    if sess is not None and not sess.renews():
        triggers.note("48546", job_id=job_id, lease=f"{sess.lease_id:x}")
        if bug_enabled(48546):
            while not sess.expired.wait(0.05) and not sess.renews():
                pass  # the lock waits while the lease runs out (or its member recovers)
            return sess
        while not stop() and not sess.expired.wait(0.05) and not sess.renews():
            pass  # fixed: wait for this session to renew, or for a new one once it expired
    return current_session(node, stop)


def run_backfill(
    node: Node,
    table: Table,
    index_id: int,
    job_id: int,
    rng: Range,
    ingest: bool,
    checkpoint: dict[str, Any],
    save: Callable[[dict[str, Any]], None],
    stop: Callable[[], bool],
    dist: bool = False,
) -> int:
    """Backfill ``rng`` from ``checkpoint`` (``next``, ``rows``); returns the rows done.

    ``dist``: running as a DXF subtask, where an ingest flush holds the etcd
    distributed lock ``/tidb/distributeLock/<job>`` (the non-DXF path has none).
    """
    idx = next(i for i in table.indexes if i.id == index_id)
    pos = [table.col_pos(c) for c in idx.columns]
    next_handle = int(checkpoint.get("next", rng.start))
    rows_done = int(checkpoint.get("rows", 0))
    size = batch_size(node)
    pace = scaled(0.15, 0.01)
    engine = engine_for(job_id) if ingest else None
    captured = node.owner.session  # the session this backfill started with (48546)
    retries = 0
    while True:
        if stop():
            raise Stopped()
        start = codec.row_key(table.id, next_handle)
        end = (
            codec.row_key(table.id, rng.end)
            if rng.end is not None
            else codec.prefix_end(codec.row_prefix(table.id))
        )
        try:
            rows, last = node.kv.scan_versioned(start, end, size)
        except TiKVTimeout as exc:
            log.warn("backfill read timed out, retrying", job_id=job_id, error=exc.detail[:200])
            time.sleep(scaled(0.5, 0.1))
            continue
        if not rows and last is None:
            return rows_done
        # Each entry carries the version of the row it comes from (the snapshot the backfill
        # read): a DML that changed the row afterwards wrote a newer version of the same
        # index keys, so it wins whatever order the writes land in — as TiDB's backfill reads
        # a snapshot and concurrent DML reaches the index through the temp index / locks.
        entries = [
            (
                codec.index_key(
                    table.id, index_id, [vals[p] for p in pos], codec.handle_of_row_key(k)
                ),
                1,
                ver,
            )
            for k, vals, ver in rows
        ]
        try:
            if ingest and engine is not None:
                lock_key = ""
                if dist:
                    sess = flush_session(node, job_id, captured, stop)
                    captured = sess
                    try:
                        lock_key = distributed_lock(node, job_id, sess)
                    except BackfillError as exc:
                        log.error("flush error", category="ddl", error=str(exc))
                        if bug_enabled(48546):
                            raise  # DXF treats this unknown error as non-retryable (v7.5-v8.x)
                        continue
                try:
                    _ingest_write(node, engine, job_id, entries, retries)
                finally:
                    if lock_key:
                        with contextlib.suppress(EtcdError):
                            node.etcd.delete(lock_key)
            else:
                node.kv.batch_put(entries)
        except TiKVTimeout as exc:
            retries += 1
            log.warn(
                "backfill write timed out, retrying",
                category="ddl",
                job_id=job_id,
                error=exc.detail[:200],
                retries=retries,
            )
            time.sleep(scaled(0.5, 0.1))
            continue
        except EtcdError as exc:
            log.warn(
                "backfill meta call failed, retrying",
                category="ddl",
                job_id=job_id,
                error=str(exc)[:200],
            )
            time.sleep(scaled(0.5, 0.1))
            continue
        retries = 0
        rows_done += len(rows)
        if last is None:
            return rows_done
        next_handle = codec.handle_of_row_key(last) + 1
        checkpoint = {"next": next_handle, "rows": rows_done}
        try:
            save(checkpoint)
        except EtcdError as exc:  # the next batch saves a newer checkpoint
            log.warn(
                "saving the backfill checkpoint failed",
                category="ddl",
                job_id=job_id,
                error=str(exc)[:200],
            )
        time.sleep(pace)


def _ingest_write(
    node: Node, engine: IngestEngine, job_id: int, entries: list[tuple[str, Any, int]], retries: int
) -> None:
    """Write to every replica; on a timed-out replica retry (or, bug 48303, deadlock)."""
    report = WriteReport()
    engine.engine_mu.acquire()
    try:
        try:
            node.kv.batch_put(entries, wait_all=True, report=report)
        except TiKVTimeout:
            report.timed_out.add("quorum")
        if not report.timed_out:
            return
        log.warn(
            "ingest write to TiKV timed out",
            category="ddl",
            job_id=job_id,
            stores=",".join(sorted(report.timed_out)),
        )
        triggers.note("48303", job_id=job_id)
        if bug_enabled(48303) and runner_attached(job_id):
            # The worker wants the engine flushed before it retries and takes the flush
            # lock while still holding the engine lock; the runner's flush takes them the
            # other way round.
            engine.need_flush.set()
            engine.flush_entered.wait(scaled(5.0, 0.5))
            engine.flush_mu.acquire()
            engine.flush_mu.release()
        if "quorum" in report.timed_out:
            raise TiKVTimeout(f"ingest write timed out on {sorted(report.timed_out)}")
        # A quorum has the entries; the lagging replica is caught up by later writes/merges.
    finally:
        engine.engine_mu.release()


class BackfillTaskHandler:
    """DXF ``backfill`` tasks: step 1 (read-index) split by handle ranges over live TiDBs."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def plan(self, task: dict[str, Any], step: int, nodes: list[str]) -> list[dict[str, Any]]:
        meta = task["meta"]
        rp = codec.row_prefix(meta["table_id"])
        handles = [
            codec.handle_of_row_key(k) for k, _ in self.node.kv.scan(rp, codec.prefix_end(rp))
        ]
        n = max(1, min(len(nodes), len(handles) // 512 or 1))
        bounds: list[int | None] = [-(1 << 62)]
        for i in range(1, n):
            bounds.append(handles[len(handles) * i // n])
        bounds.append(None)
        return [
            {
                "exec_id": nodes[i % len(nodes)],
                "physical_tid": meta["table_id"],
                "meta": {"start": bounds[i], "end": bounds[i + 1]},
            }
            for i in range(n)
        ]

    def next_step(self, step: int) -> int | None:
        return None

    def execute(
        self,
        subtask: dict[str, Any],
        task: dict[str, Any],
        save: Callable[[dict[str, Any]], None],
        stop: Callable[[], bool],
    ) -> dict[str, Any]:
        meta = task["meta"]
        table = self.node.schema.reload(force=True).table_by_id(meta["table_id"])
        if table is None:
            raise BackfillError("table was dropped")
        ck = subtask.get("checkpoint") or {}

        def persist(c: dict[str, Any]) -> None:
            save({"checkpoint": c, "summary": {"row_count": c["rows"]}})

        rows = run_backfill(
            self.node,
            table,
            meta["index_id"],
            meta["job_id"],
            Range(subtask["meta"]["start"], subtask["meta"]["end"]),
            bool(meta.get("ingest")),
            ck,
            persist,
            stop,
            dist=True,
        )
        return {"row_count": rows}

    def on_transition(self, task: dict[str, Any], event: str) -> None:
        return None
