"""Metadata locks (TiDB's MDL, ``tidb_enable_metadata_lock``, on by default since v6.3).

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

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

#: What a transaction saw of a table: its columns and its indexes' states.
Fingerprint = tuple[tuple[str, ...], tuple[tuple[int, str], ...]]

#: The server record's field naming the tables whose newer version this TiDB holds back.
INFO_FIELD = "mdl_wait"


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
