"""The stand-in evaluates TiDB's dbutil checksum (QA's crc32Checksum) like TiDB (no Docker).

CRC32 of CONCAT_WS(',', columns..., CONCAT(ISNULL(column)...)) over the rows, XORed:
the plugin's own statement (jobs/checksum.py) parsed and evaluated by the stand-in
must give what the formula gives for the same rows.
"""

from __future__ import annotations

from typing import Any

import standin_helpers  # noqa: F401  (puts the image's modules on sys.path)
from tidb import sql as q

from pytest_tidb_ha.jobs.checksum import checksum_sql, crc32_of_rows


def _bit_xor(sql: str) -> q.Func:
    stmt = q.parse(sql)
    func = stmt.items[0].expr
    assert isinstance(func, q.Func)
    assert func.name == "BIT_XOR"
    return func


def test_standin_checksum_matches_the_formula() -> None:
    func = _bit_xor(checksum_sql("d", "t", ["id", "c", "pad"]))
    rows: list[dict[str, Any]] = [{"id": 1, "c": "a", "pad": "x"}, {"id": 2, "c": None, "pad": "y"},
            {"id": 3, "c": "é", "pad": ""}]
    expected = crc32_of_rows([("1", "a", "x"), ("2", None, "y"), ("3", "é", "")])
    assert q.aggregate(func, rows, q.Env()) == expected
    assert q.aggregate(func, rows[:1], q.Env()) != expected


def test_bit_xor_of_no_rows_is_zero() -> None:
    assert q.aggregate(_bit_xor(checksum_sql("d", "t", ["id"])), [], q.Env()) == 0
