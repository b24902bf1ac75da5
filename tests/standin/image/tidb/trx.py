"""``information_schema.cluster_tidb_trx`` / ``tidb_trx`` and ``data_lock_waits`` (pure).

The plugin's diagnostics name the open transactions on a stalled job's table from these
tables, as TiDB shows them: the transaction ``ID`` is its start TSO, ``START_TIME`` its
time (the plugin asks the server for its age: ``TIMESTAMPDIFF`` with ``NOW(6)``),
``RELATED_TABLE_IDS`` the tables it used, ``ALL_SQL_DIGESTS`` a JSON list of statement digests that
``TIDB_DECODE_SQL_DIGESTS`` turns back into statements (TiDB looks them up in its
statement summary; here the rows just rendered register their digests). The stand-in
keeps no cluster-wide pessimistic locks, so ``data_lock_waits`` is always empty.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

#: TiDB v7.5's columns (infoschema tables.go ``tableTiDBTrxCols``; the cluster table
#: adds INSTANCE first).
TRX_COLUMNS = [("ID", "int"), ("START_TIME", "datetime"), ("CURRENT_SQL_DIGEST", "str"),
               ("CURRENT_SQL_DIGEST_TEXT", "str"), ("STATE", "str"),
               ("WAITING_START_TIME", "datetime"), ("MEM_BUFFER_KEYS", "int"),
               ("MEM_BUFFER_BYTES", "int"), ("SESSION_ID", "int"), ("USER", "str"),
               ("DB", "str"), ("ALL_SQL_DIGESTS", "str"), ("RELATED_TABLE_IDS", "str")]
CLUSTER_TRX_COLUMNS = [("INSTANCE", "str"), *TRX_COLUMNS]
LOCK_WAITS_COLUMNS = [("KEY", "str"), ("KEY_INFO", "str"), ("TRX_ID", "int"),
                      ("CURRENT_HOLDING_TRX_ID", "int"), ("SQL_DIGEST", "str"),
                      ("SQL_DIGEST_TEXT", "str")]

_digests: dict[str, str] = {}
_digests_lock = threading.Lock()


def tso(wall: float) -> int:
    """A TSO for a wall-clock time: milliseconds above 18 logical bits, as PD's."""
    return int(wall * 1000) << 18


def digest(sql: str) -> str:
    d = hashlib.sha256(sql.encode()).hexdigest()
    with _digests_lock:
        _digests[d] = sql
    return d


def decode_digests(value: Any, limit: Any = None) -> str | None:
    """``TIDB_DECODE_SQL_DIGESTS(digests[, stmt_truncate_length])``: a JSON list of the
    statements (null for a digest it does not know), each cut to the length given."""
    if value is None:
        return None
    try:
        wanted = json.loads(value.decode() if isinstance(value, bytes) else str(value))
    except ValueError:
        return None
    n = int(limit) if limit is not None else 0
    with _digests_lock:
        out = [_digests.get(str(d)) for d in wanted] if isinstance(wanted, list) else []
    return json.dumps([s[:n] + "..." if s is not None and n and len(s) > n else s
                       for s in out])


def rows(txns: Iterable[Mapping[str, Any]], *, cluster: bool) -> list[list[Any]]:
    """One row per open transaction (``txns``: the MDL bookkeeping's records, each with
    the ``instance`` that reported it)."""
    out = []
    for t in txns:
        start = float(t.get("start") or 0.0)
        sql = [str(s) for s in t.get("sql", [])]
        current = sql[-1] if sql else None
        row = [tso(start), _dt.datetime.fromtimestamp(start),
               digest(current) if current else None, current, "Idle", None, 0, 0,
               t.get("session_id"), "root", t.get("db") or "",
               json.dumps([digest(s) for s in sql]),
               ",".join(str(i) for i in t.get("table_ids", ()))]
        out.append([t.get("instance", ""), *row] if cluster else row)
    return out
