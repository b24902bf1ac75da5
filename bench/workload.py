"""How much client CPU the Python workload driver costs, next to Debian's ``sysbench``.

Both clients run ``oltp_read_write`` (uniform ids, range size 100, the same
tables and sizes, the same thread count, the same 20 statements per
transaction) for the same time against one private MariaDB on loopback. What
we compare is *transactions per second per client core*: transactions divided
by the CPU seconds (user + system) the client used — the server's work is the
same for both and is not counted. sysbench runs twice: with its default
server-side prepared statements (the anchor of the goal), and with
``--db-ps-mode=disable`` (the text protocol, as our driver uses). The three
clients take turns for ``--rounds`` rounds and each client's runs are pooled, so
a change of the shared machine's load does not favour one side.

Goal (issue 13): ours >= 0.5x sysbench's tps per client core.

Usage::

    python bench/workload.py [--seconds 8] [--rounds 2] [--threads 4] [--tables 2]
                             [--table-size 10000]

Prints a table and writes ``bench/results/workload.json``. Needs root (or
pre-installed ``mariadb-server`` and ``sysbench``); installs them with apt.
The machine is shared: treat single numbers as ±20 %.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

from mariadb import MariaDB, Unavailable, mariadb_server  # noqa: E402

from pytest_tidb_ha.scenario.model import Workload  # noqa: E402
from pytest_tidb_ha.timeline import Timeline  # noqa: E402
from pytest_tidb_ha.workload.sysbench import Sysbench  # noqa: E402
from pytest_tidb_ha.workload.target import Target  # noqa: E402

DB = "sbtest_bench"
#: ours / sysbench (prepared statements), tps per client core (issue 13)
GOAL = 0.5
OURS = "pytest-tidb-ha python driver (text)"
ANCHOR = "sysbench 1.0 (prepared)"
log = logging.getLogger("pytest_tidb_ha.bench")


@dataclass(frozen=True)
class Result:
    client: str
    seconds: float
    transactions: int
    errors: int
    cpu_seconds: float
    user_seconds: float = 0.0
    sys_seconds: float = 0.0

    @property
    def tps(self) -> float:
        return self.transactions / self.seconds

    @property
    def cores(self) -> float:
        return self.cpu_seconds / self.seconds

    @property
    def tps_per_core(self) -> float:
        return self.transactions / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


def ensure_sysbench() -> str | None:
    path = shutil.which("sysbench")
    if path or os.geteuid() != 0:
        return path
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "sysbench"]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False).returncode:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600,
                       check=False)
        subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False)
    return shutil.which("sysbench")


def _cpu(usage: resource.struct_rusage) -> tuple[float, float]:
    return usage.ru_utime, usage.ru_stime


def run_ours(db: MariaDB, spec: Workload, seconds: float) -> Result:
    """The plugin's Python driver in this process; its CPU is this process's."""
    sb = Sysbench(lambda: db.connect(read_timeout=30, write_timeout=30), spec, Timeline(),
                  target=Target(((db.host, db.port),), read_timeout=30), driver="python")
    u0, s0 = _cpu(resource.getrusage(resource.RUSAGE_SELF))
    sb.start()
    time.sleep(seconds)
    totals = sb.stop()
    u1, s1 = _cpu(resource.getrusage(resource.RUSAGE_SELF))
    return Result(OURS, totals.seconds, totals.transactions, totals.error_count,
                  (u1 - u0) + (s1 - s0), u1 - u0, s1 - s0)


def pooled(a: Result, b: Result) -> Result:
    return Result(a.client, a.seconds + b.seconds, a.transactions + b.transactions,
                  a.errors + b.errors, a.cpu_seconds + b.cpu_seconds,
                  a.user_seconds + b.user_seconds, a.sys_seconds + b.sys_seconds)


def run_sysbench(binary: str, db: MariaDB, spec: Workload, seconds: float,
                 ps_mode: str) -> Result:
    cmd = [binary, "oltp_read_write", f"--tables={spec.tables}",
           f"--table-size={spec.table_size}", f"--threads={spec.threads}",
           f"--time={int(seconds)}", "--rand-type=uniform", f"--db-ps-mode={ps_mode}",
           "--mysql-host=127.0.0.1", f"--mysql-port={db.port}", "--mysql-user=root",
           f"--mysql-db={DB}", "run"]
    u0, s0 = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                          check=False)
    u1, s1 = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
    if proc.returncode != 0:
        raise RuntimeError(f"sysbench failed ({proc.returncode}): {proc.stderr[-800:]}")
    tx = re.search(r"transactions:\s+(\d+)", proc.stdout)
    errs = re.search(r"ignored errors:\s+(\d+)", proc.stdout)
    total = re.search(r"total time:\s+([\d.]+)s", proc.stdout)
    if not (tx and total):
        raise RuntimeError(f"cannot read sysbench's report:\n{proc.stdout[-1500:]}")
    name = ANCHOR if ps_mode == "auto" else "sysbench 1.0 (text)"
    return Result(name, float(total.group(1)), int(tx.group(1)),
                  int(errs.group(1)) if errs else 0, (u1 - u0) + (s1 - s0), u1 - u0, s1 - s0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="per client per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--tables", type=int, default=2)
    ap.add_argument("--table-size", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "workload.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    spec = Workload(db=DB, tables=args.tables, table_size=args.table_size,
                    threads=args.threads, ignore_errors="all")
    binary = ensure_sysbench()
    results: list[Result] = []
    try:
        with mariadb_server() as db:
            loader = Sysbench(lambda: db.connect(read_timeout=60, write_timeout=60), spec,
                              Timeline())
            t0 = time.monotonic()
            loader.prepare()
            prepare_s = time.monotonic() - t0
            # rounds of ours / sysbench prepared / sysbench text, pooled per client: a
            # change of the shared machine's load hits every client alike
            runs: dict[str, Result] = {}
            for _ in range(args.rounds):
                for r in [run_ours(db, spec, args.seconds)] + (
                        [run_sysbench(binary, db, spec, args.seconds, mode)
                         for mode in ("auto", "disable")] if binary else []):
                    runs[r.client] = pooled(runs[r.client], r) if r.client in runs else r
            results = list(runs.values())
            loader.cleanup()
    except Unavailable as exc:
        sys.stderr.write(f"bench/workload.py: {exc}\n")
        return 2

    ours = results[0]
    print(f"oltp_read_write, {args.tables} tables x {args.table_size} rows, "
          f"{args.threads} threads, {args.rounds} rounds of {args.seconds:.0f}s per client, "
          f"MariaDB on loopback (prepare {prepare_s:.1f}s)")
    print(f"{'client':38} {'tps':>9} {'errors':>7} {'client cores':>13} {'tps/core':>10} "
          f"{'us/tx user+sys':>15} {'ours/this':>10}")
    for r in results:
        ratio = ours.tps_per_core / r.tps_per_core if r.tps_per_core else float("nan")
        per_tx = (f"{r.user_seconds / r.transactions * 1e6:.0f}+"
                  f"{r.sys_seconds / r.transactions * 1e6:.0f}" if r.transactions else "-")
        print(f"{r.client:38} {r.tps:9.1f} {r.errors:7d} {r.cores:13.2f} "
              f"{r.tps_per_core:10.1f} {per_tx:>15} {ratio:10.2f}")
    anchor = next((r for r in results if r.client == ANCHOR), None)
    goal_ratio = ours.tps_per_core / anchor.tps_per_core if anchor and anchor.tps_per_core else None
    if goal_ratio is None:
        print("sysbench not installed: no comparison (apt-get install sysbench)")
    else:
        print(f"goal: ours >= {GOAL}x {ANCHOR} per client core: {goal_ratio:.2f}x, "
              f"{'met' if goal_ratio >= GOAL else 'NOT met'}")
    report = {
        "bench": "workload",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "params": {"tables": args.tables, "table_size": args.table_size,
                   "threads": args.threads, "seconds": args.seconds, "rounds": args.rounds},
        "prepare_seconds": round(prepare_s, 2),
        "results": [asdict(r) | {"tps": round(r.tps, 1), "tps_per_core": round(r.tps_per_core, 1)}
                    for r in results],
        "ratio_tps_per_core_vs_sysbench": {
            r.client: round(ours.tps_per_core / r.tps_per_core, 3)
            for r in results[1:] if r.tps_per_core},
        "goal": {"ratio": GOAL, "anchor": ANCHOR,
                 "measured": None if goal_ratio is None else round(goal_ratio, 3),
                 "met": None if goal_ratio is None else goal_ratio >= GOAL},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out.relative_to(Path.cwd()) if args.out.is_relative_to(Path.cwd()) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
