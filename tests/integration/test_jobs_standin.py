"""The jobs layer on the stand-in cluster (real Docker, fixed stand-in).

* an ADD INDEX and an IMPORT INTO through the ``tidb`` facade converge, with
  the real SQL shapes (docs/sql-contract.md);
* killing or pausing the TiDB the watcher reads through does not hang it: the
  watcher keeps polling through the other TiDB and still reaches a verdict.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_tidb_ha import assert_job_converges
from pytest_tidb_ha.cluster.lifecycle import start_cluster, stop_cluster
from pytest_tidb_ha.cluster.specs import ClusterSettings
from pytest_tidb_ha.jobs.facade import TiDB
from pytest_tidb_ha.options import HAOptions
from pytest_tidb_ha.record import HARecord
from pytest_tidb_ha.scenario.model import Topology
from pytest_tidb_ha.timeline import Timeline

pytestmark = pytest.mark.docker

#: The releases the plugin's own tests run the stand-in as.
STANDIN_VERSIONS = ("v7.5.0", "v8.5.7")

SCALE = 0.05
ROWS = 300


@pytest.fixture(scope="module", params=STANDIN_VERSIONS)
def cluster(request: pytest.FixtureRequest, docker_engine: Any, standin_image: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The jobs layer runs against the stand-in playing each release (v7.5's and v8.5's
    ADMIN SHOW DDL JOBS, JOB_TYPE and DXF default differ)."""
    env = {"STANDIN_TIME_SCALE": str(SCALE), "STANDIN_VERSION": str(request.param)}
    settings = ClusterSettings(
        run_id="jobs" + uuid.uuid4().hex[:6], topology=Topology(1, 1, 2),
        images={c: standin_image for c in ("pd", "tikv", "tidb")},
        env={c: env for c in ("pd", "tikv", "tidb")},
        import_dir=tmp_path_factory.mktemp("import"), pull_missing=False, startup_timeout=120)
    c = start_cluster(settings, docker_engine)
    try:
        yield c
    finally:
        stop_cluster(c)


def fresh_table(client: Any, db: str, rows: int = ROWS) -> None:
    client.execute(f"CREATE DATABASE IF NOT EXISTS {db}", timeout=30)
    client.execute(f"CREATE TABLE IF NOT EXISTS {db}.sbtest1 (id INT NOT NULL AUTO_INCREMENT, "
                   "k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', "
                   "pad CHAR(60) NOT NULL DEFAULT '', PRIMARY KEY (id), KEY k_1 (k))",
                   timeout=30)
    values = ", ".join(f"({i}, {i % 7}, 'c-{i}', 'p')" for i in range(1, rows + 1))
    client.execute(f"INSERT INTO {db}.sbtest1 (id, k, c, pad) VALUES {values}", timeout=60)


def facade(cluster: Any, tmp_path: Path) -> TiDB:
    record = HARecord(nodeid="jobs", timeline=Timeline(), artifacts_dir=tmp_path / "art")
    return TiDB(cluster, cluster.client(), record, HAOptions(time_scale=SCALE))


def test_add_index_and_import_converge(cluster: Any, tmp_path: Path) -> None:
    db = "jobs_" + uuid.uuid4().hex[:6]
    tidb = facade(cluster, tmp_path)
    fresh_table(tidb.client, db)
    try:
        # facade durations are case time: x SCALE (0.05) -> 300 s / 120 s wall
        job = tidb.add_index("sbtest1", "c", db=db, admin_check=True, count_check=True,
                             timeout=6000)
        v = assert_job_converges(job, timeout=2400)
        assert v.job_id is not None
        assert "admin_check" in v.reason
        assert "count_check" in v.reason
        states = [e.data["state"] for e in tidb.record.timeline.events("job.state")]
        assert states[-1] == "synced", states
        imp = tidb.import_into("user_data", db=db, generate_rows=500, files=2, timeout=6000)
        v2 = assert_job_converges(imp, timeout=2400)
        assert "row_count" in v2.reason, v2
    finally:
        verdicts = tidb.close()
        tidb.client.execute(f"DROP DATABASE IF EXISTS {db}", timeout=60)
    assert [v.verdict for v in verdicts] == ["converged", "converged"]


