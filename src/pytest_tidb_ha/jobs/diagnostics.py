"""The diagnostics bundle written for every verdict but ``converged``.

A stuck job is explained by the cluster's state *at the moment it was judged*
(issue #48303 was diagnosed from goroutine dumps), so the bundle is taken right
away: job rows, ``ADMIN SHOW DDL``, ``ADMIN SHOW DDL JOBS 20``, DXF task and
subtask rows, ``SHOW IMPORT JOBS``, ``mysql.tidb_mdl_view`` (a job an open transaction's
metadata lock may hold is named in the notes: :mod:`.mdlwait`), PD members/leader/stores,
every TiDB's ``/debug/pprof/goroutine?debug=2``, error lines of every container log and
the fault timeline; ``information_schema.cluster_tidb_trx`` and ``data_lock_waits`` (an
open transaction on a stalled job's table that began before its last progress is named in
the notes: :mod:`.lockwait`).

Every piece runs in its own daemon thread under one deadline; a piece that
fails or times out is noted (``index.md`` and the returned notes), never
fatal. Everything written passes :func:`pytest_tidb_ha.redact.redact`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster.protocol import ClusterLike
from ..redact import redact, redact_obj
from ..timeline import Timeline
from . import lockwait
from .handle import JobHandle
from .mdlwait import VIEW_SQL, explain
from .model import ADD_INDEX
from .submit import SQLClient, as_int, col, text
from .verdict import last_progress

log = logging.getLogger("pytest_tidb_ha.jobs")

#: Seconds each SQL/HTTP call of the bundle may take; the whole bundle gets PIECE_DEADLINE.
CALL_TIMEOUT = 5.0
PIECE_DEADLINE = 30.0
LOG_TAIL = 5000
ERROR_LINE = re.compile(r"\[(ERROR|FATAL|WARN)\]|\bERROR\b|\bFATAL\b|panic|Traceback|"
                        r"Exception|error=", re.I)
MAX_ROWS = 200
#: The bundle's file of ``mysql.tidb_mdl_view`` (its rows also explain a held job: `mdlwait`).
MDL_VIEW = "mdl-view.json"
#: The bundle's files of open transactions and lock waits (they explain a held backfill).
TRX = "tidb-trx.json"
LOCK_WAITS = "data-lock-waits.json"
#: An ADD INDEX job's schema state while it backfills (TiDB's SchemaState string).
BACKFILL_STATE = "write reorganization"


@dataclass
class Bundle:
    """What was collected where; ``notes`` are the pieces that failed."""

    dest: Path
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        s = text(value)
        return s if len(s) <= 2000 else s[:2000] + f"... ({len(s)} chars)"
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def error_lines(log_text: str, limit: int = 400) -> list[str]:
    """The lines of a container log that look like errors (pure)."""
    lines = [ln for ln in log_text.splitlines() if ERROR_LINE.search(ln)]
    return lines[-limit:]


#: DXF columns worth reading: never ``meta``/``checkpoint`` (LONGBLOBs: whole task plans).
TASK_COLUMNS = ("id, task_key, type, state, step, concurrency, start_time, state_update_time, "
                "CAST(error AS CHAR) AS error")
SUBTASK_COLUMNS = ("id, step, task_key, exec_id, state, start_time, state_update_time, "
                   "CAST(error AS CHAR) AS error")


def _sql_pieces(client: SQLClient, handles: Sequence[JobHandle]) -> dict[str, Callable[[], Any]]:
    def q(sql: str, args: Any = None) -> Callable[[], Any]:
        return lambda: client.query(sql, args, timeout=CALL_TIMEOUT)

    pieces: dict[str, Callable[[], Any]] = {
        TRX: q(lockwait.TRX_SQL),
        LOCK_WAITS: q(lockwait.LOCK_WAITS_SQL),
        "admin-show-ddl.json": q("ADMIN SHOW DDL"),
        "admin-show-ddl-jobs.json": q("ADMIN SHOW DDL JOBS 20"),
        "show-import-jobs.json": q("SHOW IMPORT JOBS"),
        MDL_VIEW: q(VIEW_SQL),
        "dxf-tasks.json": q(f"SELECT {TASK_COLUMNS} FROM mysql.tidb_global_task "
                            f"ORDER BY id DESC LIMIT {MAX_ROWS}"),
        "dxf-tasks-history.json": q(f"SELECT {TASK_COLUMNS} FROM mysql.tidb_global_task_history "
                                    f"ORDER BY id DESC LIMIT {MAX_ROWS}"),
        "dxf-subtasks.json": q(f"SELECT {SUBTASK_COLUMNS} FROM mysql.tidb_background_subtask "
                               f"ORDER BY id DESC LIMIT {MAX_ROWS}"),
        "dxf-subtasks-history.json": q(f"SELECT {SUBTASK_COLUMNS} FROM "
                                       f"mysql.tidb_background_subtask_history "
                                       f"ORDER BY id DESC LIMIT {MAX_ROWS}"),
    }
    for h in handles:
        if h.job_id is None:
            continue
        if h.kind == ADD_INDEX:
            # DB_NAME/TABLE_NAME are what TiDB pushes down (a JOB_ID filter walks the history)
            pieces[f"job-{h.job_id}.json"] = q(
                "SELECT * FROM information_schema.ddl_jobs WHERE DB_NAME = %s AND TABLE_NAME = %s "
                "AND JOB_ID = %s", (h.target.db, h.target.table, h.job_id))
        else:
            pieces[f"import-job-{h.job_id}.json"] = q(f"SHOW IMPORT JOB {int(h.job_id)}")
            pieces[f"import-job-{h.job_id}-row.json"] = q(
                "SELECT * FROM mysql.tidb_import_jobs WHERE id = %s", (h.job_id,))
    return pieces


def _cluster_pieces(cluster: ClusterLike | None) -> dict[str, Callable[[], Any]]:
    from ..cluster.http import get_json, request

    pieces: dict[str, Callable[[], Any]] = {}
    if cluster is None:
        return pieces
    try:
        pd_urls = list(cluster.pd_urls())
    except Exception:  # noqa: BLE001
        pd_urls = []

    def pd() -> Any:
        out: dict[str, Any] = {}
        for url in pd_urls:
            view: dict[str, Any] = {}
            for path in ("members", "leader", "stores", "health"):
                try:
                    view[path] = get_json(f"{url}/pd/api/v1/{path}", timeout=CALL_TIMEOUT)
                except Exception as exc:  # noqa: BLE001
                    view[path] = f"unavailable: {exc}"
            out[url] = view
        return out

    if pd_urls:
        pieces["pd.json"] = pd
    try:
        tidb_urls = dict(cluster.status_urls("tidb"))
    except Exception:  # noqa: BLE001
        tidb_urls = {}
    for node, url in tidb_urls.items():
        def dump(url: str = url) -> str:
            status, body = request(f"{url}/debug/pprof/goroutine?debug=2",
                                   timeout=CALL_TIMEOUT * 2)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
            return body.decode("utf-8", "replace")

        def info(url: str = url) -> Any:
            return get_json(f"{url}/info", timeout=CALL_TIMEOUT)

        pieces[f"goroutine-{node}.txt"] = dump
        pieces[f"tidb-info-{node}.json"] = info
    try:
        nodes = [n.name for n in cluster.nodes]
    except Exception:  # noqa: BLE001
        nodes = []
    if cluster.docker is not None:
        for node in nodes:
            def errs(node: str = node) -> str:
                lines = error_lines(cluster.logs(node, tail=LOG_TAIL))
                return "\n".join(lines) + ("\n" if lines else "")

            def tail(node: str = node) -> str:
                return str(cluster.logs(node, tail=300))

            pieces[f"logs/{node}.errors.txt"] = errs
            pieces[f"logs/{node}.tail.txt"] = tail
    return pieces


def _rows(results: dict[str, tuple[bool, Any]], name: str) -> list[Any]:
    ok, value = results.get(name, (False, None))
    return value if ok and isinstance(value, list) else []


def silent_jobs(results: dict[str, tuple[bool, Any]], handles: Sequence[JobHandle],
                now: float) -> list[lockwait.Silent]:
    """The ADD INDEX jobs of *handles* held in their backfill (``write reorganization``),
    each with its table's id from the bundle's job row and how long it has been without
    progress (pure). Only a backfill meets row locks: an import ingests into an empty
    table, and a job at another state waits for schema versions (:mod:`.mdlwait`)."""
    out = []
    for h in handles:
        last = h.latest
        if (h.job_id is None or h.kind != ADD_INDEX or last is None or h.terminal
                or last.schema_state != BACKFILL_STATE):
            continue
        rows = _rows(results, f"job-{h.job_id}.json")
        tid = as_int(col(rows[0], "TABLE_ID")) if rows else None
        if tid is None:
            continue
        lp = last_progress(h.observations, h.submitted_at)
        out.append(lockwait.Silent(h.job_id, f"{h.target.db}.{h.target.table}", tid, now - lp))
    return out


def lock_findings(results: dict[str, tuple[bool, Any]], handles: Sequence[JobHandle],
                  now: float) -> list[str]:
    """Notes naming open transactions that may hold a stalled backfill's rows (pure)."""
    jobs = silent_jobs(results, handles, now)
    if not jobs:
        return []
    ours = {h.statement.session_id for h in handles
            if h.statement is not None and h.statement.session_id is not None}
    return lockwait.explain(_rows(results, TRX), _rows(results, LOCK_WAITS), jobs, ours)


