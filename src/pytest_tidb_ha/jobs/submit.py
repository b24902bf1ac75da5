"""Submitting ADD INDEX and IMPORT INTO jobs (the I/O edge; SQL shapes from docs/sql-contract.md).

Each job's statement runs on its own connection in its own named thread
(:class:`~.statement.StatementThread`): the ALTER blocks until the job ends and
a partition can freeze it, so the *watcher* decides the verdict, and the
statement's client error becomes part of it.

Job ids are found by difference: the ids on the target table before the
statement was sent are remembered, and the new job is the one that was not
there (ADD INDEX: whose QUERY names our fresh index; IMPORT: the new
``mysql.tidb_import_jobs`` row). A detached IMPORT returns its id directly.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..events import JOB_SUBMIT, JOBS_SETTING
from ..redact import redact
from ..scenario.model import AddIndexJob, ImportIntoJob
from ..scenario.switches import add_index_switches
from ..timeline import Timeline
from .catalog import CONNECTION_ERROR_CODES, SENSIBLE_CODES
from .checksum import checksum_check
from .handle import JobHandle, JobPolicy, JobTarget
from .model import ADD_INDEX, IMPORT_INTO, CheckResult
from .statement import StatementThread

log = logging.getLogger("pytest_tidb_ha.jobs")

#: Seconds a bookkeeping statement (SET GLOBAL, DROP INDEX, lookups) may take.
SHORT_TIMEOUT = 10.0
#: Seconds the blocking statement's read timeout exceeds the job timeout.
STATEMENT_SLACK = 60.0
DEFAULT_IMPORT_TABLE = ("CREATE TABLE IF NOT EXISTS {table} (id BIGINT NOT NULL, k INT NOT NULL, "
                        "c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, PRIMARY KEY (id))")


class SQLClient(Protocol):
    """What the jobs layer needs of ``cluster.client.TiDBClient``."""

    def query(self, sql: str, args: Any = None, *, node: str | None = None,
              database: str | None = None, timeout: float | None = None,
              idempotent: bool | None = None) -> list[dict[str, Any]]: ...

    def execute(self, sql: str, args: Any = None, *, node: str | None = None,
                database: str | None = None, timeout: float | None = None,
                idempotent: bool | None = None) -> int: ...

    def connect(self, node: str | None = None, database: str | None = None,
                read_timeout: float | None = None) -> Any: ...


#: Wall seconds a bookkeeping statement is retried through transient errors.
RETRY_DEADLINE = 60.0
#: Codes worth retrying: no TiDB answered / connection lost, PD/TiKV timeouts.
TRANSIENT_CODES = CONNECTION_ERROR_CODES | SENSIBLE_CODES | {2002}
T = TypeVar("T")


def retry_transient(fn: Callable[[], T], what: str, *, deadline: float = RETRY_DEADLINE) -> T:
    """Run a bookkeeping statement (SET GLOBAL, lookups, CREATE/DROP) through faults.

    A partition may be open when a run starts; the case is about the *job*,
    so transient errors (no TiDB answered, PD/TiKV timeouts) are retried with
    backoff until *deadline* seconds; anything else, or the deadline, raises.
    """
    end = time.monotonic() + deadline
    pause = 0.2
    wait = threading.Event()
    while True:
        try:
            return fn()
        except Exception as exc:
            code = getattr(exc, "code", None)
            if code not in TRANSIENT_CODES or time.monotonic() + pause > end:
                raise
            log.info("%s: transient error %s, retrying", what, redact(str(exc)))
            wait.wait(pause)
            pause = min(pause * 2, 2.0)


def execute_retrying(client: SQLClient, sql: str, *, timeout: float = SHORT_TIMEOUT * 3,
                     idempotent: bool = True, database: str | None = None) -> int:
    """``client.execute`` through transient errors (see :func:`retry_transient`)."""
    return retry_transient(
        lambda: client.execute(sql, timeout=timeout, idempotent=idempotent, database=database),
        redact(sql))


# -- naming / quoting ----------------------------------------------------------------
_name_lock = threading.Lock()
_last_ms = 0
_issued: set[str] = set()
_keys = itertools.count(1)


def fresh_index_name(now_ms: int | None = None) -> str:
    """``index_test_<ms>`` like the QA harness, unique within this process."""
    global _last_ms
    with _name_lock:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        ms = max(ms, _last_ms + 1)
        _last_ms = ms
        name = f"index_test_{ms}"
        _issued.add(name)
    return name


def issued_index_names() -> frozenset[str]:
    """Every index name this process handed out (never mistaken for a foreign queued job)."""
    with _name_lock:
        return frozenset(_issued)


def quote(ident: str) -> str:
    return "`" + ident.replace("`", "``") + "`"


def qualified(db: str, table: str) -> str:
    return f"{quote(db)}.{quote(table)}"


def text(value: Any) -> str:
    """Column values as text (QUERY is a BLOB in newer TiDB: bytes)."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def col(row: Mapping[str, Any], *names: str) -> Any:
    """A column by name, case-insensitively (names differ across versions)."""
    lower = {k.lower(): v for k, v in row.items()}
    for n in names:
        if n.lower() in lower:
            return lower[n.lower()]
    return None


