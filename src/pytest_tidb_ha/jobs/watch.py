"""The watcher: poll every job we started (and every job queued behind one), judge it.

One daemon thread (``tidb-ha-watcher``) polls all handles every
``poll_interval`` seconds through the failover client (any TiDB that
answers; every call with ``call_timeout``), turns rows into
:class:`~.model.Observation`s (pure functions below), writes a ``job.state``
event for each change, and asks :func:`~.verdict.judge` after every poll.

Logging is for humans watching a long run: a line per *state* change (not
per row count), one heartbeat line per scaled minute, never a flood.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..events import JOB_CANCEL, JOB_STATE, JOB_SUBMIT, JOB_VERDICT
from ..redact import redact
from ..timeline import Timeline, fault_free_seconds
from ..verdicts import STUCK, Verdict
from .catalog import parse_error
from .handle import JobHandle, JobPolicy, JobTarget
from .model import ADD_INDEX, IMPORT_INTO, CancelProbe, Observation, is_terminal, progress_percent
from .submit import (
    TRANSIENT_CODES,
    SQLClient,
    as_int,
    col,
    find_ddl_job,
    find_import_job,
    issued_index_names,
    text,
)
from .verdict import PROBE_AFTER_STUCK, cancel_ineffective, judge, last_progress

log = logging.getLogger("pytest_tidb_ha.jobs")

#: DDL states in which a job has not finished (queries with these skip the history scan).
OPEN_DDL_STATES = ("none", "queueing", "running", "rollingback", "cancelling", "pausing",
                   "paused", "done")
#: Columns a poll reads (no QUERY blob, never ``SELECT *``; reference §2.1, §4.1).
DDL_COLUMNS = ("JOB_ID", "DB_NAME", "TABLE_NAME", "JOB_TYPE", "SCHEMA_STATE", "ROW_COUNT",
               "STATE")
TASK_COLUMNS = ("id", "task_key", "state", "step", "error")
#: Polls between scans for jobs queued behind ours.
DISCOVER_EVERY = 3
#: How often a statement TiDB refused before creating a job is sent again.
MAX_RESUBMITS = 3


# -- pure: rows -> observation -----------------------------------------------------
def task_key(kind: str, job_id: int) -> str:
    """DXF task key of a job (reference §4.4)."""
    return f"ddl/backfill/{job_id}" if kind == ADD_INDEX else f"ImportInto/{job_id}"


def subtask_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``SELECT state, COUNT(*) ... GROUP BY state`` rows -> {state: n}."""
    out: dict[str, int] = {}
    for r in rows:
        state = text(col(r, "state"))
        n = next((as_int(v) for k, v in r.items() if k.lower() != "state"), None)
        if state:
            out[state] = out.get(state, 0) + (n or 0)
    return out


def ddl_observation(t: float, row: Mapping[str, Any], task: Mapping[str, Any] | None,
                    subtasks: Mapping[str, int]) -> Observation:
    return Observation(
        t=t, job_id=as_int(col(row, "JOB_ID")), state=text(col(row, "STATE")) or None,
        schema_state=text(col(row, "SCHEMA_STATE")) or None,
        row_count=as_int(col(row, "ROW_COUNT")), job_type=text(col(row, "JOB_TYPE")) or None,
        task_state=text(col(task, "state")) or None if task else None,
        subtasks=subtasks, error=(text(col(task, "error")) or None) if task else None,
    )


def import_observation(t: float, row: Mapping[str, Any], task: Mapping[str, Any] | None,
                       subtasks: Mapping[str, int]) -> Observation:
    status = text(col(row, "Status", "status")) or None
    err = text(col(row, "Result_Message", "error_message")) or None
    if err is None and task is not None:
        err = text(col(task, "error")) or None
    return Observation(
        t=t, job_id=as_int(col(row, "Job_ID", "id")), state=status,
        import_step=text(col(row, "Phase", "step")), import_status=status,
        imported_rows=as_int(col(row, "Imported_Rows")), job_type="import into",
        task_state=text(col(task, "state")) or None if task else None,
        subtasks=subtasks, error=err if status in ("failed", "cancelled", "canceled") else None,
    )


