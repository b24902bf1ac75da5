"""The Python driver against a fake MySQL server on loopback: policy, reconnects, stop.

Real sockets and the real protocol (``mysql_fake.py``); only the server's
answers are scripted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mysql_fake import BLOCK, CLOSE, Conn, Fail, FakeMySQL, refused_port

from pytest_tidb_ha.scenario.model import Workload
from pytest_tidb_ha.timeline import Timeline
from pytest_tidb_ha.workload import statements
from pytest_tidb_ha.workload.errors import WorkloadError
from pytest_tidb_ha.workload.sysbench import Sysbench
from pytest_tidb_ha.workload.target import Target

#: ``start(target, workload, **Sysbench kwargs) -> (sysbench, timeline)``
Start = Callable[..., tuple[Sysbench, Timeline]]


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


def no_factory() -> Any:
    raise AssertionError("the run must not use the pymysql factory")


@pytest.fixture
def start() -> Iterator[Start]:
    """Starts a workload with the Python driver; stops every one a test left running."""
    started: list[Sysbench] = []

    def launch(target: Target, workload: Workload, **kwargs: Any) -> tuple[Sysbench, Timeline]:
        tl = Timeline()
        sb = Sysbench(no_factory, workload, tl, target=target, driver="python", **kwargs)
        started.append(sb)
        sb.start()
        return sb, tl

    yield launch
    for sb in started:
        with contextlib.suppress(WorkloadError):
            sb.stop()


@pytest.fixture
def server() -> Iterator[Callable[..., FakeMySQL]]:
    made: list[FakeMySQL] = []

    def make(handler: Callable[[Conn, str], Any] | None = None, **kw: Any) -> FakeMySQL:
        srv = FakeMySQL(handler, **kw)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.close()


def test_transactions_have_sysbenchs_shape_and_reach_the_metrics(start: Start, server: Any
                                                                  ) -> None:
    srv = server(lambda c, q: [("x" * 119,)] * 3 if q.startswith("SELECT c") else None)
    sb, tl = start(srv.target(), spec(db="sbx", threads=2))
    wait_for(lambda: len(tl.events("workload.metrics")) >= 2, what="two metrics samples")
    totals = sb.stop()
    assert srv.logins == [("root", "sbx")] * 2  # the database comes with the login
    assert totals.transactions > 0
    assert totals.error_count == 0
    assert srv.count("BEGIN") >= totals.transactions
    assert srv.count("COMMIT") == totals.transactions
    assert srv.count("SELECT c FROM sbtest") >= 12 * totals.transactions  # 10 points + 2 ranges
    assert srv.count("DELETE FROM sbtest") >= totals.transactions
    metrics = tl.events("workload.metrics")
    assert sum(e.data["transactions"] for e in metrics) == totals.transactions
    assert sum(e.data["queries"] for e in metrics) == totals.queries
    [st] = tl.events("workload.start")
    assert st.data["driver"] == "python"
    assert "asked for" in st.data["driver_reason"]
    assert tl.events("workload.")[-1].kind == "workload.stop"
    wait_for(lambda: srv.open_connections() == 0, what="connections closed")


def test_ignored_errors_are_counted_and_rolled_back(start: Start, server: Any) -> None:
    n = {"updates": 0}

    def handler(c: Conn, q: str) -> Any:
        if q.startswith("UPDATE"):
            n["updates"] += 1
            if n["updates"] % 3 == 0:
                raise Fail(1213, "Deadlock found")
        return None

    srv = server(handler)
    sb, tl = start(srv.target(), spec(ignore_errors=(1213,)))
    wait_for(lambda: len(tl.events("workload.metrics")) >= 2, what="two metrics samples")
    totals = sb.stop()
    assert totals.transactions > 0
    assert set(totals.errors) == {1213}
    assert totals.errors[1213] > 0
    assert srv.count("ROLLBACK") == totals.errors[1213]
    assert srv.connects == 3  # a deadlock does not cost the connection
    assert not tl.events("workload.error")
    metrics = tl.events("workload.metrics")
    assert sum(e.data["errors"].get(1213, 0) for e in metrics) == totals.errors[1213]


def test_an_unlisted_error_stops_the_workload_and_stop_raises(start: Start, server: Any
                                                               ) -> None:
    def handler(c: Conn, q: str) -> Any:
        if q.startswith("DELETE"):
            raise Fail(1105, "unknown error")
        return None

    srv = server(handler)
    sb, tl = start(srv.target(), spec(ignore_errors=(1213,)))
    wait_for(lambda: bool(tl.events("workload.error")), what="workload.error")
    assert not sb.running
    wait_for(lambda: srv.open_connections() == 0, what="every connection closed")
    with pytest.raises(WorkloadError, match=r"\[1105\] unknown error") as info:
        sb.stop()
    assert info.value.code == 1105
    [err] = tl.events("workload.error")
    assert err.data["code"] == 1105
    assert err.data["ignore_errors"] == "1213"


def test_a_bug_is_never_ignored_even_with_all(start: Start, server: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real = statements.transaction  # the module driver_python imports as ``sql``
    calls = {"n": 0}

    def buggy(*args: Any) -> list[str]:
        calls["n"] += 1
        if calls["n"] == 5:
            raise TypeError("statement bug")
        return real(*args)

    monkeypatch.setattr(statements, "transaction", buggy)
    sb, tl = start(server().target(), spec(ignore_errors="all"))
    wait_for(lambda: bool(tl.events("workload.error")), what="workload.error")
    with pytest.raises(WorkloadError, match="TypeError: statement bug"):
        sb.stop()


def test_lost_connections_reconnect_and_work_resumes(start: Start, server: Any) -> None:
    def handler(c: Conn, q: str) -> Any:
        if c.executed == 5 and c.index <= 3:  # the first three connections die once
            return CLOSE
        return None

    srv = server(handler)
    sb, _tl = start(srv.target(), spec(threads=3))
    wait_for(lambda: srv.connects > 3 and sb.totals().transactions > 20,
             what="reconnects and transactions after them")
    totals = sb.stop()
    assert totals.errors.get(2013, 0) == 3
    assert totals.transactions > 20


def test_connect_failures_back_off_and_count(start: Start) -> None:
    sb, _tl = start(Target((("127.0.0.1", refused_port()),)), spec(threads=2))
    time.sleep(1.0)
    totals = sb.stop()
    # back-off 50 ms doubling: a handful of attempts per worker, not a busy loop
    assert 2 <= totals.errors[2003] <= 30
    assert totals.transactions == 0


def test_new_connections_go_round_robin_and_skip_a_dead_tidb(start: Start, server: Any
                                                              ) -> None:
    a, b = server(), server()
    dead = refused_port()
    target = Target((("127.0.0.1", a.port), ("127.0.0.1", dead), ("127.0.0.1", b.port)))
    sb, _tl = start(target, spec(threads=4))
    wait_for(lambda: sb.totals().transactions > 10, what="transactions")
    totals = sb.stop()
    assert (a.connects, b.connects) == (2, 2)  # tidb-0, (tidb-1 down), tidb-2, ...
    assert totals.error_count == 0  # a failover that found a node is not an error


def test_login_errors_are_the_servers_codes(start: Start, server: Any) -> None:
    srv = server(login_error=(1049, "Unknown database 'nope'"))
    sb, tl = start(srv.target(), spec(db="nope", threads=1, ignore_errors=()))
    wait_for(lambda: bool(tl.events("workload.error")), what="workload.error")
    with pytest.raises(WorkloadError, match="1049"):
        sb.stop()


def test_a_password_logs_in_with_mysql_native_password(start: Start, server: Any) -> None:
    srv = server(password="s3cr3t")
    sb, _ = start(srv.target(), spec(threads=1, ignore_errors=()))
    wait_for(lambda: sb.totals().transactions > 2, what="transactions")
    sb.stop()
    wrong = server(password="other")
    sb, tl = start(Target((("127.0.0.1", wrong.port),), password="s3cr3t"),
                   spec(threads=1, ignore_errors=()))
    wait_for(lambda: bool(tl.events("workload.error")), what="access denied")
    with pytest.raises(WorkloadError, match="1045"):
        sb.stop()


def test_stop_is_prompt_when_every_worker_waits_for_an_answer(start: Start, server: Any
                                                               ) -> None:
    """A partitioned node: statements get no answer, and reads would last 60 s."""
    srv = server(lambda c, q: BLOCK if q.startswith("SELECT") else None)
    sb, tl = start(srv.target(read_timeout=60), spec(threads=4), stop_timeout=3.0)
    wait_for(lambda: srv.count("SELECT") >= 4, what="every worker in a read")
    t0 = time.monotonic()
    totals = sb.stop()
    took = time.monotonic() - t0
    assert took < 1.0, f"stop took {took:.2f}s"
    assert tl.events("workload.stop")[0].data["abandoned_threads"] == []
    assert totals.error_count == 0  # our own stop is not the cluster's error
    wait_for(lambda: srv.open_connections() == 0, what="connections closed")


def test_stop_is_prompt_when_the_greeting_never_comes(start: Start, server: Any) -> None:
    srv = server(greet=False)
    sb, _tl = start(srv.target(connect_timeout=60), spec(threads=2))
    wait_for(lambda: srv.connects == 2, what="TCP connections")
    t0 = time.monotonic()
    sb.stop()
    assert time.monotonic() - t0 < 1.0


def test_a_read_timeout_counts_as_lost_and_reconnects(start: Start, server: Any) -> None:
    def handler(c: Conn, q: str) -> Any:
        return BLOCK if c.index == 1 and q.startswith("SELECT") else None

    srv = server(handler)
    sb, _tl = start(srv.target(read_timeout=0.3), spec(threads=1))
    wait_for(lambda: srv.connects >= 2 and sb.totals().transactions > 3,
             what="a reconnect after the timeout, and work on the new connection")
    totals = sb.stop()
    assert totals.errors == {2013: 1}


def test_metrics_cover_every_second_of_the_run(start: Start, server: Any) -> None:
    sb, tl = start(server().target(), spec(threads=2))
    wait_for(lambda: len(tl.events("workload.metrics")) >= 2, what="metrics")
    sb.stop()
    seconds = [e.data["second"] for e in tl.events("workload.metrics")]
    assert seconds == [float(s) for s in range(int(seconds[0]), int(seconds[0]) + len(seconds))]
    assert all(e.data["tps"] > 0 for e in tl.events("workload.metrics")[:-1])


def test_stop_mid_transaction_counts_no_error(start: Start, server: Any) -> None:
    """A slow cluster: stop() does not wait for whole transactions to finish."""

    def handler(c: Conn, q: str) -> Any:
        time.sleep(0.1)  # ~2 s per transaction
        return None

    srv = server(handler)
    sb, _tl = start(srv.target(), spec(threads=2))
    wait_for(lambda: srv.count("SELECT") >= 2, what="transactions under way")
    t0 = time.monotonic()
    totals = sb.stop()
    assert time.monotonic() - t0 < 0.5
    assert totals.error_count == 0
    assert totals.transactions == 0
    assert totals.queries >= 2  # what ran of the cut transactions still counts