def as_int(value: Any) -> int | None:
    try:
        return int(text(value)) if value is not None and text(value) != "" else None
    except ValueError:
        return None


# -- cluster settings ------------------------------------------------------------------
def on_off(flag: bool) -> str:
    return "ON" if flag else "OFF"


def configure(client: SQLClient, *, fast_reorg: bool | None = None,
              dist_task: bool | None = None, timeline: Timeline | None = None) -> None:
    """``SET GLOBAL`` the two switches the case names (None: leave alone)."""
    for var, flag in (("tidb_ddl_enable_fast_reorg", fast_reorg),
                      ("tidb_enable_dist_task", dist_task)):
        if flag is None:
            continue
        execute_retrying(client, f"SET GLOBAL {var} = {on_off(flag)}", timeout=SHORT_TIMEOUT)
        if timeline is not None:
            timeline.record(JOBS_SETTING, variable=var, value=on_off(flag))


# -- ADD INDEX ------------------------------------------------------------------------
def ddl_job_ids(client: SQLClient, db: str, table: str) -> frozenset[int]:
    rows = retry_transient(lambda: client.query(
        "SELECT JOB_ID FROM information_schema.ddl_jobs WHERE DB_NAME = %s AND TABLE_NAME = %s",
        (db, table), timeout=SHORT_TIMEOUT), f"job ids of {db}.{table}")
    return frozenset(i for i in (as_int(col(r, "JOB_ID")) for r in rows) if i is not None)


def add_index_sql(db: str, table: str, index: str, column: str) -> str:
    return f"ALTER TABLE {qualified(db, table)} ADD INDEX {quote(index)} ({quote(column)})"


def drop_index(client: SQLClient, db: str, table: str, index: str,
               timeout: float = SHORT_TIMEOUT * 3) -> None:
    """Drop a previous run's index; a missing index (rolled back) is fine."""
    sql = f"ALTER TABLE {qualified(db, table)} DROP INDEX {quote(index)}"
    try:
        retry_transient(lambda: client.execute(sql, timeout=timeout, idempotent=False), sql)
    except Exception as exc:  # noqa: BLE001 - 1091: it was never created
        if getattr(exc, "code", None) != 1091:
            log.warning("drop index %s on %s.%s failed: %s", index, db, table, exc)


def add_index_checks(client: SQLClient, spec: AddIndexJob) -> Any:
    """The post-``synced`` checks the case asks for (admin_check, count_check)."""

    def run(handle: JobHandle) -> list[CheckResult]:
        out: list[CheckResult] = []
        name = qualified(handle.target.db, handle.target.table)
        if spec.admin_check:
            try:
                client.query(f"ADMIN CHECK TABLE {name}", timeout=SHORT_TIMEOUT * 6)
                out.append(CheckResult("admin_check", True, f"ADMIN CHECK TABLE {name} passed"))
            except Exception as exc:  # noqa: BLE001 - the error is the result
                out.append(CheckResult("admin_check", False, f"ADMIN CHECK TABLE {name}: {exc}",
                                       getattr(exc, "code", None)))
        if spec.count_check and handle.target.index_name:
            out.append(count_check(client, handle.target.db, handle.target.table,
                                   handle.target.index_name))
        return out

    return run


