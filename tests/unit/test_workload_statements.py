"""The workload's SQL text keeps to docs/sql-contract.md and sysbench's mix."""

from __future__ import annotations

import random
import re

import pytest

from pytest_tidb_ha.workload import statements as sql

# The "Workload" shapes of docs/sql-contract.md, ? = a literal.
INT = r"-?\d+"
STR = r"'[0-9-]*'"
CONTRACT = {
    "point": rf"SELECT c FROM sbtest(\d+) WHERE id = {INT}",
    "simple": rf"SELECT c FROM sbtest(\d+) WHERE id BETWEEN ({INT}) AND ({INT})",
    "sum": rf"SELECT SUM\(k\) FROM sbtest(\d+) WHERE id BETWEEN ({INT}) AND ({INT})",
    "order": rf"SELECT c FROM sbtest(\d+) WHERE id BETWEEN ({INT}) AND ({INT}) ORDER BY c",
    "distinct": rf"SELECT DISTINCT c FROM sbtest(\d+) WHERE id BETWEEN ({INT}) AND ({INT}) "
                r"ORDER BY c",
    "index_update": rf"UPDATE sbtest(\d+) SET k = k \+ 1 WHERE id = {INT}",
    "non_index_update": rf"UPDATE sbtest(\d+) SET c = {STR} WHERE id = {INT}",
    "delete": rf"DELETE FROM sbtest(\d+) WHERE id = ({INT})",
    "insert": rf"INSERT INTO sbtest(\d+) \(id, k, c, pad\) VALUES \(({INT}), {INT}, {STR}, {STR}\)",
}


def kind_of(stmt: str) -> str:
    kinds = [k for k, rx in CONTRACT.items() if re.fullmatch(rx, stmt)]
    assert len(kinds) == 1, f"statement matches {kinds} contract shapes: {stmt}"
    return kinds[0]


def test_create_table_is_the_contract_text() -> None:
    assert sql.create_table(7) == (
        "CREATE TABLE IF NOT EXISTS sbtest7 (id INT NOT NULL AUTO_INCREMENT, "
        "k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', "
        "pad CHAR(60) NOT NULL DEFAULT '', PRIMARY KEY (id), KEY k_7 (k))"
    )
    assert sql.drop_table(7) == "DROP TABLE IF EXISTS sbtest7"


def test_read_write_transaction_is_sysbench_default_mix() -> None:
    rng = random.Random(1)
    stmts = sql.transaction(sql.Mix(), tables=4, table_size=1000, rng=rng)
    kinds = [kind_of(s) for s in stmts]
    assert kinds == (["point"] * 10 + ["simple", "sum", "order", "distinct", "index_update",
                                       "non_index_update", "delete", "insert"])
    assert sql.Mix().statements == len(stmts) == 18


def test_ranges_span_range_size_and_ids_stay_in_table() -> None:
    rng = random.Random(2)
    for _ in range(200):
        for s in sql.transaction(sql.Mix(), tables=3, table_size=500, rng=rng):
            m = re.fullmatch(CONTRACT[kind_of(s)], s)
            assert m is not None
            assert 1 <= int(m.group(1)) <= 3
            if "BETWEEN" in s:
                a, b = int(m.group(2)), int(m.group(3))
                assert 1 <= a <= 500
                assert b - a + 1 == sql.RANGE_SIZE


def test_delete_and_insert_hit_the_same_id_and_table() -> None:
    stmts = sql.transaction(sql.Mix(), tables=9, table_size=10**6, rng=random.Random(3))
    d = re.fullmatch(CONTRACT["delete"], stmts[-2])
    i = re.fullmatch(CONTRACT["insert"], stmts[-1])
    assert d
    assert i
    assert d.groups() == i.groups()


@pytest.mark.parametrize(("subtype", "n", "writes"), [
    ("oltp_read_write", 18, True), ("oltp_read_only", 14, False), ("oltp_write_only", 4, True),
])
def test_subtypes(subtype: str, n: int, writes: bool) -> None:
    stmts = sql.transaction(sql.Mix.for_subtype(subtype), 1, 100, random.Random(0))
    assert len(stmts) == n
    assert any(not s.startswith("SELECT") for s in stmts) is writes


def test_unknown_subtype_names_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="oltp_read_write"):
        sql.Mix.for_subtype("oltp_point_select")


def test_bulk_insert_rows_and_value_sizes() -> None:
    text = sql.bulk_insert(2, 1001, 3, 5000, random.Random(4))
    assert text.startswith("INSERT INTO sbtest2 (id, k, c, pad) VALUES (1001, ")
    rows = re.findall(r"\((\d+), (\d+), '([0-9-]+)', '([0-9-]+)'\)", text)
    assert [int(r[0]) for r in rows] == [1001, 1002, 1003]
    for _, k, c, pad in rows:
        assert 1 <= int(k) <= 5000
        assert len(c) == 119
        assert len(pad) == 59


def test_bulk_insert_refuses_oversized_batches() -> None:
    with pytest.raises(ValueError, match=r"must be 1\.\.1000"):
        sql.bulk_insert(1, 1, sql.MAX_BATCH_ROWS + 1, 10, random.Random(0))


@pytest.mark.parametrize(("size", "batch", "expect"), [
    (1, 1000, [(1, 1)]),
    (2500, 1000, [(1, 1000), (1001, 1000), (2001, 500)]),
    (3000, 1000, [(1, 1000), (1001, 1000), (2001, 1000)]),
])
def test_batches_cover_every_id_once(size: int, batch: int,
                                     expect: list[tuple[int, int]]) -> None:
    assert sql.batches(size, batch) == expect
