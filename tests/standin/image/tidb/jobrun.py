"""One DDL job driven by the owner through its states (reference §1.1/§1.2).

ADD INDEX: ``none/queueing → running`` with schema states ``delete only → write only
→ write reorganization`` (backfill, locally or as a DXF ``backfill`` task) ``→ public``,
job ``done`` and, once every live TiDB loaded the schema, ``synced``. Cancel goes
``cancelling → rollingback → rollback done``; a failed backfill rolls back the same way.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from common.env import scaled
from common.log import get_logger

from . import backfill
from .ddl import ACTIVE_PREFIX, JobLost, _jk

if TYPE_CHECKING:
    from .ddl import DDL

log = get_logger("tidb.ddl")


ROLLING_BACK = ("cancelling", "rollingback", "rollback done", "cancelled")


class Cancelled(Exception):
    """ADMIN CANCEL marked the job ``cancelling``."""


class JobRunner:
    def __init__(self, ddl: DDL, job_id: int) -> None:
        self.ddl = ddl
        self.node = ddl.node
        self.job_id = job_id
        self.job: dict[str, Any] = {}
        self.rev = 0

    def load(self) -> bool:
        job, rev = self.node.meta.get(ACTIVE_PREFIX + _jk(self.job_id))
        if job is None:
            return False
        self.job, self.rev = job, rev
        return True

    def save(self) -> None:
        """Persist the job; a cancel that marked the row meanwhile raises `Cancelled`.

        TiDB's cancel rewrites the job row in its own transaction; the worker's next write
        conflicts, and the worker then finds the job ``cancelling`` and rolls it back.
        """
        try:
            self.rev = self.ddl.update(self.job, self.rev)
        except JobLost:
            if self.job["state"] in ROLLING_BACK or self.owner_lost():
                raise
            marked = self.ddl.cancelling(self.job_id)
            if marked is None:
                raise
            self.rev = marked[1]
            self.job["state"] = "cancelling"
            raise Cancelled() from None

    def owner_lost(self) -> bool:
        return not self.node.is_owner()

    def run(self) -> None:
        if not self.load():
            return
        if self.job["type"] == "drop index":
            self.run_drop()
            return
        backfill.attach_runner(self.job_id, True)
        try:
            self.run_add()
        finally:
            backfill.attach_runner(self.job_id, False)

    # ---------------------------------------------------------------------------------------
    def run_add(self) -> None:
        job = self.job
        try:
            if job["state"] == "cancelling" and job["schema_state"] == "none":
                self.cancel_unstarted()
                return
            if job["state"] in ("cancelling", "rollingback"):
                self.rollback(
                    job.get("error") or "Cancelled DDL job", int(job.get("error_code") or 8214)
                )
                return
            if job["state"] in ("none", "queueing"):
                job["state"] = "running"
                job["start_time"] = time.time()
                self.save()
            self._advance_add()
        except Cancelled:
            job["state"] = "cancelling"
            if job["schema_state"] == "none":
                self.cancel_unstarted()
                return
            self.save()
            self.rollback("Cancelled DDL job", 8214)

    def _advance_add(self) -> None:
        job = self.job
        for current, nxt in (
            ("none", "delete only"),
            ("delete only", "write only"),
            ("write only", "write reorganization"),
        ):
            if job["schema_state"] == current:
                self.check_cancel()
                version = self.ddl.set_index_state(job, nxt)
                job["schema_state"] = nxt
                if nxt == "write reorganization":
                    job["reorg_tp"] = job.get("want_reorg") or "txn"
                self.save()
                self.ddl.wait_synced(version, job["table_id"])
        if job["schema_state"] == "write reorganization":
            self.check_cancel()
            try:
                rows = self.run_dist() if job.get("dist") else self.run_local()
            except backfill.BackfillError as exc:
                log.warn(
                    "add index backfill failed",
                    category="ddl",
                    job_id=self.job_id,
                    error=str(exc),
                )
                self.rollback(str(exc), exc.code)
                return
            job["row_count"] = rows
            version = self.ddl.set_index_state(job, "public")
            job["schema_state"] = "public"
            job["state"] = "done"
            self.save()
            self.ddl.wait_synced(version, job["table_id"])
        if job["state"] == "done" or job["schema_state"] == "public":
            job["state"] = "synced"
            job["end_time"] = time.time()
            self.ddl.finish(job, self.rev)

    def cancel_unstarted(self) -> None:
        """A job cancelled before its first schema change ends ``cancelled`` (nothing to undo)."""
        job = self.job
        job["state"], job["error"], job["error_code"] = "cancelled", "Cancelled DDL job", 8214
        self.ddl.finish(job, self.rev)

    def check_cancel(self) -> None:
        if self.owner_lost():
            raise JobLost(self.job_id)
        marked = self.ddl.cancelling(self.job_id)
        if marked is not None:
            self.rev = marked[1]
            raise Cancelled()

    def rollback(self, message: str, code: int) -> None:
        job = self.job
        job["state"] = "rollingback"
        job["error"], job["error_code"] = message, code
        self.save()
        if job.get("dist"):
            self.node.dxf.cancel_task(f"ddl/backfill/{self.job_id}")
        if job["schema_state"] != "none":
            version = self.ddl.set_index_state(job, "delete only")
            job["schema_state"] = "delete only"
            self.save()
            self.ddl.wait_synced(version, job["table_id"])
            self.ddl.set_index_state(job, None)
        self.ddl.delete_index_entries(job["table_id"], job["index"]["id"])
        job["schema_state"] = "none"
        job["state"] = "rollback done"
        job["end_time"] = time.time()
        self.ddl.finish(job, self.rev)

    def table(self) -> Any:
        t = self.node.schema.reload(force=True).table_by_id(self.job["table_id"])
        if t is None:
            raise backfill.BackfillError(f"table {self.job['table']} was dropped", 1146)
        return t

    def _progress(self, rows: int) -> None:
        if rows != self.job.get("row_count"):
            self.job["row_count"] = rows
            self.save()

    def run_local(self) -> int:
        """Backfill on the owner with a checkpoint in etcd (``ddl/reorg/<job>``)."""
        key = f"ddl/reorg/{_jk(self.job_id)}"
        ck, _ = self.node.meta.get(key)
        ck = ck or {}
        ingest = self.job.get("reorg_tp") == "ingest"
        stop = threading.Event()
        result: dict[str, Any] = {}
        progress = {"rows": int(ck.get("rows", 0))}
        table = self.table()

        def save(c: dict[str, Any]) -> None:
            self.node.meta.put(key, c)
            progress["rows"] = c["rows"]

        def work() -> None:
            try:
                result["rows"] = backfill.run_backfill(
                    self.node,
                    table,
                    self.job["index"]["id"],
                    self.job_id,
                    backfill.Range(-(1 << 62), None),
                    ingest,
                    ck,
                    save,
                    lambda: stop.is_set() or self.owner_lost(),
                )
            except Exception as exc:  # noqa: BLE001 - handed to the runner
                result["error"] = exc

        worker = threading.Thread(target=work, name=f"backfill-worker-{self.job_id}", daemon=True)
        worker.start()
        engine = backfill.engine_for(self.job_id)
        tick = scaled(0.2, 0.05)
        try:
            while worker.is_alive():
                worker.join(tick)
                if ingest:
                    engine.flush_from_runner()
                self.check_cancel()
                self._progress(progress["rows"])
        except (Cancelled, JobLost):
            stop.set()
            raise
        err = result.get("error")
        if isinstance(err, backfill.Stopped):
            raise JobLost(self.job_id)
        if err is not None:
            raise err
        return int(result.get("rows", progress["rows"]))

    def run_dist(self) -> int:
        """Backfill as a DXF task ``ddl/backfill/<job>``; wait for it, flushing like the runner does."""
        dxf = self.node.dxf
        task_key = f"ddl/backfill/{self.job_id}"
        task = dxf.find_task(task_key)
        if task is None:
            table = self.table()
            dxf.create_task(
                task_key,
                "backfill",
                {
                    "job_id": self.job_id,
                    "table_id": table.id,
                    "index_id": self.job["index"]["id"],
                    "ingest": self.job.get("reorg_tp") == "ingest",
                },
            )
        engine = backfill.engine_for(self.job_id)
        tick = scaled(0.2, 0.05)
        while True:
            task = dxf.find_task(task_key)
            if task is None:
                raise backfill.BackfillError("dist task disappeared")
            if task.get("history"):
                if task["state"] == "succeed":
                    return dxf.rows_of(task)
                raise backfill.BackfillError(task.get("error") or f"dist task {task['state']}")
            engine.flush_from_runner()
            try:
                self.check_cancel()
            except Cancelled:
                raise
            self._progress(dxf.rows_of(task))
            time.sleep(tick)

    # ---------------------------------------------------------------------------------------
    def run_drop(self) -> None:
        job = self.job
        if job["state"] == "cancelling":  # only a still-public DROP INDEX can be cancelled
            self.cancel_unstarted()
            return
        if job["state"] in ("none", "queueing"):
            job["state"] = "running"
            job["start_time"] = time.time()
            self.save()
        for current, nxt in (
            ("public", "write only"),
            ("write only", "delete only"),
            ("delete only", "delete reorganization"),
        ):
            if job["schema_state"] == current:
                version = self.ddl.set_index_state(job, nxt)
                job["schema_state"] = nxt
                self.save()
                self.ddl.wait_synced(version, job["table_id"])
        if job["schema_state"] == "delete reorganization":
            self.ddl.delete_index_entries(job["table_id"], job["index"]["id"])
            version = self.ddl.set_index_state(job, None)
            job["schema_state"] = "none"
            job["state"] = "done"
            self.save()
            self.ddl.wait_synced(version, job["table_id"])
        job["state"] = "synced"
        job["end_time"] = time.time()
        self.ddl.finish(job, self.rev)
