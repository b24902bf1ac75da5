"""The Sysbench runner against fake connections: policy, reconnects, prompt stop."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest

from pytest_tidb_ha.scenario.model import Workload
from pytest_tidb_ha.timeline import Timeline
from pytest_tidb_ha.workload import sysbench as sysbench_module
from pytest_tidb_ha.workload.errors import WorkloadError
from pytest_tidb_ha.workload.sysbench import Sysbench, _abort

#: The ``start`` fixture: ``start(connect, workload, **Sysbench kwargs) -> (sysbench, timeline)``.
Start = Callable[..., tuple[Sysbench, Timeline]]

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


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def spec(**kw: Any) -> Workload:
    base: dict[str, Any] = {"tables": 2, "table_size": 1000, "threads": 3}
    base.update(kw)
    return Workload(**base)


@pytest.fixture
def start() -> Iterator[Start]:
    """Starts a workload on a fresh timeline; stops every one a test left running.

    Tests must not leak threads: every test that runs the workload starts it through this.
    """
    started: list[Sysbench] = []

    def launch(connect: Callable[[], Any], workload: Workload,
               **kwargs: Any) -> tuple[Sysbench, Timeline]:
        tl = Timeline()
        sb = Sysbench(connect, workload, tl, **kwargs)
        started.append(sb)
        sb.start()
        return sb, tl

    yield launch
    for sb in started:
        with contextlib.suppress(WorkloadError):
            sb.stop()


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
    assert ev.data["tables"] == 2 and ev.data["table_size"] == 2500


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


def test_ignored_errors_are_counted_and_rolled_back(start: Start) -> None:
    n = {"updates": 0}

    def handler(c: FakeConn, q: str) -> Any:
        if q.startswith("UPDATE"):
            n["updates"] += 1
            if n["updates"] % 3 == 0:
                raise pymysql.err.OperationalError(1213, "Deadlock found")
        return None

    server = FakeServer(handler)
    sb, tl = start(server.connect, spec(ignore_errors=(1213,)))
    wait_for(lambda: len(tl.events("workload.metrics")) >= 2, what="two metrics samples")
    totals = sb.stop()
    assert totals.transactions > 0
    assert set(totals.errors) == {1213} and totals.errors[1213] > 0
    # one ROLLBACK per error, plus one per transaction that stop() cut short
    assert 0 <= server.count("ROLLBACK") - totals.errors[1213] <= 3
    assert server.connects == 3  # a deadlock does not cost the connection
    assert not tl.events("workload.error")
    metrics = tl.events("workload.metrics")
    assert sum(e.data["transactions"] for e in metrics) == totals.transactions
    assert sum(e.data["errors"].get(1213, 0) for e in metrics) == totals.errors[1213]
    assert [e.kind for e in tl.events("workload.")][0] == "workload.start"
    assert tl.events("workload.")[-1].kind == "workload.stop"


def test_an_unlisted_error_stops_the_workload_and_stop_raises(start: Start) -> None:
    def handler(c: FakeConn, q: str) -> Any:
        if q.startswith("DELETE"):
            raise pymysql.err.OperationalError(1105, "unknown error")
        return None

    sb, tl = start(FakeServer(handler).connect, spec(ignore_errors=(1213,)))
    wait_for(lambda: bool(tl.events("workload.error")), what="workload.error")
    wait_for(lambda: not any(t.is_alive() for t in sb._workers), what="workers to exit")
    with pytest.raises(WorkloadError, match=r"\[1105\] unknown error") as info:
        sb.stop()
    assert info.value.code == 1105
    [err] = tl.events("workload.error")
    assert err.data["code"] == 1105 and err.data["ignore_errors"] == "1213"


def test_a_bug_is_never_ignored_even_with_all(start: Start) -> None:
    def handler(c: FakeConn, q: str) -> Any:
        if q.startswith("INSERT"):
            raise TypeError("driver bug")
        return None

    sb, tl = start(FakeServer(handler).connect, spec(ignore_errors="all"))
    wait_for(lambda: bool(tl.events("workload.error")), what="workload.error")
    with pytest.raises(WorkloadError, match="TypeError: driver bug"):
        sb.stop()


def test_connection_errors_reconnect_and_work_resumes(start: Start) -> None:
    def handler(c: FakeConn, q: str) -> Any:
        if c.executed == 5 and c.server.connects <= 6:  # the first connections die once
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server")
        return None

    server = FakeServer(handler)
    sb, tl = start(server.connect, spec(threads=3))
    wait_for(lambda: server.connects > 6 and sb.totals().transactions > 20,
             what="reconnects and transactions after them")
    totals = sb.stop()
    assert totals.errors.get(2013, 0) >= 3
    assert totals.transactions > 20


def test_connect_failures_back_off_and_count(start: Start) -> None:
    server = FakeServer(connect_error=pymysql.err.OperationalError(2003, "Can't connect"))
    sb, tl = start(server.connect, spec(threads=2))
    time.sleep(1.0)
    totals = sb.stop()
    # back-off 50 ms doubling: a handful of attempts per worker, not a busy loop
    assert 2 <= totals.errors[2003] <= 30
    assert totals.transactions == 0


def test_stop_is_prompt_when_workers_block_in_a_read(start: Start) -> None:
    """A partitioned node: reads block until the socket is shut down."""
    blocked = threading.Semaphore(0)

    def handler(c: FakeConn, q: str) -> Any:
        if q.startswith("SELECT"):
            blocked.release()
            c.closed.wait()  # like recv() on a dead peer, until _abort closes it
            raise pymysql.err.OperationalError(2013, "Lost connection")
        return None

    sb, tl = start(FakeServer(handler).connect, spec(threads=4), stop_timeout=3.0)
    for _ in range(4):
        assert blocked.acquire(timeout=5), "workers never reached a read"
    t0 = time.monotonic()
    totals = sb.stop()
    took = time.monotonic() - t0
    assert took < 3.5, f"stop took {took:.2f}s"
    assert not any(t.is_alive() for t in sb._workers)
    assert tl.events("workload.stop")[0].data["abandoned_threads"] == []
    assert totals.error_count == 0  # our own abort is not the cluster's error


def test_stop_is_bounded_even_when_nothing_unblocks(start: Start) -> None:
    release = threading.Event()

    def handler(c: FakeConn, q: str) -> Any:
        if q.startswith("SELECT"):
            release.wait(30)  # deaf to close(): a truly wedged driver
        return None

    sb, tl = start(FakeServer(handler).connect, spec(threads=2), stop_timeout=1.0)
    wait_for(lambda: sum(1 for t in sb._workers if t.is_alive()) == 2, what="workers")
    time.sleep(0.2)
    t0 = time.monotonic()
    sb.stop()
    took = time.monotonic() - t0
    release.set()
    assert took < 2.0, f"stop took {took:.2f}s"
    assert len(tl.events("workload.stop")[0].data["abandoned_threads"]) == 2


def test_abort_unblocks_a_real_socket_read() -> None:
    a, b = socket.socketpair()

    class Conn:
        _sock = a

        def close(self) -> None:  # pragma: no cover - must not be used for sockets
            raise AssertionError("close() raced with the reader")

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(a.recv(10)))
    reader.start()
    time.sleep(0.1)
    _abort(Conn())  # type: ignore[arg-type]
    reader.join(2)
    a.close()
    b.close()
    assert not reader.is_alive() and got == [b""]


def test_metrics_cover_every_second_of_the_run(start: Start) -> None:
    sb, tl = start(FakeServer().connect, spec(threads=2))
    wait_for(lambda: len(tl.events("workload.metrics")) >= 2, what="metrics")
    sb.stop()
    seconds = [e.data["second"] for e in tl.events("workload.metrics")]
    assert seconds == [float(s) for s in range(int(seconds[0]), int(seconds[0]) + len(seconds))]
    assert all(e.data["tps"] > 0 for e in tl.events("workload.metrics")[:-1])


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        Sysbench(FakeServer().connect, Workload(kind="tpcc"), Timeline())
    with pytest.raises(ValueError, match="subtype"):
        Sysbench(FakeServer().connect, Workload(subtype="bulk_insert"), Timeline())
    with pytest.raises(ValueError, match="threads"):
        Sysbench(FakeServer().connect, Workload(threads=0), Timeline())


def test_stop_mid_transaction_rolls_back_without_counting_errors(
        start: Start) -> None:
    """A slow cluster: stop() does not wait for whole transactions to finish."""

    def handler(c: FakeConn, q: str) -> Any:
        time.sleep(0.1)  # ~2 s per transaction
        return None

    server = FakeServer(handler)
    sb, tl = start(server.connect, spec(threads=2))
    wait_for(lambda: server.count("SELECT") >= 2, what="transactions under way")
    t0 = time.monotonic()
    totals = sb.stop()
    assert time.monotonic() - t0 < 0.7  # not the 1 s grace, nor the 2 s transaction
    assert server.count("ROLLBACK") == 2
    assert totals.error_count == 0


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
