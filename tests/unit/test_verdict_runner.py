"""The case runner and the facade against a simulated TiDB (no Docker).

The simulation answers the jobs layer's SQL shapes (docs/sql-contract.md) and
moves jobs along in time: ``ok`` jobs backfill then reach ``synced``; in
``stuck`` mode the first job stays ``running`` forever, ignores cancels and
every later ADD INDEX on the table sits ``queueing`` (issue #48303).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pytest_tidb_ha import assert_cancellable, assert_job_converges
from pytest_tidb_ha.jobs.facade import TiDB
from pytest_tidb_ha.options import HAOptions
from pytest_tidb_ha.record import HARecord
from pytest_tidb_ha.runner import run_case
from pytest_tidb_ha.scenario import timing
from pytest_tidb_ha.scenario.model import (
    AddIndexJob,
    Case,
    Duration,
    Expectation,
    GenerateSpec,
    ImportIntoJob,
)
from pytest_tidb_ha.timeline import Timeline


class Sim:
    def __init__(self, mode: str = "ok", run_for: float = 0.3) -> None:
        self.mode = mode
        self.run_for = run_for
        self.lock = threading.Lock()
        self.ddl: dict[int, dict[str, Any]] = {}
        self.imports: dict[int, dict[str, Any]] = {}
        self.next_id = 100
        self.sql: list[str] = []
        self.table_rows = 0

    # -- job engine -------------------------------------------------------------
    def _tick(self) -> None:
        now = time.monotonic()
        for j in self.ddl.values():
            if j["STATE"] in ("synced", "rollback done", "cancelled"):
                continue
            if j.get("queued"):
                continue
            if j.get("cancel") and self.mode == "lost-cancel":
                # each state is held until the watcher has read it twice: no timing luck
                if j["STATE"] not in ("cancelling", "running") or "shown" not in j:
                    j.update(STATE="cancelling", shown=0)
                elif j["shown"] >= 2 and j["STATE"] == "cancelling":
                    # the DDL worker stores its older copy of the job over the cancel
                    j.update(STATE="running", ROW_COUNT=j.get("ROW_COUNT", 0) + 32, shown=0)
                elif j["shown"] >= 2:
                    j.update(STATE="synced", SCHEMA_STATE="public")
                continue
            if j.get("cancel") and self.mode != "stuck":
                j.update(STATE="rollback done", SCHEMA_STATE="none")
                continue
            age = now - j["t"]
            if self.mode == "stuck":
                j.update(STATE="running", SCHEMA_STATE="write reorganization", ROW_COUNT=42)
            elif age > self.run_for:
                j.update(STATE="synced", SCHEMA_STATE="public")
            else:
                j.update(STATE="running", SCHEMA_STATE="write reorganization",
                         ROW_COUNT=int(age * 1000))
        for imp in self.imports.values():
            if imp["Status"] in ("finished", "failed", "cancelled"):
                continue
            if now - imp["t"] > self.run_for:
                imp.update(Status="finished", Phase="", Imported_Rows=imp["rows"])
                self.table_rows = imp["rows"]
            else:
                imp.update(Status="running", Phase="importing")

    def create_ddl(self, sql: str) -> int:
        m = re.search(r"`([^`]+)`\.`([^`]+)` ADD INDEX `([^`]+)`", sql)
        assert m, sql
        with self.lock:
            self.next_id += 1
            jid = self.next_id
            queued = self.mode == "stuck" and any(
                j["STATE"] not in ("synced", "rollback done") for j in self.ddl.values())
            self.ddl[jid] = {"JOB_ID": jid, "DB_NAME": m.group(1), "TABLE_NAME": m.group(2),
                             "JOB_TYPE": "add index /* ingest */", "SCHEMA_STATE": "none",
                             "ROW_COUNT": 0, "STATE": "queueing" if queued else "none",
                             "QUERY": sql.encode(), "t": time.monotonic(), "queued": queued}
        return jid

    def create_import(self, sql: str, rows: int) -> int:
        with self.lock:
            self.next_id += 1
            jid = self.next_id
            self.imports[jid] = {"Job_ID": jid, "Status": "pending", "Phase": "",
                                 "Imported_Rows": None, "Result_Message": "",
                                 "t": time.monotonic(), "rows": rows}
        return jid

    def terminal(self, jid: int) -> bool:
        with self.lock:
            self._tick()
            if jid in self.ddl:
                return self.ddl[jid]["STATE"] in ("synced", "rollback done")
            return self.imports[jid]["Status"] in ("finished", "failed", "cancelled")

    # -- client API -----------------------------------------------------------------
    def query(self, sql: str, args: Any = None, **kw: Any) -> list[dict[str, Any]]:
        self.sql.append(sql)
        args = tuple(args or ())
        with self.lock:
            self._tick()

            def pub(r: dict[str, Any]) -> dict[str, Any]:
                if "shown" in r:
                    r["shown"] += 1
                return {k: v for k, v in r.items()
                        if k not in ("t", "queued", "cancel", "rows", "shown")}

            if "FROM information_schema.ddl_jobs" in sql and "JOB_ID = %s" in sql:
                assert "DB_NAME = %s AND TABLE_NAME = %s" in sql, sql  # pushed down by TiDB
                jid = args[-1]
                return [pub(self.ddl[jid])] if jid in self.ddl else []
            if "FROM information_schema.ddl_jobs" in sql:
                return [pub(r) for r in self.ddl.values()
                        if (r["DB_NAME"], r["TABLE_NAME"]) == args[:2]]
            if "tidb_global_task" in sql or "tidb_background_subtask" in sql:
                return []
            if sql.startswith("SELECT id FROM mysql.tidb_import_jobs"):
                return [{"id": i} for i in self.imports]
            m = re.match(r"SHOW IMPORT JOB (\d+)", sql)
            if m:
                return [pub(self.imports[int(m.group(1))])]
            m = re.match(r"ADMIN CANCEL DDL JOBS (\d+)", sql)
            if m:
                self.ddl[int(m.group(1))]["cancel"] = True
                return [{"JOB_ID": int(m.group(1)), "RESULT": "successful"}]
            if sql.startswith("SELECT COUNT(*)"):
                return [{"COUNT(*)": self.table_rows}]
            if sql.startswith(("ADMIN SHOW", "SHOW IMPORT JOBS", "SELECT * FROM mysql")):
                return []
        raise AssertionError(f"unexpected query {sql}")

    def execute(self, sql: str, args: Any = None, **kw: Any) -> int:
        self.sql.append(sql)
        assert re.match(r"(SET GLOBAL|CREATE DATABASE|CREATE TABLE|DROP TABLE|ALTER TABLE .* "
                        r"DROP INDEX)", sql), sql
        return 0

    def connect(self, **kw: Any) -> Conn:
        return Conn(self)


class Conn:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self._sock, self._peer = socket.socketpair()
        self.closed = threading.Event()

    def cursor(self) -> Cursor:
        return Cursor(self)

    def close(self) -> None:
        self.closed.set()


class Cursor:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.description: Any = None
        self.rows: list[tuple[Any, ...]] = []

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *a: object) -> None:
        pass

    def execute(self, sql: str, args: Any = None) -> int:
        sim = self.conn.sim
        sim.sql.append(sql)
        if " ADD INDEX " in sql:
            jid = sim.create_ddl(sql)
        elif sql.startswith("IMPORT INTO"):
            jid = sim.create_import(sql, sim.expected_rows)  # type: ignore[attr-defined]
        else:
            raise AssertionError(sql)
        while not sim.terminal(jid):
            if self.conn.closed.is_set():
                raise ConnectionError("(2013, 'Lost connection to MySQL server during query')")
            time.sleep(0.02)
        return 0

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


class Node:
    def __init__(self, name: str) -> None:
        self.name = name


class FakeCluster:
    """The part of ``ClusterLike`` the runner, facade and nemesis read (no containers)."""

    docker = None
    nodes: ClassVar[list[Node]] = [Node("tidb-0")]
    network_name = None
    labels: ClassVar[dict[str, str]] = {}
    can_control_nodes = True
    database = None

    def __init__(self, sim: Sim, import_dir: Path | None = None) -> None:
        self.sim = sim
        self.import_dir = import_dir

    def client(self, **kw: Any) -> Sim:
        return self.sim

    def pd_urls(self) -> list[str]:
        return []

    def status_urls(self, component: str) -> dict[str, str]:
        return {}


@pytest.fixture(autouse=True)
def fast_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing, "MIN_CANCEL_WALL", 0.6)
    monkeypatch.setattr(timing, "MIN_TERMINAL_GRACE", 0.1)
    monkeypatch.setattr(timing, "MIN_POLL", 0.05)


def record(tmp_path: Path) -> HARecord:
    return HARecord(nodeid="t::x", timeline=Timeline(), artifacts_dir=tmp_path / "art")


def add_index_case(times: int) -> Case:
    return Case(name="c", warmup=Duration(0),
                jobs=(AddIndexJob(db="d", table="t", index_col_name="c", timeout=Duration(600),
                                  times=times),),
                expect=Expectation(stall_window=Duration(600)))


OPTS = HAOptions(time_scale=0.001)


def test_runner_converges_every_run(tmp_path: Path) -> None:
    sim = Sim("ok")
    rec = record(tmp_path)
    verdicts = run_case(add_index_case(2), cluster=FakeCluster(sim), record=rec, options=OPTS)
    assert [v.verdict for v in verdicts] == ["converged", "converged"]
    assert [v.job_id for v in verdicts] == [101, 102]
    assert rec.verdicts == verdicts
    assert rec.case_id == "c"
    assert any("DROP INDEX" in s for s in sim.sql)  # run 2 dropped run 1's index
    assert "SET GLOBAL tidb_ddl_enable_fast_reorg = ON" in sim.sql
    assert not (tmp_path / "art" / "diagnostics").exists()
    kinds = [e.kind for e in rec.timeline.events("job.")]
    assert kinds.count("job.verdict") == 2


def test_runner_48303_stuck_queueing_cancel_ineffective(tmp_path: Path) -> None:
    sim = Sim("stuck")
    rec = record(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(pytest.fail.Exception) as info:
        run_case(add_index_case(5), cluster=FakeCluster(sim), record=rec, options=OPTS)
    assert time.monotonic() - t0 < 15
    got = [(v.job_key, v.verdict) for v in rec.verdicts]
    assert got == [("add_index#1", "stuck"), ("add_index#1/cancel", "cancel-ineffective"),
                   ("add_index#2", "stuck")]
    assert "queueing behind job 101" in rec.verdicts[2].reason
    assert sum(" ADD INDEX " in s for s in sim.sql) == 2  # stopped: the table is blocked
    msg = str(info.value)
    assert "3 of 3 verdicts not ok" in msg
    assert "operatorLogs:" in msg
    assert "jobId: 101" in msg
    assert "state: running" in msg
    assert (tmp_path / "art" / "diagnostics" / "index.md").exists()


def test_runner_import_with_generated_data(tmp_path: Path) -> None:
    sim = Sim("ok")
    case = Case(name="imp", warmup=Duration(0), jobs=(ImportIntoJob(
        db="importtest", table="user_data1", source_uri="/import/user_data1.*.csv",
        timeout=Duration(600), options={"skip_rows": 1}, generate=GenerateSpec(400_000, 4)),),
        expect=Expectation(stall_window=Duration(600)))
    # 400k x 0.1 = 40k rows, raised to the floor MIN_IMPORT_ROWS
    sim.expected_rows = 100_000  # type: ignore[attr-defined]
    rec = record(tmp_path)
    verdicts = run_case(case, cluster=FakeCluster(sim, tmp_path / "import"), record=rec,
                        options=HAOptions(time_scale=0.001, workload_scale=0.1))
    assert [v.verdict for v in verdicts] == ["converged"]
    files = sorted(p.name for p in (tmp_path / "import").iterdir())
    assert files == [f"user_data1.{i}.csv" for i in range(1, 5)]
    lines = sum(len(p.read_text().splitlines()) - 1 for p in (tmp_path / "import").iterdir())
    assert lines == 100_000
    imp = next(s for s in sim.sql if s.startswith("IMPORT INTO"))
    assert imp == ("IMPORT INTO `importtest`.`user_data1` FROM '/import/user_data1.*.csv' "
                   "FORMAT 'csv' WITH skip_rows=1")
    assert "row_count" in verdicts[0].reason


def test_facade_and_assertions(tmp_path: Path) -> None:
    sim = Sim("ok")
    rec = record(tmp_path)
    facade = TiDB(FakeCluster(sim), sim, rec, OPTS)
    job = facade.add_index("t", "c", db="d")
    v = assert_job_converges(job, timeout=30_000)  # case time: 30 s at --ha-time-scale 0.001
    assert v.verdict == "converged"
    assert facade.close() == [v]
    assert rec.verdicts == [v]


def test_facade_assertion_message_reads_like_operator_log(tmp_path: Path) -> None:
    sim = Sim("stuck")
    rec = record(tmp_path)
    facade = TiDB(FakeCluster(sim), sim, rec, OPTS)
    job = facade.add_index("t", "c", db="d", stall=300)  # 0.3 s at this scale
    with pytest.raises(AssertionError) as info:
        assert_job_converges(job, timeout=30_000)
    msg = str(info.value)
    assert msg.startswith("add_index#1: stuck -- job 101 (add index /* ingest */)")
    assert "###### start adding index" in msg
    assert "ALTER TABLE `d`.`t` ADD INDEX" in msg
    assert re.search(r"state: running \(since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)", msg), msg
    with pytest.raises(AssertionError, match="cancel-ineffective"):
        assert_cancellable(job)
    facade.close()
    assert [v.verdict for v in rec.verdicts] == ["stuck", "cancel-ineffective"]
    assert (tmp_path / "art" / "diagnostics" / "index.md").exists()


def test_a_cancel_tidb_accepted_and_then_lost_fails_assert_cancellable(tmp_path: Path) -> None:
    """Real v7.5.0 did this under a delay to the store: successful, cancelling, running
    again with more rows, synced. The job may converge, but not as the test asked."""
    sim = Sim("lost-cancel", run_for=60.0)
    rec = record(tmp_path)
    facade = TiDB(FakeCluster(sim), sim, rec, OPTS)
    job = facade.add_index("t", "c", db="d")
    with pytest.raises(AssertionError, match=r"cancel-ineffective -- .*the cancel was lost") as info:
        assert_cancellable(job)
    assert "cancelling at t=" in str(info.value)
    assert "running again at t=" in str(info.value)
    assert job.verdict is not None
    assert job.verdict.verdict == "cancel-ineffective"
    facade.close()
    assert [v.verdict for v in rec.verdicts] == ["cancel-ineffective"]


def test_retry_transient_retries_only_transient_errors() -> None:
    from pytest_tidb_ha.jobs.submit import retry_transient

    class Err(Exception):
        def __init__(self, code: int) -> None:
            super().__init__(f"({code})")
            self.code = code

    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Err(9001)
        return "ok"

    assert retry_transient(flaky, "x", deadline=5) == "ok"
    assert len(calls) == 3

    def broken() -> str:
        raise Err(1146)

    with pytest.raises(Err):
        retry_transient(broken, "x", deadline=5)
    t0 = time.monotonic()
    with pytest.raises(Err):
        retry_transient(lambda: (_ for _ in ()).throw(Err(2013)), "x", deadline=0.5)
    assert time.monotonic() - t0 < 2


def _kill_case(allow: bool) -> Case:
    from pytest_tidb_ha.scenario.model import FaultSpec, Schedule
    from pytest_tidb_ha.scenario.selectors import parse_selector

    kill = FaultSpec(kind="kill", selector=parse_selector("tidb-0"),
                     schedule=Schedule(Duration(0), Duration(600)))
    return Case(name="c", warmup=Duration(0), faults=(kill,),
                jobs=(AddIndexJob(db="d", table="t", index_col_name="c", timeout=Duration(600)),),
                expect=Expectation(stall_window=Duration(600), allow_fault_errors=allow))


def test_runner_fails_a_case_whose_fault_was_not_applied(tmp_path: Path) -> None:
    """The job converges, but the kill could not be applied: the case tested nothing."""
    rec = record(tmp_path)
    with pytest.raises(pytest.fail.Exception) as info:
        run_case(_kill_case(False), cluster=FakeCluster(Sim("ok")), record=rec, options=OPTS)
    assert [v.verdict for v in rec.verdicts] == ["converged"]
    msg = str(info.value)
    assert "1 fault window(s) not applied as planned" in msg
    assert "fault f0.0 kill window 1 on tidb-0" in msg
    assert "was not applied: apply:" in msg
    assert "allowFaultErrors" in msg


def test_runner_allows_fault_errors_when_the_case_says_so(tmp_path: Path) -> None:
    rec = record(tmp_path)
    verdicts = run_case(_kill_case(True), cluster=FakeCluster(Sim("ok")), record=rec,
                        options=OPTS)
    assert [v.verdict for v in verdicts] == ["converged"]
    assert any("fault error allowed by the case: fault f0.0 kill" in n for n in rec.notes)
