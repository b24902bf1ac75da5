"""QA's keys turned into actions, against fakes: the checksum, cmd as written, the SET GLOBALs.

(The same path runs end to end on the stand-in in
tests/integration/test_qa_keys_standin.py.)
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import pytest

from pytest_tidb_ha.jobs.checksum import checksum_check, checksum_sql, crc32_of_rows
from pytest_tidb_ha.jobs.handle import JobHandle, JobPolicy, JobTarget
from pytest_tidb_ha.jobs.model import IMPORT_INTO
from pytest_tidb_ha.jobs.submit import prepare_import_table, submit_import
from pytest_tidb_ha.options import HAOptions
from pytest_tidb_ha.record import HARecord
from pytest_tidb_ha.runner import CaseRun
from pytest_tidb_ha.scenario import timing
from pytest_tidb_ha.scenario.loader import load_text
from pytest_tidb_ha.scenario.model import Case, ImportIntoJob
from pytest_tidb_ha.timeline import Timeline

# ---- the checksum ----------------------------------------------------------------------


def test_checksum_sql_is_dbutils() -> None:
    assert checksum_sql("imp", "t`1", ["id", "c"]) == (
        "SELECT BIT_XOR(CAST(CRC32(CONCAT_WS(',', `id`, `c`, CONCAT(ISNULL(`id`), "
        "ISNULL(`c`)))) AS UNSIGNED)) AS checksum FROM `imp`.`t``1`")


def test_crc32_of_rows_follows_concat_ws() -> None:
    # CONCAT_WS skips NULLs; the ISNULL flags are its last argument
    one = zlib.crc32(b"1,a,00")
    two = zlib.crc32(b"2,01")
    assert crc32_of_rows([("1", "a"), ("2", None)]) == one ^ two
    assert crc32_of_rows([]) == 0


class FakeCursor:
    def __init__(self, conn: FakeConn) -> None:
        self.conn = conn
        self.description: Any = None
        self._row: Any = None

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *a: object) -> None:
        pass

    def execute(self, sql: str, args: Any = None) -> None:
        self.conn.sql.append(sql)
        if self.conn.fail and "BIT_XOR" in sql:
            raise RuntimeError(1105, "CRC32 is not supported")
        if sql.endswith("LIMIT 0"):
            self.description = [("id",), ("c",)]
        else:
            self._row = (self.conn.value,)

    def fetchall(self) -> list[Any]:
        return []

    def fetchone(self) -> Any:
        return self._row


class FakeConn:
    def __init__(self, value: int | None, fail: bool = False) -> None:
        self.value, self.fail = value, fail
        self.sql: list[str] = []
        self.closed = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self.closed = True


def handle(db: str = "imp", table: str = "t") -> JobHandle:
    return JobHandle("import_into#1", JobTarget(IMPORT_INTO, db, table),
                     JobPolicy(timeout=5.0, stall_window=5.0), query="import into t ...",
                     submitted_at=0.0)


@pytest.mark.parametrize(("value", "ok", "detail"), [
    (3582177512, True, "crc32Checksum of `imp`.`t` is 3582177512, the case expects 3582177512"),
    (7, False, "crc32Checksum of `imp`.`t` is 7, the case expects 3582177512 (BIT_XOR("),
    (None, False, "is 0, the case expects"),  # an empty table: NULL -> 0
])
def test_checksum_check(value: int | None, ok: bool, detail: str) -> None:
    conn = FakeConn(value)
    timeouts: list[float] = []
    def connect(t: float) -> FakeConn:
        timeouts.append(t)
        return conn

    check = checksum_check(connect, 3582177512)
    (result,) = check(handle())
    assert (result.name, result.ok) == ("crc32_checksum", ok)
    assert detail in result.detail
    assert conn.closed
    assert timeouts == [60.0]
    assert conn.sql[1].startswith("SELECT BIT_XOR(CAST(CRC32(CONCAT_WS(',', `id`, `c`,")


def test_checksum_check_error_is_a_failed_check() -> None:
    (result,) = checksum_check(lambda t: FakeConn(1, fail=True), 1)(handle())
    assert not result.ok
    assert result.error_code == 1105
    assert "checksum of `imp`.`t` failed" in result.detail


# ---- cmd as written, schema in the job's database ---------------------------------------------

class FakeClient:
    def __init__(self) -> None:
        self.executed: list[tuple[str, str | None]] = []
        self.connects: list[dict[str, Any]] = []

    def execute(self, sql: str, args: Any = None, *, database: str | None = None,
                **kw: Any) -> int:
        self.executed.append((sql, database))
        return 0

    def query(self, sql: str, args: Any = None, **kw: Any) -> list[dict[str, Any]]:
        return []

    def connect(self, node: str | None = None, database: str | None = None,
                read_timeout: float | None = None) -> Any:
        self.connects.append({"node": node, "database": database, "read_timeout": read_timeout})
        raise ConnectionRefusedError("no server in this test")


QA_IMPORT = """\
cases:
  - name: imp
    importInto:
      - db: "importtest"
        schema: "CREATE TABLE `user_data1` (`uid` bigint(20) NOT NULL);"
        cmd: "import into user_data1 from 's3://b/x.csv?access-key=ak\\u0026secret-access-key=sk' WITH DETACHED,skip_rows=1;"
        timeout: 120m
        crc32Checksum: 3582177512
