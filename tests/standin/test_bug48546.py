"""Bug mode 48546: the owner's PD session expires during backfill and the job fails.

Seed (DXF on): partition the PD leader from its followers during ADD INDEX → the TiDB's
etcd session (its keepalive stream is on the PD leader) expires, the ingest flush's
distributed lock fails with ``mutex: session is expired``, the job ends ``rollback done``
and the ALTER returns ``Error 1105 (HY000): mutex: session is expired``. Fixed: the flush
re-acquires with a new session and the job ends ``synced``.
"""

from __future__ import annotations

import pytest
from standin_helpers import StandinNet, pd_leader, wait_for
from test_tidb_support import (
    add_index_until_backfilling,
    job_state,
    load_sbtest,
    session,
    start_cluster,
    triggers,
)

pytestmark = pytest.mark.docker

#: 75 flushes at batch size 32 (~25 s of backfill at time scale 0.5): the partition lands
#: within a second of the first rows, so a flush always meets it -- and the fixed run,
#: which backfills through it, pays only for the rows (8000 cost it 100 s).
ROWS = 2400


@pytest.mark.parametrize("bug", [True, False], ids=["bug-48546", "fixed"])
def test_pd_leader_partition_during_backfill(standin: StandinNet, bug: bool) -> None:
    env = {"STANDIN_BUGS": "48546"} if bug else {}
    (tidb,) = start_cluster(standin, pds=3, env=env)
    load_sbtest(standin, tidb, "sb", "sbtest1", ROWS)
    with session(standin, tidb) as cur:
        cur.execute("SET GLOBAL tidb_enable_dist_task = ON")
        cur.execute("SET GLOBAL tidb_ddl_reorg_batch_size = 32")
    leader = wait_for("a PD leader", lambda: pd_leader(standin, "pd-0"), timeout=30)
    followers = [p for p in ("pd-0", "pd-1", "pd-2") if p != leader]
    th, outcome, job_id = add_index_until_backfilling(
        standin, tidb, "ALTER TABLE sb.sbtest1 ADD INDEX idx_c (c)", "sbtest1", "sb"
    )
    standin.isolate(leader, followers)
    try:
        th.join(30 if bug else 20)
    finally:
        standin.heal(leader)
    th.join(240)
    if bug:
        assert outcome == {"error": (1105, "mutex: session is expired")}, (
            f"{outcome}\n{standin.logs(tidb, 300)}"
        )
        assert job_state(standin, tidb, job_id) == "rollback done"
        assert triggers(standin, tidb)["48546"] >= 1
        logs = standin.logs(tidb, 2000)
        assert '["flush error"] [category=ddl] [error="mutex: session is expired"]' in logs
        with session(standin, tidb) as cur:
            cur.execute(
                f"SELECT state, CAST(error AS CHAR) AS err FROM mysql.tidb_global_task_history "
                f"WHERE task_key = 'ddl/backfill/{job_id}'"
            )
            assert cur.fetchone() == {"state": "reverted", "err": "mutex: session is expired"}
            cur.execute("ADMIN CHECK TABLE sb.sbtest1")
    else:
        # The trigger happened: the flush met the expired session (and took a new one).
        assert triggers(standin, tidb)["48546"] >= 1, standin.logs(tidb, 300)
        assert outcome == {"ok": True}, f"{outcome}\n{standin.story(tidb)}"
        assert job_state(standin, tidb, job_id) == "synced"
        with session(standin, tidb) as cur:
            cur.execute("ADMIN CHECK TABLE sb.sbtest1")
            cur.execute("SELECT COUNT(*) FROM sb.sbtest1 USE INDEX (idx_c)")
            assert cur.fetchone()["COUNT(*)"] == ROWS