def state_signature(obs: Observation) -> tuple[Any, ...]:
    """What deserves an INFO line when it changes (row counts do not)."""
    return (obs.state, obs.schema_state, obs.import_step, obs.import_status, obs.task_state)


# -- I/O: reading one job --------------------------------------------------------------
class JobReader:
    """Reads one job's rows through the failover client, each call bounded."""

    def __init__(self, client: SQLClient, call_timeout: float) -> None:
        self.client = client
        self.timeout = call_timeout
        self.task_columns: tuple[str, ...] = TASK_COLUMNS

    def q(self, sql: str, args: Any = None) -> list[dict[str, Any]]:
        return self.client.query(sql, args, timeout=self.timeout)

    def task(self, key: str, history: bool) -> tuple[dict[str, Any] | None, bool]:
        """The DXF task row and whether it came from ``_history``.

        Named columns only: ``meta`` is a LONGBLOB (the whole task plan) and
        must not travel on every poll. ``error`` is dropped once if this
        version lacks it (1054 unknown column).
        """
        for table, hist in (("mysql.tidb_global_task", False),
                            ("mysql.tidb_global_task_history", True)):
            if hist and not history:
                break
            rows = self._task_rows(table, key)
            if rows:
                return rows[0], hist
        return None, False

    def _task_rows(self, table: str, key: str) -> list[dict[str, Any]]:
        cols = ", ".join(self.task_columns)
        try:
            return self.q(f"SELECT {cols} FROM {table} WHERE task_key = %s", (key,))  # noqa: S608 - our constants
        except Exception as exc:
            if getattr(exc, "code", None) != 1054 or "error" not in self.task_columns:
                raise
            self.task_columns = tuple(c for c in self.task_columns if c != "error")
            return self._task_rows(table, key)

    def subtasks(self, task_id: int, history: bool) -> dict[str, int]:
        table = "mysql.tidb_background_subtask" + ("_history" if history else "")
        rows = self.q(f"SELECT state, COUNT(*) FROM {table} WHERE task_key = %s GROUP BY state",  # noqa: S608 - our constants
                      (str(task_id),))
        return subtask_counts(rows)

    def dxf(self, kind: str, job_id: int, terminal: bool) -> tuple[dict[str, Any] | None,
                                                                    dict[str, int]]:
        task, hist = self.task(task_key(kind, job_id), history=terminal)
        if task is None:
            return None, {}
        tid = as_int(col(task, "id"))
        return task, (self.subtasks(tid, hist) if tid is not None else {})

    def observe(self, handle: JobHandle, t: Callable[[], float]) -> Observation | None:
        jid = handle.job_id
        if jid is None:
            return None
        if handle.kind == ADD_INDEX:
            # TiDB pushes only DB_NAME, TABLE_NAME and STATE down into its job retriever:
            # a JOB_ID filter alone would walk the whole DDL history on every poll.
            target = handle.target
            rows = self.q(f"SELECT {', '.join(DDL_COLUMNS)} FROM information_schema.ddl_jobs "  # noqa: S608 - our column constants
                          "WHERE DB_NAME = %s AND TABLE_NAME = %s AND JOB_ID = %s",
                          (target.db, target.table, jid))
            if not rows:
                return None
            # the history copy (synced) wins over a stale running copy
            row = sorted(rows, key=lambda r: is_terminal(ADD_INDEX, text(col(r, "STATE"))))[-1]
            terminal = is_terminal(ADD_INDEX, text(col(row, "STATE")))
            task, subs = self.dxf(ADD_INDEX, jid, terminal or handle.extra.get("task_seen", False))
            if task is not None:
                handle.extra["task_seen"] = True
            return ddl_observation(t(), row, task, subs)
        rows = self.q(f"SHOW IMPORT JOB {int(jid)}")
        if not rows:
            return None
        terminal = is_terminal(IMPORT_INTO, text(col(rows[0], "Status")))
        task, subs = self.dxf(IMPORT_INTO, jid, terminal or handle.extra.get("task_seen", False))
        if task is not None:
            handle.extra["task_seen"] = True
        return import_observation(t(), rows[0], task, subs)


