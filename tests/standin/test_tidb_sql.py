"""The TiDB role answers every statement of docs/sql-contract.md like TiDB (pymysql, unchanged).

One small stand-in cluster (1 PD, 1 TiKV, 1 TiDB) per module; each test checks column
names/order, state strings and error codes from reference/tidb-contract.md.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from standin_helpers import StandinNet, wait_for
from test_tidb_support import (
    connect,
    job_state,
    latest_job_id,
    load_sbtest,
    query,
    session,
    start_cluster,
)

pytestmark = pytest.mark.docker

DDL_JOBS_COLUMNS = [
    "JOB_ID", "DB_NAME", "TABLE_NAME", "JOB_TYPE", "SCHEMA_STATE", "SCHEMA_ID", "TABLE_ID", "ROW_COUNT",
    "CREATE_TIME", "START_TIME", "END_TIME", "STATE", "QUERY",
]  # fmt: skip
SHOW_IMPORT_COLUMNS = [
    "Job_ID", "Data_Source", "Target_Table", "Table_ID", "Phase", "Status", "Source_File_Size", "Imported_Rows",
    "Result_Message", "Create_Time", "Start_Time", "End_Time", "Created_By",
]  # fmt: skip
IMPORT_JOBS_COLUMNS = [
    "id", "create_time", "start_time", "update_time", "end_time", "table_schema", "table_name", "table_id",
    "created_by", "parameters", "source_file_size", "status", "step", "summary", "error_message",
]  # fmt: skip


@pytest.fixture(scope="module")
def import_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("import")
    root.chmod(0o755)
    for part in range(3):
        lines = ["id,k,c,pad"] + [
            f"{i},{i % 10},c{i},p{i}" for i in range(part * 400 + 1, part * 400 + 401)
        ]
        (root / f"data.{part}.csv").write_text("\n".join(lines) + "\n")
    big = ["id,k,c,pad"] + [f"{i},{i % 10},c{i},p{i}" for i in range(1, 30001)]
    (root / "big.csv").write_text("\n".join(big) + "\n")
    bucket = root / "bucket" / "dir"
    bucket.mkdir(parents=True)
    (bucket / "s3data.1.csv").write_text(
        "id,k,c,pad\n" + "".join(f"{i},1,c,p\n" for i in range(1, 51))
    )
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


@pytest.fixture(scope="module")
def cluster(
    docker_client: Any, standin_image: str, import_dir: Path
) -> Iterator[tuple[StandinNet, str]]:
    net = StandinNet(docker_client, standin_image, __name__)
    try:
        (name,) = start_cluster(net, import_dir=import_dir)
        yield net, name
    finally:
        net.close()


def cols(cur: Any) -> list[str]:
    return [d[0] for d in cur.description]


def error_of(cur: Any, sql: str) -> tuple[int, str]:
    with pytest.raises(pymysql.err.MySQLError) as info:
        cur.execute(sql)
    return int(info.value.args[0]), str(info.value.args[1])


def final_task_state(net: StandinNet, tidb: str, task_key: str, want: str) -> str:
    """The DXF task's state once it reached *want*: TiDB finishes the job row first and
    moves the task to ``tidb_global_task_history`` later (its scheduler's clean-up), so
    the task is polled in both tables, never read once right after the statement."""
    def state() -> str | None:
        for table in ("tidb_global_task_history", "tidb_global_task"):
            rows = query(net, tidb, f"SELECT state FROM mysql.{table} WHERE task_key = '{task_key}'")
            if rows and rows[0]["state"] == want:
                return str(rows[0]["state"])
        return None

    return wait_for(f"task {task_key} {want}", state, timeout=60, story=lambda: net.story(tidb))


def test_session_probing_and_sysvars(cluster: tuple[StandinNet, str]) -> None:
    net, tidb = cluster
    with session(net, tidb) as cur:
        cur.execute("SELECT 1")
        assert list(cur.fetchone().values()) == [1]
        cur.execute("SELECT @@version")
        assert cur.fetchone()["@@version"] == "8.0.11-TiDB-v8.5.7-standin"
        cur.execute("SELECT tidb_version()")
        assert cur.fetchone()["tidb_version()"].startswith("Release Version: v8.5.7")
        # The owner campaign runs after the port opens (as in TiDB): the one TiDB becomes
        # owner within a few seconds, not necessarily before the first statement.
        def owner() -> bool | None:
            cur.execute("SELECT tidb_is_ddl_owner()")
            return cur.fetchone()["tidb_is_ddl_owner()"] == 1 or None

        wait_for("the only TiDB to become DDL owner", owner, timeout=30,
                 story=lambda: net.story(tidb))
        for var in ("tidb_enable_dist_task", "tidb_ddl_enable_fast_reorg"):
            cur.execute(f"SELECT @@global.{var}")
            assert cur.fetchone()[f"@@global.{var}"] == "ON"  # defaults since v8.1 / v6.5
            for value, shown in (("OFF", "OFF"), ("1", "ON"), ("0", "OFF"), ("'ON'", "ON")):
                cur.execute(f"SET GLOBAL {var} = {value}")
                cur.execute(f"SELECT @@global.{var}")
                assert cur.fetchone()[f"@@global.{var}"] == shown
        assert error_of(cur, "SET GLOBAL tidb_enable_dist_task = 'maybe'")[0] == 1231
        assert error_of(cur, "SELECT @@global.no_such_variable")[0] == 1193
        cur.execute("SET autocommit = 1")
        cur.execute("CREATE DATABASE IF NOT EXISTS probe")
        cur.execute("CREATE DATABASE IF NOT EXISTS probe")
        cur.execute("USE probe")
        cur.execute("DROP DATABASE IF EXISTS probe")
        cur.execute("DROP DATABASE IF EXISTS probe")
        assert error_of(cur, "USE probe")[0] == 1049


def test_auth_and_connect_with_db(cluster: tuple[StandinNet, str]) -> None:
    net, tidb = cluster
    with pytest.raises(pymysql.err.OperationalError) as info:
        pymysql.connect(host=net.ip(tidb), port=4000, user="alice", password="x", connect_timeout=3)
    assert info.value.args[0] == 1045
    with pytest.raises(pymysql.err.OperationalError) as info:
        pymysql.connect(
            host=net.ip(tidb),
            port=4000,
            user="root",
            password="",
            database="nope",
            connect_timeout=3,
        )
    assert info.value.args[0] == 1049
    conn = connect(net, tidb, database="mysql")
    try:
        conn.ping()
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM tidb_import_jobs")
            assert cur.fetchone()["COUNT(*)"] >= 0
    finally:
        conn.close()


def test_sysbench_statements(cluster: tuple[StandinNet, str]) -> None:
    net, tidb = cluster
    load_sbtest(net, tidb, "sbtest", "sbtest1", 1500)
    with session(net, tidb) as cur:
        cur.execute("USE sbtest")
        cur.execute("SELECT c FROM sbtest1 WHERE id = 14")
        assert cur.fetchall() == [{"c": "c-1-14"}]
        cur.execute("SELECT c FROM sbtest1 WHERE id BETWEEN 10 AND 19")
        assert [r["c"] for r in cur.fetchall()] == [f"c-{i % 13}-{i}" for i in range(10, 20)]
        cur.execute("SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN 1 AND 100")
        assert int(cur.fetchone()["SUM(k)"]) == sum(i % 97 for i in range(1, 101))
        cur.execute("SELECT c FROM sbtest1 WHERE id BETWEEN 1 AND 30 ORDER BY c")
        got = [r["c"] for r in cur.fetchall()]
        assert got == sorted(got)
        assert len(got) == 30
        cur.execute("SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 1 AND 30 ORDER BY c")
        assert len(cur.fetchall()) == 30
        cur.execute("BEGIN")
        assert cur.execute("UPDATE sbtest1 SET k = k + 1 WHERE id = 5") == 1
        cur.execute("UPDATE sbtest1 SET c = 'changed' WHERE id = 6")
        assert cur.execute("DELETE FROM sbtest1 WHERE id = 7") == 1
        cur.execute("INSERT INTO sbtest1 (id, k, c, pad) VALUES (7, 70, 'again', 'p')")
        cur.execute("COMMIT")
        cur.execute("SELECT id, k, c FROM sbtest1 WHERE id BETWEEN 5 AND 7")
        assert cur.fetchall() == [
            {"id": 5, "k": 6, "c": "c-5-5"},
            {"id": 6, "k": 6, "c": "changed"},
            {"id": 7, "k": 70, "c": "again"},
        ]
        cur.execute("BEGIN")
        cur.execute("DELETE FROM sbtest1 WHERE id = 8")
        cur.execute("ROLLBACK")
        cur.execute("SELECT c FROM sbtest1 WHERE id = 8")
        assert cur.fetchall() == [{"c": "c-8-8"}]
        code, message = error_of(cur, "INSERT INTO sbtest1 (id, k, c, pad) VALUES (9, 1, 'x', 'y')")
        assert (code, message) == (1062, "Duplicate entry '9' for key 'sbtest1.PRIMARY'")
        cur.execute("ADMIN CHECK TABLE sbtest1")
        cur.execute("SELECT COUNT(*) FROM sbtest1")
        assert cur.fetchone()["COUNT(*)"] == 1500
        cur.execute("DROP TABLE IF EXISTS sbtest9")
        assert error_of(cur, "SELECT c FROM sbtest9 WHERE id = 1")[0] == 1146


def test_add_index_drop_index_and_admin(cluster: tuple[StandinNet, str]) -> None:
    net, tidb = cluster
    load_sbtest(net, tidb, "ddltest", "t1", 1200)
    with session(net, tidb, read_timeout=120) as cur:
        cur.execute("SET GLOBAL tidb_enable_dist_task = ON")
        cur.execute("SET GLOBAL tidb_ddl_enable_fast_reorg = ON")
        cur.execute("ALTER TABLE ddltest.t1 ADD INDEX idx_c (c)")
        cur.execute("SELECT COUNT(*) FROM ddltest.t1 USE INDEX (idx_c)")
        assert cur.fetchone()["COUNT(*)"] == 1200
        cur.execute("SELECT COUNT(*) FROM ddltest.t1 IGNORE INDEX (idx_c)")
        assert cur.fetchone()["COUNT(*)"] == 1200
        cur.execute("ADMIN CHECK TABLE ddltest.t1")
        job_id = latest_job_id(net, tidb, "t1", "ddltest")
        assert job_id is not None
        cur.execute(f"SELECT * FROM information_schema.ddl_jobs WHERE JOB_ID = {job_id}")
        row = cur.fetchone()
        assert cols(cur) == DDL_JOBS_COLUMNS
        # v8.5 (the stand-in's default release): plain JOB_TYPE, reorg type in COMMENTS
        assert (row["JOB_TYPE"], row["STATE"], row["SCHEMA_STATE"], row["ROW_COUNT"]) == (
            "add index",
            "synced",
            "public",
            1200,
        )
        assert row["QUERY"] == "ALTER TABLE ddltest.t1 ADD INDEX idx_c (c)"
        assert row["CREATE_TIME"] <= row["START_TIME"] <= row["END_TIME"]
        cur.execute(
            f"SELECT id, state, step, CAST(error AS CHAR) FROM mysql.tidb_global_task_history "
            f"WHERE task_key = 'ddl/backfill/{job_id}'"
        )
        task = cur.fetchone()
        assert task is not None, task
        assert task["state"] == "succeed", task
        cur.execute(
            "SELECT state, COUNT(*) FROM mysql.tidb_background_subtask_history "
            f"WHERE task_key = '{task['id']}' GROUP BY state"
        )
        assert {r["state"]: r["COUNT(*)"] for r in cur.fetchall()} == {"succeed": 1}
        # txn reorg without DXF: CREATE INDEX shape
        cur.execute("SET GLOBAL tidb_enable_dist_task = OFF")
        cur.execute("SET GLOBAL tidb_ddl_enable_fast_reorg = OFF")
        cur.execute("CREATE INDEX idx_pad ON ddltest.t1 (pad)")
        cur.execute("ADMIN SHOW DDL JOBS 2")
        jobs = cur.fetchall()
        assert cols(cur) == [*DDL_JOBS_COLUMNS[:12], "COMMENTS"]
        assert (jobs[0]["JOB_TYPE"], jobs[0]["COMMENTS"], jobs[0]["STATE"]) == (
            "add index", "txn", "synced")
        assert jobs[1]["JOB_ID"] == job_id
        assert jobs[1]["COMMENTS"] == "ingest, DXF"
        cur.execute("SET GLOBAL tidb_ddl_enable_fast_reorg = ON")
        cur.execute("SET GLOBAL tidb_enable_dist_task = ON")
        cur.execute("ALTER TABLE ddltest.t1 DROP INDEX idx_pad")
        assert error_of(cur, "SELECT COUNT(*) FROM ddltest.t1 USE INDEX (idx_pad)")[0] == 1176
        assert error_of(cur, "ALTER TABLE ddltest.t1 ADD INDEX idx_c (c)")[0] == 1061
        cur.execute("ADMIN SHOW DDL")
        show = cur.fetchone()
        assert cols(cur) == [
            "SCHEMA_VER",
            "OWNER_ID",
            "OWNER_ADDRESS",
            "RUNNING_JOBS",
            "SELF_ID",
            "QUERY",
        ]
        assert show["OWNER_ID"] == show["SELF_ID"]
        assert show["OWNER_ADDRESS"] == f"{tidb}:4000"
        cur.execute(f"ADMIN CANCEL DDL JOBS {job_id}, 987654")
        assert cols(cur) == ["JOB_ID", "RESULT"]
        # A finished job is in history, no longer in the job table: TiDB answers "not found".
        assert cur.fetchall() == [
            {"JOB_ID": job_id, "RESULT": f"error: [ddl:8224]DDL Job:{job_id} not found"},
            {"JOB_ID": 987654, "RESULT": "error: [ddl:8224]DDL Job:987654 not found"},
        ]
        cur.execute(
            "SELECT JOB_ID, STATE FROM information_schema.ddl_jobs WHERE STATE IN ('synced') "
            "AND TABLE_NAME = 't1' AND JOB_TYPE LIKE 'drop index%' ORDER BY JOB_ID DESC LIMIT 1"
        )
        assert cur.fetchone()["STATE"] == "synced"


def test_ddl_commits_the_open_transaction(cluster: tuple[StandinNet, str]) -> None:
    """pymysql's default is autocommit off: the DDL must commit (and backfill) what came before."""
    net, tidb = cluster
    conn = pymysql.connect(host=net.ip(tidb), port=4000, user="root", password="",
                           connect_timeout=3, read_timeout=120)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS implicit")
            cur.execute("CREATE TABLE implicit.t (id INT NOT NULL, c CHAR(20) NOT NULL, "
                        "PRIMARY KEY (id))")
            cur.execute("INSERT INTO implicit.t (id, c) VALUES "
                        + ", ".join(f"({i}, 'c{i}')" for i in range(1, 51)))
            cur.execute("ALTER TABLE implicit.t ADD INDEX idx_c (c)")
            cur.execute("INSERT INTO implicit.t (id, c) VALUES (51, 'c51')")
            cur.execute("CREATE TABLE implicit.t2 (id INT NOT NULL, PRIMARY KEY (id))")
    finally:
        conn.close()  # no COMMIT: closing rolls back whatever is still open
    assert query(net, tidb, "SELECT COUNT(*) FROM implicit.t USE INDEX (idx_c)") == [
        {"COUNT(*)": 51}]
    query(net, tidb, "ADMIN CHECK TABLE implicit.t")


def test_cancel_running_add_index(cluster: tuple[StandinNet, str]) -> None:
    net, tidb = cluster
    load_sbtest(net, tidb, "canceltest", "t1", 6000)
    query(
        net, tidb, "SET GLOBAL tidb_ddl_reorg_batch_size = 32"
    )  # ~190 paced batches: time to cancel

    outcome: dict[str, Any] = {}

    def alter() -> None:
        try:
            with session(net, tidb, read_timeout=300) as cur:
                cur.execute("ALTER TABLE canceltest.t1 ADD INDEX idx_c (c)")
            outcome["ok"] = True
        except pymysql.err.MySQLError as exc:
            outcome["error"] = exc.args

    th = threading.Thread(target=alter, daemon=True)
    th.start()
    job_id = wait_for(
        "the add index job", lambda: latest_job_id(net, tidb, "t1", "canceltest"), timeout=30
    )
    wait_for(
        "ROW_COUNT > 0",
        lambda: (
            (
                query(
                    net,
                    tidb,
                    f"SELECT ROW_COUNT FROM information_schema.ddl_jobs WHERE JOB_ID={job_id}",
                )
                or [{"ROW_COUNT": 0}]
            )[0]["ROW_COUNT"]
            > 0
        ),
        timeout=60,
    )
    rows = query(net, tidb, f"ADMIN CANCEL DDL JOBS {job_id}")
    assert rows == [{"JOB_ID": job_id, "RESULT": "successful"}]
    # The cancel wrote ``cancelling`` into the job row itself; the worker takes it from there.
    assert job_state(net, tidb, job_id) in ("cancelling", "rollingback", "rollback done")
    again = query(net, tidb, f"ADMIN CANCEL DDL JOBS {job_id}")
    assert again == [{"JOB_ID": job_id, "RESULT": "successful"}] or again == [
        {"JOB_ID": job_id, "RESULT": f"error: [ddl:8224]DDL Job:{job_id} not found"}]
    th.join(120)
    assert outcome.get("error") == (8214, "Cancelled DDL job"), outcome
    final = query(
        net,
        tidb,
        f"SELECT STATE, SCHEMA_STATE FROM information_schema.ddl_jobs WHERE JOB_ID={job_id}",
    )
    assert final == [{"STATE": "rollback done", "SCHEMA_STATE": "none"}]
    with session(net, tidb) as cur:
        cur.execute("SET GLOBAL tidb_ddl_reorg_batch_size = 256")
        assert error_of(cur, "SELECT COUNT(*) FROM canceltest.t1 USE INDEX (idx_c)")[0] == 1176
        cur.execute("ADMIN CHECK TABLE canceltest.t1")


def test_import_into_and_show(cluster: tuple[StandinNet, str]) -> None:
    net, tidb = cluster
    with session(net, tidb, read_timeout=180) as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS imp")
        ddl = "(id BIGINT NOT NULL, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, PRIMARY KEY (id))"
        cur.execute(f"CREATE TABLE IF NOT EXISTS imp.t {ddl}")
        cur.execute(
            "IMPORT INTO imp.t FROM '/import/data.*.csv' FORMAT 'csv' WITH skip_rows=1, thread=4"
        )
        row = cur.fetchone()
        assert cols(cur) == SHOW_IMPORT_COLUMNS
        assert (row["Status"], row["Phase"], row["Imported_Rows"]) == ("finished", "", 1200), row
        assert row["Target_Table"] == "`imp`.`t`"
        assert row["Created_By"] == "root@%"
        job_id = row["Job_ID"]
        cur.execute("SELECT COUNT(*) FROM imp.t")
        assert cur.fetchone()["COUNT(*)"] == 1200
        cur.execute(f"SELECT * FROM mysql.tidb_import_jobs WHERE id = {job_id}")
        job = cur.fetchone()
        assert cols(cur) == IMPORT_JOBS_COLUMNS
        assert (job["status"], job["step"]) == ("finished", "")
        assert json.loads(job["parameters"]) == {
            "file-location": "/import/data.*.csv",
            "format": "csv",
            "options": {"skip_rows": "1", "thread": "4"},
        }
        assert final_task_state(net, tidb, f"ImportInto/{job_id}", "succeed") == "succeed"
        # detached + an S3 URL mapped onto the mounted folder; secrets never shown
        cur.execute(f"CREATE TABLE IF NOT EXISTS imp.s {ddl}")
        url = "s3://bucket/dir/s3data.*.csv?access-key=AKIDSECRET&secret-access-key=SKSECRET&endpoint=http://m:9000"
        cur.execute(f"IMPORT INTO imp.s FROM '{url}' WITH skip_rows=1, detached")
        det = cur.fetchone()
        assert det["Status"] == "pending", det
        assert "SECRET" not in det["Data_Source"], det
        assert det["Data_Source"].startswith(
            "s3://bucket/dir/s3data.*.csv?access-key=xxxxxx&endpoint="
        )
        wait_for(
            "detached import finished",
            lambda: query(net, tidb, f"SHOW IMPORT JOB {det['Job_ID']}")[0]["Status"] == "finished",
            timeout=90,
            story=lambda: net.story(tidb),
        )
        cur.execute("SHOW IMPORT JOBS")
        assert {r["Job_ID"] for r in cur.fetchall()} >= {job_id, det["Job_ID"]}
        cur.execute("SELECT COUNT(*) FROM imp.s")
        assert cur.fetchone()["COUNT(*)"] == 50
        assert "SECRET" not in net.logs(tidb, 400)
        assert error_of(cur, f"CANCEL IMPORT JOB {job_id}") == (
            8171, "The current job status cannot perform the operation. CANCEL")
        assert error_of(cur, "CANCEL IMPORT JOB 99999")[0] == 8170
        assert error_of(cur, "SHOW IMPORT JOB 99999")[0] == 8170
        assert (
            error_of(cur, "IMPORT INTO imp.t FROM '/import/data.*.csv' WITH skip_rows=1")[0] == 8173
        )
        assert error_of(cur, "IMPORT INTO imp.t FROM '/import/none*.csv'")[0] == 8158


def test_unsupported_statements_fail_fast(cluster: tuple[StandinNet, str]) -> None:
    net, tidb = cluster
    with session(net, tidb, read_timeout=10) as cur:
        assert error_of(cur, "FLUSH PRIVILEGES")[0] in (1064, 1105)
        assert error_of(cur, "SELECT FROM WHERE")[0] == 1064
        assert error_of(cur, "SELECT * FROM mysql.nope")[0] == 1146
        assert error_of(cur, "SELECT nope_fn(1)")[0] == 1305
        cur.execute("SELECT 1")
        assert cur.fetchone() == {"1": 1}


def test_status_api(cluster: tuple[StandinNet, str]) -> None:
    net, tidb = cluster
    status, body = net.http(tidb, 10080, "/status")
    assert (
        status == 200
    )
    assert (
        body["version"] == "8.0.11-TiDB-v8.5.7-standin"
    )
    assert (
        "connections" in body
    )
    status, info = net.http(tidb, 10080, "/info")
    assert status == 200
    assert info["is_owner"] is True
    assert info["ip"] == tidb
    assert (info["listening_port"], info["status_port"]) == (4000, 10080)
    status, everything = net.http(tidb, 10080, "/info/all")
    assert everything["servers_num"] == 1
    assert everything["owner_id"] == info["ddl_id"]
    assert everything["all_servers_info"][info["ddl_id"]]["ip"] == tidb
    status, dump = net.http(tidb, 10080, "/debug/pprof/goroutine?debug=2")
    assert status == 200
    assert "goroutine 1 [" in dump
    assert "ddl-owner-campaign" in dump
    status, text = net.http(tidb, 10080, "/ddl/owner/resign", method="POST")
    assert status == 200, text
    status, text = net.http(tidb, 10080, "/ddl/owner/resign", method="POST")
    assert (status, text) == (400, "This node is not a ddl owner, can't be resigned.")
    wait_for(
        "the only TiDB owns DDL again",
        lambda: net.http(tidb, 10080, "/info")[1]["is_owner"],
        timeout=30,
    )


def test_cancel_running_import(cluster: tuple[StandinNet, str]) -> None:
    net, tidb = cluster
    with session(net, tidb, read_timeout=120) as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS imp")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS imp.big (id BIGINT NOT NULL, k INT NOT NULL, c CHAR(120) NOT NULL, "
            "pad CHAR(60) NOT NULL, PRIMARY KEY (id))"
        )
        cur.execute("IMPORT INTO imp.big FROM '/import/big.csv' WITH skip_rows=1, detached")
        job_id = cur.fetchone()["Job_ID"]
        wait_for(
            "import running with rows",
            lambda: (lambda r: r["Status"] == "running" and (r["Imported_Rows"] or 0) > 0)(
                query(net, tidb, f"SHOW IMPORT JOB {job_id}")[0]
            ),
            timeout=60,
            story=lambda: net.story(tidb),
        )
        cur.execute(f"CANCEL IMPORT JOB {job_id}")
        cur.execute(
            f"SELECT status, step, error_message FROM mysql.tidb_import_jobs WHERE id = {job_id}"
        )
        assert cur.fetchone()["status"] == "cancelled"
        assert final_task_state(net, tidb, f"ImportInto/{job_id}", "reverted") == "reverted"
        assert error_of(cur, f"CANCEL IMPORT JOB {job_id}") == (
            8171, "The current job status cannot perform the operation. CANCEL")
