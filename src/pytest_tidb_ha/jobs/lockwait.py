"""Why a job's backfill does not move: an open transaction on its table (pure).

A transaction that locked rows of the table (``SELECT ... FOR UPDATE`` left open, a client
that died inside a pessimistic transaction) holds a txn ADD INDEX's backfill batch that
meets the lock: the batch backs off and retries, the job's row count stops and the job is
judged ``stuck``. TiDB v7.5 does not even cancel such a job while the lock stays (the
backfill looks for a cancel between batches only). Unlike a metadata lock
(:mod:`.mdlwait`), nothing in the DDL tables shows it, so the diagnostics name the
suspects from ``information_schema.cluster_tidb_trx``: every open transaction that touched
the job's table (``RELATED_TABLE_IDS``; a transaction whose list is empty too, as every
list is with the metadata lock off) and began before the job's last progress -- a short
workload transaction never qualifies. ``information_schema.data_lock_waits``, when it
lists a wait on a row of the table, names the holder for certain.

Ages are computed by the server in the same query (``TIMESTAMPDIFF`` of ``START_TIME`` and
``NOW(6)``, both in the session's time zone), so neither a time zone nor this host's clock
enters the comparison. ``TIDB_CURRENT_TSO()`` would not do: outside an explicit
transaction real TiDB answers 0. The sessions of the plugin's own statements (a blocking
``ALTER TABLE`` shows as an open transaction as long as its job runs) are no suspects.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..redact import redact
from .submit import as_int, col, text

__all__ = ["LOCK_WAITS_SQL", "TRX_SQL", "Silent", "explain"]

#: One row per open transaction of every TiDB; its statements decoded (TiDB keeps digests).
TRX_SQL = ("SELECT INSTANCE, ID, START_TIME, "
           "TIMESTAMPDIFF(MICROSECOND, START_TIME, NOW(6)) AS AGE_US, STATE, SESSION_ID, "
           "USER, DB, CURRENT_SQL_DIGEST_TEXT, RELATED_TABLE_IDS, "
           "TIDB_DECODE_SQL_DIGESTS(ALL_SQL_DIGESTS, 200) AS SQLS "
           "FROM information_schema.cluster_tidb_trx ORDER BY ID LIMIT 100")
LOCK_WAITS_SQL = ("SELECT `KEY`, KEY_INFO, TRX_ID, CURRENT_HOLDING_TRX_ID, SQL_DIGEST_TEXT "
                  "FROM information_schema.data_lock_waits LIMIT 100")
#: Said of a suspect whose tables TiDB does not report: it fills ``RELATED_TABLE_IDS`` from
#: the transaction's metadata locks (session.go ``TxnInfo``: ``GetRelatedTableForMDL``), so
#: with the metadata lock off every transaction's list is empty.
UNKNOWN_TABLES = (" -- its tables are not reported (RELATED_TABLE_IDS is empty with "
                  "tidb_enable_metadata_lock off)")
#: Characters of a transaction's statements quoted in a note.
SQL_CHARS = 300
#: Seconds a suspect may have begun *after* the job's last progress was observed (one poll:
#: the last progress is seen up to a poll interval after it happened).
SLACK = 2.0


@dataclass(frozen=True)
class Silent:
    """A job that stopped moving: its table and how long it has been without progress."""

    job_id: int
    table: str  # db.table
    table_id: int
    silent_for: float  # seconds


def age_seconds(row: Mapping[str, Any]) -> float | None:
    """How long the transaction has been open, as the server computed it."""
    us = as_int(col(row, "AGE_US"))
    return None if us is None else us / 1e6


def table_ids(value: Any) -> set[int]:
    """``RELATED_TABLE_IDS``: a comma-separated list ("" when none)."""
    out = set()
    for part in text(value).replace("[", "").replace("]", "").split(","):
        n = as_int(part.strip())
        if n is not None:
            out.add(n)
    return out


def _key_table(key_info: Any) -> int | None:
    try:
        info = json.loads(text(key_info))
    except ValueError:
        return None
    return as_int(info.get("table_id")) if isinstance(info, dict) else None


def statements(row: Mapping[str, Any]) -> str:
    """The transaction's statements: ``SQLS`` (a JSON list; null for a digest TiDB's
    statement summary no longer holds), else the one it runs now."""
    raw = text(col(row, "SQLS"))
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = raw
    if isinstance(decoded, list):
        decoded = "; ".join(str(s) for s in decoded if s)
    return str(decoded or "") or text(col(row, "CURRENT_SQL_DIGEST_TEXT"))


def _describe(row: Mapping[str, Any]) -> str:
    age = age_seconds(row)
    return (f"session {text(col(row, 'SESSION_ID')) or '?'} on "
            f"{text(col(row, 'INSTANCE')) or '?'} (transaction {text(col(row, 'ID'))}, "
            f"{text(col(row, 'STATE')) or '?'}, open "
            f"{'?' if age is None else f'{age:.0f}s'}; its statements: "
            f"{statements(row)[:SQL_CHARS] or '?'})")


def explain(trx: Sequence[Mapping[str, Any]], waits: Sequence[Mapping[str, Any]],
            jobs: Iterable[Silent], ours: Collection[int] = ()) -> list[str]:
    """One note per job of *jobs* with suspects: open transactions on its table that began
    before its last progress, and transactions ``data_lock_waits`` shows holding one of its
    rows. ``ours``: the sessions of the plugin's own statements, never suspects.
    Redacted: statements can carry secrets."""
    rows = [r for r in trx if as_int(col(r, "SESSION_ID")) not in ours]
    by_id = {as_int(col(r, "ID")): r for r in rows}
    notes = []
    for job in jobs:
        holders: dict[int | None, str] = {}
        for w in waits:
            if _key_table(col(w, "KEY_INFO")) != job.table_id:
                continue
            hid = as_int(col(w, "CURRENT_HOLDING_TRX_ID"))
            row = by_id.get(hid)
            if row is not None:
                holders[hid] = (_describe(row) + f", holding a row that transaction "
                                f"{text(col(w, 'TRX_ID'))} waits for")
        for tid, row in by_id.items():
            tables = table_ids(col(row, "RELATED_TABLE_IDS"))
            age = age_seconds(row)
            if (tid is None or tid in holders or (tables and job.table_id not in tables)
                    or age is None or age + SLACK < job.silent_for):
                continue
            holders[tid] = _describe(row) + ("" if tables else UNKNOWN_TABLES)
        if not holders:
            continue
        notes.append(redact(
            f"job {job.job_id} on {job.table}: no progress for {job.silent_for:.0f}s, and "
            f"open transactions that may use its table began before that, whose row locks may "
            f"hold its backfill -- {'; '.join(holders.values())}. A txn backfill batch that "
            "meets a row lock retries until the lock goes (TiDB does not cancel the job "
            "meanwhile): end those sessions (KILL) or their transactions"))
    return notes
