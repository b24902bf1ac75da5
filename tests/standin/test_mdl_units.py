"""The stand-in's metadata locks (no Docker): which newer schema a TiDB holds back for an
open transaction, and the DDL owner waiting past the schema lease only while one does."""

from __future__ import annotations

import json
from typing import Any

import standin_helpers  # noqa: F401  (puts the image's modules on sys.path)
from tidb import mdl
from tidb.catalog import Column, Index, Schema, Table
from tidb.ddl import DDL


def table(table_id: int, *indexes: Index) -> Table:
    return Table(table_id, "db", 1, f"t{table_id}", [Column("id", "int", "INT")], list(indexes))


def schema(version: int, *tables: Table) -> Schema:
    return Schema(version=version, tables={(t.db, t.name): t for t in tables})


def test_a_transaction_holds_only_the_tables_a_newer_version_changed() -> None:
    held: dict[int, tuple[int, mdl.Fingerprint]] = {}
    assert mdl.acquire(held, table(1), 10)
    assert mdl.acquire(held, table(2), 10)
    assert not mdl.acquire(held, table(1, Index(5, "k", ["id"], state="delete only")), 11)
    assert held[1][0] == 10  # the version of the first use stays

    # version 11 changed t1 (an index at delete only), not t2; version 10 itself holds nothing
    newer = schema(11, table(1, Index(5, "k", ["id"], state="delete only")), table(2))
    assert mdl.blocking([held], newer) == [1]
    assert mdl.blocking([held], schema(10, table(1), table(2))) == []
    assert mdl.blocking([held], schema(11, table(2))) == [1]  # t1 dropped
    assert mdl.blocking([{}, held], newer) == [1]
    assert mdl.blocking([], newer) == []
    # a transaction that began under version 11 does not hold version 11 back
    assert mdl.blocking([{1: (11, mdl.fingerprint(table(1)))}], newer) == []


def test_a_server_holds_a_version_back_only_below_it() -> None:
    servers: dict[str, dict[str, Any]] = {
        "a": {"schema_version": 11, mdl.INFO_FIELD: []},
        "b": {"schema_version": 10, mdl.INFO_FIELD: [1]},
    }
    assert mdl.held_back(servers, 1, 11)
    assert not mdl.held_back(servers, 2, 11)
    assert not mdl.held_back(servers, 1, 10)
    assert not mdl.held_back({"a": {"schema_version": 10}}, 1, 11)  # a record without the field


class Owner:
    """The server registry as the owner reads it, one answer per look."""

    def __init__(self, answers: list[dict[str, dict[str, Any]]]) -> None:
        self.answers = answers
        self.looks = 0

    def servers(self) -> dict[str, dict[str, Any]]:
        self.looks += 1
        return self.answers[min(self.looks, len(self.answers)) - 1]


class Node:
    lease = 0.0  # the 2 * lease bound has passed at the first look

    def __init__(self, owner: Owner, is_owner: bool = True) -> None:
        self.owner = owner
        self._is_owner = is_owner

    def is_owner(self) -> bool:
        return self._is_owner


Servers = dict[str, dict[str, Any]]
HELD: Servers = {"a": {"schema_version": 11}, "b": {"schema_version": 10, mdl.INFO_FIELD: [1]}}
SLOW: Servers = {"a": {"schema_version": 11}, "b": {"schema_version": 10, mdl.INFO_FIELD: []}}
SYNCED: Servers = {"a": {"schema_version": 11}, "b": {"schema_version": 11, mdl.INFO_FIELD: []}}


def test_the_owner_waits_past_the_lease_while_a_transaction_holds_the_table() -> None:
    owner = Owner([HELD, HELD, HELD, SYNCED])
    DDL(Node(owner)).wait_synced(11, 1)  # type: ignore[arg-type]
    assert owner.looks == 4


def test_the_owner_stops_waiting_at_the_lease_without_a_hold() -> None:
    for answers, table_id, node_is_owner in (
        ([SLOW, SYNCED], 1, True),  # a slow TiDB: TiDB's 2 * lease bound
        ([HELD, SYNCED], None, True),  # a wait for no table (CREATE/DROP TABLE)
        ([HELD, SYNCED], 1, False),  # ownership lost: the new owner takes the job over
    ):
        owner = Owner(answers)
        DDL(Node(owner, node_is_owner)).wait_synced(11, table_id)  # type: ignore[arg-type]
        assert owner.looks == 1, (answers, table_id, node_is_owner)


JOBS = [
    {"id": 7, "db": "db", "table": "t1", "table_id": 1, "query": "ALTER TABLE t1 ADD INDEX i(c)",
     "state": "running", "schema_state": "delete only"},
    {"id": 8, "db": "db", "table": "t1", "table_id": 1, "query": "ALTER TABLE t1 ADD INDEX j(d)",
     "state": "queueing"},
    {"id": 9, "db": "db", "table": "t2", "table_id": 2, "query": "ALTER TABLE t2 ADD INDEX k(c)",
     "state": "running"},
    {"id": 6, "db": "db", "table": "t1", "table_id": 1, "query": "...", "state": "synced"},
]
TXN = mdl.txn_record(42, 1_700_000_000.25, {1: (10, ())}, ["SELECT id FROM t1 WHERE id = 1"])


def test_the_v75_view_lists_every_unfinished_job_on_a_table_an_open_transaction_used() -> None:
    columns, rows = mdl.view_rows(JOBS, [TXN], newer=False)
    assert [c for c, _ in columns] == ["job_id", "db_name", "table_name", "query", "session_id",
                                       "txnstart", "SQL_DIGESTS"]
    assert [(r[0], r[4]) for r in rows] == [(7, 42), (8, 42)]  # not t2's job, not the synced
    assert rows[0][5].endswith(f"({int(1_700_000_000.25 * 1000) << 18})"), rows[0][5]
    assert json.loads(rows[0][6]) == ["SELECT id FROM t1 WHERE id = 1"]


def test_the_newer_view_lists_only_the_jobs_a_lock_holds() -> None:
    columns, rows = mdl.view_rows(JOBS, [TXN], newer=True, waiting=[1])
    assert [c for c, _ in columns][5] == "start_time"
    assert [r[0] for r in rows] == [7]  # the job queued behind it waits for no lock
    assert mdl.view_rows(JOBS, [TXN], newer=True, waiting=[])[1] == []


def test_begin_inside_a_read_only_transaction_ends_it_and_its_metadata_locks() -> None:
    """TiDB's BEGIN (and SET autocommit = 1) commits the open transaction, also one that
    only read: the metadata locks it took must not outlive it."""
    from tidb.executor import Executor, Session

    for end in ("BEGIN", "SET autocommit = 1"):
        s = Session(conn_id=1, autocommit=end == "BEGIN")
        ex = Executor(None, s)  # type: ignore[arg-type]  # neither statement reads the node
        if end == "BEGIN":
            ex.do_begin()
        else:
            s.autocommit = False
        assert mdl.acquire(s.mdl_held, table(1), 10)
        s.txn_sql.append("SELECT * FROM t1")
        if end == "BEGIN":
            ex.do_begin()
            assert s.txn_open  # a new transaction, holding nothing yet
        else:
            ex.do_set([("session", "autocommit", 1)])
            assert not s.txn_open
        assert s.mdl_held == {}, end
        assert s.txn_sql == [], end
