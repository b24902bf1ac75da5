"""The notes that name open transactions on a stalled backfill's table (no Docker).

Rows are shaped as real TiDB v7.5.0 answered the plugin's queries of
``information_schema.cluster_tidb_trx`` and ``data_lock_waits`` (the bundle of
tests/realbin/test_ha_realbin.py's row-lock test): upper-case columns, the transaction ID a
start TSO, ``RELATED_TABLE_IDS`` "" with the metadata lock off, ``SQLS`` a JSON list with
nulls, the age computed by the server.
"""

from __future__ import annotations

import json
from typing import Any

from pytest_tidb_ha.jobs import lockwait
from pytest_tidb_ha.jobs.diagnostics import LOCK_WAITS, TRX, lock_findings
from pytest_tidb_ha.jobs.model import is_terminal

TABLE_ID = 104


def trx(session: int, age: float | None, tables: str = str(TABLE_ID),
        sqls: str = '["begin pessimistic","select `id` from `t_lock` where `id` = ? for update"]',
        **kw: Any) -> dict[str, Any]:
    row = {"INSTANCE": "tidb-0:10080", "ID": 470862542735409156 + session,
           "START_TIME": "2026-12-02 07:54:14.258000",
           "AGE_US": None if age is None else int(age * 1e6), "STATE": "Idle",
           "SESSION_ID": session, "USER": "root", "DB": "test",
           "CURRENT_SQL_DIGEST_TEXT": None, "RELATED_TABLE_IDS": tables, "SQLS": sqls}
    row.update(kw)
    return row


JOB = lockwait.Silent(job_id=7, table="test.t_lock", table_id=TABLE_ID, silent_for=30.0)


def test_an_open_transaction_older_than_the_silence_is_named() -> None:
    notes = lockwait.explain([trx(41, 95.0)], [], [JOB])
    assert len(notes) == 1
    note = notes[0]
    assert note.startswith("job 7 on test.t_lock: no progress for 30s")
    assert "session 41 on tidb-0:10080" in note
    assert "open 95s" in note
    assert "for update" in note
    assert "KILL" in note


def test_a_short_transaction_is_not_a_suspect() -> None:
    """A workload's transactions on the very table, and the bundle's own queries, last
    milliseconds: younger than the silence."""
    assert lockwait.explain([trx(42, 0.05), trx(43, 3.0)], [], [JOB]) == []


def test_a_transaction_without_an_age_is_not_a_suspect() -> None:
    assert lockwait.explain([trx(42, None)], [], [JOB]) == []


def test_a_transaction_on_other_tables_is_not_a_suspect() -> None:
    assert lockwait.explain([trx(44, 95.0, tables="5,113")], [], [JOB]) == []


def test_a_transaction_whose_tables_are_not_reported_is_a_suspect_said_so() -> None:
    """TiDB fills RELATED_TABLE_IDS from the metadata locks: with them off, every list is
    empty, and an old transaction may hold the rows all the same."""
    notes = lockwait.explain([trx(44, 95.0, tables="")], [], [JOB])
    assert len(notes) == 1
    assert "session 44" in notes[0]
    assert "tidb_enable_metadata_lock off" in notes[0]
    assert lockwait.explain([trx(44, 3.0, tables="")], [], [JOB]) == []


def test_the_plugins_own_statement_is_no_suspect() -> None:
    """The blocking ALTER TABLE shows as an open transaction as long as its job runs."""
    alter = trx(45, 40.0, tables="", sqls="[null]")
    assert lockwait.explain([alter], [], [JOB], ours={45}) == []
    assert lockwait.explain([alter], [], [JOB]) != []


def test_a_lock_wait_on_the_table_names_its_holder_whatever_its_age() -> None:
    holder = trx(46, 1.0)
    wait = {"KEY": "7480000000000000685F728000000000001F40",
            "KEY_INFO": json.dumps({"db_name": "test", "table_name": "t_lock",
                                    "handle_type": "int", "handle_value": "8000",
                                    "db_id": 102, "table_id": TABLE_ID}),
            "TRX_ID": 470862543691972618, "CURRENT_HOLDING_TRX_ID": holder["ID"],
            "SQL_DIGEST_TEXT": None}
    notes = lockwait.explain([holder], [wait], [JOB])
    assert len(notes) == 1
    assert "session 46" in notes[0]
    assert "holding a row that transaction 470862543691972618 waits for" in notes[0]
    other = dict(wait, KEY_INFO=json.dumps({"table_id": 999}))
    assert lockwait.explain([holder], [other], [JOB]) == []