@pytest.mark.parametrize("how", ["kill", "pause"])
def test_watcher_survives_losing_its_tidb(cluster: Any, tmp_path: Path, how: str) -> None:
    db = "jobs_" + uuid.uuid4().hex[:6]
    tidb = facade(cluster, tmp_path)
    fresh_table(tidb.client, db, rows=2000)
    watcher = tidb.watcher
    job = tidb.add_index("sbtest1", "c", db=db, timeout=6000)
    # the node the watcher's client prefers right now is the one it is "connected to"
    deadline = time.monotonic() + 30
    while job.job_id is None and time.monotonic() < deadline:
        job.wait(0.2)
    victim = getattr(watcher.client, "_preferred", None) or "tidb-0"
    container = cluster.container(victim)
    rounds_before = watcher._rounds
    t0 = time.monotonic()
    try:
        if how == "kill":
            cluster.kill_node(victim)
        else:
            container.pause()
        # the watcher keeps polling: rounds advance although its node is gone/frozen
        deadline = time.monotonic() + 40
        while watcher._rounds < rounds_before + 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert watcher._rounds >= rounds_before + 3, (
            f"watcher stalled after {how} of {victim}: {watcher.errors[-5:]}")
        assert time.monotonic() - t0 < 40
    finally:
        if how == "kill":
            cluster.start_node(victim)
        else:
            container.unpause()
    v = job.wait(120)
    tidb.close()
    tidb.client.execute(f"DROP DATABASE IF EXISTS {db}", timeout=60)
    assert v is not None, "no verdict after the node came back"


def test_a_job_held_by_a_metadata_lock_is_stuck_and_its_holder_named(
        cluster: Any, tmp_path: Path) -> None:
    """An open transaction that read the table holds the ADD INDEX at ``delete only`` (TiDB's
    metadata lock): the verdict is ``stuck``, and the diagnostics' notes name the session
    whose transaction holds it, from ``mysql.tidb_mdl_view`` (v7.5's shape and the newer)."""
    db = "jobs_" + uuid.uuid4().hex[:6]
    tidb = facade(cluster, tmp_path)
    fresh_table(tidb.client, db)
    holder = tidb.client.connect(read_timeout=30)
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(f"SELECT CONNECTION_ID() FROM {db}.sbtest1 WHERE id = 1")
            (session_id,) = cur.fetchone()
        # case time x SCALE: a 5 s stall window, a 300 s timeout
        job = tidb.add_index("sbtest1", "c", db=db, timeout=6000, stall=100)
        v = job.wait(120)
        assert v is not None, "no verdict within 120 s"
        assert v.verdict == "stuck", v
        assert job.latest is not None
        assert (job.latest.state, job.latest.schema_state) == ("running", "delete only"), v
        verdicts = tidb.close()
    finally:
        holder.rollback()
        holder.close()
    assert [x.verdict for x in verdicts] == ["stuck"]
    held = [n for n in tidb.record.notes if n.startswith(f"job {job.job_id} on {db}.sbtest1")]
    assert held, tidb.record.notes
    assert f"session {session_id} (transaction started" in held[0], held
    assert "sbtest1" in held[0].split("its statements:")[1], held  # the holder's statement
    # the bundle's open transactions, read with the plugin's own SQL (lockwait): the holder
    # is there, open longer than the stall window; a job at delete only is no row-lock suspect
    trx = json.loads((tidb.record.artifacts_dir / "diagnostics" / "tidb-trx.json").read_text())
    ages = {r["SESSION_ID"]: r["AGE_US"] for r in trx}
    assert ages.get(session_id, 0) > 5_000_000, trx
    assert not [n for n in tidb.record.notes if "row locks may hold" in n], tidb.record.notes
    assert not [n for n in tidb.record.notes if "tidb-trx.json" in n or "data-lock-waits" in n], \
        tidb.record.notes
    # released, the job goes on (the cluster is left as it was for the next test)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and tidb.client.query(
            "SELECT JOB_ID FROM information_schema.ddl_jobs WHERE DB_NAME = %s AND "
            "STATE NOT IN ('synced', 'cancelled', 'rollback done')", (db,), timeout=10):
        time.sleep(0.5)
    tidb.client.execute(f"DROP DATABASE IF EXISTS {db}", timeout=60)


MARKER_TEST = '''
import pytest
from pytest_tidb_ha import assert_job_converges


@pytest.mark.workload("sysbench", tables=1, table_size=500, threads=2)
@pytest.mark.fault("network_partition", selector="tikv(random)_to_all", duration="2m",
                   warmup="10s")
def test_add_index_survives_a_tikv_partition(tidb, ha_workload, nemesis):
    job = tidb.add_index("sbtest1", "c", count_check=True)
    assert_job_converges(job, timeout=3600)
'''


def test_marker_declared_test_runs_end_to_end(pytester: pytest.Pytester) -> None:
    """workload + fault markers, the ``tidb`` facade and an assertion helper, as a user writes it."""
    from test_seeds_standin import CONFTEST

    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_marker=MARKER_TEST)
    artifacts = pytester.path / "ha-artifacts"
    result = pytester.runpytest_subprocess(
        "--standin", "--ha-time-scale=0.05", f"--ha-artifacts={artifacts}",
        "--ha-artifacts-keep=all", "-p", "no:cacheprovider", "-rA", timeout=600)
    story = "\n".join(result.outlines[-60:])
    assert result.ret == 0, story
    files = list(artifacts.rglob("verdicts.json"))
    assert files, story
    verdicts = json.loads(files[0].read_text())["verdicts"]
    assert [v["verdict"] for v in verdicts] == ["converged"], verdicts
    assert "count_check" in verdicts[0]["reason"]
