"""Metadata locks (TiDB's MDL, ``tidb_enable_metadata_lock``: v6.3, on by default since v6.5).

A transaction that used a table holds the table's metadata lock at the schema version it
used until it ends. A TiDB reports a newer schema version, one that changed such a table,
only once no transaction of its own still holds the table at an older version; and the
DDL owner waits for that report without a deadline (``waitSchemaSyncedForMDL``): an open
transaction holds a DDL job at its current schema state for as long as it stays open.

Real tests rely on that hold: it keeps a job ``running`` at ``delete only`` on purpose,
for exactly as long as the test wants, where a backfill lasts only as long as it happens
to. Pure functions here; the server and the owner's wait call them.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from .trx import tso

#: What a transaction saw of a table: its columns and its indexes' states.
Fingerprint = tuple[tuple[str, ...], tuple[tuple[int, str], ...]]

#: The server record's field naming the tables whose newer version this TiDB holds back.
INFO_FIELD = "mdl_wait"
#: Statements of an open transaction kept for ``mysql.tidb_mdl_view``'s SQL_DIGESTS.
MAX_STATEMENTS = 50
#: ``mysql.tidb_mdl_view``: v7.5's (bootstrap.go ``CreateMDLView``: every unfinished job x
#: every open transaction that used its table, TxnStart from the processlist) and the newer
#: one (only jobs waiting in ``tidb_mdl_info``, ``start_time`` from ``cluster_tidb_trx``;
#: ``Surface.mdl_view_v8``).
VIEW_V75 = [("job_id", "int"), ("db_name", "str"), ("table_name", "str"), ("query", "str"),
            ("session_id", "int"), ("txnstart", "str"), ("SQL_DIGESTS", "str")]
VIEW_V8 = [*VIEW_V75[:5], ("start_time", "datetime"), VIEW_V75[6]]


class TableLike(Protocol):
    id: int
    columns: Any
    indexes: Any


class SchemaLike(Protocol):
    version: int

    def table_by_id(self, table_id: int) -> Any: ...


def fingerprint(t: TableLike) -> Fingerprint:
    return (tuple(c.name for c in t.columns), tuple((i.id, i.state) for i in t.indexes))


def acquire(held: dict[int, tuple[int, Fingerprint]], t: TableLike, version: int) -> bool:
    """Record that the open transaction used ``t`` at ``version``; True if it is new."""
    if t.id in held:
        return False
    held[t.id] = (version, fingerprint(t))
    return True


def blocking(holds: Iterable[Mapping[int, tuple[int, Fingerprint]]], schema: SchemaLike) -> list[int]:
    """Tables that ``schema`` changed under a transaction that still holds an older version."""
    out: set[int] = set()
    for held in holds:
        for table_id, (version, seen) in held.items():
            if version >= schema.version:
                continue
            t = schema.table_by_id(table_id)
            if t is None or fingerprint(t) != seen:
                out.add(table_id)
    return sorted(out)


def held_back(servers: Mapping[str, Mapping[str, Any]], table_id: int, version: int) -> bool:
    """Does some live TiDB hold ``version`` back for a transaction on ``table_id``?"""
    return any(
        table_id in (s.get(INFO_FIELD) or ()) and int(s.get("schema_version", 0)) < version
        for s in servers.values()
    )


def txn_record(session_id: int, start: float, held: Mapping[int, Any],
               sql: Iterable[str]) -> dict[str, Any]:
    """An open transaction that holds metadata locks, as a TiDB tells the others."""
    return {"session_id": session_id, "start": start, "table_ids": sorted(held),
            "sql": list(sql)}


def _txnstart(start: float) -> str:
    """The processlist's TxnStart: ``MM-DD HH:MM:SS.mmm(start ts)`` (a TSO from the time)."""
    t = _dt.datetime.fromtimestamp(start)
    return f"{t:%m-%d %H:%M:%S}.{t.microsecond // 1000:03d}({tso(start)})"


def view_rows(jobs: Iterable[Mapping[str, Any]], txns: Sequence[Mapping[str, Any]], *,
              newer: bool, waiting: Iterable[int] = ()) -> tuple[list[tuple[str, str]],
                                                                  list[list[Any]]]:
    """``mysql.tidb_mdl_view`` of the release: one row per (job, open transaction that used
    the job's table). v7.5 lists every unfinished job; the newer view only those that
    changed their table's schema and wait for a TiDB that holds it back (``waiting``: the
    jobs in ``tidb_mdl_info``), not a job queued behind them."""
    held_back = set(waiting)
    rows = []
    for job in jobs:
        if job.get("state") in ("synced", "cancelled"):
            continue
        if newer and (job.get("table_id") not in held_back
                      or job.get("schema_state", "none") == "none"):
            continue
        for txn in txns:
            if job.get("table_id") not in txn.get("table_ids", ()):
                continue
            start = float(txn.get("start") or 0.0)
            when: Any = (_dt.datetime.fromtimestamp(start) if newer else _txnstart(start))
            rows.append([job.get("id"), job.get("db"), job.get("table"), job.get("query", ""),
                         txn.get("session_id"), when, json.dumps(txn.get("sql", []))])
    return (VIEW_V8 if newer else VIEW_V75), rows
