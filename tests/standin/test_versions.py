"""The stand-in presents the surface of the release it is asked to play (v7.5.x and v8.5.x).

The release travels in ``STANDIN_VERSION`` (baked into ``tidb-standin:<hash>-<version>`` by
``build.sh --version``); every role reports it where the real servers report theirs, and the
TiDB role answers like that release: ADMIN SHOW DDL JOBS' columns and JOB_TYPE (COMMENTS from
v8.5), DXF's default (ON from v8.1), and DXF with fast reorg off (8200 on v8.x, a plain txn
backfill on v7.5.0).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from standin_helpers import StandinNet
from test_tidb_support import load_sbtest, query, session, start_cluster

pytestmark = pytest.mark.docker

DDL_JOBS_12 = [
    "JOB_ID", "DB_NAME", "TABLE_NAME", "JOB_TYPE", "SCHEMA_STATE", "SCHEMA_ID", "TABLE_ID", "ROW_COUNT",
    "CREATE_TIME", "START_TIME", "END_TIME", "STATE",
]  # fmt: skip


@pytest.fixture(scope="module", params=["v7.5.0", "v8.5.7"])
def played(request: pytest.FixtureRequest, docker_client: Any,
           standin_image: str) -> Iterator[tuple[StandinNet, str, str]]:
    version = str(request.param)
    net = StandinNet(docker_client, standin_image, f"{__name__}[{version}]")
    try:
        (tidb,) = start_cluster(net, env={"STANDIN_VERSION": version})
        yield net, tidb, version
    finally:
        net.close()


def test_every_role_reports_the_release(played: tuple[StandinNet, str, str]) -> None:
    net, tidb, version = played
    assert net.pd_get("pd-0", "/version") == (200, {"version": version})
    assert net.pd_get("pd-0", "/status")[1]["version"] == version
    members = net.pd_get("pd-0", "/members")[1]["members"]
    assert {m["binary_version"] for m in members} == {version}
    stores = net.pd_get("pd-0", "/stores")[1]["stores"]
    assert {s["store"]["version"] for s in stores} == {version.lstrip("v")}
    with session(net, tidb) as cur:
        cur.execute("SELECT @@version, tidb_version()")
        row = cur.fetchone()
    assert row["@@version"] == f"8.0.11-TiDB-{version}-standin"
    assert row["tidb_version()"].startswith(f"Release Version: {version}\n")
    assert net.http(tidb, 10080, "/status")[1]["version"] == f"8.0.11-TiDB-{version}-standin"


def test_ddl_jobs_and_dxf_as_the_release_shows_them(played: tuple[StandinNet, str, str]) -> None:
    net, tidb, version = played
    v85 = version.startswith("v8.5")
    load_sbtest(net, tidb, "surface", "t1", 300)
    with session(net, tidb, read_timeout=120) as cur:
        cur.execute("SELECT @@global.tidb_enable_dist_task")
        assert cur.fetchone()["@@global.tidb_enable_dist_task"] == ("ON" if v85 else "OFF")
        cur.execute("SET GLOBAL tidb_enable_dist_task = ON")
        cur.execute("ALTER TABLE surface.t1 ADD INDEX idx_c (c)")
        cur.execute("ADMIN SHOW DDL JOBS 1")
        (job,) = cur.fetchall()
        names = [d[0] for d in cur.description]
        if v85:
            assert names == [*DDL_JOBS_12, "COMMENTS"]
            assert (job["JOB_TYPE"], job["COMMENTS"]) == ("add index", "ingest, DXF")
        else:
            assert names == DDL_JOBS_12
            assert job["JOB_TYPE"] == "add index /* ingest */"
        cur.execute(f"SELECT JOB_TYPE FROM information_schema.ddl_jobs WHERE JOB_ID = {job['JOB_ID']}")
        assert cur.fetchone()["JOB_TYPE"] == ("add index" if v85 else "add index /* ingest */")
        # DXF on, fast reorg off
        cur.execute("SET GLOBAL tidb_ddl_enable_fast_reorg = OFF")
        try:
            if v85:
                with pytest.raises(pymysql.err.MySQLError) as info:
                    cur.execute("ALTER TABLE surface.t1 ADD INDEX idx_pad (pad)")
                assert info.value.args == (
                    8200,
                    "Unsupported tidb_enable_dist_task setting. To utilize distributed task "
                    "execution, please enable tidb_ddl_enable_fast_reorg first.",
                )
                assert query(net, tidb, "SELECT COUNT(*) FROM information_schema.ddl_jobs "
                                        "WHERE TABLE_NAME = 't1' AND DB_NAME = 'surface' "
                                        "AND JOB_TYPE LIKE 'add index%'") == [{"COUNT(*)": 1}]
            else:
                cur.execute("ALTER TABLE surface.t1 ADD INDEX idx_pad (pad)")
                cur.execute("ADMIN SHOW DDL JOBS 1")
                assert cur.fetchone()["JOB_TYPE"] == "add index /* txn */"
                cur.execute("SELECT COUNT(*) FROM mysql.tidb_global_task_history "
                            "WHERE task_key LIKE 'ddl/backfill/%'")
                assert cur.fetchone()["COUNT(*)"] == 1  # only the ingest job went through DXF
        finally:
            cur.execute("SET GLOBAL tidb_ddl_enable_fast_reorg = ON")


def test_scaled_timers_on_the_real_config_surfaces(played: tuple[StandinNet, str, str]) -> None:
    """The stand-in's own (scaled) timers, under the keys real PD, TiKV and TiDB use, so a
    plugin reading recovery floors from a cluster reads the stand-in's (scale 0.5 here)."""
    net, tidb, _version = played
    status, pd = net.pd_get("pd-0", "/config")
    assert status == 200, pd
    assert (pd["TickInterval"], pd["ElectionInterval"], pd["lease"]) == ("250ms", "1.5s", 2)
    assert pd["schedule"]["max-store-down-time"] == "15m0s"  # 30m x 0.5
    assert pd["replication"]["max-replicas"] == 3
    status, tikv = net.http("tikv-0", 20180, "/config")
    assert status == 200, tikv
    assert tikv["raftstore"]["raft-base-tick-interval"] == "500ms"
    assert tikv["raftstore"]["raft-election-timeout-ticks"] == 10
    assert tikv["raftstore"]["pd-store-heartbeat-tick-interval"] == "500ms"
    info = net.http(tidb, 10080, "/info")[1]
    config = net.http(tidb, 10080, "/config")[1]
    assert info["lease"] == config["lease"] == "22.5s"  # 45 s x 0.5