def test_statements_are_redacted() -> None:
    secret = trx(41, 95.0, sqls='["import into t from \'s3://b/p?access-key=AKIAXXXXXXXX'
                                '&secret-access-key=abcdefsecret\'"]')
    notes = lockwait.explain([secret], [], [JOB])
    assert notes
    assert "abcdefsecret" not in notes[0]


def test_related_table_ids_in_either_shape() -> None:
    assert lockwait.table_ids("104,5") == {104, 5}
    assert lockwait.table_ids("[104, 5]") == {104, 5}
    assert lockwait.table_ids(b"104") == {104}
    assert lockwait.table_ids(None) == set()


def test_statements_are_read_from_the_decoded_list() -> None:
    assert lockwait.statements({"SQLS": '["begin", null, "select 1 for update"]'}) == \
        "begin; select 1 for update"
    assert lockwait.statements({"SQLS": "[null]", "CURRENT_SQL_DIGEST_TEXT": "select ?"}) == \
        "select ?"
    assert lockwait.statements({"SQLS": None}) == ""
    assert lockwait.statements({"sqls": "not json"}) == "not json"


class FakeStatement:
    def __init__(self, session_id: int | None) -> None:
        self.session_id = session_id


class FakeHandle:
    """What the bundle reads of a job handle."""

    def __init__(self, job_id: int, kind: str = "add_index", state: str = "running",
                 schema_state: str = "write reorganization", session: int | None = 45) -> None:
        from pytest_tidb_ha.jobs.handle import JobTarget
        from pytest_tidb_ha.jobs.model import Observation

        self.job_id = job_id
        self.kind = kind
        self.submitted_at = 0.0
        self.statement = FakeStatement(session)
        self.target = JobTarget(kind, "test", "t_lock", "k", "k", frozenset())
        self.observations = [
            Observation(t=1.0, state="running", job_id=job_id, row_count=10,
                        schema_state=schema_state),
            Observation(t=5.0, state=state, job_id=job_id, row_count=7968,
                        schema_state=schema_state)]
        self.latest = self.observations[-1]
        self.terminal = is_terminal(kind, state)


RESULTS: dict[str, tuple[bool, Any]] = {
    "job-7.json": (True, [{"JOB_ID": 7, "TABLE_ID": TABLE_ID, "STATE": "running"}]),
    TRX: (True, [trx(41, 40.0, tables=""), trx(42, 0.1), trx(45, 34.0, tables="",
                                                            sqls="[null]")]),
    LOCK_WAITS: (True, []),
}


def findings(handle: FakeHandle, results: dict[str, tuple[bool, Any]] = RESULTS) -> list[str]:
    return lock_findings(results, [handle], now=35.0)  # type: ignore[list-item]


def test_the_bundle_finds_a_stalled_backfills_table_and_names_the_holder() -> None:
    notes = findings(FakeHandle(7))
    assert len(notes) == 1
    assert "no progress for 30s" in notes[0]
    assert "session 41" in notes[0]
    assert "session 42" not in notes[0]  # younger than the silence
    assert "session 45" not in notes[0]  # the job's own ALTER TABLE


def test_only_a_job_held_in_its_backfill_is_explained_by_row_locks() -> None:
    """At another schema state a job waits for schema versions (the metadata-lock note);
    a finished job holds nothing; an import ingests into an empty table."""
    assert findings(FakeHandle(7, schema_state="delete only")) == []
    assert findings(FakeHandle(7, state="synced")) == []
    imp = dict(RESULTS, **{"import-job-7-row.json": (True, [{"id": 7, "table_id": TABLE_ID}])})
    assert findings(FakeHandle(7, kind="import_into"), imp) == []


def test_a_version_without_the_tables_gives_no_note() -> None:
    """The piece's failure is its own note in the bundle; no finding, no error."""
    failed = dict(RESULTS, **{TRX: (False, "ProgrammingError: 1146")})
    assert findings(FakeHandle(7), failed) == []
