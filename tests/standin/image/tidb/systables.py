"""Rows of the system tables the plugin reads (reference §2.1, §3.5, §4.1, §4.2).

Returns ``(columns, rows)`` with TiDB's column names and order; the generic
SELECT in the executor filters, groups, orders and limits them.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import TYPE_CHECKING, Any

from common.env import scaled
from common.etcd import EtcdError
from common.httpclient import Unreachable, get_json
from common.versions import surface

from . import codec, mdl, trx
from .kv import TiKVTimeout
from .sql import SQLError

if TYPE_CHECKING:
    from .executor import Session
    from .server import Node

DDL_JOBS_COLUMNS = [
    ("JOB_ID", "int"),
    ("DB_NAME", "str"),
    ("TABLE_NAME", "str"),
    ("JOB_TYPE", "str"),
    ("SCHEMA_STATE", "str"),
    ("SCHEMA_ID", "int"),
    ("TABLE_ID", "int"),
    ("ROW_COUNT", "int"),
    ("CREATE_TIME", "datetime"),
    ("START_TIME", "datetime"),
    ("END_TIME", "datetime"),
    ("STATE", "str"),
    ("QUERY", "str"),
]
IMPORT_JOBS_COLUMNS = [
    ("id", "int"),
    ("create_time", "datetime"),
    ("start_time", "datetime"),
    ("update_time", "datetime"),
    ("end_time", "datetime"),
    ("table_schema", "str"),
    ("table_name", "str"),
    ("table_id", "int"),
    ("created_by", "str"),
    ("parameters", "str"),
    ("source_file_size", "int"),
    ("status", "str"),
    ("step", "str"),
    ("summary", "str"),
    ("error_message", "str"),
]
GLOBAL_TASK_COLUMNS = [
    ("id", "int"),
    ("task_key", "str"),
    ("type", "str"),
    ("dispatcher_id", "str"),
    ("state", "str"),
    ("priority", "int"),
    ("create_time", "datetime"),
    ("start_time", "datetime"),
    ("state_update_time", "datetime"),
    ("end_time", "datetime"),
    ("meta", "blob"),
    ("concurrency", "int"),
    ("step", "int"),
    ("target_scope", "str"),
    ("error", "blob"),
]
SUBTASK_COLUMNS = [
    ("id", "int"),
    ("step", "int"),
    ("namespace", "str"),
    ("task_key", "str"),
    ("ddl_physical_tid", "int"),
    ("type", "int"),
    ("exec_id", "str"),
    ("exec_expired", "datetime"),
    ("state", "str"),
    ("checkpoint", "blob"),
    ("concurrency", "int"),
    ("create_time", "datetime"),
    ("start_time", "int"),
    ("state_update_time", "int"),
    ("end_time", "datetime"),
    ("meta", "blob"),
    ("ordinal", "int"),
    ("error", "blob"),
    ("summary", "str"),
]


#: DXF columns TiDB added after v7.5: a real v7.5.0 tidb-server has none of them
#: (tests/realbin/test_differential.py); v8.x shapes as above.
V8_TASK_COLUMNS = frozenset({"priority", "create_time", "end_time", "target_scope"})
V8_SUBTASK_COLUMNS = frozenset({"concurrency", "create_time", "end_time", "ordinal"})


def for_release(columns: list[tuple[str, str]], rows: list[list[Any]],
                newer: frozenset[str]) -> tuple[list[tuple[str, str]], list[list[Any]]]:
    """The table as the release the stand-in plays shows it (v7.x: without *newer*)."""
    if surface().dxf_v8_columns:
        return columns, rows
    keep = [i for i, (name, _) in enumerate(columns) if name not in newer]
    return [columns[i] for i in keep], [[r[i] for i in keep] for r in rows]


def _t(ts: float | None) -> _dt.datetime | None:
    return None if not ts else _dt.datetime.fromtimestamp(ts).replace(microsecond=0)


def _blob(v: Any) -> bytes | None:
    if v is None:
        return None
    return (v if isinstance(v, str) else json.dumps(v)).encode()


def _task_row(t: dict[str, Any]) -> list[Any]:
    return [
        t["id"],
        t["task_key"],
        t["type"],
        t.get("dispatcher_id", ""),
        t["state"],
        t.get("priority", 1),
        _t(t.get("create_time")),
        _t(t.get("start_time")),
        _t(t.get("state_update_time")),
        _t(t.get("end_time")),
        _blob(t.get("meta")),
        t.get("concurrency", 4),
        t.get("step", -1),
        t.get("target_scope", ""),
        _blob(t.get("error")),
    ]


def _subtask_row(s: dict[str, Any]) -> list[Any]:
    return [
        s["id"],
        s["step"],
        s.get("namespace", ""),
        s["task_key"],
        s.get("ddl_physical_tid", 0),
        s.get("type", 0),
        s.get("exec_id"),
        _t(s.get("exec_expired")),
        s["state"],
        _blob(s.get("checkpoint")),
        s.get("concurrency", 4),
        _t(s.get("create_time")),
        int(s["start_time"]) if s.get("start_time") else 0,
        int(s["state_update_time"]) if s.get("state_update_time") else 0,
        _t(s.get("end_time")),
        _blob(s.get("meta")),
        s.get("ordinal", 0),
        _blob(s.get("error")),
        json.dumps(s.get("summary") or {}),
    ]


#: Rows counted per table at most: TiDB's ``TABLE_ROWS`` is an estimate from statistics
#: (``stats_meta.count``, kept current by DML deltas), never a full scan of a big table.
TABLE_ROWS_CAP = 200_000


def table_rows(node: Node, table_id: int) -> int | None:
    """``TABLE_ROWS``: the table's live rows (at most `TABLE_ROWS_CAP`); NULL if TiKV does not
    answer (the plugin reads it as the share an ADD INDEX backfill has done, ``progress``)."""
    start = codec.row_prefix(table_id)
    end = codec.prefix_end(start)
    count = 0
    try:
        while count < TABLE_ROWS_CAP:
            items, last = node.kv.scan_limited(start, end, 4000)
            count += len(items)
            if last is None:
                break
            start = last + "\0"
    except TiKVTimeout:
        return None
    return min(count, TABLE_ROWS_CAP)


def cluster_mdl_txns(node: Node) -> tuple[list[dict[str, Any]], list[int]]:
    """Every TiDB's open transactions that hold metadata locks (each asked over its status
    port, as TiDB's ``cluster_*`` tables ask), and the tables some TiDB holds back."""
    try:
        servers = node.owner.servers()
    except EtcdError:
        servers = {}
    txns = local_txns(node)
    waiting: set[int] = set(node.mdl_wait)
    for ddl_id, info in servers.items():
        waiting.update(info.get(mdl.INFO_FIELD) or ())
        if ddl_id == node.ddl_id or not info.get("status_port"):
            continue
        instance = f"{info['ip']}:{info['status_port']}"
        try:
            status, body = get_json(f"http://{instance}/standin/mdl", timeout=scaled(2.0, 0.5))
        except (Unreachable, OSError):
            continue  # TiDB's cluster tables skip an unreachable instance (with a warning)
        if status == 200 and isinstance(body, list):
            txns.extend(dict(t, instance=instance) for t in body if isinstance(t, dict))
    return txns, sorted(waiting)


