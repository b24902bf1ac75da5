"""Support for the TiDB-role tests: start small stand-in clusters, talk SQL and HTTP to them.

(No tests here; the module name keeps it inside the TiDB role's test files.)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors
from standin_helpers import StandinNet, wait_for

SCALE = "0.5"


def start_cluster(
    net: StandinNet,
    *,
    pds: int = 1,
    tikvs: int = 1,
    tidbs: int = 1,
    env: Mapping[str, str] | None = None,
    import_dir: Path | None = None,
) -> list[str]:
    """Start PD(s), TiKV(s), TiDB(s); wait until every TiDB answers ``SELECT 1``; return TiDB names."""
    environment = {"STANDIN_TIME_SCALE": SCALE, **(env or {})}
    if pds > 1:
        pd_names = net.pd_cluster(pds, env=environment)
    else:
        net.pd("pd-0", env=environment)
        pd_names = ["pd-0"]
    for i in range(tikvs):
        net.tikv(f"tikv-{i}", pd_names, env=environment)
    names = [f"tidb-{i}" for i in range(tidbs)]
    for name in names:
        start_tidb(net, name, pd_names, environment, import_dir)
    for name in names:
        wait_sql(net, name)
    wait_for(
        f"{tikvs} TiKV store(s) Up in PD",
        lambda: _stores_up(net, pd_names[0]) >= tikvs,
        timeout=60,
        story=net.story,
    )
    return names


def _stores_up(net: StandinNet, pd: str) -> int:
    status, body = net.pd_get(pd, "/stores")
    if status != 200 or not isinstance(body, dict):
        return 0
    return sum(1 for s in body.get("stores") or [] if s.get("store", {}).get("state_name") == "Up")


def start_tidb(
    net: StandinNet,
    name: str,
    pds: Sequence[str],
    env: Mapping[str, str],
    import_dir: Path | None = None,
) -> Any:
    volumes = {str(import_dir): {"bind": "/import", "mode": "ro"}} if import_dir else None
    return net.run(
        name,
        "tidb",
        [
            "--store=tikv",
            f"--path={','.join(f'{p}:2379' for p in pds)}",
            "-P",
            "4000",
            "--status=10080",
            f"--advertise-address={name}",
        ],
        env=env,
        volumes=volumes,
    )


def connect(
    net: StandinNet, name: str, *, read_timeout: float = 30, database: str | None = None
) -> Any:
    return pymysql.connect(
        host=net.ip(name),
        port=4000,
        user="root",
        password="",
        database=database,
        autocommit=True,
        connect_timeout=3,
        read_timeout=read_timeout,
        write_timeout=read_timeout,
        cursorclass=pymysql.cursors.DictCursor,
    )


def wait_sql(net: StandinNet, name: str, timeout: float = 60) -> None:
    def probe() -> bool:
        with contextlib.closing(connect(net, name, read_timeout=5)) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            return True

    wait_for(f"{name} answers SELECT 1", probe, timeout=timeout, story=lambda: net.story())


def query(
    net: StandinNet, name: str, sql: str, *, read_timeout: float = 30
) -> list[dict[str, Any]]:
    with (
        contextlib.closing(connect(net, name, read_timeout=read_timeout)) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(sql)
        return list(cur.fetchall())


@contextlib.contextmanager
def session(net: StandinNet, name: str, *, read_timeout: float = 30) -> Iterator[Any]:
    with (
        contextlib.closing(connect(net, name, read_timeout=read_timeout)) as conn,
        conn.cursor() as cur,
    ):
        yield cur


def owner(net: StandinNet, names: Sequence[str]) -> str | None:
    """The TiDB whose /info says is_owner (None when no TiDB answers so)."""
    for name in names:
        try:
            status, body = net.http(name, 10080, "/info", timeout=3)
        except Exception:  # noqa: BLE001, S112 - an unreachable TiDB is not the owner
            continue
        if status == 200 and isinstance(body, dict) and body.get("is_owner"):
            return name
    return None


def job_row(net: StandinNet, name: str, job_id: int) -> dict[str, Any] | None:
    rows = query(net, name, f"SELECT * FROM information_schema.ddl_jobs WHERE JOB_ID = {job_id}")
    return rows[0] if rows else None


def load_sbtest(
    net: StandinNet, name: str, db: str, table: str, rows: int, batch: int = 1000
) -> None:
    with session(net, name, read_timeout=120) as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {db}.{table} (id INT NOT NULL AUTO_INCREMENT, k INT NOT NULL DEFAULT 0, "
            "c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', PRIMARY KEY (id), KEY k_1 (k))"
        )
        for start in range(1, rows + 1, batch):
            values = ",".join(
                f"({i}, {i % 97}, 'c-{i % 13}-{i}', 'pad-{i}')"
                for i in range(start, min(rows, start + batch - 1) + 1)
            )
            cur.execute(f"INSERT INTO {db}.{table} (id, k, c, pad) VALUES {values}")


def latest_job_id(net: StandinNet, name: str, table: str, db: str | None = None) -> int | None:
    where = f" AND DB_NAME = '{db}'" if db else ""
    rows = query(
        net,
        name,
        "SELECT JOB_ID FROM information_schema.ddl_jobs WHERE JOB_TYPE LIKE 'add index%' "
        f"AND TABLE_NAME = '{table}'{where} ORDER BY JOB_ID DESC LIMIT 1",
    )
    return int(rows[0]["JOB_ID"]) if rows else None


def alter_in_background(
    net: StandinNet, via: str, sql: str
) -> tuple[threading.Thread, dict[str, Any]]:
    """Run a blocking ALTER on a thread; ``outcome`` gets ``ok`` or the MySQL ``error`` args."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with session(net, via, read_timeout=600) as cur:
                cur.execute(sql)
            outcome["ok"] = True
        except pymysql.err.MySQLError as exc:
            outcome["error"] = exc.args

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, outcome


def job_row_count(net: StandinNet, via: str, job_id: int) -> int:
    rows = query(
        net, via, f"SELECT ROW_COUNT FROM information_schema.ddl_jobs WHERE JOB_ID = {job_id}"
    )
    return int(rows[0]["ROW_COUNT"]) if rows else -1


def job_state(net: StandinNet, via: str, job_id: int) -> str:
    rows = query(net, via, f"SELECT STATE FROM information_schema.ddl_jobs WHERE JOB_ID = {job_id}")
    return str(rows[0]["STATE"]) if rows else "?"


def add_index_until_backfilling(
    net: StandinNet, via: str, sql: str, table: str, db: str
) -> tuple[threading.Thread, dict[str, Any], int]:
    """Start ``sql`` (an ADD INDEX on ``db.table``) and return once its backfill has rows.

    Fault tests inject their fault only from here on, so that the fault lands mid-backfill
    rather than before the job exists. Returns the ALTER's thread, its outcome and the job id.
    """
    th, outcome = alter_in_background(net, via, sql)
    job_id = wait_for("the job id", lambda: latest_job_id(net, via, table, db), timeout=30)
    wait_for(
        "backfill under way",
        lambda: job_row_count(net, via, job_id) > 0,
        timeout=60,
        story=net.story,
    )
    return th, outcome, job_id


def elapsed(since: float) -> float:
    return time.monotonic() - since


def triggers(net: StandinNet, name: str) -> dict[str, int]:
    """How often each seed bug's physical trigger happened in TiDB ``name`` (any bug mode)."""
    status, body = net.http(name, 10080, "/standin/triggers")
    assert status == 200, body
    assert isinstance(body, dict), body
    return {str(k): int(v) for k, v in body.items()}
