"""The sysbench driver's process handling, with a scripted stand-in for the binary.

The stand-in is an executable named ``sysbench`` on PATH that prints what the
real one prints (lines copied from sysbench 1.0.20); the real binary runs in
``tests/integration/test_workload_mariadb.py``. What is tested here: start
waits for the threads, report and error lines become samples, a FATAL line
becomes the workload's error, and no process outlives stop() — or a dead
owner (the reaper).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_tidb_ha.scenario.model import Workload
from pytest_tidb_ha.timeline import Timeline
from pytest_tidb_ha.workload import driver_sysbench
from pytest_tidb_ha.workload.errors import IgnorePolicy, WorkloadError
from pytest_tidb_ha.workload.sysbench import Sysbench
from pytest_tidb_ha.workload.sysbench_cli import Fatal
from pytest_tidb_ha.workload.target import Target

FAKE = """\
#!{python}
import json, os, signal, sys, time
if "--version" in sys.argv:
    print("sysbench 1.0.20-fake (using system LuaJIT 2.1.0-beta3)")
    sys.exit(0)
mode = os.environ.get("FAKE_SYSBENCH_MODE", "ok")
out = os.environ["FAKE_SYSBENCH_OUT"]
cfg = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--config-file=")]
with open(out, "w") as f:
    json.dump({{"argv": sys.argv, "pid": os.getpid(), "cwd": os.getcwd(),
               "config": open(cfg[0]).read() if cfg else None,
               "config_mode": oct(os.stat(cfg[0]).st_mode & 0o777) if cfg else None,
               "script": open(sys.argv[1]).read() if os.path.exists(sys.argv[1]) else ""}}, f)
runs = out + ".runs"  # how many times this fake started (restarts count)
run = len(open(runs).read()) if os.path.exists(runs) else 0
open(runs, "a").write("x")
if mode == "deaf":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("sysbench 1.0.20 (using system LuaJIT 2.1.0-beta3)")
print("Initializing worker threads...")
if mode == "crash-then-down" and run in (1, 2):  # the lost TiDB is still down
    print("FATAL: unable to connect to MySQL server on host '127.0.0.1', port 1, aborting...")
    print("FATAL: error 2003: Can't connect to MySQL server on '127.0.0.1' (111)")
    sys.exit(1)
if mode == "crash-at-start":
    os.kill(os.getpid(), signal.SIGSEGV)
if mode == "nostart":
    print("FATAL: unable to connect to MySQL server on host '127.0.0.1', port 1, aborting...")
    print("FATAL: error 2002: Can't connect to server on '127.0.0.1' (115)")
    sys.exit(1)
print("Threads started!", flush=True)
n = 0
while True:
    time.sleep(0.05)
    n += 1
    if mode == "crashloop" and run:  # connects, then crashes before any commit
        os.kill(os.getpid(), signal.SIGSEGV)
    if n % 2:
        print("tidb-ha: error 9007 Write conflict, txnStartTS=1", flush=True)
    print(f"[ {{n}}s ] thds: 4 tps: 100.00 qps: 2000.00 (r/w/o: 1400.00/400.00/200.00) "
          f"lat (ms,99%): 12.50 err/s: {{n % 2}}.00 reconn/s: 0.00", flush=True)
    # sysbench 1.0.20 + MariaDB Connector/C: the reconnect after a lost connection
    # segfaults (first run: after 3 reports; "crashloop": every run, before a commit)
    if mode.startswith("crash") and run == 0 and n == 3:
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "fatal" and n == 3:
        print("FATAL: mysql_drv_query() returned error 1105 (unknown error) for query 'x'")
        sys.exit(1)
