"""A sysbench ``oltp_*`` workload: prepare, run, stop, cleanup — with either driver.

The seeds run ``sysbench oltp_read_write`` beside the jobs and faults. The run
goes to a driver (:mod:`.driver`): the real ``sysbench`` binary when it is on
PATH (:mod:`.driver_sysbench`), else our Python client (:mod:`.driver_python`).
Either way the metrics land on the test's own
:class:`~pytest_tidb_ha.timeline.Timeline` (``workload.metrics`` once per
second), so a report can show throughput dipping in each fault window, and
``workload.start`` records which driver ran.

Table preparation is ours for both (a bulk load, much faster than ``sysbench
prepare``'s row-at-a-time inserts on a cluster) and goes through
``client_factory`` (pymysql connections with timeouts).

Robustness is the point:

* errors are counted per MySQL code; an error outside ``ignore_errors`` stops
  the workload, is recorded as ``workload.error`` and re-raised by
  :meth:`Sysbench.stop` (sysbench exits on it by itself);
* :meth:`Sysbench.stop` returns within ``stop_timeout`` whatever the cluster
  does, and leaves no process or connection behind.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from ..events import WORKLOAD_RESTART
from ..redact import redact
from ..scenario.model import Workload
from ..scenario.sizing import scaled_size, scaled_threads
from ..timeline import Timeline
from . import statements as sql
from .driver import Choice, Driver, choose
from .driver_python import PythonDriver
from .driver_sysbench import SysbenchDriver
from .errors import IgnorePolicy, WorkloadError, classify
from .metrics import Aggregator, Sample, Totals
from .sysbench_cli import Run
from .target import Target

log = logging.getLogger("pytest_tidb_ha.workload")

#: How often a loading table reports progress at most (seconds).
PROGRESS_EVERY = 5.0
#: Attempts per bulk INSERT batch during prepare (the cluster may blip).
PREPARE_ATTEMPTS = 5
#: Wait before a batch's retry: doubles from the first to the last value (seconds).
PREPARE_BACKOFF = (0.2, 2.0)
#: The statement that tells whether the server has prepared statements (sysbench's
#: default ``--db-ps-mode=auto`` needs them; the stand-in TiDB has none).
PS_PROBE = ("PREPARE tidb_ha_ps_probe FROM 'SELECT 1'", "DEALLOCATE PREPARE tidb_ha_ps_probe")


class Connection(Protocol):
    """What we need of a pymysql connection (a fake one in unit tests)."""

    def cursor(self) -> Any: ...
    def close(self) -> Any: ...


ClientFactory = Callable[[], Connection]


def _close_quietly(conn: Connection | None) -> None:
    if conn is None:
        return
    with contextlib.suppress(Exception):
        conn.close()


class Sysbench:
    """sysbench ``oltp_read_write`` (or ``_read_only`` / ``_write_only``) on N tables.

    ``client_factory()`` returns a *new* pymysql-compatible connection with
    timeouts (used by :meth:`prepare`, :meth:`cleanup` and a probe); ``target``
    names the TiDB endpoints the run connects to (default: the factory's own
    ``target`` attribute, as :func:`~.connections.round_robin_factory` sets it).
    ``driver`` is ``auto`` (the binary when it is on PATH), ``sysbench`` or ``python``.
    """

    def __init__(
        self,
        client_factory: ClientFactory,
        spec: Workload,
        timeline: Timeline,
        *,
        target: Target | None = None,
        driver: str = "auto",
        size_scale: float = 1.0,
        keep_tables: int = 1,
        seed: int | None = None,
        stop_timeout: float = 5.0,
        loaders: int | None = None,
        batch_rows: int = sql.MAX_BATCH_ROWS,
    ) -> None:
        if spec.kind != "sysbench":
            raise ValueError(f"workload kind {spec.kind!r} is not supported (only 'sysbench')")
        if spec.threads < 1:
            raise ValueError(f"workload threads must be >= 1, got {spec.threads}")
        self.spec = spec
        self.timeline = timeline
        self.size = scaled_size(spec.tables, spec.table_size, size_scale, keep=keep_tables)
        self.size_scale = size_scale
        self.mix = sql.Mix.for_subtype(spec.subtype)
        self.policy = IgnorePolicy.of(spec.ignore_errors)
        self.db = spec.db
        self.threads = scaled_threads(spec.threads, size_scale)
        self.stop_timeout = stop_timeout
        self.batch_rows = max(1, min(batch_rows, sql.MAX_BATCH_ROWS))
        self.loaders = loaders or max(1, min(self.threads, self.size.tables, 4))
        self.target: Target | None = target if target is not None else getattr(
            client_factory, "target", None)
        self.choice: Choice = choose(driver, spec.subtype, self.target)
        self._factory = client_factory
        self._seed = random.randrange(1, 2**31) if seed is None else seed  # noqa: S311 - a workload seed, not a secret
        self._stop = threading.Event()
        self._prepare_abort = threading.Event()
        self._driver: Driver | None = None
        self._reporter: threading.Thread | None = None
        self._agg: Aggregator | None = None
        self._samples: list[Sample] = []
        self._samples_lock = threading.Lock()
        self._fatal: WorkloadError | None = None
        self._fatal_at: float | None = None
        self._fatal_lock = threading.Lock()
        self._seen_codes: set[int] = set()
        self._started = False
        self._stopped = False

    # -- public ------------------------------------------------------------
    @property
    def tables(self) -> int:
        return self.size.tables

    @property
    def table_size(self) -> int:
        return self.size.table_size

    @property
    def driver(self) -> str:
        """Which driver runs (``sysbench 1.0.20`` / ``python``), or will run."""
        return self._driver.label if self._driver is not None else self.choice.driver

    @property
    def samples(self) -> list[Sample]:
        """Per-second samples emitted so far (also on the timeline)."""
        with self._samples_lock:
            return list(self._samples)

    @property
    def error(self) -> WorkloadError | None:
        """The error that stopped the workload, if any."""
        return self._fatal

    @property
    def running(self) -> bool:
        return self._started and not self._stopped and self._fatal is None

    def totals(self) -> Totals:
        if self._driver is None:
            return Totals(0, 0, {}, 0.0)
        return self._driver.totals(self.timeline.now())

    def __repr__(self) -> str:
        return (f"Sysbench({self.spec.subtype}, db={self.db}, tables={self.tables}, "
                f"table_size={self.table_size}, threads={self.threads}, "
                f"ignore_errors={self.policy}, driver={self.choice.driver})")

    def prepare(self) -> None:
        """Create ``sbtest1..N`` and load them; tables already complete are reused."""
        started = time.monotonic()
        log.info("workload prepare: %s (scale %s of %d x %d)", self, self.size_scale,
                 self.spec.tables, self.spec.table_size)
        if self.spec.storage:
            log.info("workload prepare: storage %s is not restored; the rows are generated",
                     redact(self.spec.storage))
        conn = self._factory()
        try:
            cur = conn.cursor()
            cur.execute("SET autocommit = 1")
            cur.execute(sql.create_database(self.db))
        finally:
            _close_quietly(conn)
        # One failing table (or Ctrl-C) stops the others at their next batch.
        self._prepare_abort.clear()
        pool = ThreadPoolExecutor(self.loaders, thread_name_prefix="tidb-ha-load")
        try:
            futures = [pool.submit(self._prepare_table, n) for n in range(1, self.tables + 1)]
            for f in futures:
                f.result()
        finally:
            self._prepare_abort.set()
            pool.shutdown(wait=True, cancel_futures=True)
        seconds = time.monotonic() - started
        log.info("workload prepare: %d tables x %d rows ready in %.1fs", self.tables,
                 self.table_size, seconds)
        self.timeline.record("workload.prepare", db=self.db, tables=self.tables,
                             table_size=self.table_size, seconds=round(seconds, 3))

    def start(self) -> None:
        """Start the driver (and, for the Python one, the per-second metrics reporter)."""
        if self._started:
            raise RuntimeError("workload already started")
        if self.target is None:
            raise ValueError("Sysbench.start() needs target= (the TiDB endpoints), or a "
                             "client factory that carries one (round_robin_factory)")
        self._started = True
        now = self.timeline.now()
        ps_mode = None
        if self.choice.driver == "sysbench":
            ps_mode = "auto" if self._prepared_statements() else "disable"
            binary = shutil.which("sysbench") or "sysbench"
            run = Run(db=self.db, subtype=self.spec.subtype, tables=self.tables,
                      table_size=self.table_size, threads=self.threads, ignore=self.policy,
                      ps_mode=ps_mode, seed=self._seed)
            self._driver = SysbenchDriver(binary, self.target, run, self)
        else:
            self._agg = Aggregator(now)
            self._driver = PythonDriver(self.target, self.db, self.mix, self.tables,
                                        self.table_size, self.threads, self._seed, self._agg,
                                        self, self._stop)
        self.timeline.record("workload.start", db=self.db, subtype=self.spec.subtype,
                             tables=self.tables, table_size=self.table_size,
                             threads=self.threads, ignore_errors=str(self.policy),
                             driver=self._driver.label, driver_reason=self.choice.reason,
                             **({"ps_mode": ps_mode} if ps_mode else {}))
        log.info("workload start: %s with %s (%s)", self, self._driver.label,
                 self.choice.reason)
        try:
            self._driver.start()
        except BaseException as exc:
            self._stopped = True
            if isinstance(exc, WorkloadError):
                self.on_fatal(exc.code, str(exc))
            raise
        if self._agg is not None:
            self._reporter = threading.Thread(target=self._report_loop, daemon=True,
                                              name="tidb-ha-workload-metrics")
            self._reporter.start()

    def stop(self) -> Totals:
        """Stop within ``stop_timeout``; raise :class:`WorkloadError` if one stopped it."""
        if not self._started or self._stopped:
            if self._fatal is not None and not self._stopped:
                raise self._fatal
            return self.totals()
        self._stopped = True
        self._stop.set()
        deadline = time.monotonic() + self.stop_timeout
        assert self._driver is not None
        left = self._driver.stop(self.stop_timeout)
        if self._reporter is not None:
            self._reporter.join(max(0.0, deadline - time.monotonic()))
        self._flush(final=True)
        totals = self.totals()
        restarts = self._driver.restarts
        self.timeline.record("workload.stop", transactions=totals.transactions,
                             queries=totals.queries, errors=dict(totals.errors),
                             seconds=round(totals.seconds, 3), abandoned_threads=left,
                             driver=self._driver.label, restarts=restarts)
        log.info("workload stop: %d transactions (%.1f tps), %d errors %s%s%s",
                 totals.transactions, totals.tps, totals.error_count, dict(totals.errors),
                 f"; sysbench started again {restarts} time(s) after crashing" if restarts
                 else "", f"; did not stop in time: {left}" if left else "")
        if self._fatal is not None:
            raise self._fatal
        return totals

    def cleanup(self) -> None:
        """Drop ``sbtest1..N`` (the database itself may be shared: it stays)."""
        conn = self._factory()
        try:
            cur = conn.cursor()
            cur.execute("SET autocommit = 1")
            cur.execute(sql.use_database(self.db))
            for n in range(1, self.tables + 1):
                cur.execute(sql.drop_table(n))
            log.info("workload cleanup: dropped %d tables in %s", self.tables, self.db)
        finally:
            _close_quietly(conn)

    def __enter__(self) -> Sysbench:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- prepare -------------------------------------------------------------
    def _connect(self) -> tuple[Connection, Any]:
        conn = self._factory()
        try:
            cur = conn.cursor()
            cur.execute("SET autocommit = 1")
            cur.execute(sql.use_database(self.db))
        except BaseException:
            _close_quietly(conn)
            raise
        return conn, cur

    def _prepare_table(self, n: int) -> None:
        conn, cur = self._connect()
        try:
            cur.execute(sql.create_table(n))
            cur.execute(sql.count_rows(n))
            row = cur.fetchall()
            have = int(row[0][0]) if row else 0
            if have == self.table_size:
                log.info("workload prepare: %s already has %d rows, reusing it",
                         sql.table_name(n), have)
                return
            if have:
                log.info("workload prepare: %s has %d rows (want %d), recreating",
                         sql.table_name(n), have, self.table_size)
                cur.execute(sql.drop_table(n))
                cur.execute(sql.create_table(n))
            rng = random.Random(self._seed * 1000 + n)  # noqa: S311 - seeded workload data, not a secret
            loaded, last_log = 0, time.monotonic()
            for first, count in sql.batches(self.table_size, self.batch_rows):
                if self._prepare_abort.is_set():
                    raise WorkloadError(f"prepare of {sql.table_name(n)} abandoned: another "
                                        "table failed")
                text = sql.bulk_insert(n, first, count, self.table_size, rng)
                conn, cur = self._insert_batch(conn, cur, text)
                loaded += count
                if time.monotonic() - last_log >= PROGRESS_EVERY:
                    last_log = time.monotonic()
                    log.info("workload prepare: %s %d/%d rows (%d%%)", sql.table_name(n),
                             loaded, self.table_size, 100 * loaded // self.table_size)
            log.info("workload prepare: %s loaded, %d rows", sql.table_name(n), loaded)
        finally:
            _close_quietly(conn)

    def _insert_batch(self, conn: Connection, cur: Any, text: str) -> tuple[Connection, Any]:
        """Run one bulk INSERT, reconnecting and retrying on errors.

        A retry after a lost connection may find the batch already committed
        (the loss hit the reply): a duplicate-key error then means "done".
        """
        for attempt in range(1, PREPARE_ATTEMPTS + 1):
            try:
                cur.execute(text)
                return conn, cur
            except Exception as exc:
                c = classify(exc)
                if c.code == 1062 and attempt > 1:
                    return conn, cur
                if c.code is None or attempt == PREPARE_ATTEMPTS:
                    raise WorkloadError(f"workload prepare failed after {attempt} attempts: "
                                        f"[{c.code}] {c.message}", c.code) from exc
                log.warning("workload prepare: batch failed ([%s] %s), retrying", c.code,
                            c.message)
                first, cap = PREPARE_BACKOFF
                if self._prepare_abort.wait(min(cap, first * 2 ** (attempt - 1))):
                    raise WorkloadError("prepare abandoned: another table failed") from exc
                if c.connection_lost:
                    _close_quietly(conn)
                    conn, cur = self._connect()
        raise AssertionError("unreachable")

    # -- run -----------------------------------------------------------------
    def _prepared_statements(self) -> bool:
        """Does the server take prepared statements? (sysbench's default mode needs them)."""
        try:
            conn = self._factory()
        except Exception as exc:  # noqa: BLE001 - a probe: logged, sysbench keeps its default
            log.info("workload: prepared-statement probe could not connect (%s); "
                     "sysbench keeps its default", exc)
            return True
        try:
            cur = conn.cursor()
            for text in PS_PROBE:
                cur.execute(text)
            return True
        except Exception as exc:  # noqa: BLE001 - a probe: classified and logged below
            c = classify(exc)
            if c.connection_lost:
                return True  # says nothing about the server's SQL
            log.info("workload: the server has no prepared statements ([%s] %s); sysbench "
                     "runs with --db-ps-mode=disable", c.code, redact(c.message))
            return False
        finally:
            _close_quietly(conn)

    # the Reporter seam (drivers call these; see driver.Reporter)
    def now(self) -> float:
        return self.timeline.now()

    def on_fatal(self, code: int | None, message: str) -> None:
        with self._fatal_lock:
            if self._fatal is None:
                self._fatal = WorkloadError(
                    f"workload stopped by error [{code}] {message} "
                    f"(ignore_errors={self.policy})", code)
                self._fatal_at = self.timeline.now()
                self.timeline.record("workload.error", code=code, message=message,
                                     ignore_errors=str(self.policy))
                log.error("workload: error [%s] %s is not in ignore_errors=%s; stopping",
                          code, message, self.policy)
        self._stop.set()

    def on_error(self, code: int | None, message: str) -> bool:
        assert self._agg is not None
        self._agg.add_error(self.timeline.now(), -1 if code is None else code)
        if not self.policy.ignores(code):
            self.on_fatal(code, message)
            return False
        if code is not None and code not in self._seen_codes:
            self._seen_codes.add(code)
            log.info("workload: ignoring error [%s] %s (first of its kind)", code, message)
        return True

    def on_restart(self, reason: str, restarts: int, output: str) -> None:
        self.timeline.record(WORKLOAD_RESTART, reason=reason, restarts=restarts,
                             output=output, ignore_errors=str(self.policy))
        log.warning("workload: %s", reason)

    def on_sample(self, sample: Sample) -> None:
        with self._samples_lock:
            self._samples.append(sample)
        self.timeline.record("workload.metrics", **sample.event_data())

    # -- metrics ---------------------------------------------------------------
    def _report_loop(self) -> None:
        while not self._stop.is_set():
            now = self.timeline.now()
            # wake just after the next whole second of the timeline clock
            if self._stop.wait(1.0 - (now % 1.0) + 0.02):
                break
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        if self._agg is None:
            return
        now = self.timeline.now()
        if final:
            # after a fatal error nothing ran: do not report the idle tail as a stall
            end = now if self._fatal_at is None else min(now, self._fatal_at)
            samples = self._agg.drain_all(end)
        else:
            samples = self._agg.drain(now)
        for s in samples:
            self.on_sample(s)
