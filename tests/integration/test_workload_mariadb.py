"""The workload against a real MySQL-protocol server (MariaDB from Debian).

Acceptance of issue 7: ``prepare`` + 10 s of ``run`` complete with zero
errors, which proves the SQL our Python driver sends (and its wire protocol)
is valid MySQL. Issue 13: the real ``sysbench`` binary runs through the same
workload path, its per-second reports reach the timeline, an error outside
``ignore_errors`` stops it with its code, and stopping leaves no process. No
Docker: MariaDB runs as a private process on loopback (see ``mariadb.py``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from interrupt import interruptible
from mariadb import MariaDB, Unavailable, mariadb_server

from pytest_tidb_ha.scenario.model import Workload
from pytest_tidb_ha.timeline import Timeline
from pytest_tidb_ha.workload.driver_sysbench import OWNER_ENV
from pytest_tidb_ha.workload.errors import WorkloadError
from pytest_tidb_ha.workload.sysbench import Sysbench
from pytest_tidb_ha.workload.target import Target

RUN_SECONDS = 10.0
DRIVERS = ["python", pytest.param("sysbench", marks=pytest.mark.skipif(
    shutil.which("sysbench") is None, reason="sysbench is not installed "
    "(scripts/ensure-test-deps.sh installs it)"))]


def sysbench_processes(owner: int) -> list[int]:
    """Live sysbench processes started by the pytest process ``owner``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (d / "comm").read_text().strip() != "sysbench":
                continue
            mine = f"{OWNER_ENV}={owner}".encode() in (d / "environ").read_bytes().split(b"\0")
            if mine and not (d / "stat").read_text().split(") ", 1)[1].startswith("Z"):
                found.append(int(d.name))
    return found


def workload(mariadb: MariaDB, spec: Workload, timeline: Timeline, driver: str,
             **kw: object) -> Sysbench:
    return Sysbench(lambda: mariadb.connect(read_timeout=10, write_timeout=10), spec, timeline,
                    target=Target(((mariadb.host, mariadb.port),), read_timeout=10),
                    driver=driver, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDB]:
    try:
        with mariadb_server() as db:
            yield db
    except Unavailable as exc:
        pytest.skip(str(exc))


def scalar(db: MariaDB, query: str) -> object:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def test_prepare_and_ten_seconds_of_run_have_zero_errors(mariadb: MariaDB) -> None:
    timeline = Timeline()
    spec = Workload(db="sbtest_accept", tables=2, table_size=10_000, threads=4,
                    ignore_errors=())  # strict: any error at all stops the run
    sb = workload(mariadb, spec, timeline, "python")
    sb.prepare()
    try:
        for n in (1, 2):
            assert scalar(mariadb, f"SELECT COUNT(*) FROM sbtest_accept.sbtest{n}") == 10_000
        assert scalar(mariadb, "SELECT COUNT(*) FROM information_schema.statistics WHERE "
                               "table_schema = 'sbtest_accept' AND table_name = 'sbtest1' "
                               "AND index_name = 'k_1'") == 1
        sb.start()
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline and sb.error is None:
            time.sleep(0.1)
        totals = sb.stop()  # raises WorkloadError on any error
        assert totals.error_count == 0, totals.errors
        assert totals.transactions > 50, totals
        # 18 statements + BEGIN/COMMIT per transaction, plus those of the transactions
        # that stop() cut short (one per thread at most)
        assert 0 <= totals.queries - 20 * totals.transactions < 20 * spec.threads
        metrics = [e.data for e in timeline.events("workload.metrics")]
        assert len(metrics) >= RUN_SECONDS - 1
        assert all(m["errors"] == {} for m in metrics), metrics
        # every second is reported; on a shared machine a second may see no commit
        busy = [m for m in metrics if m["interval"] == 1.0 and m["transactions"] > 0]
        assert len(busy) >= 0.7 * (RUN_SECONDS - 1), metrics
        assert all(m["p99"] >= m["p95"] >= m["p50"] > 0 for m in busy), busy
        # delete + insert of the same id keeps every table at its size
        for n in (1, 2):
            assert scalar(mariadb, f"SELECT COUNT(*) FROM sbtest_accept.sbtest{n}") == 10_000
    finally:
        sb.cleanup()
    assert scalar(mariadb, "SELECT COUNT(*) FROM information_schema.tables WHERE "
                           "table_schema = 'sbtest_accept'") == 0


