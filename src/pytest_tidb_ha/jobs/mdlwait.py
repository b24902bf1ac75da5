"""Why a DDL job does not move: an open transaction's metadata lock (pure).

With ``tidb_enable_metadata_lock`` (on by default since v6.5) a transaction that used a
table holds the table at the schema version it used until it ends, and the DDL owner
waits for it without a deadline before the job's next schema change of that table. A
forgotten ``BEGIN`` in a workload, or a client that died inside a transaction, so keeps an
``ADD INDEX`` ``running`` at ``delete only`` (or any state) with no progress -- a stuck
verdict whose cause is not in TiDB's DDL code at all, and that the diagnostics must name.

``mysql.tidb_mdl_view`` shows it: one row per (unfinished job, open transaction that used
its table), with the session, when its transaction started (v7.5: ``txnstart``; newer
releases: ``start_time``) and its statements (``SQL_DIGESTS``). v7.5's view lists every
unfinished job on such a table, including jobs queued behind the held one, and a
transaction that began after the job's last schema change, which holds nothing: the
notes say "may hold", and name the sessions to end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..redact import redact
from .submit import as_int, text

__all__ = ["VIEW_SQL", "explain"]

VIEW_SQL = "SELECT * FROM mysql.tidb_mdl_view"
#: Characters of a transaction's statements quoted in a note.
SQL_CHARS = 300


def explain(rows: Sequence[Mapping[str, Any]], job_ids: Iterable[int]) -> list[str]:
    """One note per job of ``job_ids`` that the view lists, naming the sessions whose open
    transactions may hold it (redacted: statements can carry secrets)."""
    wanted = set(job_ids)
    holders: dict[int, dict[int | None, Mapping[str, Any]]] = {}
    for row in rows:
        job = as_int(row.get("job_id"))
        if job in wanted and job is not None:
            holders.setdefault(job, {}).setdefault(as_int(row.get("session_id")), row)
    notes = []
    for job in sorted(holders):
        sessions = holders[job]
        first = next(iter(sessions.values()))
        table = f"{text(first.get('db_name'))}.{text(first.get('table_name'))}"
        who = "; ".join(
            f"session {sid} (transaction started "
            f"{text(row.get('txnstart') or row.get('start_time')) or '?'}; its statements: "
            f"{text(row.get('SQL_DIGESTS'))[:SQL_CHARS] or '?'})"
            for sid, row in sessions.items())
        notes.append(redact(
            f"job {job} on {table}: mysql.tidb_mdl_view lists open transactions on its table "
            f"that may hold it by their metadata lock -- {who}. TiDB keeps a DDL job at its "
            "schema state, without a deadline, until every transaction that used the table "
            "before the job's last schema change ends (tidb_enable_metadata_lock): end those "
            "sessions (KILL) or their transactions"))
    return notes
