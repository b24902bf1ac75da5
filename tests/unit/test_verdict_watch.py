"""The watcher against a scripted in-memory TiDB (no Docker): ids, events, verdicts."""

from __future__ import annotations

import re
import threading
import time
from typing import Any, ClassVar

import pytest

from pytest_tidb_ha.jobs.catalog import ErrorInfo
from pytest_tidb_ha.jobs.handle import JobHandle, JobPolicy, JobTarget
from pytest_tidb_ha.jobs.model import ADD_INDEX, IMPORT_INTO
from pytest_tidb_ha.jobs.watch import (
    Watcher,
    ddl_observation,
    import_observation,
    subtask_counts,
    verdicts_of,
)
from pytest_tidb_ha.timeline import Timeline


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Unavailable(Exception):
    code = 2003


class FakeTiDB:
    """Answers the watcher's SQL shapes from dicts the test mutates."""

    def __init__(self) -> None:
        self.ddl: dict[int, dict[str, Any]] = {}
        self.imports: dict[int, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.subtasks: dict[str, dict[str, int]] = {}
        self.cancel_result = "successful"
        self.cancelled: list[str] = []
        self.down = False
        self.sql: list[str] = []

    def add_ddl(self, jid: int, state: str, query: str, **kw: Any) -> None:
        row = {"JOB_ID": jid, "DB_NAME": "d", "TABLE_NAME": "t",
               "JOB_TYPE": "add index /* ingest */", "SCHEMA_STATE": "write reorganization",
               "ROW_COUNT": 0, "STATE": state, "QUERY": query.encode()}
        row.update(kw)
        self.ddl[jid] = row

    def query(self, sql: str, args: Any = None, *, node: str | None = None,
              database: str | None = None, timeout: float | None = None,
              idempotent: bool | None = None) -> list[dict[str, Any]]:
        self.sql.append(sql)
        if self.down:
            raise Unavailable("no TiDB answered")
        args = tuple(args or ())
        if sql.startswith("SELECT JOB_ID, QUERY FROM information_schema.ddl_jobs"):
            return [dict(r) for r in self.ddl.values()]
        if sql.startswith("SELECT JOB_ID, JOB_TYPE, STATE, QUERY"):
            states = set(args[2:])
            return [dict(r) for r in self.ddl.values() if r["STATE"] in states]
        if "FROM information_schema.ddl_jobs WHERE" in sql and "JOB_ID = %s" in sql:
            jid = args[-1]
            return [dict(self.ddl[jid])] if jid in self.ddl else []
        if "tidb_global_task" in sql:
            hist = "_history" in sql
            task = self.tasks.get(args[0])
            if task is None or (task["state"] in ("succeed", "reverted", "failed")) != hist:
                return []
            return [dict(task)]
        if "tidb_background_subtask" in sql:
            return [{"state": s, "COUNT(*)": n} for s, n in self.subtasks.get(args[0], {}).items()]
        m = re.match(r"SHOW IMPORT JOB (\d+)", sql)
        if m:
            jid = int(m.group(1))
            return [dict(self.imports[jid])] if jid in self.imports else []
        if sql.startswith("SELECT id FROM mysql.tidb_import_jobs"):
            return [{"id": i} for i in self.imports]
        m = re.match(r"ADMIN CANCEL DDL JOBS (\d+)", sql)
        if m:
            self.cancelled.append(m.group(1))
            return [{"JOB_ID": int(m.group(1)), "RESULT": self.cancel_result}]
        raise AssertionError(f"unexpected SQL {sql}")

    def execute(self, sql: str, *a: Any, **kw: Any) -> int:
        self.sql.append(sql)
        return 0

    def connect(self, *a: Any, **kw: Any) -> Any:
        raise AssertionError("no connections in unit tests")


@pytest.fixture
def env() -> tuple[FakeTiDB, Timeline, FakeClock, Watcher]:
    clock = FakeClock()
    tl = Timeline(clock=clock)
    db = FakeTiDB()
    w = Watcher(db, tl, poll_interval=0.01, heartbeat=1e9)
    return db, tl, clock, w


def handle(tl: Timeline, key: str = "add_index#1", index: str = "index_test_1",
           stall: float = 10.0, timeout: float = 1000.0, **kw: Any) -> JobHandle:
    target = JobTarget(ADD_INDEX, "d", "t", index, "c", frozenset({1}))
    return JobHandle(key, target, JobPolicy(timeout=timeout, stall_window=stall, **kw),
                     query=f"ALTER TABLE d.t ADD INDEX {index} (c)", submitted_at=tl.now())


def step(w: Watcher, clock: FakeClock, seconds: float = 1.0) -> None:
    clock.t += seconds
    w.poll_once()


def test_polls_push_db_and_table_down_and_never_read_task_meta(env: Any) -> None:
    """TiDB pushes only DB_NAME/TABLE_NAME/STATE down into its ddl_jobs retriever (a JOB_ID
    filter alone walks the whole history every poll); ``meta`` is a LONGBLOB."""
    db, tl, clock, w = env
    h = w.add(handle(tl))
    db.add_ddl(5, "running", "ALTER TABLE d.t ADD INDEX index_test_1 (c)")
    db.tasks["ddl/backfill/5"] = {"id": 9, "state": "running", "error": None, "meta": b"x" * 99}
    db.subtasks["9"] = {"running": 2}
    for _ in range(3):
        step(w, clock)
    assert h.latest is not None
    assert h.latest.task_state == "running"
    polls = [s for s in db.sql if "information_schema.ddl_jobs" in s]
    assert polls, polls
    assert all("DB_NAME = %s" in s and "TABLE_NAME = %s" in s for s in polls), polls
    task_reads = [s for s in db.sql if "tidb_global_task" in s or "background_subtask" in s]
    assert task_reads
    assert not [s for s in task_reads if re.search(r"SELECT\s+\*|\bmeta\b", s)], task_reads


def test_pure_row_mapping() -> None:
    obs = ddl_observation(1.0, {"JOB_ID": 5, "STATE": "running", "SCHEMA_STATE": "write only",
                                "ROW_COUNT": "7", "JOB_TYPE": "add index"},
                          {"state": "running", "error": None}, {"running": 2})
    assert (obs.job_id, obs.state, obs.row_count, obs.task_state) == (5, "running", 7, "running")
    imp = import_observation(2.0, {"Job_ID": 9, "Status": "failed", "Phase": "importing",
                                   "Imported_Rows": None, "Result_Message": "boom"}, None, {})
    assert (imp.state, imp.import_step, imp.error) == ("failed", "importing", "boom")
    assert subtask_counts([{"state": "running", "COUNT(*)": 2}, {"STATE": "succeed",
                                                                 "count(*)": "3"}]) \
        == {"running": 2, "succeed": 3}


def test_finds_job_by_index_name_and_converges(env: Any) -> None:
    db, tl, clock, w = env
    db.add_ddl(1, "synced", "ALTER TABLE d.t ADD INDEX older (c)")  # known before submit
    h = w.add(handle(tl))
    w.poll_once()
    assert h.job_id is None
    db.add_ddl(2, "running", "ALTER TABLE `d`.`t` ADD INDEX `index_test_1` (`c`)")
    step(w, clock)
    assert h.job_id == 2
    assert h.state == "running"
    for rows in (10, 20, 30):
        db.ddl[2]["ROW_COUNT"] = rows
        step(w, clock)
    db.ddl[2].update(STATE="synced", SCHEMA_STATE="public")
    step(w, clock)
    v = h.wait(0)
    assert v is not None
    assert v.verdict == "converged"
    assert v.job_id == 2
    states = [e.data["state"] for e in tl.events("job.state")]
    assert states == ["running"] * 4 + ["synced"]  # one event per change
    assert [e.kind for e in tl.events("job.verdict")] == ["job.verdict"]


def test_stuck_then_queued_job_stuck_then_cancel_ineffective(env: Any) -> None:
    db, tl, clock, w = env
    h = w.add(handle(tl))
    db.add_ddl(2, "running", "ALTER TABLE d.t ADD INDEX index_test_1 (c)", ROW_COUNT=50)
    db.tasks["ddl/backfill/2"] = {"id": 7, "state": "running", "error": None}
    db.subtasks["7"] = {"running": 1}
    for _ in range(9):
        step(w, clock)
    assert not h.decided
    step(w, clock, 2.0)
    v = h.wait(0)
    assert v is not None
    assert v.verdict == "stuck"
    assert "DXF task: running (subtasks running=1)" in v.reason
    # someone else's ADD INDEX sits queueing behind the stuck job: found, and judged
    # stuck after its own stall window, naming whom it waits behind
    db.add_ddl(3, "queueing", "alter table t add index other (k)", JOB_TYPE="add index")
    for _ in range(4):  # discovery runs every third round
        step(w, clock, 0.1)
    queued = [x for x in w.handles if x.discovered]
    assert len(queued) == 1
    assert queued[0].job_id == 3
    assert not queued[0].decided
    step(w, clock, 10.5)
    qv = queued[0].wait(0)
    assert qv is not None
    assert qv.verdict == "stuck"
    assert "queueing behind job 2" in qv.reason
    # cancel probe accepted but the job stays running
    w.probe_cancel(h, window=3.0)
    assert db.cancelled == ["2"]
    step(w, clock, 2.0)
    assert not h.cancel_settled.is_set()
    step(w, clock, 2.0)
    assert h.cancel_settled.is_set()
    assert h.cancel_verdict is not None
    assert h.cancel_verdict.verdict == "cancel-ineffective"
    assert [v.verdict for v in verdicts_of(w.handles)] == ["stuck", "cancel-ineffective",
                                                            "stuck"]


def test_cancel_probe_that_works_settles_without_verdict(env: Any) -> None:
    db, tl, clock, w = env
    h = w.add(handle(tl, stall=2.0))
    db.add_ddl(2, "running", "ALTER TABLE d.t ADD INDEX index_test_1 (c)")
    for _ in range(4):
        step(w, clock)
    assert h.verdict is not None
    assert h.verdict.verdict == "stuck"
    w.probe_cancel(h, window=10.0)
    db.ddl[2]["STATE"] = "rollback done"
    step(w, clock)
    assert h.cancel_settled.is_set()
    assert h.cancel_verdict is None


def test_terminal_job_with_running_task_is_unexpected(env: Any) -> None:
    db, tl, clock, w = env
    h = w.add(handle(tl, stall=3.0, terminal_grace=1.5))
    db.add_ddl(2, "synced", "ALTER TABLE d.t ADD INDEX index_test_1 (c)", SCHEMA_STATE="public")
    db.tasks["ddl/backfill/2"] = {"id": 7, "state": "running", "error": None}
    for _ in range(3):  # the task gets a stall window, not only the grace
        step(w, clock)
    assert not h.decided
    step(w, clock)
    v = h.wait(0)
    assert v is not None
    assert v.verdict == "failed-unexpected"
    assert "DXF task" in v.reason


def test_unavailable_cluster_does_not_break_the_watcher(env: Any) -> None:
    db, tl, clock, w = env
    h = w.add(handle(tl, stall=5.0))
    db.add_ddl(2, "running", "ALTER TABLE d.t ADD INDEX index_test_1 (c)")
    step(w, clock)
    db.down = True
    tl.record("fault.inject", fault_id="p1")
    for _ in range(20):
        step(w, clock)
    assert not h.decided  # the fault window stops the stall clock
    assert w.errors
    assert "cannot read job state" in w.errors[0]
    tl.record("fault.healed", fault_id="p1")
    db.down = False
    for _ in range(6):
        step(w, clock)
    v = h.wait(0)
    assert v is not None
    assert v.verdict == "stuck"


def test_import_job_failed_sensible(env: Any) -> None:
    db, tl, clock, w = env
    target = JobTarget(IMPORT_INTO, "d", "t", known_ids=frozenset())
    h = w.add(JobHandle("import_into#1", target, JobPolicy(timeout=100, stall_window=10),
                        query="IMPORT INTO d.t FROM '/import/x.csv'", submitted_at=tl.now()))
    db.imports[4] = {"Job_ID": 4, "Status": "running", "Phase": "importing",
                     "Imported_Rows": None, "Result_Message": ""}
    db.tasks["ImportInto/4"] = {"id": 8, "state": "running", "error": None}
    step(w, clock)
    assert h.job_id == 4
    db.imports[4].update(Status="failed", Result_Message="Error 9001: PD server timeout")
    db.tasks["ImportInto/4"]["state"] = "failed"
    step(w, clock)
    v = h.wait(0)
    assert v is not None
    assert v.verdict == "failed-sensible"
    assert v.ok


def test_statement_error_decides_before_job_row(env: Any) -> None:
    _db, tl, clock, w = env
    h = handle(tl)

    class Stmt:
        done = True
        error = ErrorInfo(1105, "mutex: session is expired")
        rows: ClassVar[list[dict[str, Any]]] = []

        def abandon(self) -> None:
            pass

    h.statement = Stmt()  # type: ignore[assignment]
    w.add(h)
    step(w, clock)
    v = h.wait(0)
    assert v is not None
    assert v.verdict == "failed-unexpected"
    assert "mutex: session is expired" in v.reason


def test_ok_statement_without_a_job_row_is_never_success(env: Any) -> None:
    """An OK from the statement is no job state: the verdict comes from observed rows only."""
    _db, tl, clock, w = env
    h = handle(tl, stall=5.0)

    class Stmt:
        done = True
        error: ErrorInfo | None = None
        rows: ClassVar[list[dict[str, Any]]] = []

        def abandon(self) -> None:
            pass

    h.statement = Stmt()  # type: ignore[assignment]
    w.add(h)
    for _ in range(4):
        step(w, clock)
    assert not h.decided
    step(w, clock, 2.0)
    v = h.wait(0)
    assert v is not None
    assert v.verdict == "failed-unexpected"
    assert not v.ok
    assert "never observed" in v.reason
    assert [e.data.get("state") for e in tl.events("job.state")] == []


def test_cancel_after_rejected_as_not_found_waits_for_the_fresh_poll(env: Any) -> None:
    """8224 for a job that just finished is not an ineffective cancel."""
    db, tl, clock, w = env
    h = w.add(handle(tl, cancel_after=2.0, cancel_window=5.0))
    db.add_ddl(2, "running", "ALTER TABLE d.t ADD INDEX index_test_1 (c)", ROW_COUNT=1)
    step(w, clock)
    db.cancel_result = "error: [ddl:8224]DDL Job:2 not found"
    db.ddl[2].update(ROW_COUNT=2)
    step(w, clock, 2.0)  # cancelAfter fires on this round, on the pre-cancel observations
    assert db.cancelled == ["2"]
    assert h.cancel is not None
    assert h.cancel.code == 8224
    assert not h.decided
    db.ddl[2].update(STATE="synced", SCHEMA_STATE="public")
    step(w, clock)
    v = h.wait(0)
    assert v is not None
    assert v.verdict == "converged"


def test_background_thread_stops_promptly() -> None:
    tl = Timeline()
    db = FakeTiDB()
    w = Watcher(db, tl, poll_interval=0.05, heartbeat=1e9)
    h = w.add(handle(tl, stall=0.3))
    db.add_ddl(2, "running", "ALTER TABLE d.t ADD INDEX index_test_1 (c)")
    with w:
        v = h.wait(5.0)
    assert v is not None
    assert v.verdict == "stuck"
    t0 = time.monotonic()
    w.stop()
    assert time.monotonic() - t0 < 1.0
    assert not any(t.name == "tidb-ha-watcher" and t.is_alive() for t in threading.enumerate())


def test_refused_before_any_job_is_sent_again(env: Any) -> None:
    db, tl, clock, w = env
    h = handle(tl)
    started: list[str] = []

    class Stmt:
        done = True
        error: ErrorInfo | None = ErrorInfo(9001, "PD server timeout")
        rows: ClassVar[list[dict[str, Any]]] = []

        def __init__(self, name: str = "s") -> None:
            self.name = name

        def again(self, suffix: str) -> Stmt:
            nxt = Stmt(f"{self.name}-{suffix}")
            nxt.done, nxt.error = False, None
            return nxt

        def start(self) -> None:
            started.append(self.name)

        def abandon(self) -> None:
            pass

    h.statement = Stmt()  # type: ignore[assignment]
    w.add(h)
    step(w, clock)
    assert started == ["s-r1"]
    assert not h.decided
    db.add_ddl(2, "running", "ALTER TABLE d.t ADD INDEX index_test_1 (c)")
    step(w, clock)
    db.ddl[2].update(STATE="synced", SCHEMA_STATE="public")
    step(w, clock)
    v = h.wait(0)
    assert v is not None
    assert v.verdict == "converged"
    assert v.evidence["resubmitted_after"] == ["Error 9001: PD server timeout"]
    attempts = [e.data.get("attempt") for e in tl.events("job.submit")]
    assert attempts == [2, None]