def count_check(client: SQLClient, db: str, table: str, index: str) -> CheckResult:
    """Index count vs table count in one snapshot (the workload keeps writing)."""
    name = qualified(db, table)
    try:
        conn = client.connect(read_timeout=SHORT_TIMEOUT * 6)
    except Exception as exc:  # noqa: BLE001
        return CheckResult("count_check", False, f"no TiDB answered: {exc}")
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(f"SELECT COUNT(*) FROM {name} USE INDEX ({quote(index)})")  # noqa: S608 - quoted identifiers
            by_index = int(cur.fetchone()[0])
            cur.execute(f"SELECT COUNT(*) FROM {name} IGNORE INDEX ({quote(index)})")  # noqa: S608 - quoted identifiers
            by_table = int(cur.fetchone()[0])
            cur.execute("COMMIT")
    except Exception as exc:  # noqa: BLE001
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        return CheckResult("count_check", False, f"count check on {name} failed: {exc}", code)
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    ok = by_index == by_table
    return CheckResult("count_check", ok,
                       f"index {index} count {by_index} {'==' if ok else '!='} "
                       f"table count {by_table}", None if ok else 8133)


def submit_add_index(
    client: SQLClient,
    spec: AddIndexJob,
    run: int,
    timeline: Timeline,
    *,
    policy: JobPolicy,
    db: str | None = None,
    table: str | None = None,
    index: str | None = None,
    dist_task: bool | None = None,
    job_key: str | None = None,
) -> JobHandle:
    """Start run *run* (1-based) of an ADD INDEX job; returns at once.

    ``job_type`` ingest/txn sets ``tidb_ddl_enable_fast_reorg`` ON/OFF;
    ``dist_task`` (spec, else argument) sets ``tidb_enable_dist_task``; a ``txn``
    job runs with it OFF (TiDB refuses DXF without fast reorg: 8200), and asking
    for ``txn`` with ``dist_task`` on raises :class:`~..scenario.switches.SwitchError`.
    """
    db = db or spec.db
    table = table or spec.table
    index = index or fresh_index_name()
    with _name_lock:
        _issued.add(index)
    fast, dist = add_index_switches(
        spec.job_type, spec.dist_task if spec.dist_task is not None else dist_task)
    configure(client, fast_reorg=fast, dist_task=dist, timeline=timeline)
    known = ddl_job_ids(client, db, table)
    rows = table_rows(client, db, table)
    sql = add_index_sql(db, table, index, spec.index_col_name)
    job_key = job_key or f"add_index#{run}"
    stmt = StatementThread(lambda: client.connect(read_timeout=policy.timeout + STATEMENT_SLACK),
                           sql, name=f"tidb-ha-job-{job_key}")
    handle = JobHandle(job_key, JobTarget(ADD_INDEX, db, table, index, spec.index_col_name,
                                          known),
                       policy, query=redact(sql), submitted_at=timeline.now(), statement=stmt,
                       checks=add_index_checks(client, spec)
                       if (spec.admin_check or spec.count_check) else None)
    if rows is not None:
        handle.extra["table_rows"] = rows  # what the backfill must process (an estimate)
    timeline.record(JOB_SUBMIT, job_key=job_key, job_kind=ADD_INDEX, job_id=None,
                    query=redact(sql))
    log.info("%s: start adding index: %s", job_key, sql)
    stmt.start()
    return handle


def table_rows(client: SQLClient, db: str, table: str) -> int | None:
    """TiDB's row estimate of a table (``TABLE_ROWS``, from statistics); None if unknown.

    Only the ``timed-out`` verdict's estimate uses it, so any failure is ignored.
    """
    try:
        rows = client.query("SELECT TABLE_ROWS FROM information_schema.tables "
                            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (db, table),
                            timeout=SHORT_TIMEOUT)
    except Exception:  # noqa: BLE001 - an estimate, nothing depends on it
        return None
    value = as_int(col(rows[0], "TABLE_ROWS")) if rows else None
    return value if value else None