@pytest.mark.skipif(shutil.which("sysbench") is None, reason="sysbench is not installed")
def test_the_sysbench_binary_reports_every_second_and_leaves_no_process(
        mariadb: MariaDB) -> None:
    timeline = Timeline()
    spec = Workload(db="sbtest_binary", tables=2, table_size=5000, threads=4,
                    ignore_errors=(1213, 1205))  # sysbench's hot spots may deadlock
    sb = workload(mariadb, spec, timeline, "sysbench")
    sb.prepare()
    try:
        sb.start()
        pids = sysbench_processes(os.getpid())
        assert len(pids) == 1, pids
        deadline = time.monotonic() + 30
        while len(timeline.events("workload.metrics")) < 5:
            assert time.monotonic() < deadline, sb.error
            assert sb.error is None, sb.error
            time.sleep(0.1)
        totals = sb.stop()
        assert sysbench_processes(os.getpid()) == []
        [start] = timeline.events("workload.start")
        assert start.data["driver"].startswith("sysbench 1.")
        assert start.data["ps_mode"] == "auto"
        metrics = [e.data for e in timeline.events("workload.metrics")]
        # one sample per second of sysbench's own clock, each with its commits and p99
        gaps = {round(b["second"] - a["second"], 3) for a, b in itertools.pairwise(metrics)}
        assert gaps == {1.0}, metrics
        busy = [m for m in metrics if m["transactions"] > 0]
        assert len(busy) >= 4, metrics
        assert all(m["p99"] > 0 for m in busy), metrics
        # qps counts BEGIN/COMMIT as sysbench does: 20 statements per transaction; a
        # transaction an ignored error (a deadlock) cut short is restarted, and the up to 20
        # statements it had sent are queries of no transaction; so are the 4 threads' last
        # transactions, cut by the stop
        cut = sum(totals.errors.values()) + 4
        assert abs(totals.queries - 20 * totals.transactions) <= 2 * len(metrics) + 20 * cut
        assert set(totals.errors) <= {1213, 1205}
        assert timeline.events("workload.stop")[0].data["abandoned_threads"] == []
        for n in (1, 2):  # DELETE + INSERT of the same id keeps every table at its size
            assert scalar(mariadb, f"SELECT COUNT(*) FROM sbtest_binary.sbtest{n}") == 5000
    finally:
        with contextlib.suppress(WorkloadError):
            sb.stop()
        sb.cleanup()


@pytest.mark.skipif(shutil.which("sysbench") is None, reason="sysbench is not installed")
def test_an_error_outside_ignore_errors_stops_the_binary_with_its_code(mariadb: MariaDB
                                                                       ) -> None:
    timeline = Timeline()
    spec = Workload(db="sbtest_fatal", tables=2, table_size=1000, threads=2,
                    ignore_errors=(1213, 1205))
    sb = workload(mariadb, spec, timeline, "sysbench")
    sb.prepare()
    sb.start()
    try:
        deadline = time.monotonic() + 30
        while not timeline.events("workload.metrics"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        conn = mariadb.connect()
        conn.cursor().execute("DROP TABLE sbtest_fatal.sbtest2")  # 1146 from now on
        conn.close()
        while not timeline.events("workload.error"):
            assert time.monotonic() < deadline, "sysbench did not stop on error 1146"
            time.sleep(0.1)
        [err] = timeline.events("workload.error")
        assert err.data["code"] == 1146
        assert "sbtest2" in err.data["message"]
        assert not sb.running
        with pytest.raises(WorkloadError, match=r"\[1146\]"):
            sb.stop()
        assert sysbench_processes(os.getpid()) == []
    finally:
        with contextlib.suppress(WorkloadError):
            sb.stop()
        sb.cleanup()


def kill_connections(db: MariaDB, schema: str) -> int:
    """KILL every connection using ``schema`` (a TiDB killed under the client); how many."""
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s "
                        "AND id <> CONNECTION_ID()", (schema,))
            ids = [row[0] for row in cur.fetchall()]
            for i in ids:
                with contextlib.suppress(pymysql.err.MySQLError):  # it may be gone already
                    cur.execute(f"KILL {int(i)}")
        return len(ids)
    finally:
        conn.close()


