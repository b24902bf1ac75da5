"""One script of the plugin's own calls, run the same way on the real and the stand-in cluster.

Everything here goes through the plugin's code -- ``submit_add_index``, the
:class:`~pytest_tidb_ha.jobs.watch.Watcher`, ``issue_cancel``, role discovery, ``read_timers``,
``diagnostics.collect``, the resign injectors -- inside a
:class:`~realbin_transcript.Transcript` recording, so the transcripts of the two sides
can be compared call by call. The facts a differential test compares beyond shapes
(job states, cancel answers, error codes) are kept in ``transcript.facts``.

Jobs are txn ADD INDEX (``tidb_ddl_enable_fast_reorg=OFF``): the store in the real
cluster has no import service, so ingest is the stand-in's alone. Backfill is slowed
by TiDB's own knobs (batch size 32, one worker) on tables big enough that a cancel
certainly lands mid-backfill -- each test checks that precondition, it never assumes it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
from realbin_transcript import Transcript

from pytest_tidb_ha.cluster.roles import ddl_owner, pd_leader, roles_snapshot
from pytest_tidb_ha.faults.injectors import DdlOwnerResign, PdLeaderResign
from pytest_tidb_ha.jobs.cluster_timers import read_timers
from pytest_tidb_ha.jobs.diagnostics import collect
from pytest_tidb_ha.jobs.handle import JobHandle, JobPolicy, JobTarget
from pytest_tidb_ha.jobs.model import IMPORT_INTO
from pytest_tidb_ha.jobs.submit import configure, import_job_ids, submit_add_index
from pytest_tidb_ha.jobs.watch import JobReader, Watcher, issue_cancel
from pytest_tidb_ha.scenario.model import AddIndexJob, Duration
from pytest_tidb_ha.timeline import Timeline

if TYPE_CHECKING:
    from pytest_tidb_ha.cluster.handle import Cluster

log = logging.getLogger("pytest_tidb_ha.realbin")

DB = "realbin_diff"
#: A job id no cluster has (the import probes' "not found" path).
NO_SUCH_JOB = 987654
POLICY = JobPolicy(timeout=900.0, stall_window=900.0, cancel_window=60.0)
WAIT = 240.0


def observed(h: JobHandle) -> list[tuple[str | None, str | None]]:
    """Distinct (state, schema state) pairs the watcher saw, in order."""
    out: list[tuple[str | None, str | None]] = []
    for o in h.observations:
        pair = (o.state, o.schema_state)
        if not out or out[-1] != pair:
            out.append(pair)
    return out


def wait_for(what: str, cond: Callable[[], bool], timeout: float = WAIT) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def fill(client: Any, table: str, rows: int, *, doubling: bool = False) -> None:
    """Rows ``(i, i % 97, 'c-%08d', 'p-' i % 13)`` for i in 1..rows.

    ``doubling``: the first 1000 by VALUES, the rest by ``INSERT ... SELECT`` doubling the
    table (seconds on real TiDB, where 100 1000-row INSERTs took 12 s; the stand-in has
    no LPAD, and its tables are small). Either way the same rows.
    """
    client.execute(f"DROP TABLE IF EXISTS {DB}.{table}", timeout=60)
    client.execute(f"CREATE TABLE {DB}.{table} (id INT NOT NULL PRIMARY KEY, k INT NOT NULL, "
                   "c CHAR(60) NOT NULL, pad CHAR(30) NOT NULL)", timeout=60)
    step = 1000
    for lo in range(1, (min(rows, step) if doubling else rows) + 1, step):
        values = ", ".join(f"({i}, {i % 97}, 'c-{i:08d}', 'p-{i % 13}')"
                           for i in range(lo, min(rows, lo + step - 1) + 1))
        client.execute(f"INSERT INTO {DB}.{table} (id, k, c, pad) VALUES {values}", timeout=120)
    n = step
    while doubling and n < rows:
        client.execute(f"INSERT INTO {DB}.{table} (id, k, c, pad) SELECT id + {n}, (id + {n}) % 97, "
                       f"CONCAT('c-', LPAD(id + {n}, 8, '0')), CONCAT('p-', (id + {n}) % 13) "
                       f"FROM {DB}.{table} WHERE id + {n} <= {rows}", timeout=300)
        n *= 2


def add_index(client: Any, timeline: Timeline, table: str, column: str, key: str) -> JobHandle:
    spec = AddIndexJob(db=DB, table=table, index_col_name=column, timeout=Duration(900.0),
                       job_type="txn", dist_task=False)
    return submit_add_index(client, spec, 1, timeline, policy=POLICY, job_key=key)


def held_by_mdl(h: JobHandle) -> bool:
    """At its first schema change, waiting for a metadata lock (`hold_table`)."""
    o = h.latest
    return o is not None and o.state == "running" and o.schema_state == "delete only"


def job_states(client: Any, h: JobHandle) -> list[str]:
    rows = client.query("SELECT * FROM information_schema.ddl_jobs WHERE JOB_ID = %s",
                        (h.job_id,), timeout=10)
    return sorted({str(r.get("STATE")) for r in rows})


@dataclass(frozen=True)
class Hold:
    session_id: int
    release: Callable[[], None]


@contextlib.contextmanager
def hold_table(client: Any, table: str) -> Iterator[Hold]:
    """An open transaction that read ``table``: it holds the table's metadata lock.

    With ``tidb_enable_metadata_lock`` (on by default since v6.5), a DDL job's schema change
    of the table waits -- without a deadline -- until every transaction that used an older
    version of it has ended: the job stays ``running`` at its state (``delete only`` for an
    ADD INDEX submitted after the read) until the block ends or ``release()`` is called.
    """
    conn = client.connect(read_timeout=60)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(f"SELECT CONNECTION_ID() FROM {DB}.{table} WHERE id = 1")
            (session_id,) = cur.fetchone()
        yield Hold(int(session_id), conn.rollback)
    finally:
        conn.close()


def mdl_view(client: Any, hold: Hold, names: dict[int | None, str]) -> dict[str, Any]:
    """``mysql.tidb_mdl_view`` while ``hold`` is on: its columns, and per row which job
    (by ``names``), which table and whether the session is the holder's."""
    rows = client.query("SELECT * FROM mysql.tidb_mdl_view", timeout=10)
    return {"columns": list(rows[0]) if rows else [],
            "rows": sorted((names.get(_int(r.get("job_id")), "other"), str(r.get("table_name")),
                            _int(r.get("session_id")) == hold.session_id) for r in rows)}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def in_backfill(h: JobHandle) -> bool:
    o = h.latest
    return o is not None and o.schema_state == "write reorganization" and (o.row_count or 0) > 0


