"""The sysbench driver: Debian's ``sysbench`` binary as a child process.

One process runs all the workload's threads; a reader thread turns its output
(:mod:`.sysbench_cli`) into per-second samples on the timeline. The process
never outlives the workload:

* :meth:`SysbenchDriver.stop` (case end, Ctrl-C, failure) kills its process
  group — SIGTERM, SIGKILL after a grace — and waits for it;
* the process is started through ``setpriv --pdeathsig KILL`` from the reader
  thread, so if pytest itself is killed (SIGKILL, OOM) the kernel kills it too;
* every process carries :data:`OWNER_ENV` (our pid) in its environment; a run
  whose owner is gone is killed by :func:`reap_orphans` at the next start.

sysbench 1.0.20 cannot survive a lost connection that it is told to ignore: its
MySQL driver "reconnects" with ``mysql_close()`` then ``mysql_real_connect()`` on
the same handle, and MariaDB Connector/C (what Debian links it with) frees that
handle's options in ``mysql_close()`` — SIGSEGV in ``mysql_optionsv``, every time
(akopytov/sysbench#527; the fix, #528, is unreleased). A killed or restarted TiDB
thus took the whole client down. Where sysbench would have reconnected (the lost
connection's code is ignored), the driver does it for it: it runs the same command
again (same tables, no prepare), records the crash (``workload.restart``) and
counts it; a restart that cannot connect yet (TiDB still down) is retried.
:func:`after_exit` decides; a crash that is not that path — before the threads
started, without ignored connection errors, or :data:`MAX_CRASHES_IN_A_ROW`
times with nothing committed in between — stops the workload loudly as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from ..procs import process_alive
from ..redact import redact
from . import sysbench_cli as cli
from .driver import Reporter
from .errors import CONNECTION_ERRORS, IgnorePolicy, WorkloadError
from .metrics import Sample, Totals
from .target import Target

log = logging.getLogger("pytest_tidb_ha.workload")

OWNER_ENV = "PYTEST_TIDB_HA_WORKLOAD_OWNER"
#: How long start() waits for "Threads started!" (every connection up).
START_TIMEOUT = 60.0
#: SIGTERM -> SIGKILL grace on stop (sysbench has no SIGTERM handler: it dies at once).
KILL_GRACE = 2.0
#: FATAL lines kept for the error message.
MAX_FATALS = 20
#: The codes after which sysbench 1.0's MySQL driver reconnects when they are ignored
#: (CR_SERVER_GONE_ERROR, CR_SERVER_LOST, CR_TCP_CONNECTION, CR_SERVER_LOST_EXTENDED).
RECONNECT_CODES = (2006, 2011, 2013, 2055)
#: Crashes in its reconnect path with no committed transaction in between: then the
#: client cannot run here at all, and the workload stops with the crash as its error.
MAX_CRASHES_IN_A_ROW = 3
#: Wait before starting sysbench again: doubles from the first to the last (seconds).
RESTART_BACKOFF = (0.2, 2.0)

Step = Literal["restart", "retry", "fail"]


@dataclass(frozen=True)
class Exit:
    """How one sysbench process ended (while nobody was stopping it)."""

    rc: int
    threads_started: bool  # it printed "Threads started!"
    fatal: cli.Fatal | None  # its first FATAL line naming a code, if any
    restarted: bool  # it was itself a restart (the first one has start() to fail)


def after_exit(ex: Exit, ignore: IgnorePolicy, crashes_in_a_row: int) -> Step:
    """What to do about a sysbench that ended unasked (pure).

    ``restart``: it crashed (a signal) in the reconnect path — it had connected,
    and ignores a code it reconnects on — and fewer than
    :data:`MAX_CRASHES_IN_A_ROW` crashes (counting this one) came without a commit.
    ``retry``: a restart could not connect yet (the TiDB it lost is still down), whether
    it then exited or crashed closing the failed handle (a restart's thread init meets a
    killed TiDB: seen on the real binaries); sysbench's own reconnect loop would keep
    trying too, until stopped.
    ``fail``: anything else — the workload's error.
    """
    if (ex.restarted and not ex.threads_started and ex.fatal is not None
            and ex.fatal.code in CONNECTION_ERRORS):
        # whatever its exit: sysbench 1.0 may crash (#527) closing the handle that failed
        return "retry"
    if ex.rc < 0:
        if (ex.threads_started and any(ignore.ignores(c) for c in RECONNECT_CODES)
                and crashes_in_a_row + 1 < MAX_CRASHES_IN_A_ROW):
            return "restart"
        return "fail"
    return "fail"


def signal_name(rc: int) -> str:
    """``-11`` -> ``SIGSEGV``."""
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"

_version_cache: dict[str, str] = {}


def version(binary: str) -> str:
    """``sysbench --version`` (cached per binary): ``1.0.20``."""
    if binary not in _version_cache:
        try:
            out = subprocess.run([binary, "--version"], capture_output=True, text=True,  # noqa: S603 - the sysbench binary the user chose
                                 timeout=10, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        _version_cache[binary] = cli.parse_version(out) or "unknown version"
    return _version_cache[binary]


def reap_orphans(proc: Path = Path("/proc")) -> list[int]:
    """Kill sysbench processes started by a pytest that is gone; their pids.

    Only processes whose environment we can read (ours, or any as root) and
    that carry :data:`OWNER_ENV` naming a dead pid.
    """
    killed = []
    marker = f"{OWNER_ENV}=".encode()
    try:
        entries = list(proc.iterdir())
    except OSError:
        return []
    for d in entries:
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() != "sysbench":
                continue
            env = (d / "environ").read_bytes().split(b"\x00")
        except OSError:
            continue
        owner = next((e[len(marker):] for e in env if e.startswith(marker)), None)
        if owner is None or not owner.isdigit() or process_alive(int(owner)):
            continue
        with contextlib.suppress(OSError):
            os.kill(int(d.name), signal.SIGKILL)
            killed.append(int(d.name))
    if killed:
        log.warning("workload: killed %d sysbench processes left by a dead run: %s",
                    len(killed), killed)
    return killed


class SysbenchDriver:
    """``sysbench <oltp script> run`` until stopped; its reports become samples."""

    def __init__(self, binary: str, target: Target, run: cli.Run, reporter: Reporter,
                 *, start_timeout: float = START_TIMEOUT) -> None:
        self.binary = binary
        self.target = target
        self.run = run
        self.reporter = reporter
        self.start_timeout = start_timeout
        self.label = f"sysbench {version(binary)}"
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._started = threading.Event()  # threads started, or the process ended
        self._stopping = False
        self._lock = threading.Lock()
        self._t0: float | None = None  # timeline time of "Threads started!"
        self._errors: Counter[int] = Counter()  # ignored errors since the last report
        self._seen_codes: set[int] = set()
        self._fatals: list[cli.Fatal] = []
        self._tail: list[str] = []  # last lines, for an error message
        self._samples: list[Sample] = []
        self._start_t: float | None = None
        self._spawn_error: BaseException | None = None
        self._halt = threading.Event()  # stop(): no new process, no more backoff
        self._proc_started = False  # the current process printed "Threads started!"
        self._ever_started = False  # the first one did (start() returned)
        self._crashes_in_a_row = 0  # crashes since the last committed transaction
        #: sysbench processes started again after a crash in their reconnect path
        self.restarts = 0

    # -- the Driver seam ------------------------------------------------------------
    def start(self) -> None:
        reap_orphans()
        self._start_t = self.reporter.now()
        self._tmp = Path(tempfile.mkdtemp(prefix="tidb-ha-sysbench-"))
        script = self._tmp / f"tidb_ha_{self.run.subtype}.lua"
        script.write_text(cli.wrapper_script(self.run.subtype))
        config = None
        text = cli.config_text(self.target.password)
        if text:
            path = self._tmp / "password.cfg"
            path.touch(mode=0o600)
            path.write_text(text)
            config = str(path)
        cmd = cli.command(self.binary, str(script), config, self.run, self.target)
        log.info("workload: %s", " ".join(cmd))
        self._reader = threading.Thread(target=self._read, args=(cmd,), daemon=True,
                                        name="tidb-ha-sysbench")
        self._reader.start()
        if not self._started.wait(self.start_timeout):
            self.stop(KILL_GRACE)
            raise WorkloadError(f"sysbench did not start its threads within "
                                f"{self.start_timeout:g}s:\n{self._tail_text()}")
        if self._spawn_error is not None:
            self._cleanup_tmp()
            raise WorkloadError(f"cannot start sysbench: {self._spawn_error}")
        if not self._ever_started:  # the process ended before its threads started
            self.stop(KILL_GRACE)
            fatal = cli.first_error(self._fatals)
            rc = self._proc.returncode if self._proc is not None else None
            raise WorkloadError(
                "sysbench failed to start"
                + (f" (it crashed: {signal_name(rc)})" if rc is not None and rc < 0 else "")
                + (f": [{fatal.code}] {redact(fatal.message)}" if fatal else "")
                + f"\n{self._tail_text()}", fatal.code if fatal else None)

    def stop(self, timeout: float) -> list[str]:
        with self._lock:  # the reader starts no process after this
            self._stopping = True
            self._halt.set()
            proc = self._proc
        left: list[str] = []
        if proc is not None and proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            try:
                proc.wait(min(KILL_GRACE, timeout))
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                try:
                    proc.wait(max(0.5, timeout - KILL_GRACE))
                except subprocess.TimeoutExpired:
                    left.append(f"sysbench pid {proc.pid}")
        if self._reader is not None:
            self._reader.join(max(0.5, timeout / 2))
            if self._reader.is_alive():
                left.append(self._reader.name)
        self._cleanup_tmp()
        return left

    def totals(self, now: float) -> Totals:
        with self._lock:
            samples = list(self._samples)
        errors: Counter[int] = Counter()
        for s in samples:
            errors.update(s.errors)
        start = self._start_t if self._start_t is not None else now
        return Totals(sum(s.transactions for s in samples), sum(s.queries for s in samples),
                      dict(errors), max(0.0, now - start))

    # -- the process -----------------------------------------------------------------
    @staticmethod
    def _signal(proc: subprocess.Popen[str], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # its own session: the group is just sysbench
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)

    def _cleanup_tmp(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _tail_text(self) -> str:
        with self._lock:
            return redact("\n".join(self._tail[-15:]))

    def _read(self, cmd: list[str]) -> None:
        """Start the process (from this thread: pdeathsig follows the thread) and read it.

        Again after a crash in sysbench's reconnect path (see :func:`after_exit`).
        """
        setpriv = shutil.which("setpriv")
        argv = [setpriv, "--pdeathsig", "KILL", "--", *cmd] if setpriv else cmd
        env = dict(os.environ, **{OWNER_ENV: str(os.getpid())})
        restarted, retries = False, 0
        while True:
            with self._lock:
                if self._stopping:
                    break
                try:
                    proc = subprocess.Popen(  # noqa: S603 - sysbench with argv we build, no shell
                        argv, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            text=True, bufsize=1, errors="replace", env=env,
                                            start_new_session=True, cwd=self._tmp)
                except OSError as exc:
                    if restarted:
                        self.reporter.on_fatal(None, f"cannot start sysbench again: {exc}")
                    self._spawn_error = exc
                    self._started.set()
                    return
                self._proc = proc
                self._proc_started = False
                self._t0 = None
                self._fatals = []
            try:
                self._consume(proc.stdout)
            finally:
                rc = proc.wait()
                if not restarted:
                    self._started.set()
            if self._stopping:
                break
            ex = Exit(rc, self._proc_started, cli.first_error(self._fatals), restarted)
            step = after_exit(ex, self.run.ignore, self._crashes_in_a_row)
            if step == "fail":
                self._fail(ex)
                break
            if step == "restart":
                self._crashes_in_a_row += 1
                self.restarts += 1
                retries = 0
                self.reporter.on_restart(
                    f"sysbench crashed ({signal_name(rc)}) after a lost connection "
                    f"(sysbench 1.0's reconnect with MariaDB Connector/C); started again "
                    f"(crash {self._crashes_in_a_row} of {MAX_CRASHES_IN_A_ROW} "
                    f"without a commit)", self.restarts, redact(self._tail_text()))
            else:
                retries += 1
            restarted = True
            first, cap = RESTART_BACKOFF
            if self._halt.wait(min(cap, first * 2 ** max(0, retries - 1))):
                break

    def _fail(self, ex: Exit) -> None:
        if ex.fatal is not None and ex.rc >= 0:
            self.reporter.on_fatal(ex.fatal.code, redact(ex.fatal.message))
            return
        if ex.rc < 0:
            why = ("before its threads started" if not ex.threads_started
                   else f"{self._crashes_in_a_row + 1} times without a commit in between"
                   if any(self.run.ignore.ignores(c) for c in RECONNECT_CODES)
                   else "and no lost connection is ignored (no reconnect path)")
            self.reporter.on_fatal(None, f"sysbench crashed ({signal_name(ex.rc)}, rc "
                                         f"{ex.rc}) {why}:\n{self._tail_text()}")
            return
        self.reporter.on_fatal(None, f"sysbench exited unexpectedly (rc {ex.rc}):\n"
                                     f"{self._tail_text()}")

    def _consume(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            with self._lock:
                self._tail.append(line.rstrip())
                del self._tail[:-50]
            item = cli.parse_line(line)
            if item is None:
                continue
            if isinstance(item, cli.Report):
                self._on_report(item)
            elif isinstance(item, cli.IgnoredError):
                self._errors[item.code] += 1
                if item.code not in self._seen_codes:
                    self._seen_codes.add(item.code)
                    log.info("workload: sysbench ignores error [%s] %s (first of its kind)",
                             item.code, redact(item.message))
            elif isinstance(item, cli.Fatal):
                if len(self._fatals) < MAX_FATALS:
                    self._fatals.append(item)
            elif isinstance(item, cli.Started):
                self._t0 = self.reporter.now()
                self._proc_started = self._ever_started = True
                self._started.set()

    def _on_report(self, report: cli.Report) -> None:
        if self._t0 is None:
            self._t0 = self.reporter.now() - report.t
        # interval i covers [t0 + i - 1, t0 + i): sysbench's own clock, not our read time
        second = round(self._t0 + report.t - 1.0, 3)
        s = cli.sample(report, second, 1.0, self._errors)
        self._errors = Counter()
        if s.transactions > 0:
            self._crashes_in_a_row = 0
        with self._lock:
            self._samples.append(s)
        self.reporter.on_sample(s)
