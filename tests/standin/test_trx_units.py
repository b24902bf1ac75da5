"""The stand-in's ``cluster_tidb_trx`` rows and the functions the plugin's diagnostics call
on them (no Docker): the plugin's own query, parsed and evaluated by the stand-in's SQL
engine over the rows it serves, gives what :mod:`pytest_tidb_ha.jobs.lockwait` reads."""

from __future__ import annotations

import json
import time
from typing import Any

import standin_helpers  # noqa: F401  (puts the image's modules on sys.path)
from tidb import sql as q
from tidb import trx
from tidb.executor import Env, Session
from tidb.sql.evaluator import evaluate

from pytest_tidb_ha.jobs import lockwait


def txns(start: float) -> list[dict[str, Any]]:
    return [{"session_id": 9, "start": start, "table_ids": [112, 5],
             "sql": ["SELECT * FROM t_idx WHERE id = 8000 FOR UPDATE"], "instance": "a:10080"}]


def answer(sql: str, columns: list[tuple[str, str]], rows: list[list[Any]]) -> list[dict[str, Any]]:
    """*sql*'s select list evaluated over *rows* as the stand-in's executor does."""
    stmt = q.parse(sql)
    env = Env(None, Session(conn_id=1))  # type: ignore[arg-type]  # NOW and the decoder need no node
    names = [c.lower() for c, _ in columns]
    return [{item.name: evaluate(item.expr, dict(zip(names, row, strict=True)), env)
             for item in stmt.items} for row in rows]


def test_the_plugins_query_reads_age_tables_and_statements() -> None:
    before = time.time()
    start = before - 40.0
    (row,) = answer(lockwait.TRX_SQL, trx.CLUSTER_TRX_COLUMNS, trx.rows(txns(start), cluster=True))
    waited = time.time() - before  # however long the evaluation took on a loaded machine
    named = {k.upper(): v for k, v in row.items()}
    assert named["INSTANCE"] == "a:10080"
    assert named["SESSION_ID"] == 9
    assert lockwait.table_ids(named["RELATED_TABLE_IDS"]) == {112, 5}
    age = lockwait.age_seconds(named)
    assert age is not None, named
    assert 40.0 - 0.001 <= age <= 40.0 + waited + 0.001, (named, waited)
    assert lockwait.statements(named) == "SELECT * FROM t_idx WHERE id = 8000 FOR UPDATE"
    assert named["ID"] >> 18 == int(start * 1000)  # a start TSO


def test_the_decoder_cuts_each_statement_to_the_length_asked() -> None:
    (row,) = trx.rows(txns(time.time()), cluster=False)
    assert len(row) == len(trx.TRX_COLUMNS)
    digests = row[[c for c, _ in trx.TRX_COLUMNS].index("ALL_SQL_DIGESTS")]
    assert json.loads(trx.decode_digests(digests, 6) or "null") == ["SELECT..."]


def test_unknown_digests_decode_to_null() -> None:
    assert json.loads(trx.decode_digests(json.dumps(["00ff"])) or "null") == [None]
    assert trx.decode_digests(None) is None
    assert trx.decode_digests("not json") is None


def test_timestampdiff_truncates_toward_zero() -> None:
    from tidb.sql.evaluator import timestampdiff

    assert timestampdiff("SECOND", "2026-12-02 07:54:14.258000", "2026-12-02 07:54:16.100000") == 1
    assert timestampdiff("MICROSECOND", "2026-12-02 07:54:14", "2026-12-02 07:54:14.5") == 500000
    assert timestampdiff("SECOND", "2026-12-02 07:54:16.9", "2026-12-02 07:54:15") == -1
    assert timestampdiff("SECOND", None, "2026-12-02 07:54:15") is None