def find_ddl_job(client: SQLClient, handle: JobHandle) -> int | None:
    """The new job on the table whose QUERY names our index (None: not yet visible)."""
    t = handle.target
    rows = client.query("SELECT JOB_ID, QUERY FROM information_schema.ddl_jobs "
                        "WHERE DB_NAME = %s AND TABLE_NAME = %s", (t.db, t.table),
                        timeout=SHORT_TIMEOUT)
    found = []
    for r in rows:
        jid = as_int(col(r, "JOB_ID"))
        q = text(col(r, "QUERY"))
        if jid is None or jid in t.known_ids:
            continue
        if t.index_name and t.index_name in q:
            found.append(jid)
    return min(found) if found else None


# -- IMPORT INTO ---------------------------------------------------------------------
def import_job_ids(client: SQLClient, db: str, table: str) -> frozenset[int]:
    rows = retry_transient(lambda: client.query(
        "SELECT id FROM mysql.tidb_import_jobs WHERE table_schema = %s AND table_name = %s",
        (db, table), timeout=SHORT_TIMEOUT), f"import job ids of {db}.{table}")
    return frozenset(i for i in (as_int(col(r, "id")) for r in rows) if i is not None)


def format_option(key: str, value: object) -> str:
    if value is True or value is None:
        return key
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{key}={value}"
    return f"{key}='{value!s}'"


def import_sql(db: str, table: str, source: str, fmt: str | None,
               options: Mapping[str, object], detached: bool = False) -> str:
    """``IMPORT INTO d.t FROM '<src>' [FORMAT 'csv'] [WITH k=v, ..., detached]``."""
    opts = [format_option(k, v) for k, v in options.items()
            if v is not False and k.lower() != "detached"]
    if detached or options.get("detached") is True:
        opts.append("detached")
    sql = f"IMPORT INTO {qualified(db, table)} FROM '{source}'"
    if fmt:
        sql += f" FORMAT '{fmt}'"
    if opts:
        sql += " WITH " + ", ".join(opts)
    return sql


def write_import_data(folder: Path, spec: ImportIntoJob, workload_scale: float,
                      *, seed: int = 0) -> tuple[str, int]:
    """Write the case's ``generate`` CSV files; ``(container source glob, rows)``.

    Files are ``<db>.<table>.<n>.csv`` with a header line (so ``skip_rows=1``);
    the source is the case's ``/import/...`` path if it has one, else
    ``/import/<db>.<table>.*.csv``.
    """
    assert spec.generate is not None
    rows = spec.generate.scaled_rows(workload_scale)
    files = max(1, min(spec.generate.files, rows))
    folder.mkdir(parents=True, exist_ok=True)
    names: list[str]
    if spec.source_uri.startswith("/import/"):
        source = spec.source_uri
        pattern = source[len("/import/"):]
        if "*" in pattern:
            stem = pattern.split("*")[0].rstrip(".") or f"{spec.db}.{spec.table}"
            names = [f"{stem}.{n + 1}.csv" for n in range(files)]
        else:
            names = [pattern]
    else:
        stem = f"{spec.db}.{spec.table}"
        source = f"/import/{stem}.*.csv"
        names = [f"{stem}.{n + 1}.csv" for n in range(files)]
    files = len(names)
    rng = random.Random(seed)  # noqa: S311 - seeded import data, not a secret
    per = -(-rows // files)
    next_id = 1
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "k", "c", "pad"])
            for _ in range(min(per, rows - next_id + 1)):
                w.writerow([next_id, rng.randint(1, rows),
                            f"{rng.getrandbits(64):020d}-{next_id}",
                            f"{rng.getrandbits(32):010d}"])
                next_id += 1
        path.chmod(0o644)
    return source, rows


