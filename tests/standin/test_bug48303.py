"""Bug mode 48303: a TiKV partition during ingest backfill deadlocks the owner's backfill.

Seed: add index stays ``running`` forever, ``ADMIN CANCEL DDL JOBS`` answers ``successful``
but the job stays ``cancelling`` (TiDB writes that into the row; the deadlocked worker never
rolls it back), the next ADD INDEX on the table stays ``queueing``, and the goroutine
dump shows the two blocked lock waits. The same fault without the bug mode ends ``synced``
with a consistent index. The trigger is physical: an ingest write to the partitioned TiKV
times out.
"""

from __future__ import annotations

import time

import pytest
from standin_helpers import StandinNet, wait_for
from test_tidb_support import (
    add_index_until_backfilling,
    alter_in_background,
    job_row_count,
    job_state,
    latest_job_id,
    load_sbtest,
    query,
    session,
    start_cluster,
    triggers,
)

pytestmark = pytest.mark.docker

#: ~47 batches at batch size 64: the partition lands at the first rows and its trigger (a
#: timed-out ingest write) comes within ~2 s, long before the backfill could end; the
#: fixed run then pays only for the rest of the rows (6000 cost it 35 s).
ROWS = 3000


def _ingest_lock_waits(net: StandinNet, tidb: str) -> list[str]:
    _status, dump = net.http(tidb, 10080, "/debug/pprof/goroutine?debug=2")
    blocks = str(dump).split("\n\n")
    return [b for b in blocks if "[semacquire" in b.splitlines()[0] and "ingest." in b]


@pytest.mark.parametrize("bug", [True, False], ids=["bug-48303", "fixed"])
def test_tikv_partition_during_ingest_backfill(standin: StandinNet, bug: bool) -> None:
    # The seed's release (affects-7.5): v7.5 shows the reorg type in JOB_TYPE.
    env = {"STANDIN_VERSION": "v7.5.0", **({"STANDIN_BUGS": "48303"} if bug else {})}
    (tidb,) = start_cluster(standin, tikvs=3, env=env)
    load_sbtest(standin, tidb, "sb", "sbtest1", ROWS)
    with session(standin, tidb) as cur:
        cur.execute("SET GLOBAL tidb_enable_dist_task = ON")
        cur.execute("SET GLOBAL tidb_ddl_enable_fast_reorg = ON")
        cur.execute("SET GLOBAL tidb_ddl_reorg_batch_size = 64")
    th, outcome, job_id = add_index_until_backfilling(
        standin, tidb, "ALTER TABLE sb.sbtest1 ADD INDEX idx_c (c)", "sbtest1", "sb"
    )
    assert query(
        standin, tidb, f"SELECT JOB_TYPE FROM information_schema.ddl_jobs WHERE JOB_ID={job_id}"
    ) == [{"JOB_TYPE": "add index /* ingest */"}]
    others = [n for n in standin.containers if n != "tikv-1"]
    standin.isolate("tikv-1", others)
    try:
        if bug:
            waits = wait_for(
                "two blocked ingest lock waits in the goroutine dump",
                lambda: (lambda w: w if len(w) >= 2 else None)(_ingest_lock_waits(standin, tidb)),
                timeout=60,
                story=lambda: standin.story(tidb),
            )
            assert any("ingest.engine" in w for w in waits)
            assert any(
                "ingest.flush" in w for w in waits
            )
        else:
            # The trigger itself: an ingest write to the cut-off TiKV timed out.
            wait_for(
                "an ingest write to the partitioned TiKV to time out",
                lambda: triggers(standin, tidb)["48303"] >= 1,
                timeout=60,
                story=lambda: standin.story(tidb),
            )
    finally:
        standin.heal("tikv-1")
    if not bug:
        th.join(240)
        assert outcome == {"ok": True}, f"{outcome}\n{standin.story(tidb)}"
        assert job_state(standin, tidb, job_id) == "synced"
        with session(standin, tidb) as cur:
            cur.execute("ADMIN CHECK TABLE sb.sbtest1")
            cur.execute("SELECT COUNT(*) FROM sb.sbtest1 USE INDEX (idx_c)")
            assert cur.fetchone()["COUNT(*)"] == ROWS
        return
    assert triggers(standin, tidb)["48303"] >= 1
    # Bug: stuck after the fault healed; cancel is "successful" and ineffective: the job row
    # says ``cancelling`` (the cancel wrote it) and the deadlocked worker never moves it on.
    stuck_at = job_row_count(standin, tidb, job_id)
    assert job_state(standin, tidb, job_id) == "running"
    assert query(standin, tidb, f"ADMIN CANCEL DDL JOBS {job_id}") == [
        {"JOB_ID": job_id, "RESULT": "successful"}
    ]
    _th2, outcome2 = alter_in_background(
        standin, tidb, "ALTER TABLE sb.sbtest1 ADD INDEX idx_pad (pad)"
    )
    second = wait_for(
        "the second job",
        lambda: (lambda j: j if j and j != job_id else None)(
            latest_job_id(standin, tidb, "sbtest1", "sb")
        ),
        timeout=30,
    )
    wait_for("second job queueing", lambda: job_state(standin, tidb, second) == "queueing", timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert job_state(standin, tidb, job_id) == "cancelling"
        assert job_state(standin, tidb, second) == "queueing"
        assert job_row_count(standin, tidb, job_id) == stuck_at
        time.sleep(1)
    assert "ok" not in outcome
    assert "ok" not in outcome2
    assert len(_ingest_lock_waits(standin, tidb)) >= 2