# -- cancel -------------------------------------------------------------------------------
def rejected_code(result: str) -> int | None:
    """The error code in an ``ADMIN CANCEL DDL JOBS`` RESULT such as
    ``error: [ddl:8224]DDL Job:475 not found`` (None when it has none)."""
    err = parse_error(result.split(":", 1)[1] if result.lower().startswith("error:") else result)
    return err.code if err is not None else None


def issue_cancel(client: SQLClient, handle: JobHandle, timeline: Timeline, *, reason: str,
                 window: float, call_timeout: float = 10.0) -> CancelProbe:
    """``ADMIN CANCEL DDL JOBS n`` / ``CANCEL IMPORT JOB n``; records ``job.cancel``.

    A cancel that gets no answer in time counts as sent (accepted): whether it
    worked is read from the job's state, not from the statement.
    """
    jid = handle.job_id
    issued = timeline.now()
    if jid is None:
        probe = CancelProbe(issued, False, "no job id to cancel", window, reason)
    else:
        sql = (f"ADMIN CANCEL DDL JOBS {int(jid)}" if handle.kind == ADD_INDEX
               else f"CANCEL IMPORT JOB {int(jid)}")
        code: int | None = None
        try:
            rows = client.query(sql, timeout=min(window, call_timeout), idempotent=False)
            if handle.kind == ADD_INDEX:
                results = [text(col(r, "RESULT")) for r in rows]
                result = "; ".join(results) or "no result row"
                accepted = bool(rows) and all(r.lower() == "successful" for r in results)
                code = next((rejected_code(r) for r in results
                             if r.lower() != "successful"), None)
            else:
                result, accepted = "OK", True
        except Exception as exc:  # noqa: BLE001 - the answer is the evidence
            code = getattr(exc, "code", None)
            connection = code in (2003, 2006, 2013, 2055) or code is None
            result = f"{'no answer' if connection else 'error'}: {exc}"
            accepted = connection
        probe = CancelProbe(issued, accepted, redact(result), window, reason,
                            None if accepted else code)
        log.info("%s: %s -> %s (%s)", handle.job_key, sql, probe.result, reason)
    timeline.record(JOB_CANCEL, job_key=handle.job_key, job_id=jid, accepted=probe.accepted,
                    result=probe.result, reason=reason)
    handle.cancel = probe
    if reason == PROBE_AFTER_STUCK:
        handle.cancel_settled.clear()  # the watcher settles the probe
    return probe


