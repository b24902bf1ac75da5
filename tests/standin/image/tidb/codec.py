"""Key layout of user data in the TiKV role (pure functions).

``t<table_id>_r<handle>`` holds a row (list of column values in column order),
``t<table_id>_i<index_id>_<values>_<handle>`` an index entry. Integers are
offset-encoded to fixed width so keys sort like the values, as in TiDB's codec.
"""

from __future__ import annotations

from typing import Any

_OFFSET = 1 << 63


def enc_int(v: int) -> str:
    return f"{int(v) + _OFFSET:020d}"


def dec_int(s: str) -> int:
    return int(s) - _OFFSET


def row_prefix(table_id: int) -> str:
    return f"t{table_id:010d}_r"


def row_key(table_id: int, handle: int) -> str:
    return row_prefix(table_id) + enc_int(handle)


def handle_of_row_key(key: str) -> int:
    return dec_int(key.rsplit("_r", 1)[1])


def index_prefix(table_id: int, index_id: int) -> str:
    return f"t{table_id:010d}_i{index_id:06d}_"


def enc_value(v: Any) -> str:
    if v is None:
        return "n"
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return "i" + enc_int(v)
    return "s" + str(v).encode().hex()


def index_key(table_id: int, index_id: int, values: list[Any], handle: int) -> str:
    return (
        index_prefix(table_id, index_id)
        + ".".join(enc_value(v) for v in values)
        + "_"
        + enc_int(handle)
    )


def handle_of_index_key(key: str) -> int:
    return dec_int(key.rsplit("_", 1)[1])


def prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
