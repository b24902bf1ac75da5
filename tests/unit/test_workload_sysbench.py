"""The Sysbench facade against fake pymysql connections: prepare, validation, driver choice.

The run itself is tested per driver (``test_workload_driver_*.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pymysql
import pytest

from pytest_tidb_ha.scenario.model import Workload
from pytest_tidb_ha.timeline import Timeline
from pytest_tidb_ha.workload import sysbench as sysbench_module
from pytest_tidb_ha.workload.errors import WorkloadError
from pytest_tidb_ha.workload.sysbench import Sysbench

Handler = Callable[["FakeConn", str], Any]


class FakeServer:
    """Records every statement; ``handler`` may answer rows or raise."""

    def __init__(self, handler: Handler | None = None, connect_error: Exception | None = None):
        self.handler = handler
        self.connect_error = connect_error
        self.statements: list[str] = []
        self.connects = 0
        self.lock = threading.Lock()

    def connect(self) -> FakeConn:
        with self.lock:
            self.connects += 1
        if self.connect_error is not None:
            raise self.connect_error
        return FakeConn(self)

    def count(self, prefix: str) -> int:
        with self.lock:
            return sum(1 for s in self.statements if s.startswith(prefix))


class FakeConn:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.closed = threading.Event()
        self.executed = 0
        self.rows: Any = ()

    def cursor(self) -> FakeConn:
        return self

    def execute(self, query: str, args: Any = None) -> int:
        if self.closed.is_set():
            raise pymysql.err.InterfaceError(0, "")
        with self.server.lock:
            self.server.statements.append(query)
        self.executed += 1
        rows = self.server.handler(self, query) if self.server.handler else None
        self.rows = rows if rows is not None else ()
        return 0

    def fetchall(self) -> Any:
        return self.rows

    def close(self) -> None:
        self.closed.set()


def spec(**kw: Any) -> Workload:
    base: dict[str, Any] = {"tables": 2, "table_size": 1000, "threads": 3}
    base.update(kw)
    return Workload(**base)


def test_prepare_creates_schema_and_loads_in_batches() -> None:
    server = FakeServer(lambda c, q: [(0,)] if q.startswith("SELECT COUNT") else None)
    tl = Timeline()
    sb = Sysbench(server.connect, spec(tables=2, table_size=2500, db="sbx"), tl)
    sb.prepare()
    assert server.statements.count("CREATE DATABASE IF NOT EXISTS `sbx`") == 1
    assert server.count("CREATE TABLE IF NOT EXISTS sbtest1 ") == 1
    assert server.count("CREATE TABLE IF NOT EXISTS sbtest2 ") == 1
    assert server.count("INSERT INTO sbtest1 ") == 3
    assert server.count("INSERT INTO sbtest2 ") == 3
    assert server.count("USE `sbx`") >= 2
    [ev] = tl.events("workload.prepare")
    assert ev.data["tables"] == 2
    assert ev.data["table_size"] == 2500


def test_prepare_reuses_a_complete_table_and_reloads_a_partial_one() -> None:
    def handler(c: FakeConn, q: str) -> Any:
        if q == "SELECT COUNT(*) FROM sbtest1":
            return [(1000,)]
        if q == "SELECT COUNT(*) FROM sbtest2":
            return [(17,)]
        return None

    server = FakeServer(handler)
    Sysbench(server.connect, spec(), Timeline()).prepare()
    assert server.count("INSERT INTO sbtest1 ") == 0
    assert server.count("DROP TABLE IF EXISTS sbtest2") == 1
    assert server.count("INSERT INTO sbtest2 ") == 1


def test_prepare_retries_a_batch_after_a_lost_connection() -> None:
    failed: list[bool] = []

    def handler(c: FakeConn, q: str) -> Any:
        if q.startswith("SELECT COUNT"):
            return [(0,)]
        if q.startswith("INSERT") and not failed:
            failed.append(True)
            raise pymysql.err.OperationalError(2013, "Lost connection")
        return None

    server = FakeServer(handler)
    Sysbench(server.connect, spec(tables=1), Timeline()).prepare()
    assert server.count("INSERT INTO sbtest1 ") == 2
    assert server.connects == 3  # database, table, reconnect


def test_scale_shrinks_what_prepare_loads() -> None:
    server = FakeServer(lambda c, q: [(0,)] if q.startswith("SELECT COUNT") else None)
    sb = Sysbench(server.connect, spec(tables=64, table_size=70_000_000), Timeline(),
                  size_scale=0.00002)
    assert (sb.tables, sb.table_size) == (1, 1400)
    sb.prepare()
    assert server.count("INSERT INTO sbtest1 ") == 2
    assert server.count("CREATE TABLE IF NOT EXISTS sbtest2 ") == 0


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        Sysbench(FakeServer().connect, Workload(kind="tpcc"), Timeline())
    with pytest.raises(ValueError, match="subtype"):
        Sysbench(FakeServer().connect, Workload(subtype="bulk_insert"), Timeline())
    with pytest.raises(ValueError, match="threads"):
        Sysbench(FakeServer().connect, Workload(threads=0), Timeline())


def test_a_failing_table_stops_the_other_loaders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysbench_module, "PREPARE_BACKOFF", (0.01, 0.01))

    def handler(c: FakeConn, q: str) -> Any:
        if q.startswith("SELECT COUNT"):
            return [(0,)]
        if q.startswith("INSERT INTO sbtest1 "):
            raise pymysql.err.OperationalError(1105, "disk full")
        if q.startswith("INSERT"):
            time.sleep(0.01)
        return None

    server = FakeServer(handler)
    sb = Sysbench(server.connect, spec(tables=2, table_size=100_000, threads=2), Timeline())
    with pytest.raises(WorkloadError, match="disk full"):
        sb.prepare()
    assert server.count("INSERT INTO sbtest1 ") == sysbench_module.PREPARE_ATTEMPTS
    assert server.count("INSERT INTO sbtest2 ") < 100  # abandoned, not loaded to the end