def _write(dest: Path, name: str, value: Any) -> None:
    path = dest / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(value, str):
        path.write_text(redact(value))
    else:
        path.write_text(json.dumps(redact_obj(_jsonable(value)), indent=1, default=str))


def collect(
    cluster: ClusterLike | None,
    client: SQLClient | None,
    timeline: Timeline,
    dest: Path,
    *,
    handles: Iterable[JobHandle] = (),
    deadline: float = PIECE_DEADLINE,
    notes: list[str] | None = None,
) -> Path:
    """Write the bundle into *dest* (created); returns *dest*.

    ``notes`` (e.g. ``record.notes``) receives one line per piece that could
    not be collected.
    """
    handles = list(handles)
    dest.mkdir(parents=True, exist_ok=True)
    bundle = Bundle(dest)
    pieces: dict[str, Callable[[], Any]] = {}
    if client is not None:
        pieces.update(_sql_pieces(client, handles))
    pieces.update(_cluster_pieces(cluster))
    results: dict[str, tuple[bool, Any]] = {}
    lock = threading.Lock()

    def run(name: str, fn: Callable[[], Any]) -> None:
        try:
            value = fn()
            ok = True
        except Exception as exc:  # noqa: BLE001 - noted, never fatal
            value, ok = f"{type(exc).__name__}: {exc}", False
        with lock:
            results[name] = (ok, value)

    threads = [threading.Thread(target=run, args=(n, f), name=f"tidb-ha-diag-{n}", daemon=True)
               for n, f in pieces.items()]
    end = time.monotonic() + deadline
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    for name in pieces:
        with lock:
            res = results.get(name)
        if res is None:
            bundle.notes.append(f"{name}: not collected within {deadline:.0f}s")
            continue
        ok, value = res
        if not ok:
            bundle.notes.append(f"{name}: {value}")
            continue
        try:
            _write(dest, name, value)
            bundle.files.append(name)
        except OSError as exc:
            bundle.notes.append(f"{name}: cannot write: {exc}")
    # the fault timeline and the jobs as we saw them (local, cannot time out)
    try:
        timeline.write_json(dest / "timeline.json")
        bundle.files.append("timeline.json")
        _write(dest, "faults.json", [
            {"fault_id": w.fault_id, "kind": w.kind, "start": w.start, "end": w.end,
             "targets": w.data.get("targets")} for w in timeline.fault_windows()])
        bundle.files.append("faults.json")
        _write(dest, "jobs-observed.json", [
            {"job_key": h.job_key, "job_id": h.job_id, "query": h.query,
             "verdict": h.verdict.to_json() if h.verdict else None,
             "cancel_verdict": h.cancel_verdict.to_json() if h.cancel_verdict else None,
             "client_error": str(h.client_error) if h.client_error else None,
             "observations": [{"t": round(o.t, 3), **o.to_event()} for o in h.observations]}
            for h in handles])
        bundle.files.append("jobs-observed.json")
    except Exception as exc:  # noqa: BLE001
        bundle.notes.append(f"timeline: {exc}")
    lines = ["# Diagnostics bundle", "", "Collected:", *[f"- {f}" for f in bundle.files]]
    if bundle.notes:
        lines += ["", "Not collected:", *[f"- {redact(n)}" for n in bundle.notes]]
    with lock:
        snapshot = dict(results)
    findings = explain(_rows(snapshot, MDL_VIEW),
                       (h.job_id for h in handles if h.job_id is not None))
    findings += lock_findings(snapshot, handles, timeline.now())
    if findings:
        lines += ["", "Findings:", *[f"- {f}" for f in findings]]
    (dest / "index.md").write_text("\n".join(lines) + "\n")
    if notes is not None:
        notes.extend(findings)
        notes.extend(f"diagnostics: {redact(n)}" for n in bundle.notes)
    log.info("diagnostics bundle in %s (%d pieces, %d missing)", dest, len(bundle.files),
             len(bundle.notes))
    return dest
