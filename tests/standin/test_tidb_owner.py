"""DDL owner physics of the TiDB role: lease expiry on a PD partition, takeover after a kill.

Each test starts 1 PD, 1 TiKV and 2 TiDBs and acts on the real containers (iptables in
the owner's network namespace, ``docker kill``); the jobs must converge to ``synced``
with consistent data because no bug mode is switched on.
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
    owner,
    query,
    session,
    start_cluster,
)

pytestmark = pytest.mark.docker


def _wait_takeover(net: StandinNet, survivor: str) -> None:
    """Wait until ``survivor`` reports DDL ownership after the old owner was taken out."""
    wait_for(
        f"{survivor} to take over DDL",
        lambda: owner(net, [survivor]),
        timeout=60,
        story=net.story,
    )


def test_owner_moves_when_partitioned_from_pd(standin: StandinNet) -> None:
    names = start_cluster(standin, tidbs=2)
    first = wait_for("a DDL owner", lambda: owner(standin, names), timeout=30, story=standin.story)
    other = next(n for n in names if n != first)
    assert query(standin, first, "SELECT tidb_is_ddl_owner()") == [{"tidb_is_ddl_owner()": 1}]
    standin.isolate(first, ["pd-0"])
    try:
        started = time.monotonic()
        wait_for(
            f"{other} to become owner",
            lambda: owner(standin, [other]),
            timeout=60,
            story=standin.story,
        )
        took = time.monotonic() - started
        # The old owner no longer claims ownership (its session expired), although SQL still answers.
        wait_for(
            f"{first} to step down",
            lambda: (
                query(standin, first, "SELECT tidb_is_ddl_owner()") == [{"tidb_is_ddl_owner()": 0}]
            ),
            timeout=30,
        )
        assert took > 1.0, "ownership moved before the old owner's lease could expire"
    finally:
        standin.heal(first)
    show = query(standin, other, "ADMIN SHOW DDL")[0]
    assert show["OWNER_ADDRESS"] == f"{other}:4000"
    time.sleep(3)
    assert owner(standin, names) == other  # no flapping back after healing


def test_add_index_progress_and_takeover_after_owner_kill(standin: StandinNet) -> None:
    names = start_cluster(standin, tidbs=2)
    first = wait_for("a DDL owner", lambda: owner(standin, names), timeout=30, story=standin.story)
    other = next(n for n in names if n != first)
    load_sbtest(standin, other, "sb", "sbtest1", 8000)
    query(standin, other, "SET GLOBAL tidb_ddl_reorg_batch_size = 64")
    th, outcome = alter_in_background(standin, other, "ALTER TABLE sb.sbtest1 ADD INDEX idx_c (c)")
    job_id = wait_for(
        "the job id", lambda: latest_job_id(standin, other, "sbtest1", "sb"), timeout=30
    )
    seen: list[int] = []

    def grew() -> bool:
        seen.append(job_row_count(standin, other, job_id))
        return len({c for c in seen if c > 0}) >= 2

    wait_for("ROW_COUNT to grow", grew, timeout=60, interval=0.3, story=standin.story)
    assert seen == sorted(seen), f"ROW_COUNT went backwards: {seen}"
    assert job_state(standin, other, job_id) == "running"
    standin.container(first).kill()
    _wait_takeover(standin, other)
    th.join(240)
    assert outcome == {"ok": True}, f"{outcome}\n{standin.story(other)}"
    final = query(
        standin,
        other,
        f"SELECT STATE, ROW_COUNT FROM information_schema.ddl_jobs WHERE JOB_ID={job_id}",
    )
    assert final == [{"STATE": "synced", "ROW_COUNT": 8000}]
    with session(standin, other) as cur:
        cur.execute("SET GLOBAL tidb_ddl_reorg_batch_size = 256")
        cur.execute("ADMIN CHECK TABLE sb.sbtest1")
        cur.execute("SELECT COUNT(*) FROM sb.sbtest1 USE INDEX (idx_c)")
        assert cur.fetchone()["COUNT(*)"] == 8000
        cur.execute(
            f"SELECT id, state FROM mysql.tidb_global_task_history WHERE task_key = 'ddl/backfill/{job_id}'"
        )
        assert cur.fetchone()["state"] == "succeed"


def test_add_index_resumes_from_checkpoint_after_owner_partition(standin: StandinNet) -> None:
    names = start_cluster(standin, tidbs=2)
    first = wait_for("a DDL owner", lambda: owner(standin, names), timeout=30, story=standin.story)
    other = next(n for n in names if n != first)
    load_sbtest(standin, other, "sb", "sbtest1", 8000)
    with session(standin, other) as cur:
        cur.execute(
            "SET GLOBAL tidb_enable_dist_task = OFF"
        )  # owner-local backfill with an etcd checkpoint
        cur.execute("SET GLOBAL tidb_ddl_reorg_batch_size = 64")
    th, outcome, job_id = add_index_until_backfilling(
        standin, other, "ALTER TABLE sb.sbtest1 ADD INDEX idx_k2 (k, c)", "sbtest1", "sb"
    )
    standin.isolate(first, ["pd-0"])
    try:
        _wait_takeover(standin, other)
        th.join(240)
    finally:
        standin.heal(first)
    assert outcome == {"ok": True}, f"{outcome}\n{standin.story()}"
    assert query(
        standin, other, f"SELECT STATE FROM information_schema.ddl_jobs WHERE JOB_ID={job_id}"
    ) == [{"STATE": "synced"}]
    with session(standin, other) as cur:
        cur.execute("ADMIN CHECK TABLE sb.sbtest1")
        cur.execute("SELECT COUNT(*) FROM sb.sbtest1 USE INDEX (idx_k2)")
        assert cur.fetchone()["COUNT(*)"] == 8000
        cur.execute("SET GLOBAL tidb_enable_dist_task = ON")