def local_txns(node: Node) -> list[dict[str, Any]]:
    """This TiDB's open transactions, each with its ``instance`` (status address)."""
    instance = f"{node.advertise}:{node.opts.status_port}"
    return [dict(t, instance=instance) for t in node.mdl_txns()]


def render(
    node: Node, db: str, name: str, session: Session
) -> tuple[list[tuple[str, str]], list[list[Any]]]:
    if db == "mysql" and name == "tidb_mdl_view":
        txns, waiting = cluster_mdl_txns(node)
        return mdl.view_rows([j for j, _ in node.ddl.active_jobs()], txns,
                             newer=node.surface.mdl_view_v8, waiting=waiting)
    if db == "information_schema" and name == "ddl_jobs":
        return DDL_JOBS_COLUMNS, node.ddl.ddl_job_rows()
    if db == "information_schema" and name == "cluster_tidb_trx":
        return trx.CLUSTER_TRX_COLUMNS, trx.rows(cluster_mdl_txns(node)[0], cluster=True)
    if db == "information_schema" and name == "tidb_trx":
        return trx.TRX_COLUMNS, trx.rows(local_txns(node), cluster=False)
    if db == "information_schema" and name == "data_lock_waits":
        return trx.LOCK_WAITS_COLUMNS, []
    if db == "mysql" and name == "tidb_import_jobs":
        return IMPORT_JOBS_COLUMNS, node.importer.table_rows()
    if db == "mysql" and name in ("tidb_global_task", "tidb_global_task_history"):
        return for_release(GLOBAL_TASK_COLUMNS, [
            _task_row(t) for t in node.dxf.tasks(history=name.endswith("history"))
        ], V8_TASK_COLUMNS)
    if db == "mysql" and name in ("tidb_background_subtask", "tidb_background_subtask_history"):
        return for_release(SUBTASK_COLUMNS, [
            _subtask_row(s) for s in node.dxf.subtasks(history=name.endswith("history"))
        ], V8_SUBTASK_COLUMNS)
    if db == "information_schema" and name == "schemata":
        schema = node.schema.reload()
        rows = [
            ["def", d["name"], "utf8mb4", "utf8mb4_bin", None, None] for d in schema.dbs.values()
        ]
        return [
            ("CATALOG_NAME", "str"),
            ("SCHEMA_NAME", "str"),
            ("DEFAULT_CHARACTER_SET_NAME", "str"),
            ("DEFAULT_COLLATION_NAME", "str"),
            ("SQL_PATH", "str"),
            ("TIDB_PLACEMENT_POLICY_NAME", "str"),
        ], rows
    if db == "information_schema" and name == "tables":
        schema = node.schema.reload()
        rows = [
            ["def", t.db, t.name, "BASE TABLE", "InnoDB", table_rows(node, t.id), t.id]
            for t in schema.tables.values()
        ]
        return [
            ("TABLE_CATALOG", "str"),
            ("TABLE_SCHEMA", "str"),
            ("TABLE_NAME", "str"),
            ("TABLE_TYPE", "str"),
            ("ENGINE", "str"),
            ("TABLE_ROWS", "int"),
            ("TIDB_TABLE_ID", "int"),
        ], rows
    if db == "information_schema" and name == "tidb_indexes":
        schema = node.schema.reload()
        rows = []
        for t in schema.tables.values():
            for idx in t.indexes:
                if idx.state != "public":
                    continue
                for seq, col in enumerate(idx.columns, start=1):
                    rows.append(
                        [
                            t.db,
                            t.name,
                            0 if idx.unique else 1,
                            idx.name,
                            seq,
                            col,
                            None,
                            "",
                            idx.id,
                            "YES",
                            None,
                            1 if idx.primary else 0,
                        ]
                    )
        return [
            ("TABLE_SCHEMA", "str"),
            ("TABLE_NAME", "str"),
            ("NON_UNIQUE", "int"),
            ("KEY_NAME", "str"),
            ("SEQ_IN_INDEX", "int"),
            ("COLUMN_NAME", "str"),
            ("SUB_PART", "int"),
            ("INDEX_COMMENT", "str"),
            ("INDEX_ID", "int"),
            ("IS_VISIBLE", "str"),
            ("EXPRESSION", "str"),
            ("CLUSTERED", "int"),
        ], rows
    raise SQLError(1146, f"Table '{db}.{name}' doesn't exist", "42S02")