class _NoStatusPorts:
    """The cluster as role discovery sees it when no TiDB status port answers."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster

    def status_urls(self, component: str) -> dict[str, str]:
        return {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)


def drive(cluster: Any, side: str, *, big_rows: int, watch_rows: int,
          monkeypatch: pytest.MonkeyPatch, artifacts: Path) -> Transcript:
    """Run the script on *cluster*; the transcript of *side* (``real`` / ``standin``)."""
    tr = Transcript(side)
    facts = tr.facts
    client = cluster.client(connect_timeout=5, read_timeout=120, write_timeout=120)
    client.execute(f"DROP DATABASE IF EXISTS {DB}", timeout=60)
    client.execute(f"CREATE DATABASE {DB}", timeout=60)
    fill(client, "t_watch", watch_rows)
    fill(client, "t_cancel", big_rows, doubling=side == "real")
    fill(client, "t_queue", watch_rows)  # its jobs are held before any backfill
    for var, value in (("tidb_ddl_reorg_batch_size", 32), ("tidb_ddl_reorg_worker_cnt", 1)):
        client.execute(f"SET GLOBAL {var} = {value}", timeout=30)
    timeline = Timeline()
    watch_client = cluster.client(connect_timeout=2, read_timeout=5, write_timeout=5)
    watcher = Watcher(watch_client, timeline, poll_interval=0.25, call_timeout=5.0,
                      heartbeat=3600.0)
    started = time.monotonic()
    try:
        with tr.recording(monkeypatch):
            with tr.phase_of("roles"):
                facts["roles"] = roles_snapshot(cluster)
                # a proxy of the Cluster (all but status_urls): typed as the Cluster it wraps
                facts["owner_by_sql"] = ddl_owner(cast("Cluster", _NoStatusPorts(cluster)))

            with tr.phase_of("timers"):
                # the recovery timers as each cluster reports them (TiDB /info, the DDL
                # owner's etcd lease through PD's /v3, the store's /config, PD's config)
                timers, timer_notes = read_timers(cluster, "v7.5.0")
                facts["timers"] = {k: (t.seconds, t.origin) for k, t in timers.items()}
                facts["timer_notes"] = timer_notes

            with tr.phase_of("watch"):
                h = watcher.add(add_index(client, timeline, "t_watch", "c", "watch"))
                watcher.start()
                v = h.wait(WAIT)
                # the DXF reads of a job that has a task (txn jobs have none): by hand
                reader = JobReader(watch_client, 5.0)
                for history in (False, True):
                    reader.task("ddl/backfill/0", history=history)
                    reader.subtasks(0, history)
                facts["watch"] = {
                    "verdict": v.verdict if v else None, "states": observed(h),
                    "job_type": h.latest.job_type if h.latest else None,
                    "task_state": h.latest.task_state if h.latest else None,
                    "statement_error": h.client_error.code if h.client_error else None}

            with tr.phase_of("cancel"):
                c = watcher.add(add_index(client, timeline, "t_cancel", "c", "cancel"))
                wait_for("the cancel job's backfill", lambda: in_backfill(c) or c.terminal)
                facts["cancel_precondition"] = observed(c)
                probe = issue_cancel(watch_client, c, timeline, reason="test", window=60.0)
                wait_for("the cancelled job to end", lambda: c.terminal)
                wait_for("the cancelled statement to return",
                         lambda: c.statement is not None and c.statement.done, 60)
                facts["cancel"] = {
                    "result": probe.result, "accepted": probe.accepted,
                    "states": observed(c),
                    "statement_error": c.client_error.code if c.client_error else None}

            with tr.phase_of("cancel-finished"):
                again = issue_cancel(watch_client, h, timeline, reason="test", window=60.0)
                facts["cancel_finished"] = {"result": again.result, "accepted": again.accepted}

            with tr.phase_of("cancel-queued"):
                # The first job is held on purpose, not for as long as a backfill happens to
                # last: an open transaction that read the table holds its metadata lock, so
                # the job's first schema change waits for it (TiDB's MDL, see `hold_table`).
                with hold_table(client, "t_queue") as hold:
                    first = watcher.add(add_index(client, timeline, "t_queue", "c", "queue-first"))
                    wait_for("the first job to wait for the metadata lock",
                             lambda: held_by_mdl(first) or first.terminal)
                    queued = watcher.add(add_index(client, timeline, "t_queue", "pad", "queued"))
                    wait_for("the queued job's id", lambda: queued.job_id is not None, 60)
                    before = observed(queued)
                    probe = issue_cancel(watch_client, queued, timeline, reason="test",
                                         window=60.0)
                    right_after = job_states(client, queued)
                    view = mdl_view(client, hold, {first.job_id: "first", queued.job_id: "queued"})
                    time.sleep(2.0)  # what a while later looks like: the hold is still on
                    facts["cancel_queued"] = {
                        "before": before, "result": probe.result, "accepted": probe.accepted,
                        "first_still_running": not first.terminal,
                        "right_after": right_after, "two_s_later": job_states(client, queued),
                        "first_running_two_s_later": not first.terminal, "mdl_view": view}
                    issue_cancel(watch_client, first, timeline, reason="test", window=60.0)
                    facts["cancel_queued"]["first_while_held"] = observed(first)
                    hold.release()
                wait_for("both queue jobs to end", lambda: first.terminal and queued.terminal)
                facts["cancel_queued"]["final"] = [first.state, queued.state]

            with tr.phase_of("dxf-txn"):
                # The pair itself, sent by hand: TiDB's answer to it is the fact compared
                # (v7.5 runs it as txn; 8200 ErrUnsupportedDistTask only from v8.x).
                configure(client, fast_reorg=False, dist_task=True, timeline=timeline)
                try:
                    facts["dxf_txn"] = _error_of(lambda: client.execute(
                        f"ALTER TABLE {DB}.t_watch ADD INDEX dxf_txn (k)", timeout=WAIT,
                        idempotent=False))
                    rows = client.query(
                        "SELECT JOB_TYPE, STATE FROM information_schema.ddl_jobs "
                        "WHERE DB_NAME = %s AND TABLE_NAME = %s AND QUERY LIKE %s",
                        (DB, "t_watch", "%dxf_txn%"), timeout=10)
                    facts["dxf_txn"]["jobs"] = sorted(
                        (str(r["JOB_TYPE"]), str(r["STATE"])) for r in rows)
                finally:
                    configure(client, dist_task=False, timeline=timeline)

            with tr.phase_of("implicit-commit"):
                facts["implicit_commit"] = implicit_commit(client)

            with tr.phase_of("import"):
                imp = JobHandle("import", JobTarget(IMPORT_INTO, DB, "t_watch"), POLICY,
                                query="(none)", submitted_at=0.0, job_id=NO_SUCH_JOB)
                facts["import_show"] = _error_of(lambda: reader.observe(imp, timeline.now))
                probe = issue_cancel(watch_client, imp, timeline, reason="test", window=10.0)
                facts["import_cancel"] = {"result": probe.result, "accepted": probe.accepted}
                facts["import_ids"] = sorted(import_job_ids(watch_client, DB, "t_watch"))

            with tr.phase_of("diagnostics"):
                notes: list[str] = []
                collect(cluster, watch_client, timeline, artifacts / side, handles=[h, c, imp],
                        notes=notes)
                facts["diagnostics_notes"] = notes

            with tr.phase_of("resign"):
                ctx: Any = SimpleNamespace(cluster=cluster)
                old_leader, old_owner = pd_leader(cluster), ddl_owner(cluster)
                pd = PdLeaderResign(ctx)
                pd.apply()
                owner = DdlOwnerResign(ctx, (old_owner,) if old_owner else ())
                owner.apply()
                facts["resign"] = {"pd_answer": pd.answer, "owner_answer": owner.answer,
                                   "old_leader": old_leader, "old_owner": old_owner}
        wait_for("a PD leader after the resign", lambda: pd_leader(cluster) is not None, 60)
        wait_for("a DDL owner after the resign", lambda: ddl_owner(cluster) is not None, 120)
    finally:
        watcher.stop()
        for var, value in (("tidb_ddl_reorg_batch_size", 256), ("tidb_ddl_reorg_worker_cnt", 4)):
            client.execute(f"SET GLOBAL {var} = {value}", timeout=30)
    facts["seconds"] = round(time.monotonic() - started, 1)
    log.info("%s: driver done in %.0fs", side, facts["seconds"])
    return tr


def implicit_commit(client: Any) -> dict[str, Any]:
    """BEGIN; INSERT; DDL; ROLLBACK: does the DDL commit the open transaction first?"""
    conn = client.connect(read_timeout=60)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(f"INSERT INTO {DB}.t_watch (id, k, c, pad) VALUES (-1, 0, 'implicit', 'p')")
            cur.execute(f"CREATE TABLE {DB}.t_implicit (id INT PRIMARY KEY)")
            seen = client.query(f"SELECT COUNT(*) AS n FROM {DB}.t_watch WHERE id = -1",
                                timeout=10)[0]["n"]
            cur.execute("ROLLBACK")
            kept = client.query(f"SELECT COUNT(*) AS n FROM {DB}.t_watch WHERE id = -1",
                                timeout=10)[0]["n"]
    finally:
        conn.close()
    return {"visible_to_others_after_ddl": int(seen), "kept_after_rollback": int(kept)}


def _error_of(fn: Callable[[], Any]) -> dict[str, Any]:
    try:
        value = fn()
    except Exception as exc:  # noqa: BLE001 - the error is the observation
        return {"error_code": getattr(exc, "code", None), "error": str(exc)[:300]}
    return {"value": repr(value)[:300]}