@pytest.mark.skipif(shutil.which("sysbench") is None, reason="sysbench is not installed")
def test_a_lost_connection_does_not_end_the_binary_workload(mariadb: MariaDB) -> None:
    """sysbench 1.0.20 (Debian, MariaDB Connector/C) segfaults in its reconnect after a
    lost connection it ignores; the driver starts it again and the workload goes on."""
    timeline = Timeline()
    spec = Workload(db="sbtest_lost", tables=1, table_size=1000, threads=2,
                    ignore_errors="all")
    sb = workload(mariadb, spec, timeline, "sysbench")
    sb.prepare()
    try:
        sb.start()
        deadline = time.monotonic() + 30
        while not timeline.events("workload.metrics"):
            assert time.monotonic() < deadline, sb.error
            assert sb.error is None, sb.error
            time.sleep(0.1)
        assert kill_connections(mariadb, "sbtest_lost") == 2
        while not timeline.events("workload.restart"):
            assert time.monotonic() < deadline, "sysbench did not crash on the lost connection"
            assert sb.error is None, sb.error
            time.sleep(0.1)
        [restart] = timeline.events("workload.restart")
        assert "SIGSEGV" in restart.data["reason"]
        assert restart.data["restarts"] == 1
        # the new process commits again on the same tables
        while not [e for e in timeline.events("workload.metrics")
                   if e.t > restart.t and e.data["transactions"] > 0]:
            assert time.monotonic() < deadline, sb.error
            assert sb.error is None, sb.error
            time.sleep(0.1)
        assert sb.running
        assert len(sysbench_processes(os.getpid())) == 1
        sb.stop()  # no WorkloadError: the crash was the client's
        assert timeline.events("workload.stop")[0].data["restarts"] == 1
        assert sysbench_processes(os.getpid()) == []
        assert scalar(mariadb, "SELECT COUNT(*) FROM sbtest_lost.sbtest1") == 1000
    finally:
        with contextlib.suppress(WorkloadError):
            sb.stop()
        sb.cleanup()


def mariadb_conftest(pytester: pytest.Pytester, mariadb: MariaDB) -> None:
    """tidb_cluster / tidb_client pointed at MariaDB (two "TiDBs" on one port)."""
    pytester.makeconftest(textwrap.dedent(f"""
        import pymysql, pytest

        PORT = {mariadb.port}

        def connect(database=None):
            return pymysql.connect(host="127.0.0.1", port=PORT, user="root", database=database,
                                   connect_timeout=3, read_timeout=10, write_timeout=10,
                                   autocommit=True)

        class Client:
            endpoints = {{"tidb-0": ("127.0.0.1", PORT), "tidb-1": ("127.0.0.1", PORT)}}
            def connect(self, node=None, database=None, read_timeout=None):
                return connect(database)

        class Cluster:
            database = "wl_fixture_db"

        @pytest.fixture
        def tidb_cluster():
            c = connect()
            c.cursor().execute("CREATE DATABASE IF NOT EXISTS wl_fixture_db")
            yield Cluster()
            c.cursor().execute("DROP DATABASE IF EXISTS wl_fixture_db")
            c.close()

        @pytest.fixture
        def tidb_client(tidb_cluster):
            return Client()
    """))


@pytest.mark.parametrize("driver", DRIVERS)
def test_ha_workload_fixture_runs_the_marker(mariadb: MariaDB, pytester: pytest.Pytester,
                                            driver: str) -> None:
    """The fixture end to end, with tidb_cluster/tidb_client pointed at MariaDB."""
    mariadb_conftest(pytester, mariadb)
    pytester.makepyfile(textwrap.dedent("""
        import time, pytest
        from conftest import connect

        def count(q):
            c = connect()
            try:
                cur = c.cursor(); cur.execute(q); return cur.fetchone()[0]
            finally:
                c.close()

        @pytest.mark.workload("sysbench", tables=4, table_size=4000, threads=2,
                              ignore_errors=[1213])
        def test_own_database(ha_workload, ha_record):
            assert ha_workload.db == "wl_fixture_db"
            assert ha_workload.driver.startswith(DRIVER)
            assert (ha_workload.tables, ha_workload.table_size) == (2, 2000)  # scale 0.5
            assert count("SELECT COUNT(*) FROM wl_fixture_db.sbtest2") == 2000
            deadline = time.monotonic() + 10
            while len(ha_record.timeline.events("workload.metrics")) < 2:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert ha_workload.running
            # two threads on MariaDB may deadlock now and then: 1213 is the ignored one,
            # any other error would have stopped the workload
            assert set(ha_workload.totals().errors) <= {1213}, ha_workload.totals().errors

        @pytest.mark.workload("sysbench", db="wl_named", tables=1, table_size=1000, threads=1)
        def test_named_database_is_cleaned(ha_workload):
            assert ha_workload.db == "wl_named" and ha_workload.running

        def test_after_named():
            assert count("SELECT COUNT(*) FROM information_schema.tables "
                         "WHERE table_schema = 'wl_named'") == 0

        def test_no_marker(ha_workload):
            assert ha_workload is None

        def test_nothing_left_running():
            import os
            from pathlib import Path
            env = f"PYTEST_TIDB_HA_WORKLOAD_OWNER={os.getpid()}".encode()
            left = [d.name for d in Path("/proc").iterdir() if d.name.isdigit()
                    and (d / "comm").exists() and (d / "comm").read_text().strip() == "sysbench"
                    and env in (d / "environ").read_bytes().split(b"\\0")]
            assert left == []
    """).replace("DRIVER", repr(driver)))
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess("--ha-workload-scale", "0.5", "-p", "no:randomly",
                                           "--ha-workload-driver", driver, f"--junitxml={xml}")
    result.assert_outcomes(passed=5)
    assert f'name="ha_workload_driver" value="{driver}' in xml.read_text()


