"""``ADMIN CHECK TABLE``: every public secondary index must match the records exactly.

As TiDB (pkg/executor admin check, errors in pkg/errno), at one snapshot: first the counts (8133
``index-count:%d != record-count:%d``), then each record's entry and each entry's record
(8223 ``index-values:... != record-values:...``, the shape of the HA reports, e.g. pingcap/tidb
#50895). Comparing contents as well as counts matters: a lost entry and a stray one cancel
out in a count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import codec
from .catalog import Index, Table
from .sql import SQLError

if TYPE_CHECKING:
    from .server import Node


def check_table(node: Node, table: Table) -> None:
    """Raise the first inconsistency between ``table``'s records and its public indexes."""
    # One snapshot for the records and every index: the workload keeps writing meanwhile,
    # and TiDB checks at one timestamp — two scans at two moments disagree without a fault.
    snapshot = node.kv.snapshot()
    rp = codec.row_prefix(table.id)
    records = {
        codec.handle_of_row_key(k): vals
        for k, vals in node.kv.scan(rp, codec.prefix_end(rp), snapshot=snapshot)
    }
    for idx in table.secondary():
        if idx.state != "public":
            continue
        ip = codec.index_prefix(table.id, idx.id)
        entries = [k for k, _ in node.kv.scan(ip, codec.prefix_end(ip), snapshot=snapshot)]
        problem = first_inconsistency(table, idx, records, entries)
        if problem is not None:
            raise problem


def first_inconsistency(
    table: Table, idx: Index, records: dict[int, list[Any]], entries: list[str]
) -> SQLError | None:
    """The error ADMIN CHECK TABLE reports for ``idx`` (None when it matches) — pure."""
    prefix = f"data inconsistency in table: {table.name}, index: {idx.name}, "
    if len(entries) != len(records):
        return SQLError(
            8133, prefix + f"index-count:{len(entries)} != record-count:{len(records)}"
        )
    pos = [table.col_pos(c) for c in idx.columns]
    expected = {
        codec.index_key(table.id, idx.id, [vals[p] for p in pos], h): h for h, vals in records.items()
    }
    present = set(entries)
    for key, handle in expected.items():
        if key not in present:
            return SQLError(
                8223,
                prefix + f'handle: {handle}, index-values:"" != record-values:'
                f'"{_record_text(handle, [records[handle][p] for p in pos])}"',
            )
    for key in entries:
        if key not in expected:
            handle = codec.handle_of_index_key(key)
            return SQLError(
                8223, prefix + f'handle: {handle}, index-values:"handle: {handle}" != record-values:""'
            )
    return None


def _record_text(handle: int, values: list[Any]) -> str:
    kinds = " ".join(
        f"{'KindInt64' if isinstance(v, int) else 'KindString'} {v}" for v in values
    )
    return f"handle: {handle}, values: [{kinds}]"
