"""System variables the plugin reads or sets (reference §5 defaults).

GLOBAL values persist in etcd (``sysvars/<name>``) so every TiDB sees them, like
``mysql.global_variables``; session values live in the session.
"""

from __future__ import annotations

from typing import Any

from .sql import SQLError

# name -> (default, kind) ; kind "bool" shows ON/OFF for tidb_* and 1/0 for MySQL ones
DEFAULTS: dict[str, tuple[Any, str]] = {
    "tidb_enable_dist_task": ("ON", "bool"),
    "tidb_ddl_enable_fast_reorg": ("ON", "bool"),
    "tidb_ddl_reorg_worker_cnt": (4, "int"),
    "tidb_ddl_reorg_batch_size": (256, "int"),
    "tidb_ddl_error_count_limit": (512, "int"),
    "tidb_cloud_storage_uri": ("", "str"),
    "tidb_max_dist_task_nodes": (-1, "int"),
    "tidb_service_scope": ("", "str"),
    "autocommit": (1, "int"),
    "max_allowed_packet": (67108864, "int"),
    "sql_mode": (
        "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
        "ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION",
        "str",
    ),
    "character_set_client": ("utf8mb4", "str"),
    "character_set_connection": ("utf8mb4", "str"),
    "character_set_results": ("utf8mb4", "str"),
    "character_set_server": ("utf8mb4", "str"),
    "collation_connection": ("utf8mb4_bin", "str"),
    "collation_server": ("utf8mb4_bin", "str"),
    "time_zone": ("SYSTEM", "str"),
    "system_time_zone": ("UTC", "str"),
    "transaction_isolation": ("REPEATABLE-READ", "str"),
    "tx_isolation": ("REPEATABLE-READ", "str"),
    "lower_case_table_names": (2, "int"),
    "wait_timeout": (28800, "int"),
    "interactive_timeout": (28800, "int"),
    "version_comment": (
        "TiDB Server (Apache License 2.0) Community Edition, MySQL 8.0 compatible",
        "str",
    ),
    "tidb_txn_mode": ("pessimistic", "str"),
    "tidb_enable_ddl": ("ON", "bool"),
    "tidb_enable_metadata_lock": ("ON", "bool"),
}

READ_ONLY = {
    "version",
    "version_comment",
    "hostname",
    "port",
    "lower_case_table_names",
    "system_time_zone",
}


def normalize(name: str, value: Any) -> Any:
    """Validate a SET value like TiDB (ON/OFF/1/0 for booleans); raises 1231/1232."""
    if name not in DEFAULTS:
        raise SQLError(1193, f"Unknown system variable '{name}'")
    if name in READ_ONLY:
        raise SQLError(1238, f"Variable '{name}' is a read only variable")
    default, kind = DEFAULTS[name]
    if isinstance(value, str) and value.upper() == "DEFAULT":
        return default
    if kind == "bool":
        text = str(value).upper()
        if text in ("1", "ON", "TRUE"):
            return "ON"
        if text in ("0", "OFF", "FALSE"):
            return "OFF"
        raise SQLError(1231, f"Variable '{name}' can't be set to the value of '{value}'", "42000")
    if kind == "int":
        try:
            return int(str(value))
        except ValueError:
            raise SQLError(1232, f"Incorrect argument type to variable '{name}'", "42000") from None
    return str(value)


def is_on(value: Any) -> bool:
    return str(value).upper() in ("ON", "1", "TRUE")
