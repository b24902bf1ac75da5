"""The DDL job engine (reference §1-§2): queue, owner worker, ADD/DROP INDEX state machines.

Jobs live in etcd (``ddl/jobs/<id>`` while unfinished, ``ddl/history/<id>`` after),
so any TiDB that becomes owner continues them from their persisted state and the
backfill checkpoint. Every write of a job by the owner is fenced by its election
key, so a deposed owner cannot move a job any more. The session that issued the
ALTER polls the job until it is terminal, like TiDB's ``doDDLJob``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import threading
import time
from typing import TYPE_CHECKING, Any

from common.env import Pace, scaled
from common.etcd import EtcdError, Op
from common.log import get_logger
from common.versions import Surface

from . import backfill, codec, mdl
from .catalog import Index, Table, commit_schema, table_key
from .executor import Result
from .sql import IndexDef, SQLError
from .systables import DDL_JOBS_COLUMNS

if TYPE_CHECKING:
    from .executor import Session
    from .server import Node

log = get_logger("tidb.ddl")

TERMINAL = ("synced", "rollback done", "cancelled")
DEFAULT_REORG_WORKERS = 4  # tidb_ddl_reorg_worker_cnt's default
DEFAULT_REORG_BATCH = 256  # tidb_ddl_reorg_batch_size's default
DIST_NEEDS_FAST_REORG = (
    "Unsupported tidb_enable_dist_task setting. To utilize distributed task execution, "
    "please enable tidb_ddl_enable_fast_reorg first."
)
ACTIVE_PREFIX = "ddl/jobs/"
HISTORY_PREFIX = "ddl/history/"


def _jk(job_id: int) -> str:
    return f"{job_id:020d}"


def _job_record(
    job_id: int,
    jtype: str,
    *,
    db: str,
    table: str,
    schema_id: int,
    table_id: int,
    query: str,
    state: str,
    schema_state: str,
    create_time: float,
    start_time: float | None = None,
    end_time: float | None = None,
) -> dict[str, Any]:
    """The fields every DDL job record carries, in one place.

    ``_row`` (``information_schema.ddl_jobs`` / ``ADMIN SHOW DDL JOBS``) reads these keys from
    every job, whichever path wrote it; type-specific fields are appended by the caller.
    """
    return {
        "id": job_id,
        "type": jtype,
        "db": db,
        "table": table,
        "schema_id": schema_id,
        "table_id": table_id,
        "query": query,
        "state": state,
        "schema_state": schema_state,
        "row_count": 0,
        "create_time": create_time,
        "start_time": start_time,
        "end_time": end_time,
    }


def _queued_job(
    job_id: int, jtype: str, t: Table, query: str, *, schema_state: str, **fields: Any
) -> dict[str, Any]:
    """A new job on table ``t``, ``queueing`` for the owner's worker to run.

    TiDB inserts every job as ``queueing`` (pkg/ddl/ddl_worker.go setJobStateToQueueing).

    ``fields`` are the job type's own (reorg choice, index); the error slots come last.
    """
    return {
        **_job_record(
            job_id,
            jtype,
            db=t.db,
            table=t.name,
            schema_id=t.db_id,
            table_id=t.id,
            query=query,
            state="queueing",
            schema_state=schema_state,
            create_time=time.time(),
        ),
        **fields,
        "error": None,
        "error_code": 0,
    }


def _int_sysvar(node: Node, name: str, default: int) -> int:
    try:
        return int(node.global_sysvar(name))
    except (TypeError, ValueError):
        return default


def fmt_time(ts: float | None) -> _dt.datetime | None:
    return None if not ts else _dt.datetime.fromtimestamp(ts)


def job_type_text(job: dict[str, Any], surface: Surface) -> str:
    """JOB_TYPE: ``add index /* ingest */`` once the reorg type is picked (§2.3), v7.5-v8.4.

    From v8.5 the reorg type moved to ADMIN SHOW DDL JOBS' COMMENTS: JOB_TYPE is plain.
    """
    t: str = job["type"]
    if t == "add index" and job.get("reorg_tp") and not surface.show_ddl_jobs_comments:
        return f"{t} /* {job['reorg_tp']} */"
    return t


def job_comments(job: dict[str, Any]) -> str:
    """COMMENTS of ADMIN SHOW DDL JOBS (v8.5+): ``ingest, DXF``, non-default thread/batch size.

    As pkg/executor/show_ddl_jobs.go ``showCommentsFromJob``; jobs without reorg meta (not
    ADD INDEX) show an empty string.
    """
    if job["type"] != "add index":
        return ""
    labels = []
    tp = job.get("reorg_tp")
    if tp:
        labels.append(tp)
        if tp == "ingest" and job.get("dist"):
            labels.append("DXF")
    concurrency = int(job.get("concurrency") or DEFAULT_REORG_WORKERS)
    size = int(job.get("batch_size") or DEFAULT_REORG_BATCH)
    if concurrency != DEFAULT_REORG_WORKERS:
        labels.append(f"thread={concurrency}")
    if size != DEFAULT_REORG_BATCH:
        labels.append(f"batch_size={size}")
    return ", ".join(labels)


def _rollbackable(job: dict[str, Any]) -> bool:
    """TiDB's ``Job.IsRollbackable`` for the job types the stand-in runs.

    ADD INDEX always is; DROP INDEX only before it left ``public`` (its delete-only, write-only
    and delete-reorganization states cannot go back).
    """
    if job["type"] == "drop index":
        return job.get("schema_state") not in ("write only", "delete only", "delete reorganization")
    return True


class JobLost(Exception):
    """The job record moved under us (ownership lost or another writer)."""


class DDL:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._running: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self.pace = Pace(scaled(0.3, 0.05), scaled(1.0, 0.25))

    # ---------------------------------------------------------------------------------------
    # storage
    def active_jobs(self) -> list[tuple[dict[str, Any], int]]:
        return sorted(
            ((obj, rev) for _k, obj, rev in self.node.meta.list(ACTIVE_PREFIX)),
            key=lambda x: x[0]["id"],
        )

    def history_jobs(self) -> list[dict[str, Any]]:
        return sorted(
            (obj for _k, obj, _r in self.node.meta.list(HISTORY_PREFIX)), key=lambda j: j["id"]
        )

    def find(self, job_id: int) -> tuple[dict[str, Any] | None, int, bool]:
        job, rev = self.node.meta.get(ACTIVE_PREFIX + _jk(job_id))
        if job is not None:
            return job, rev, False
        job, rev = self.node.meta.get(HISTORY_PREFIX + _jk(job_id))
        return job, rev, job is not None

    def record_simple_job(
        self,
        job_id: int,
        jtype: str,
        db: str,
        table: str,
        schema_id: int,
        table_id: int,
        query: str,
    ) -> None:
        """Schema-only jobs (create/drop) go straight to history as ``synced``."""
        now = time.time()
        job = _job_record(
            job_id,
            jtype,
            db=db,
            table=table,
            schema_id=schema_id,
            table_id=table_id,
            query=query,
            state="synced",
            schema_state="none" if jtype.startswith("drop") else "public",
            create_time=now,
            start_time=now,
            end_time=now,
        )
        with contextlib.suppress(EtcdError):
            self.node.meta.put(HISTORY_PREFIX + _jk(job_id), job)

    # ---------------------------------------------------------------------------------------
    # submission (any TiDB)
    def add_index(
        self, db: str, table_name: str, idef: IndexDef, query: str, session: Session
    ) -> None:
        node = self.node
        t = node.schema.reload(force=True).table(db, table_name)
        if t is None:
            raise SQLError(1146, f"Table '{db}.{table_name}' doesn't exist", "42S02")
        names = [c.name.lower() for c in t.columns]
        for c in idef.columns:
            if c.lower() not in names:
                raise SQLError(1072, f"Key column '{c}' doesn't exist in table", "42000")
        name = idef.name or idef.columns[0]
        if not idef.name:
            n = 2
            while t.index(name) is not None:
                name = f"{idef.columns[0]}_{n}"
                n += 1
        if t.index(name) is not None or any(
            j["table_id"] == t.id and j.get("index", {}).get("name", "").lower() == name.lower()
            for j, _ in self.active_jobs()
            if j["type"] == "add index"
        ):
            raise SQLError(1061, f"Duplicate key name '{name}'", "42000")
        fast = node.sysvar_on("tidb_ddl_enable_fast_reorg")
        dist = node.sysvar_on("tidb_enable_dist_task")
        if dist and not fast and node.surface.dist_task_needs_fast_reorg:
            # pkg/ddl initJobReorgMetaFromVariables: dbterror.ErrUnsupportedDistTask (8200).
            raise SQLError(8200, DIST_NEEDS_FAST_REORG)
        dist = dist and fast  # v7.5: DXF only on the ingest path (pickBackfillType)
        job_id = node.meta.next_id()
        index_id = max([i.id for i in t.indexes] + [0]) + 1 + (job_id % 1000) * 0
        job = _queued_job(
            job_id,
            "add index",
            t,
            query,
            schema_state="none",
            reorg_tp=None,
            want_reorg="ingest" if fast else "txn",
            dist=dist,
            concurrency=_int_sysvar(node, "tidb_ddl_reorg_worker_cnt", DEFAULT_REORG_WORKERS),
            batch_size=backfill.batch_size(node),
            index={
                "id": index_id,
                "name": name,
                "columns": list(idef.columns),
                "unique": idef.unique,
            },
        )
        node.meta.put(ACTIVE_PREFIX + _jk(job_id), job)
        log.info("add DDL job", category="ddl", job_id=job_id, query=query, type="add index")
        self.pace.poke()
        self._wait(job_id)

    def drop_index(self, db: str, table_name: str, name: str, query: str, session: Session) -> None:
        node = self.node
        t = node.schema.reload(force=True).table(db, table_name)
        if t is None:
            raise SQLError(1146, f"Table '{db}.{table_name}' doesn't exist", "42S02")
        idx = t.index(name)
        if idx is None or idx.primary:
            raise SQLError(1091, f"Can't DROP '{name}'; check that column/key exists", "42000")
        job_id = node.meta.next_id()
        job = _queued_job(
            job_id,
            "drop index",
            t,
            query,
            schema_state="public",
            index={"id": idx.id, "name": idx.name},
        )
        node.meta.put(ACTIVE_PREFIX + _jk(job_id), job)
        self.pace.poke()
        self._wait(job_id)

    def _wait(self, job_id: int) -> None:
        """Block the session until the job is terminal (TiDB's ALTER has no timeout)."""
        tick = scaled(0.2, 0.05)
        while True:
            try:
                job, _rev = self.node.meta.get(HISTORY_PREFIX + _jk(job_id))
            except EtcdError:
                job = None
            if job is not None:
                if job["state"] == "synced":
                    return
                if job["state"] in ("rollback done", "cancelled"):
                    raise SQLError(
                        int(job.get("error_code") or 1105), job.get("error") or "Cancelled DDL job"
                    )
            time.sleep(tick)

    # ---------------------------------------------------------------------------------------
    # ADMIN statements
    def cancel_jobs(self, ids: list[int]) -> Result:
        """``ADMIN CANCEL DDL JOBS``: mark each job ``cancelling`` in its row, at once.

        As TiDB's ``processJobs(cancelRunningJob)`` (pkg/ddl/ddl.go): only jobs still in the
        job table can be cancelled — a finished one (in history) is 8224 not found; ``done``
        is 8225; a job already cancelling or rolling back answers ``successful``; a job
        that cannot roll back is 8226. The owner's worker does the rest.
        """
        rows = [[job_id, self._cancel_one(job_id)] for job_id in ids]
        return Result([("JOB_ID", "int"), ("RESULT", "str")], rows)

    def _cancel_one(self, job_id: int) -> str:
        key = ACTIVE_PREFIX + _jk(job_id)
        for _ in range(50):
            job, rev = self.node.meta.get(key)
            if job is None:
                return f"error: [ddl:8224]DDL Job:{job_id} not found"
            state = job["state"]
            if state in ("done", "synced"):
                return f"error: [ddl:8225]This job:{job_id} is finished, so can't be cancelled"
            if state in ("cancelling", "cancelled", "rollingback", "rollback done"):
                return "successful"
            if not _rollbackable(job):
                return (
                    f"error: [ddl:8226]This job:{job_id} is almost finished, can't be cancelled now"
                )
            job["state"] = "cancelling"
            if self.node.meta.cas(key, job, rev):
                log.info("cancel DDL job", category="ddl", job_id=job_id)
                return "successful"
            time.sleep(0.01)  # the owner wrote the job meanwhile: read it again
        raise SQLError(9007, "Write conflict, txnStartTS is stale [try again later]")

    def cancelling(self, job_id: int) -> tuple[dict[str, Any], int] | None:
        """The job's row and revision when a cancel has marked it ``cancelling``."""
        job, rev = self.node.meta.get(ACTIVE_PREFIX + _jk(job_id))
        if job is not None and job["state"] == "cancelling":
            return job, rev
        return None

    def ddl_job_rows(self) -> list[list[Any]]:
        """information_schema.ddl_jobs rows (13 columns): running first, then history newest first."""
        out = []
        for job, _ in sorted(self.active_jobs(), key=lambda x: -x[0]["id"]):
            out.append(self._row(job))
        for job in reversed(self.history_jobs()):
            out.append(self._row(job))
        return out

    def _row(self, job: dict[str, Any]) -> list[Any]:
        return [
            job["id"],
            job["db"],
            job["table"],
            job_type_text(job, self.node.surface),
            job.get("schema_state", "none"),
            job["schema_id"],
            job["table_id"],
            int(job.get("row_count", 0)),
            fmt_time(job.get("create_time")),
            fmt_time(job.get("start_time")),
            fmt_time(job.get("end_time")),
            job["state"],
            job.get("query", ""),
        ]

    def admin_show_ddl_jobs(self, n: int) -> Result:
        """information_schema.ddl_jobs' rows with QUERY dropped (v7.5-v8.4) or, from v8.5,
        replaced by COMMENTS (pkg/planner/core/planbuilder.go buildShowDDLJobsFields)."""
        comments = self.node.surface.show_ddl_jobs_comments
        cols = DDL_JOBS_COLUMNS[:-1] + ([("COMMENTS", "str")] if comments else [])

        def row(job: dict[str, Any]) -> list[Any]:
            return self._row(job)[:-1] + ([job_comments(job)] if comments else [])

        active = [row(j) for j, _ in sorted(self.active_jobs(), key=lambda x: -x[0]["id"])]
        hist = [row(j) for j in reversed(self.history_jobs())][:n]
        return Result(cols, active + hist)

    def admin_show_ddl(self) -> Result:
        node = self.node
        owner_id = node.owner.owner_id()
        servers = node.owner.servers()
        info = servers.get(owner_id, {})
        addr = f"{info.get('ip', '')}:{info.get('listening_port', '')}" if info else ""
        running = ", ".join(
            f"ID:{j['id']}, Type:{j['type']}, State:{j['state']}, SchemaState:{j['schema_state']}"
            for j, _ in self.active_jobs()
            if j["state"] == "running"
        )
        cols = [
            ("SCHEMA_VER", "int"),
            ("OWNER_ID", "str"),
            ("OWNER_ADDRESS", "str"),
            ("RUNNING_JOBS", "str"),
            ("SELF_ID", "str"),
            ("QUERY", "str"),
        ]
        query = next((j["query"] for j, _ in self.active_jobs() if j["state"] == "running"), "")
        return Result(
            cols, [[node.schema.current.version, owner_id, addr, running, node.ddl_id, query]]
        )

    # ---------------------------------------------------------------------------------------
    # owner side
    def start(self) -> None:
        threading.Thread(target=self._loop, name="ddl-worker", daemon=True).start()

    def _loop(self) -> None:
        busy = True
        while True:
            self.pace.wait(busy)
            busy = False
            if not self.node.is_owner():
                continue
            try:
                busy = self._dispatch()
            except EtcdError as exc:
                log.warn("ddl worker step failed", category="ddl", error=str(exc)[:200])
            except Exception as exc:  # noqa: BLE001 - the worker must survive
                log.error("ddl worker crashed a step", category="ddl", error=repr(exc)[:300])

    def _dispatch(self) -> bool:
        """Start a runner for each job whose table is free; True when there are jobs."""
        busy_tables: set[int] = set()
        jobs = self.active_jobs()
        for job, _rev in jobs:
            tid = job["table_id"]
            if tid in busy_tables:
                # A job waits, in whatever state it has (queueing, or cancelling after an
                # ADMIN CANCEL), until the earlier job on its table is finished.
                continue
            busy_tables.add(tid)
            with self._lock:
                th = self._running.get(job["id"])
                if th is not None and th.is_alive():
                    continue
                th = threading.Thread(
                    target=self._run_job,
                    args=(job["id"],),
                    name=f"ddl-job-{job['id']}",
                    daemon=True,
                )
                self._running[job["id"]] = th
            th.start()
        return bool(jobs)

    def update(self, job: dict[str, Any], rev: int) -> int:
        """Persist ``job`` fenced by ownership; returns the new revision or raises JobLost."""
        key = ACTIVE_PREFIX + _jk(job["id"])
        if not self.node.meta.cas(key, job, rev, guards=self.node.owner.guard()):
            raise JobLost(job["id"])
        _obj, new_rev = self.node.meta.get(key)
        return new_rev

    def finish(self, job: dict[str, Any], rev: int) -> None:
        job["end_time"] = job.get("end_time") or time.time()
        meta = self.node.meta
        ok = meta.cas(
            ACTIVE_PREFIX + _jk(job["id"]),
            None,
            rev,
            guards=self.node.owner.guard(),
            extra=[Op.put(meta.key(HISTORY_PREFIX + _jk(job["id"])), json.dumps(job))],
        )
        if not ok:
            raise JobLost(job["id"])
        log.info("finish DDL job", category="ddl", job_id=job["id"], state=job["state"])

    def wait_table_idle(self, table_id: int) -> None:
        """Block while an unfinished job works on ``table_id`` (TiDB queues DDL per table)."""
        while any(j["table_id"] == table_id for j, _ in self.active_jobs()):
            time.sleep(scaled(0.2, 0.05))

    def wait_synced(self, version: int, table_id: int | None = None) -> None:
        """Wait until every live TiDB loaded ``version`` (bounded like TiDB's 2 * lease).

        Past the bound only while a TiDB holds the version back for an open transaction on
        ``table_id``: TiDB's owner waits for metadata locks without a deadline, for as long
        as it stays the owner.
        """
        deadline = time.monotonic() + 2 * self.node.lease
        while True:
            try:
                servers = self.node.owner.servers()
            except EtcdError:
                servers = {}
            if servers and all(
                int(s.get("schema_version", 0)) >= version for s in servers.values()
            ):
                return
            if time.monotonic() >= deadline and not (
                table_id is not None
                and self.node.is_owner()
                and mdl.held_back(servers, table_id, version)
            ):
                return
            time.sleep(scaled(0.1, 0.05))

    def _run_job(self, job_id: int) -> None:
        from .jobrun import JobRunner

        try:
            JobRunner(self, job_id).run()
        except JobLost:
            log.info("ddl job handed over (ownership lost)", category="ddl", job_id=job_id)
        except EtcdError as exc:
            log.warn(
                "ddl job step failed, will retry",
                category="ddl",
                job_id=job_id,
                error=str(exc)[:200],
            )
        except Exception as exc:  # noqa: BLE001
            log.error(
                "ddl job runner crashed", category="ddl", job_id=job_id, error=repr(exc)[:300]
            )

    # schema helpers used by the runner
    def set_index_state(self, job: dict[str, Any], state: str | None) -> int:
        """Put the job's index into ``state`` (None removes it) and bump the schema version."""
        node = self.node
        for _ in range(100):
            schema = node.schema.reload(force=True)
            t = schema.table_by_id(job["table_id"])
            if t is None:
                raise backfill.BackfillError(f"table {job['table']} was dropped", 1146)
            spec = job["index"]
            t.indexes = [i for i in t.indexes if i.id != spec["id"]]
            if state is not None:
                existing = Index(
                    spec["id"],
                    spec["name"],
                    list(spec.get("columns", [])),
                    spec.get("unique", False),
                    False,
                    state,
                )
                if job["type"] == "drop index":
                    old = schema.table_by_id(job["table_id"])
                    if old is None:
                        raise RuntimeError(f"drop index: table {job['table_id']} of job {job['id']} is gone")
                    prev = next((i for i in old.indexes if i.id == spec["id"]), None)
                    if prev is not None:
                        existing = Index(
                            prev.id, prev.name, prev.columns, prev.unique, prev.primary, state
                        )
                t.indexes.append(existing)
                t.indexes.sort(key=lambda i: i.id)
            version = commit_schema(
                node.meta, {table_key(t.db, t.name): t.to_json()}, guards=node.owner.guard()
            )
            if version is not None:
                node.adopt_schema(force=True)
                return version
            if not node.is_owner():
                raise JobLost(job["id"])
            time.sleep(0.02)
        raise JobLost(job["id"])

    def delete_index_entries(self, table_id: int, index_id: int) -> None:
        prefix = codec.index_prefix(table_id, index_id)
        keys = [k for k, _ in self.node.kv.scan(prefix, codec.prefix_end(prefix))]
        for i in range(0, len(keys), 2000):
            self.node.kv.batch_delete(keys[i : i + 2000])