"""


def qa_job() -> ImportIntoJob:
    (case,) = load_text(QA_IMPORT, "qa.yaml") or ()
    (job,) = case.jobs
    assert isinstance(job, ImportIntoJob)
    return job


def test_schema_runs_in_the_jobs_database_and_later_runs_recreate_it() -> None:
    client = FakeClient()
    job = qa_job()
    prepare_import_table(client, job, 1, job.db, job.table)
    prepare_import_table(client, job, 2, job.db, job.table)
    assert client.executed == [
        ("CREATE DATABASE IF NOT EXISTS `importtest`", None),
        ("CREATE TABLE `user_data1` (`uid` bigint(20) NOT NULL)", "importtest"),
        ("CREATE DATABASE IF NOT EXISTS `importtest`", None),
        ("DROP TABLE IF EXISTS `importtest`.`user_data1`", None),
        ("CREATE TABLE `user_data1` (`uid` bigint(20) NOT NULL)", "importtest"),
    ]


def test_cmd_is_sent_as_written_in_the_jobs_database_and_redacted_everywhere() -> None:
    client = FakeClient()
    timeline = Timeline()
    h = submit_import(client, qa_job(), 1, timeline, policy=JobPolicy(timeout=5.0, stall_window=5.0),
                      prepare=False)
    assert h.statement is not None
    assert h.statement.sql == ("import into user_data1 from 's3://b/x.csv?access-key=ak&"
                               "secret-access-key=sk' WITH DETACHED,skip_rows=1")
    assert h.statement.wait(5)  # the connect fails at once: the fake has no server
    assert client.connects
    assert client.connects[0]["database"] == "importtest"
    assert "sk'" not in h.query
    assert "secret-access-key=xxxxxx" in h.query
    assert h.target.table == "user_data1"
    assert h.target.db == "importtest"
    submitted = timeline.events("job.submit")[0]
    assert "sk'" not in str(submitted.data)
    assert "=ak" not in str(submitted.data)
    assert h.extra["expected_rows"] is None  # the checksum check is still there:
    h.run_checks()
    assert [(c.name, c.ok) for c in h.checks] == [("crc32_checksum", False)]
    assert "no TiDB answered" in h.checks[0].detail


# ---- tidbGlobalVariables around the case --------------------------------------------------

class Cluster:
    def __init__(self, client: FakeClient) -> None:
        self._client = client

    def client(self, **kw: Any) -> FakeClient:
        return self._client


def gv_case() -> Case:
    (case,) = load_text("""\
tidbGlobalVariables: {beforeCase: [tidb_enable_dist_task='on'],
                      afterCase: ["tidb_enable_dist_task='off'"]}
cases:
  - name: c
    distTask: off
""", "gv.yaml") or ()
    return case


def test_before_case_runs_before_dist_task_and_after_case_after_everything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing, "MIN_POLL", 0.05)
    client = FakeClient()
    record = HARecord(nodeid="t", timeline=Timeline(), artifacts_dir=tmp_path)
    run = CaseRun(gv_case(), Cluster(client), record, HAOptions())
    run.settings()
    assert [sql for sql, _ in client.executed] == [
        "SET GLOBAL tidb_enable_dist_task='on'", "SET GLOBAL tidb_enable_dist_task = OFF"]
    run.stop()
    assert client.executed[-1] == ("SET GLOBAL tidb_enable_dist_task='off'", None)
    phases = [e.data.get("phase") for e in record.timeline.events("jobs.setting")]
    assert phases[0] == "beforeCase"
    assert phases[-1] == "afterCase"


def test_after_case_failure_is_a_note_not_a_crash(tmp_path: Path) -> None:
    class Failing(FakeClient):
        def execute(self, sql: str, args: Any = None, **kw: Any) -> int:
            raise RuntimeError(1105, "unknown variable access-key=SECRET")

    record = HARecord(nodeid="t", timeline=Timeline(), artifacts_dir=tmp_path)
    run = CaseRun(gv_case(), Cluster(Failing()), record, HAOptions())
    run.stop()
    assert len(record.notes) == 1
    assert record.notes[0].startswith("afterCase SET GLOBAL")
    assert "SECRET" not in record.notes[0]
