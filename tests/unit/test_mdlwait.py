"""A job an open transaction's metadata lock may hold is named in the diagnostics' notes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pytest_tidb_ha.jobs.diagnostics import MDL_VIEW, collect
from pytest_tidb_ha.jobs.handle import JobHandle, JobPolicy, JobTarget
from pytest_tidb_ha.jobs.mdlwait import VIEW_SQL, explain
from pytest_tidb_ha.jobs.model import ADD_INDEX
from pytest_tidb_ha.timeline import Timeline

if TYPE_CHECKING:
    from pytest_tidb_ha.jobs.submit import SQLClient

#: v7.5's view: every unfinished job on the table x every open transaction that used it
V75_ROWS = [
    {"job_id": 153, "db_name": "test", "table_name": "t", "query": "ALTER TABLE t ADD INDEX i(c)",
     "session_id": 7, "txnstart": "12-01 20:12:34.567(445566778899)",
     "SQL_DIGESTS": '["select `id` from `test` . `t` where `id` = ?"]'},
    {"job_id": 154, "db_name": "test", "table_name": "t", "query": "ALTER TABLE t ADD INDEX j(d)",
     "session_id": 7, "txnstart": "12-01 20:12:34.567(445566778899)",
     "SQL_DIGESTS": b'["select `id` from `test` . `t` where `id` = ?"]'},
    {"job_id": 153, "db_name": "test", "table_name": "t", "query": "ALTER TABLE t ADD INDEX i(c)",
     "session_id": 9, "txnstart": None, "start_time": "2026-12-01 20:13:00",
     "SQL_DIGESTS": "[\"import into t from 's3://b/x?access-key=AK&secret-access-key=SK'\"]"},
]


def test_a_note_per_held_job_names_each_session_once() -> None:
    notes = explain(V75_ROWS, [153, 999])
    assert len(notes) == 1, notes  # job 154 is not ours; job 999 is not listed
    note = notes[0]
    assert note.startswith("job 153 on test.t: mysql.tidb_mdl_view lists"), note
    assert "session 7 (transaction started 12-01 20:12:34.567(445566778899)" in note
    assert "session 9 (transaction started 2026-12-01 20:13:00" in note  # newer view's column
    assert "select `id` from `test` . `t`" in note
    assert "SK" not in note  # a statement's secret is redacted
    assert explain(V75_ROWS, [154])[0].startswith("job 154 on test.t"), "bytes decoded"
    assert explain([], [153]) == []


class Client:
    def __init__(self, view: Any) -> None:
        self.view = view

    def query(self, sql: str, args: Any = None, **kw: Any) -> list[dict[str, Any]]:
        if sql == VIEW_SQL:
            if isinstance(self.view, Exception):
                raise self.view
            return cast("list[dict[str, Any]]", self.view)
        return []


def handle(job_id: int) -> JobHandle:
    return JobHandle("add_index#1", JobTarget(ADD_INDEX, "test", "t"),
                     JobPolicy(timeout=60, stall_window=20), query="ALTER TABLE t ADD INDEX i(c)",
                     submitted_at=0.0, job_id=job_id)


def test_the_bundle_keeps_the_view_and_notes_the_held_job(tmp_path: Path) -> None:
    notes: list[str] = []
    dest = collect(None, cast("SQLClient", Client(V75_ROWS)), Timeline(), tmp_path / "d",
                   handles=[handle(153)], notes=notes, deadline=5)
    assert (dest / MDL_VIEW).is_file()
    assert [n for n in notes if n.startswith("job 153 on test.t")], notes
    assert "Findings:" in (dest / "index.md").read_text()


def test_no_view_no_finding(tmp_path: Path) -> None:
    """A release without the view (or MDL off): the piece is noted as missing, no finding."""
    notes: list[str] = []
    collect(None, cast("SQLClient", Client(RuntimeError("(1146) no such table"))), Timeline(),
            tmp_path / "d", handles=[handle(153)], notes=notes, deadline=5)
    assert [n for n in notes if n.startswith(f"diagnostics: {MDL_VIEW}")], notes
    assert not [n for n in notes if n.startswith("job ")], notes
