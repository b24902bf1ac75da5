"""The pair of switches an ADD INDEX is submitted with (pure rule + the submitter)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_tidb_ha.jobs.handle import JobPolicy
from pytest_tidb_ha.jobs.submit import submit_add_index
from pytest_tidb_ha.scenario.model import AddIndexJob, Duration
from pytest_tidb_ha.scenario.switches import SwitchError, add_index_switches
from pytest_tidb_ha.timeline import Timeline


@pytest.mark.parametrize(
    ("job_type", "dist", "expected"),
    [
        ("ingest", None, (True, None)),  # leave the cluster's DXF setting alone
        ("ingest", True, (True, True)),
        ("ingest", False, (True, False)),
        ("txn", None, (False, False)),  # DXF on (v8.1+ default) with txn would fail 8200
        ("txn", False, (False, False)),
    ],
)
def test_consistent_pairs(job_type: str, dist: bool | None,
                          expected: tuple[bool, bool | None]) -> None:
    assert add_index_switches(job_type, dist) == expected


def test_dist_task_with_txn_is_refused() -> None:
    with pytest.raises(SwitchError, match="8200"):
        add_index_switches("txn", True)


class Recording:
    def __init__(self) -> None:
        self.sql: list[str] = []

    def query(self, sql: str, args: Any = None, **kw: Any) -> list[dict[str, Any]]:
        self.sql.append(sql)
        return []

    def execute(self, sql: str, args: Any = None, **kw: Any) -> int:
        self.sql.append(sql)
        return 0

    def connect(self, *a: Any, **kw: Any) -> Any:
        raise ConnectionRefusedError("no server in unit tests")


def test_submitter_sends_a_txn_job_with_dist_task_off() -> None:
    client = Recording()
    spec = AddIndexJob(db="d", table="t", index_col_name="c", timeout=Duration(60),
                       job_type="txn")
    h = submit_add_index(client, spec, 1, Timeline(), policy=JobPolicy(60, 10))
    assert h.statement is not None
    assert h.statement.wait(5)
    assert "SET GLOBAL tidb_ddl_enable_fast_reorg = OFF" in client.sql
    assert "SET GLOBAL tidb_enable_dist_task = OFF" in client.sql


def test_submitter_refuses_txn_with_dist_task_on() -> None:
    spec = AddIndexJob(db="d", table="t", index_col_name="c", timeout=Duration(60),
                       job_type="txn", dist_task=True)
    client = Recording()
    with pytest.raises(SwitchError):
        submit_add_index(client, spec, 1, Timeline(), policy=JobPolicy(60, 10))
    assert not [s for s in client.sql if "ADD INDEX" in s]