@pytest.mark.parametrize("driver", DRIVERS)
def test_stop_is_prompt_while_the_server_is_frozen(mariadb: MariaDB, driver: str) -> None:
    """SIGSTOP the server (a partitioned node, for the client): stop() still returns fast."""
    spec = Workload(db="sbtest_freeze", tables=1, table_size=1000, threads=4)
    timeline = Timeline()
    sb = Sysbench(lambda: mariadb.connect(connect_timeout=2, read_timeout=60, write_timeout=60),
                  spec, timeline, target=Target(((mariadb.host, mariadb.port),), read_timeout=60),
                  driver=driver, stop_timeout=5.0)
    sb.prepare()
    sb.start()
    deadline = time.monotonic() + 10
    while sb.totals().transactions < 20:
        assert time.monotonic() < deadline, "workload made no progress"
        time.sleep(0.05)
    os.kill(mariadb.pid, signal.SIGSTOP)
    try:
        time.sleep(0.5)  # every worker is now blocked in a read (read_timeout is 60 s)
        t0 = time.monotonic()
        sb.stop()
        took = time.monotonic() - t0
    finally:
        os.kill(mariadb.pid, signal.SIGCONT)
    assert took < 5.5, f"stop() took {took:.1f}s with the server frozen"
    # every worker returned: their reads (60 s timeout) were cut by stop(), not waited out
    assert timeline.events("workload.stop")[0].data["abandoned_threads"] == []
    assert sysbench_processes(os.getpid()) == []
    with contextlib.suppress(pymysql.err.MySQLError):
        sb.cleanup()


SLEEPER = """
    import os, time, pytest

    @pytest.mark.workload("sysbench", tables=1, table_size=1000, threads=2)
    def test_sleeps(ha_workload, ha_record):
        while not ha_record.timeline.events("workload.metrics"):
            time.sleep(0.05)
        open("running", "w").write("")
        time.sleep(120)
"""


@pytest.mark.skipif(shutil.which("sysbench") is None, reason="sysbench is not installed")
@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_nothing_survives_an_interrupted_or_killed_run(mariadb: MariaDB,
                                                       pytester: pytest.Pytester,
                                                       how: str) -> None:
    """Ctrl-C runs the fixture's teardown; SIGKILL runs nothing, and the kernel's
    parent-death signal takes sysbench down with pytest."""
    mariadb_conftest(pytester, mariadb)
    pytester.makepyfile(textwrap.dedent(SLEEPER))
    proc = subprocess.Popen(
        interruptible([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p",
                       "no:randomly", "--ha-workload-driver", "sysbench", "-q", "-o",
                       "log_cli=true", "--log-cli-level=INFO"]),
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (pytester.path / "running").exists():
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the workload never reported a second"
            time.sleep(0.1)
        assert len(sysbench_processes(proc.pid)) == 1
        proc.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        deadline = time.monotonic() + 10
        while sysbench_processes(proc.pid):
            assert time.monotonic() < deadline, f"sysbench outlived pytest ({how}):\n{out}"
            time.sleep(0.1)
        if how == "ctrl-c":  # the fixture's teardown stopped it (not just the kernel)
            assert "KeyboardInterrupt" in out, out[-3000:]
            assert "workload stop:" in out, out[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