# -- the watcher --------------------------------------------------------------------
class Watcher:
    """Polls job handles in one background thread until each has its verdict."""

    def __init__(
        self,
        client: SQLClient,
        timeline: Timeline,
        *,
        poll_interval: float = 2.0,
        call_timeout: float = 5.0,
        heartbeat: float = 60.0,
        discover_queued: bool = True,
        on_verdict: Callable[[JobHandle, Verdict], None] | None = None,
    ) -> None:
        self.client = client
        self.timeline = timeline
        self.poll_interval = poll_interval
        self.reader = JobReader(client, call_timeout)
        self.heartbeat = heartbeat
        self.discover_queued = discover_queued
        self.on_verdict = on_verdict
        self._handles: list[JobHandle] = []
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._rounds = 0
        self._last_heartbeat = 0.0
        self._unavailable: str | None = None
        self.errors: list[str] = []  # poll failures, for diagnostics

    # -- lifecycle ---------------------------------------------------------------
    def add(self, handle: JobHandle) -> JobHandle:
        handle.watcher = self
        handle.timeline = self.timeline
        with self._lock:
            if not handle.discovered and handle.seq is None:
                # the n-th job run of the test, in the order the runner submits them (its
                # plan order): what a fault's ``when: {job: n}`` names
                self._seq += 1
                handle.seq = self._seq
            self._handles.append(handle)
        self._wake.set()
        return handle

    @property
    def handles(self) -> list[JobHandle]:
        with self._lock:
            return list(self._handles)

    def start(self) -> Watcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="tidb-ha-watcher",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and abandon every still-blocked statement (never hangs)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for h in self.handles:
            if h.statement is not None and not h.statement.done:
                h.statement.abandon()

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - the watcher must survive anything
                self._note(f"watcher round failed: {type(exc).__name__}: {exc}")
            rest = self.poll_interval - (time.monotonic() - started)
            self._wake.wait(max(0.0, rest))
            self._wake.clear()

    def _note(self, msg: str) -> None:
        msg = redact(msg)
        if msg != self._unavailable:
            log.warning("%s", msg)
            self._unavailable = msg
        if len(self.errors) < 200:
            self.errors.append(f"t={self.timeline.now():.1f}s {msg}")

    # -- one round -------------------------------------------------------------------
    def active(self) -> list[JobHandle]:
        return [h for h in self.handles
                if not h.decided or (h.cancel is not None and not h.cancel_settled.is_set())]

    def poll_once(self) -> None:
        self._rounds += 1
        for h in self.active():
            self._poll(h)
        if self.discover_queued and self._rounds % DISCOVER_EVERY == 1:
            self._discover()
        self._heartbeat()

    def _poll(self, h: JobHandle) -> None:
        try:
            if h.job_id is None:
                jid = (find_ddl_job(self.client, h) if h.kind == ADD_INDEX
                       else find_import_job(self.client, h))
                if jid is not None:
                    h.set_job_id(jid)
                    self.timeline.record(JOB_SUBMIT, job_key=h.job_key, job_kind=h.kind,
                                         job_id=jid, query=h.query)
                    log.info("%s: job id %s", h.job_key, jid)
                elif self._resubmit(h):
                    return
            obs = self.reader.observe(h, self.timeline.now)
        except Exception as exc:  # noqa: BLE001 - a dead node is an observation gap
            self._note(f"{h.job_key}: cannot read job state: {exc}")
            obs = None
        else:
            self._unavailable = None
        if obs is not None:
            self._record(h, obs)
        if not h.decided:
            self._judge(h)
        elif h.cancel is not None and not h.cancel_settled.is_set():
            self._judge_cancel(h)

    def _resubmit(self, h: JobHandle) -> bool:
        """Send the statement again when TiDB refused it before creating any job.

        Only for a *server* answer in the transient class (PD/TiKV timeout, not
        owner, ...) and only after the lookup found no job for it, so no job is
        ever submitted twice. The errors are kept in the verdict's evidence.
        """
        stmt = h.statement
        if stmt is None or not stmt.done or stmt.error is None:
            return False
        code = stmt.error.code
        if code is None or 2000 <= code < 3000 or code not in TRANSIENT_CODES:
            return False
        errors: list[str] = h.extra.setdefault("resubmitted_after", [])
        if len(errors) >= MAX_RESUBMITS or self.timeline.now() - h.submitted_at >= h.policy.timeout:
            return False
        errors.append(str(stmt.error))
        h.statement = stmt.again(f"r{len(errors)}")
        self.timeline.record(JOB_SUBMIT, job_key=h.job_key, job_kind=h.kind, job_id=None,
                             query=h.query, attempt=len(errors) + 1, after_error=str(stmt.error))
        log.info("%s: TiDB refused the statement before creating a job (%s); sending it again "
                 "(attempt %d)", h.job_key, stmt.error, len(errors) + 1)
        h.statement.start()
        return True

    def _record(self, h: JobHandle, obs: Observation) -> None:
        prev = h.latest
        if not h.observe(obs):
            return
        # published for every reader of the Timeline; a fault's ``when:`` trigger reads
        # job_seq and progress (faults.triggers)
        rows = obs.imported_rows if obs.imported_rows is not None else obs.row_count
        self.timeline.record(JOB_STATE, job_key=h.job_key, job_seq=h.seq, **obs.to_event(),
                             progress=progress_percent(rows, h.total_rows))
        if prev is None or state_signature(prev) != state_signature(obs):
            log.info("%s: %s %s", h.job_key, h.label(), obs.describe())
        else:
            log.debug("%s: %s %s", h.job_key, h.label(), obs.describe())

    def _blocker(self, h: JobHandle) -> str | None:
        for other in self.handles:
            if other is h or other.target.kind != h.target.kind:
                continue
            if (other.target.db, other.target.table) != (h.target.db, h.target.table):
                continue
            v = other.verdict
            if v is not None and v.verdict == STUCK and not other.terminal:
                if other.job_id is not None and h.job_id is not None and other.job_id > h.job_id:
                    continue
                return other.label()
        return None

    def _judge(self, h: JobHandle) -> None:
        p = h.policy
        now = self.timeline.now()
        if (p.cancel_after is not None and h.cancel is None and h.job_id is not None
                and not h.terminal and now - h.submitted_at >= p.cancel_after):
            issue_cancel(self.client, h, self.timeline, reason="cancelAfter",
                         window=p.cancel_window)
        if h.succeeded and not h.checks_done:
            h.run_checks()
        v = judge(job_key=h.job_key, kind=h.kind, observations=h.observations,
                  fault_windows=self.timeline.fault_windows(), now=self.timeline.now(),
                  started_at=h.submitted_at, stall_window=p.stall_window, timeout=p.timeout,
                  expectation=p.expectation, allow_errors=p.allow_errors,
                  client_error=h.client_error, checks=h.checks, cancel=h.cancel,
                  blocked_by=self._blocker(h), terminal_grace=p.terminal_grace,
                  job_id=h.job_id,
                  statement_pending=h.statement is not None and not h.statement.done,
                  statement_ok=h.statement is not None and h.statement.done
                  and h.statement.error is None,
                  total_rows=h.total_rows)
        if v is not None:
            more: dict[str, Any] = {}
            if h.extra.get("resubmitted_after"):
                more["resubmitted_after"] = list(h.extra["resubmitted_after"])
            if p.floor is not None:
                more["recovery_floor"] = p.floor.describe()
            if more:
                v = dataclasses.replace(v, evidence=MappingProxyType({**v.evidence, **more}))
            self._decide(h, v)

    def _decide(self, h: JobHandle, v: Verdict) -> None:
        h.decide(v)
        self.timeline.record(JOB_VERDICT, job_key=v.job_key, job_id=v.job_id,
                             verdict=v.verdict, reason=v.reason, ok=v.ok)
        (log.info if v.ok else log.warning)("%s: %s -- %s", v.job_key, v.verdict, v.reason)
        if h.cancel is None or h.cancel.reason != PROBE_AFTER_STUCK:
            h.cancel_settled.set()
        if self.on_verdict is not None:
            with contextlib.suppress(Exception):
                self.on_verdict(h, v)

    def _judge_cancel(self, h: JobHandle) -> None:
        assert h.cancel is not None
        now = self.timeline.now()
        v = cancel_ineffective(job_key=h.job_key, kind=h.kind, job_id=h.job_id,
                               observations=h.observations, cancel=h.cancel, now=now)
        if v is not None:
            h.cancel_verdict = v
            self.timeline.record(JOB_VERDICT, job_key=v.job_key, job_id=v.job_id,
                                 verdict=v.verdict, reason=v.reason, ok=v.ok)
            log.warning("%s: %s -- %s", v.job_key, v.verdict, v.reason)
            h.cancel_settled.set()
            if self.on_verdict is not None:
                with contextlib.suppress(Exception):
                    self.on_verdict(h, v)
        elif h.terminal:
            log.info("%s: cancel probe worked: %s", h.job_key, h.latest.describe()
                     if h.latest else "")
            h.cancel_settled.set()

    def probe_cancel(self, h: JobHandle, window: float) -> CancelProbe:
        """Cancel a job judged stuck; the watcher settles the probe (``h.cancel_settled``)."""
        probe = issue_cancel(self.client, h, self.timeline, reason=PROBE_AFTER_STUCK,
                             window=window)
        self._wake.set()
        return probe

    # -- jobs queued behind ours -----------------------------------------------------
    def _discover(self) -> None:
        tracked = self.handles
        ours = {h.job_id for h in tracked if h.job_id is not None}
        # our own runs, including one whose statement is in flight but not yet added here
        names = {h.target.index_name for h in tracked if h.target.index_name}
        names |= issued_index_names()
        seen_tables: set[tuple[str, str]] = set()
        for h in tracked:
            if h.kind != ADD_INDEX or h.job_id is None or h.terminal:
                continue
            key = (h.target.db, h.target.table)
            if key in seen_tables:
                continue
            seen_tables.add(key)
            placeholders = ", ".join(["%s"] * len(OPEN_DDL_STATES))
            try:
                rows = self.client.query(
                    "SELECT JOB_ID, JOB_TYPE, STATE, QUERY FROM information_schema.ddl_jobs "  # noqa: S608 - job ids are ints
                    f"WHERE DB_NAME = %s AND TABLE_NAME = %s AND STATE IN ({placeholders})",
                    (*key, *OPEN_DDL_STATES), timeout=self.reader.timeout)
            except Exception as exc:  # noqa: BLE001
                self._note(f"cannot look for jobs queued on {key[0]}.{key[1]}: {exc}")
                continue
            for r in rows:
                jid = as_int(col(r, "JOB_ID"))
                q = text(col(r, "QUERY"))
                if jid is None or jid in ours or jid < (h.job_id or 0):
                    continue
                if any(n and n in q for n in names):
                    continue  # one of our own later runs, not resolved yet
                self._adopt(h, jid, q)
                ours.add(jid)

    def _adopt(self, ahead: JobHandle, job_id: int, query: str) -> None:
        target = JobTarget(ADD_INDEX, ahead.target.db, ahead.target.table)
        p = ahead.policy
        policy = JobPolicy(timeout=p.timeout, stall_window=p.stall_window,
                           expectation=p.expectation, allow_errors=p.allow_errors,
                           cancel_window=p.cancel_window, terminal_grace=p.terminal_grace,
                           floor=p.floor)
        h = JobHandle(f"queued#{job_id}", target, policy, query=redact(query),
                      submitted_at=self.timeline.now(), job_id=job_id, discovered=True)
        log.info("found job %s queued behind %s on %s.%s: %s", job_id, ahead.label(),
                 target.db, target.table, redact(query))
        self.timeline.record(JOB_SUBMIT, job_key=h.job_key, job_kind=ADD_INDEX, job_id=job_id,
                             query=h.query, discovered=True)
        self.add(h)

    # -- heartbeat ----------------------------------------------------------------------
    def _heartbeat(self) -> None:
        now = self.timeline.now()
        if now - self._last_heartbeat < self.heartbeat:
            return
        self._last_heartbeat = now
        live = [h for h in self.handles if not h.decided]
        if not live:
            return
        fw = self.timeline.fault_windows()
        parts = []
        for h in live:
            lp = last_progress(h.observations, h.submitted_at)
            parts.append(f"{h.job_key} {h.label()} "
                         f"{h.latest.describe() if h.latest else 'not seen yet'}; "
                         f"no progress for {fault_free_seconds(fw, lp, now):.0f}s fault-free "
                         f"(stall window {h.policy.stall_window:.0f}s)")
        log.info("watching %d job(s) at t=%.0fs: %s", len(live), now, " | ".join(parts))


def verdicts_of(handles: Sequence[JobHandle]) -> list[Verdict]:
    """Every verdict the handles reached (main verdicts, then cancel probes), in order."""
    out: list[Verdict] = []
    for h in handles:
        if h.verdict is not None:
            out.append(h.verdict)
        if h.cancel_verdict is not None:
            out.append(h.cancel_verdict)
    return out
