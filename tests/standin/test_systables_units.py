"""``information_schema.tables.TABLE_ROWS`` of the TiDB role (no Docker): the live row count a
``when: {progress: …}`` trigger of an ADD INDEX divides by, capped like an estimate, NULL
when TiKV does not answer."""

from __future__ import annotations

from typing import Any

import pytest
import standin_helpers  # noqa: F401  (puts the image's modules on sys.path)
from tidb import codec, systables
from tidb.kv import TiKVTimeout


class KV:
    """Rows of table 7 (``n`` handles) and of table 8 (three), paged like TiKV's scan."""

    def __init__(self, n: int, down: bool = False) -> None:
        keys = [codec.row_key(7, h) for h in range(n)] + [codec.row_key(8, h) for h in range(3)]
        self.keys = sorted(keys)
        self.down = down

    def scan_limited(self, start: str, end: str, limit: int) -> tuple[list[tuple[str, Any]], str | None]:
        if self.down:
            raise TiKVTimeout("scan reached [] of ['tikv-0']")
        inside = [k for k in self.keys if start <= k < end]
        page = inside[:limit]
        return [(k, {}) for k in page], (page[-1] if len(inside) > limit else None)


class Node:
    def __init__(self, kv: KV) -> None:
        self.kv = kv


@pytest.mark.parametrize("n", [0, 1, 4000, 9001])
def test_table_rows_counts_one_tables_rows(n: int) -> None:
    assert systables.table_rows(Node(KV(n)), 7) == n  # type: ignore[arg-type]


def test_table_rows_is_capped_and_null_without_tikv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(systables, "TABLE_ROWS_CAP", 5000)
    assert systables.table_rows(Node(KV(9001)), 7) == 5000  # type: ignore[arg-type]
    assert systables.table_rows(Node(KV(10, down=True)), 7) is None  # type: ignore[arg-type]
