"""The Distributed eXecution Framework (reference §4): global tasks and subtasks.

Tasks and subtasks live in etcd and are shown as ``mysql.tidb_global_task`` /
``mysql.tidb_background_subtask`` (+ ``_history``). The scheduler runs only on the
DDL owner (``distTaskFrameworkLoop``); task executors run on every TiDB and pick
the subtasks whose ``exec_id`` is their ``ip:port``. A subtask of a TiDB that left
the server registry (killed, cut off past its lease) is moved to a live TiDB.

Bug 46735 acts here: a new owner that takes over an ``ImportInto`` task whose
scheduler has died finishes the task but never updates the import job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from common.env import Pace, bug_enabled, scaled
from common.etcd import EtcdError
from common.log import get_logger

from . import triggers

if TYPE_CHECKING:
    from .server import Node

log = get_logger("tidb.disttask")


def scheduler_died(prev_run: str | None, my_run: str, live_runs: Collection[str]) -> bool:
    """Was the task's last scheduler a process that is gone? ``prev_run`` is the DDL ID of
    the process that scheduled it (None before any did); ``live_runs`` the DDL IDs in the
    server registry.

    The process, not the address: a TiDB killed and started again in its container has the
    address it had and a new DDL ID (as TiDB's is, new at every start), and its scheduler's
    memory died with the old process all the same -- whether that TiDB or another one wins
    the next election, and however soon the new process is back in the registry (a kill
    healed within the owner lease is back before the next owner schedules)."""
    return prev_run is not None and prev_run != my_run and prev_run not in live_runs


UNFINISHED = ("pending", "running", "reverting", "cancelling", "pausing", "resuming", "modifying")
TYPE_INT = {"ImportInto": 2, "backfill": 3}


class TaskHandler:
    """Type-specific planning and execution (backfill, ImportInto)."""

    def plan(self, task: dict[str, Any], step: int, nodes: list[str]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def next_step(self, step: int) -> int | None:
        raise NotImplementedError

    def execute(
        self,
        subtask: dict[str, Any],
        task: dict[str, Any],
        save: Callable[[dict[str, Any]], None],
        stop: Callable[[], bool],
    ) -> dict[str, Any]:
        raise NotImplementedError

    def on_transition(self, task: dict[str, Any], event: str) -> None:
        """Scheduler hook: ``running`` / ``step:<n>`` / ``succeed`` / ``reverted``."""


class DXF:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.handlers: dict[str, TaskHandler] = {}
        self._executing: dict[int, threading.Thread] = {}
        self._scheduled: set[int] = set()  # tasks this owner term has scheduled
        self._orphaned: set[int] = set()  # 46735: tasks taken over from a dead scheduler
        self._term = -1
        self._lock = threading.Lock()
        self.scheduler_pace = Pace(scaled(0.3, 0.05), scaled(1.0, 0.25))
        self.executor_pace = Pace(scaled(0.3, 0.05), scaled(1.0, 0.25))
        from .backfill import BackfillTaskHandler

        self.handlers["backfill"] = BackfillTaskHandler(node)  # type: ignore[assignment]

    # ---------------------------------------------------------------------------------------
    # storage
    def _list(self, prefix: str) -> list[tuple[dict[str, Any], int]]:
        return [(obj, rev) for _k, obj, rev in self.node.meta.list(prefix)]

    def tasks(self, history: bool = False) -> list[dict[str, Any]]:
        return sorted(
            (o for o, _ in self._list("dxf/task_history/" if history else "dxf/tasks/")),
            key=lambda t: t["id"],
        )

    def subtasks(self, history: bool = False) -> list[dict[str, Any]]:
        return sorted(
            (o for o, _ in self._list("dxf/subtask_history/" if history else "dxf/subtasks/")),
            key=lambda t: t["id"],
        )

    def find_task(self, key: str) -> dict[str, Any] | None:
        for t in self.tasks():
            if t["task_key"] == key:
                return t
        for t in self.tasks(history=True):
            if t["task_key"] == key:
                return dict(t, history=True)
        return None

    def rows_of(self, task: dict[str, Any]) -> int:
        total = 0
        for st in self.subtasks() + self.subtasks(history=True):
            if st["task_key"] == str(task["id"]) and st.get("step") == 1:
                total += int((st.get("summary") or {}).get("row_count", 0))
        return total

    def create_task(self, key: str, ttype: str, meta: dict[str, Any], concurrency: int = 4) -> int:
        task_id = self.node.meta.next_id("dxf_task_id")
        now = time.time()
        task = {
            "id": task_id,
            "task_key": key,
            "type": ttype,
            "dispatcher_id": self.node.exec_id,
            "state": "pending",
            "priority": 1,
            "create_time": now,
            "start_time": None,
            "state_update_time": now,
            "end_time": None,
            "meta": meta,
            "concurrency": concurrency,
            "step": -1,
            "target_scope": "",
            "error": None,
        }
        self.node.meta.put(f"dxf/tasks/{task_id:010d}", task)
        log.info("task submitted", task_id=task_id, task_key=key, type=ttype)
        self.scheduler_pace.poke()
        return task_id

    def cancel_task(self, key: str) -> None:
        for _ in range(20):
            for t, rev in self._list("dxf/tasks/"):
                if t["task_key"] == key and t["state"] in ("pending", "running"):
                    t["state"] = "cancelling"
                    t["state_update_time"] = time.time()
                    if self.node.meta.cas(f"dxf/tasks/{t['id']:010d}", t, rev):
                        return
                    break
            else:
                return

    # ---------------------------------------------------------------------------------------
    def start(self) -> None:
        threading.Thread(
            target=self._scheduler_loop, name="dist-task-scheduler", daemon=True
        ).start()
        threading.Thread(target=self._executor_loop, name="dist-task-executor", daemon=True).start()

    def registry(self) -> tuple[list[str], frozenset[str]]:
        """The server registry: the live TiDBs' addresses (where subtasks go) and their
        processes' DDL IDs (whether a task's scheduler is still alive)."""
        servers = self.node.owner.servers()
        return (sorted({f"{s['ip']}:{s['listening_port']}" for s in servers.values()}),
                frozenset(servers))

    def _scheduler_loop(self) -> None:
        busy = True
        while True:
            self.scheduler_pace.wait(busy)
            busy = False
            if not self.node.is_owner():
                continue
            term = self.node.owner.generation
            if term != self._term:
                self._term = term
                self._scheduled.clear()
            try:
                tasks = sorted(self._list("dxf/tasks/"), key=lambda x: x[0]["id"])
                busy = bool(tasks)
                nodes, runs = self.registry() if tasks else ([], frozenset())
                for task, rev in tasks:
                    self._schedule(task, rev, nodes, runs)
            except EtcdError as exc:
                log.warn("dist task scheduler step failed", error=str(exc)[:200])
            except Exception as exc:  # noqa: BLE001
                log.error("dist task scheduler crashed a step", error=repr(exc)[:300])

    def _save_task(
        self, task: dict[str, Any], rev: int, subtasks: dict[str, dict[str, Any]] | None = None
    ) -> bool:
        """The task (fenced by this owner's key), with *subtasks* in the same transaction."""
        task["state_update_time"] = time.time()
        saved = self.node.meta.cas(
            f"dxf/tasks/{task['id']:010d}", task, rev, guards=self.node.owner.guard(),
            puts=subtasks or None,
        )
        if saved and subtasks:
            self.executor_pace.poke()
        if not saved:  # fenced (no longer the owner) or the task changed: the next tick redoes it
            log.info("task not saved", task_id=task["id"], state=task["state"], step=task["step"])
        return saved

    def _hook(self, task: dict[str, Any], event: str) -> None:
        if task["id"] in self._orphaned:
            return  # 46735: the job bookkeeping died with the old scheduler
        handler = self.handlers.get(task["type"])
        if handler is not None:
            handler.on_transition(task, event)

    def _schedule(self, task: dict[str, Any], rev: int, nodes: list[str],
                  runs: frozenset[str]) -> None:
        tid = task["id"]
        if tid not in self._scheduled:
            self._scheduled.add(tid)
            prev = task.get("dispatcher_id")
            if scheduler_died(task.get("dispatcher_ddl_id"), self.node.ddl_id, runs):
                log.info("taking over dist task from a dead scheduler", task_id=tid, previous=prev)
                if task["type"] == "ImportInto":
                    triggers.note("46735", task_id=tid)
                if bug_enabled(46735) and task["type"] == "ImportInto":
                    self._orphaned.add(tid)
            task["dispatcher_id"] = self.node.exec_id
            task["dispatcher_ddl_id"] = self.node.ddl_id
        handler = self.handlers.get(task["type"])
        if handler is None:
            return
        subs = [(s, r) for s, r in self._list("dxf/subtasks/") if s["task_key"] == str(tid)]
        state = task["state"]
        # Every transition as TiDB's scheduler makes it: the job's own bookkeeping first
        # (importinto's OnNextSubtasksBatch calls startJob / job2Step, OnDone finishJob, each
        # idempotent and retried), then the task's new step with all its subtasks in one
        # transaction (SwitchTaskStep). A scheduler killed anywhere in between leaves the
        # task as it was, and the next owner makes the whole transition again: no job row
        # left ``pending`` behind a running task, no step with half of its subtasks.
        if state == "pending":
            step = 1
            planned = handler.plan(task, step, nodes or [self.node.exec_id])
            self._hook(task, "running")
            self._hook(task, f"step:{step}")
            docs = self._subtask_docs(task, step, planned)
            task.update(state="running", step=step, start_time=time.time())
            self._save_task(task, rev, docs)
            return
        if state in ("succeed", "reverted"):  # saved, then the scheduler died: finish the move
            self._archive(task)
            return
        if state in ("cancelling",):
            task.update(state="reverting", error=task.get("error") or "[dist:0]cancelled by user")
            self._save_task(task, rev)
            return
        if state == "reverting":
            for s, r in subs:
                if s["state"] in ("pending", "running"):
                    s["state"] = "canceled"
                    self.node.meta.cas(f"dxf/subtasks/{s['id']:010d}", s, r)
            self._hook(task, "reverted")
            task.update(state="reverted", end_time=time.time())
            if self._save_task(task, rev):
                self._archive(task)
            return
        if state != "running":
            return
        current = [(s, r) for s, r in subs if s.get("step") == task["step"]]
        failed = [s for s, _ in current if s["state"] == "failed"]
        if failed:
            task.update(state="reverting", error=failed[0].get("error") or "subtask failed")
            log.warn("task met subtask error, reverting", task_id=tid, error=task["error"])
            self._save_task(task, rev)
            return
        for s, r in current:
            if s["state"] in ("pending", "running") and s.get("exec_id") not in nodes and nodes:
                target = nodes[s["ordinal"] % len(nodes)]
                log.info(
                    "rebalance subtask of a dead node",
                    subtask_id=s["id"],
                    previous=s.get("exec_id"),
                    target=target,
                )
                s.update(exec_id=target, state="pending")
                self.node.meta.cas(f"dxf/subtasks/{s['id']:010d}", s, r)
        if current and all(s["state"] == "succeed" for s, _ in current):
            nxt = handler.next_step(task["step"])
            if nxt is None:
                self._hook(task, "succeed")
                task.update(state="succeed", step=-2, end_time=time.time())
                if self._save_task(task, rev):
                    self._archive(task)
                return
            planned = handler.plan(task, nxt, nodes or [self.node.exec_id])
            self._hook(task, f"step:{nxt}")
            docs = self._subtask_docs(task, nxt, planned)
            task["step"] = nxt
            self._save_task(task, rev, docs)
            return
        if not current:
            planned = handler.plan(task, task["step"], nodes or [self.node.exec_id])
            self._save_task(task, rev, self._subtask_docs(task, task["step"], planned))

    def _subtask_docs(
        self, task: dict[str, Any], step: int, planned: list[dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """The subtask rows of *step* (name -> row), ids allocated, nothing written yet."""
        now = time.time()
        first = self.node.meta.next_id("dxf_subtask_id", len(planned)) if planned else 0
        docs: dict[str, dict[str, Any]] = {}
        for ordinal, p in enumerate(planned):
            sid = first + ordinal
            docs[f"dxf/subtasks/{sid:010d}"] = {
                "id": sid,
                "step": step,
                "namespace": "",
                "task_key": str(task["id"]),
                "ddl_physical_tid": p.get("physical_tid", 0),
                "type": TYPE_INT.get(task["type"], 0),
                "exec_id": p["exec_id"],
                "exec_expired": None,
                "state": "pending",
                "checkpoint": {},
                "concurrency": task.get("concurrency", 4),
                "create_time": now,
                "start_time": None,
                "state_update_time": now,
                "end_time": None,
                "meta": p["meta"],
                "ordinal": ordinal,
                "error": None,
                "summary": {},
            }
        return docs

    def _archive(self, task: dict[str, Any]) -> None:
        meta = self.node.meta
        for s, _r in self._list("dxf/subtasks/"):
            if s["task_key"] == str(task["id"]):
                meta.put(f"dxf/subtask_history/{s['id']:010d}", s)
                meta.delete(f"dxf/subtasks/{s['id']:010d}")
        meta.put(f"dxf/task_history/{task['id']:010d}", task)
        meta.delete(f"dxf/tasks/{task['id']:010d}")
        log.info("task moved to history", task_id=task["id"], state=task["state"])

    # ---------------------------------------------------------------------------------------
    def _executor_loop(self) -> None:
        busy = True
        while True:
            self.executor_pace.wait(busy)
            busy = False
            try:
                busy = self._execute_step()
            except EtcdError as exc:
                log.warn("task executor step failed", error=str(exc)[:200])
            except Exception as exc:  # noqa: BLE001
                log.error("task executor crashed a step", error=repr(exc)[:300])

    def _execute_step(self) -> bool:
        """Start an executor for each pending subtask of this node; True when there are any
        subtasks in the table (work may come this node's way)."""
        me = self.node.exec_id
        listed = self._list("dxf/subtasks/")
        mine = [
            s
            for s, _ in listed
            if s.get("exec_id") == me and s["state"] in ("pending", "running")
        ]
        if not mine:
            return bool(listed)
        tasks = {t["id"]: t for t in self.tasks()}
        for sub in mine:
            task = tasks.get(int(sub["task_key"]))
            if task is None or task["state"] != "running":
                continue
            with self._lock:
                th = self._executing.get(sub["id"])
                if th is not None and th.is_alive():
                    continue
                th = threading.Thread(
                    target=self._run_subtask,
                    args=(sub["id"], task),
                    name=f"subtask-{sub['id']}",
                    daemon=True,
                )
                self._executing[sub["id"]] = th
            th.start()
        return True

    def _run_subtask(self, sid: int, task: dict[str, Any]) -> None:
        key = f"dxf/subtasks/{sid:010d}"
        meta = self.node.meta
        sub, rev = meta.get(key)
        if (
            sub is None
            or sub.get("exec_id") != self.node.exec_id
            or sub["state"] not in ("pending", "running")
        ):
            return  # finished (or moved) since the executor listed it
        handler = self.handlers[task["type"]]
        log.info("subtask started", task_id=task["id"], subtask_id=sid, previous=sub["state"])
        sub.update(
            state="running",
            start_time=sub.get("start_time") or time.time(),
            state_update_time=time.time(),
        )
        if not meta.cas(key, sub, rev):
            return
        state = {"rev": meta.get(key)[1]}

        def still_mine() -> bool:
            cur, _ = meta.get(key)
            return (
                cur is not None
                and cur.get("exec_id") == self.node.exec_id
                and cur["state"] == "running"
            )

        def save(update: dict[str, Any]) -> None:
            cur, rev2 = meta.get(key)
            if cur is None or cur.get("exec_id") != self.node.exec_id:
                raise _Stop()
            cur.update(update)
            cur["state_update_time"] = time.time()
            meta.cas(key, cur, rev2)

        def stop() -> bool:
            try:
                return not still_mine()
            except EtcdError:
                return False

        try:
            summary = handler.execute(sub, task, save, stop)
            final = {"state": "succeed", "summary": summary, "end_time": time.time()}
        except _Stop:
            return
        except Exception as exc:  # noqa: BLE001 - any executor error fails the subtask
            from .backfill import Stopped

            if isinstance(exc, Stopped):
                return
            log.warn("subtask failed", task_id=task["id"], subtask_id=sid, error=str(exc))
            final = {"state": "failed", "error": str(exc), "end_time": time.time()}
        del state
        for _ in range(200):
            try:
                cur, rev2 = meta.get(key)
                if cur is None or cur.get("exec_id") != self.node.exec_id:
                    log.warn("subtask moved away before its result was saved", subtask_id=sid)
                    return
                cur.update(final)
                cur["state_update_time"] = time.time()
                if meta.cas(key, cur, rev2):
                    log.info(
                        "subtask finished", task_id=task["id"], subtask_id=sid, state=final["state"]
                    )
                    return
            except EtcdError as exc:
                log.warn(
                    "saving the subtask result failed, retrying",
                    subtask_id=sid,
                    error=str(exc)[:200],
                )
                time.sleep(scaled(0.5, 0.1))


class _Stop(Exception):
    pass