def import_checks(client: SQLClient, expected_rows: int | None,
                  crc32: int | None = None) -> Any:
    """Post-``finished`` checks: the row count of generated data, QA's crc32Checksum."""
    checksum = checksum_check(lambda t: client.connect(read_timeout=t), crc32) \
        if crc32 is not None else None

    def run(handle: JobHandle) -> list[CheckResult]:
        out: list[CheckResult] = []
        name = qualified(handle.target.db, handle.target.table)
        if expected_rows is not None:
            try:
                rows = client.query(f"SELECT COUNT(*) FROM {name}", timeout=SHORT_TIMEOUT * 6)  # noqa: S608 - a quoted table name
                got = int(next(iter(rows[0].values())))
            except Exception as exc:  # noqa: BLE001
                out.append(CheckResult("row_count", False, f"SELECT COUNT(*) FROM {name}: {exc}"))  # noqa: S608 - a message, not a query
            else:
                ok = got == expected_rows
                out.append(CheckResult("row_count", ok, f"table {name} has {got} rows, source "
                                                        f"has {expected_rows}", None if ok else 8133))
        if checksum is not None:
            out += checksum(handle)
        return out

    return run


def prepare_import_table(client: SQLClient, spec: ImportIntoJob, run: int,
                         db: str, table: str) -> None:
    """Create the database and the (empty) target table; recreate it for later runs.

    ``createTable`` / QA's ``schema`` runs in ``db`` (QA's is an unqualified
    ``CREATE TABLE user_data1 ...``); a table that already exists before the first
    run is the user's, so it is an error rather than dropped.
    """
    execute_retrying(client, f"CREATE DATABASE IF NOT EXISTS {quote(db)}")
    if run > 1:
        execute_retrying(client, f"DROP TABLE IF EXISTS {qualified(db, table)}")
    execute_retrying(client, spec.create_table
                     or DEFAULT_IMPORT_TABLE.format(table=qualified(db, table)), database=db)


def submit_import(
    client: SQLClient,
    spec: ImportIntoJob,
    run: int,
    timeline: Timeline,
    *,
    policy: JobPolicy,
    source: str | None = None,
    expected_rows: int | None = None,
    options: Mapping[str, object] | None = None,
    detached: bool = False,
    dist_task: bool | None = None,
    db: str | None = None,
    table: str | None = None,
    prepare: bool = True,
    job_key: str | None = None,
) -> JobHandle:
    """Start run *run* of an IMPORT INTO job; returns at once.

    The table is created first (``createTable`` or the default). With
    ``detached`` the statement returns the job row at once; otherwise it
    blocks until the job ends and the watcher finds the id meanwhile.
    """
    db = db or spec.db
    table = table or spec.table
    configure(client, dist_task=spec.dist_task if spec.dist_task is not None else dist_task,
              timeline=timeline)
    if prepare:
        prepare_import_table(client, spec, run, db, table)
    known = import_job_ids(client, db, table)
    if spec.cmd is not None:  # QA's cmd: the statement as written, in the job's database
        sql, database = spec.cmd, spec.db
    else:
        opts = dict(spec.options if options is None else options)
        sql = import_sql(db, table, source or spec.source_uri, spec.format, opts, detached)
        database = None
    job_key = job_key or f"import_into#{run}"
    stmt = StatementThread(lambda: client.connect(database=database,
                                                  read_timeout=policy.timeout + STATEMENT_SLACK),
                           sql, name=f"tidb-ha-job-{job_key}")
    checks = import_checks(client, expected_rows, spec.crc32_checksum) \
        if expected_rows is not None or spec.crc32_checksum is not None else None
    handle = JobHandle(job_key, JobTarget(IMPORT_INTO, db, table, known_ids=known), policy,
                       query=redact(sql), submitted_at=timeline.now(), statement=stmt,
                       checks=checks)
    handle.extra["expected_rows"] = expected_rows
    timeline.record(JOB_SUBMIT, job_key=job_key, job_kind=IMPORT_INTO, job_id=None,
                    query=redact(sql))
    log.info("%s: start importing: %s", job_key, redact(sql))
    stmt.start()
    return handle


def find_import_job(client: SQLClient, handle: JobHandle) -> int | None:
    """The detached statement's returned ``Job_ID``, else the new import row."""
    stmt = handle.statement
    if stmt is not None and stmt.rows:
        jid = as_int(col(stmt.rows[0], "Job_ID", "job_id"))
        if jid is not None:
            return jid
    ids = import_job_ids(client, handle.target.db, handle.target.table) - handle.target.known_ids
    return min(ids) if ids else None


def ids_text(ids: Sequence[int]) -> str:
    return ", ".join(str(i) for i in ids)