"""


@pytest.fixture
def fake_sysbench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``sysbench`` on PATH is the stand-in; returns the file it writes its argv to."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "sysbench"
    exe.write_text(FAKE.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "run.json"
    monkeypatch.setenv("FAKE_SYSBENCH_OUT", str(out))
    driver_sysbench._version_cache.clear()
    return out


class Conn:
    """A pymysql stand-in for the prepared-statement probe."""

    def __init__(self, prepare_error: Exception | None) -> None:
        self.prepare_error = prepare_error

    def cursor(self) -> Conn:
        return self

    def execute(self, q: str, args: Any = None) -> None:
        if self.prepare_error is not None and q.startswith("PREPARE"):
            raise self.prepare_error

    def close(self) -> None:
        pass


Start = Callable[..., tuple[Sysbench, Timeline]]


@pytest.fixture
def start() -> Iterator[Start]:
    started: list[Sysbench] = []

    def launch(workload: Workload, prepare_error: Exception | None = None,
               **kw: Any) -> tuple[Sysbench, Timeline]:
        tl = Timeline()
        target = Target((("127.0.0.1", 4001), ("127.0.0.1", 4002)), password="pw, x")
        sb = Sysbench(lambda: Conn(prepare_error), workload, tl, target=target,
                      driver="sysbench", **kw)
        started.append(sb)
        sb.start()
        return sb, tl

    yield launch
    for sb in started:
        with contextlib.suppress(WorkloadError):
            sb.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose (its parent reaps it)
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def test_reports_become_samples_and_stop_leaves_nothing(fake_sysbench: Path,
                                                        start: Start) -> None:
    sb, tl = start(Workload(db="sbx", tables=3, table_size=500, threads=4,
                            ignore_errors=(9007,)))
    run = json.loads(fake_sysbench.read_text())
    argv = run["argv"]
    assert "--mysql-port=4001,4002" in argv
    assert "--mysql-ignore-errors=9007" in argv
    assert "--db-ps-mode=auto" in argv
    assert "--tables=3" in argv
    assert "--threads=4" in argv
    assert not any("pw, x" in a for a in argv)  # the password is in the config file only
    assert run["config"] == 'mysql-password="pw, x"\n'
    assert run["config_mode"] == "0o600"
    assert 'require("oltp_read_write")' in run["script"]
    wait_for(lambda: len(tl.events("workload.metrics")) >= 4, what="four samples")
    [st] = tl.events("workload.start")
    assert st.data["driver"] == "sysbench 1.0.20"
    assert st.data["ps_mode"] == "auto"
    totals = sb.stop()
    assert not alive(run["pid"])
    assert not Path(run["cwd"]).exists()  # the wrapper and the password file are gone
    metrics = [e.data for e in tl.events("workload.metrics")]
    assert all(m["tps"] == 100.0 and m["p99"] == 12.5 for m in metrics)
    assert metrics[1]["second"] - metrics[0]["second"] == pytest.approx(1.0)  # sysbench's clock, not ours
    assert sum(m["errors"].get(9007, 0) for m in metrics) == totals.errors[9007] > 0
    assert totals.transactions == 100 * len(metrics)
    [stop] = tl.events("workload.stop")
    assert stop.data["abandoned_threads"] == []
    assert stop.data["driver"] == "sysbench 1.0.20"


def test_no_prepared_statements_means_ps_mode_disable(fake_sysbench: Path,
                                                      start: Start) -> None:
    import pymysql

    sb, tl = start(Workload(), prepare_error=pymysql.err.ProgrammingError(1064, "syntax"))
    assert "--db-ps-mode=disable" in json.loads(fake_sysbench.read_text())["argv"]
    assert tl.events("workload.start")[0].data["ps_mode"] == "disable"
    sb.stop()


def test_a_fatal_error_is_the_workloads_error(fake_sysbench: Path, start: Start,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SYSBENCH_MODE", "fatal")
    sb, tl = start(Workload(ignore_errors=(9007,)))
    wait_for(lambda: bool(tl.events("workload.error")), what="workload.error")
    assert not sb.running
    with pytest.raises(WorkloadError, match=r"\[1105\] unknown error") as info:
        sb.stop()
    assert info.value.code == 1105


def test_a_failed_start_raises_with_sysbenchs_words(fake_sysbench: Path, start: Start,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SYSBENCH_MODE", "nostart")
    with pytest.raises(WorkloadError, match=r"failed to start: \[2002\] Can't connect"):
        start(Workload())
    assert not alive(json.loads(fake_sysbench.read_text())["pid"])


def test_a_process_deaf_to_sigterm_is_killed(fake_sysbench: Path, start: Start,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SYSBENCH_MODE", "deaf")
    monkeypatch.setattr(driver_sysbench, "KILL_GRACE", 0.3)
    sb, _tl = start(Workload(), stop_timeout=3.0)
    t0 = time.monotonic()
    sb.stop()
    assert time.monotonic() - t0 < 2.0
    assert not alive(json.loads(fake_sysbench.read_text())["pid"])


def test_orphans_of_a_dead_run_are_reaped(fake_sysbench: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    proc = subprocess.Popen(["sysbench", "x.lua", "run"], stdout=subprocess.DEVNULL,
                            env=dict(os.environ, **{driver_sysbench.OWNER_ENV: str(dead.pid)}))
    mine = subprocess.Popen(["sysbench", "x.lua", "run"], stdout=subprocess.DEVNULL,
                            env=dict(os.environ, **{driver_sysbench.OWNER_ENV: str(os.getpid())}))
    try:
        wait_for(lambda: all(comm(p.pid) == "sysbench" for p in (proc, mine)),
                 what="the stand-ins to start")
        killed = driver_sysbench.reap_orphans()
        assert proc.pid in killed
        assert mine.pid not in killed
        assert proc.wait(5) == -signal.SIGKILL
        assert mine.poll() is None  # its owner (this test) is alive
    finally:
        for p in (proc, mine):
            p.kill()
            p.wait()


def restarts(tl: Timeline) -> list[dict[str, Any]]:
    return [dict(e.data) for e in tl.events("workload.restart")]


def test_a_crash_where_sysbench_reconnects_starts_it_again(fake_sysbench: Path, start: Start,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """sysbench 1.0.20 segfaults on every ignored lost connection: the fault is not the case."""
    monkeypatch.setenv("FAKE_SYSBENCH_MODE", "crash")
    sb, tl = start(Workload(ignore_errors="all"))
    wait_for(lambda: bool(restarts(tl)), what="workload.restart")
    [r] = restarts(tl)
    assert "SIGSEGV" in r["reason"]
    assert r["restarts"] == 1
    assert "[ 3s ]" in r["output"]
    second = json.loads(fake_sysbench.read_text())  # the restart's own argv/pid
    wait_for(lambda: len(tl.events("workload.metrics")) >= 6, what="samples after the restart")
    assert sb.running
    assert sb.error is None
    assert "prepare" not in second["argv"]
    assert second["argv"][-1] == "run"
    totals = sb.stop()  # no WorkloadError: the crash was the client's, and it ran on
    assert not alive(second["pid"])
    [stop] = tl.events("workload.stop")
    assert stop.data["restarts"] == 1
    assert totals.transactions == 100 * len(tl.events("workload.metrics"))


def test_a_restart_waits_for_the_lost_tidb(fake_sysbench: Path, start: Start,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SYSBENCH_MODE", "crash-then-down")
    sb, tl = start(Workload(ignore_errors="all"))
    # two restarts cannot connect (2003, the TiDB is down): tried again, not an error
    wait_for(lambda: len((fake_sysbench.parent / "run.json.runs").read_text()) >= 4
             and sb.totals().transactions >= 500, what="the fourth start to run")
    assert sb.error is None
    assert len(restarts(tl)) == 1
    sb.stop()


def test_crashes_without_a_commit_stop_the_workload_loudly(fake_sysbench: Path,
                                                            start: Start,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setenv("FAKE_SYSBENCH_MODE", "crashloop")
    sb, tl = start(Workload(ignore_errors="all"))
    wait_for(lambda: bool(tl.events("workload.error")), what="workload.error")
    assert len(restarts(tl)) == driver_sysbench.MAX_CRASHES_IN_A_ROW - 1
    with pytest.raises(WorkloadError, match=r"crashed \(SIGSEGV, rc -11\) 3 times without a "
                                            r"commit"):
        sb.stop()


@pytest.mark.parametrize(("mode", "ignore", "why"), [
    ("crash", (1213,), "no lost connection is ignored"),  # sysbench does not reconnect
    ("crash-at-start", "all", "before its threads started"),
])
def test_other_crashes_are_the_workloads_error(fake_sysbench: Path, start: Start,
                                               monkeypatch: pytest.MonkeyPatch, mode: str,
                                               ignore: Any, why: str) -> None:
    monkeypatch.setenv("FAKE_SYSBENCH_MODE", mode)
    if mode == "crash-at-start":
        with pytest.raises(WorkloadError, match="SIGSEGV"):
            start(Workload(ignore_errors=ignore))
        return
    sb, tl = start(Workload(ignore_errors=ignore))
    wait_for(lambda: bool(tl.events("workload.error")), what="workload.error")
    assert restarts(tl) == []
    with pytest.raises(WorkloadError, match=why):
        sb.stop()


@pytest.mark.parametrize(("ex", "ignore", "in_a_row", "step"), [
    (driver_sysbench.Exit(-11, True, None, False), "all", 0, "restart"),
    (driver_sysbench.Exit(-11, True, None, True), (2013,), 1, "restart"),
    (driver_sysbench.Exit(-11, True, None, True), "all", 2, "fail"),  # the third in a row
    (driver_sysbench.Exit(-11, True, None, False), (1213, 1205), 0, "fail"),
    (driver_sysbench.Exit(-11, False, None, True), "all", 0, "fail"),  # crashed at once
    (driver_sysbench.Exit(1, False, Fatal(2003, "Can't connect"), True), (2013,), 0, "retry"),
    # a restart's thread init meets the killed TiDB, then crashes closing the handle (#527)
    (driver_sysbench.Exit(-11, False, Fatal(2002, "Can't connect"), True), "all", 2, "retry"),
    (driver_sysbench.Exit(-11, False, Fatal(2002, "Can't connect"), False), "all", 0, "fail"),
    (driver_sysbench.Exit(1, False, Fatal(2003, "Can't connect"), False), "all", 0, "fail"),
    (driver_sysbench.Exit(1, False, Fatal(1146, "no table"), True), "all", 0, "fail"),
    (driver_sysbench.Exit(1, True, Fatal(1105, "unknown"), True), "all", 0, "fail"),
])
def test_after_exit(ex: driver_sysbench.Exit, ignore: Any, in_a_row: int, step: str) -> None:
    assert driver_sysbench.after_exit(ex, IgnorePolicy.of(ignore), in_a_row) == step
