"""Bug mode 46735: after the DDL owner is killed during IMPORT INTO the job is never taken over.

Seed (DXF on, S3 source): kill the DDL owner during the import → ``mysql.tidb_import_jobs``
keeps ``status=running, step=importing`` forever while its ``ImportInto/<id>`` task is
terminal. Fixed: the new owner's scheduler finishes the task *and* the job (``finished``,
all rows imported).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from standin_helpers import StandinNet, wait_for
from test_tidb_support import owner, query, session, start_cluster, triggers

pytestmark = pytest.mark.docker

FILES, PER_FILE = 4, 20000


def _data(root: Path) -> Path:
    bucket = root / "brie" / "user_data"
    bucket.mkdir(parents=True)
    for f in range(FILES):
        rows = "".join(f"{f * PER_FILE + i},{i % 100},c{i},p{i}\n" for i in range(1, PER_FILE + 1))
        (bucket / f"test.user_data1.{f}.csv").write_text("id,k,c,pad\n" + rows)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    root.chmod(0o755)
    return root


@pytest.mark.parametrize("bug", [True, False], ids=["bug-46735", "fixed"])
def test_kill_ddl_owner_during_import(standin: StandinNet, tmp_path: Path, bug: bool) -> None:
    env = {"STANDIN_BUGS": "46735"} if bug else {}
    names = start_cluster(standin, tidbs=2, env=env, import_dir=_data(tmp_path))
    first = wait_for("a DDL owner", lambda: owner(standin, names), timeout=30, story=standin.story)
    other = next(n for n in names if n != first)
    with session(standin, other, read_timeout=60) as cur:
        cur.execute("SET GLOBAL tidb_enable_dist_task = ON")
        cur.execute("CREATE DATABASE IF NOT EXISTS importtest")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS importtest.user_data1 (id BIGINT NOT NULL, k INT NOT NULL, "
            "c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, PRIMARY KEY (id))"
        )
        url = (
            "s3://brie/user_data/test.user_data1.*.csv?access-key=minioadmin&secret-access-key=minioadmin"
            "&endpoint=http://minio:9001&force-path-style=true"
        )
        cur.execute(f"IMPORT INTO importtest.user_data1 FROM '{url}' WITH skip_rows=1, detached")
        job_id = cur.fetchone()["Job_ID"]

    def job() -> dict[str, Any]:
        return query(
            standin,
            other,
            f"SELECT id, step, status FROM mysql.tidb_import_jobs WHERE id = {job_id}",
        )[0]

    def imported() -> int:
        row = query(standin, other, f"SHOW IMPORT JOB {job_id}")[0]
        return int(row["Imported_Rows"] or 0)

    wait_for(
        "import running",
        lambda: job()["status"] == "running" and imported() > 0,
        timeout=60,
        story=standin.story,
    )
    assert job()["step"] == "importing"
    standin.container(first).kill()
    wait_for(
        f"{other} to own DDL", lambda: owner(standin, [other]), timeout=60, story=standin.story
    )
    task_key = f"ImportInto/{job_id}"
    if bug:
        wait_for(
            "the import task to be gone from tidb_global_task",
            lambda: (
                not query(
                    standin,
                    other,
                    f"SELECT id FROM mysql.tidb_global_task WHERE task_key = '{task_key}'",
                )
            ),
            timeout=120,
            story=lambda: standin.story(other),
        )
        hist = query(
            standin,
            other,
            f"SELECT state FROM mysql.tidb_global_task_history WHERE task_key='{task_key}'",
        )
        assert hist
        assert hist[0]["state"] in ("succeed", "reverted", "failed")
        assert triggers(standin, other)["46735"] >= 1
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert job() == {"id": job_id, "step": "importing", "status": "running"}
            time.sleep(1)
    else:
        wait_for(
            "import finished",
            lambda: job()["status"] == "finished",
            timeout=180,
            story=lambda: standin.story(other),
        )
        assert job()["step"] == ""
        # The trigger happened: the new owner took the task over from the dead scheduler.
        assert triggers(standin, other)["46735"] >= 1
        rows = query(standin, other, "SELECT COUNT(*) FROM importtest.user_data1")
        assert rows == [{"COUNT(*)": FILES * PER_FILE}]
        assert imported() == FILES * PER_FILE
    assert "minioadmin" not in standin.logs(other, 3000)
