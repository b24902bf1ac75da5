"""Verdict latency: how soon after a job stops making progress is it reported ``stuck``?

The plugin's promise (DESIGN.md "Verdicts"): a stuck job is reported as soon as the
stall window proves it — one window of *fault-free* time after its last progress —
not after the case's timeout. The bench runs a seed case against the stand-in
cluster in a bug mode that really stalls the job (``--standin-bugs 48303``: the
ADD INDEX backfill deadlocks after a TiKV partition; ``46735``: IMPORT INTO stays
``running/importing`` after its owner is killed), exactly as a user runs a case
file (a pytest subprocess, the repository's ``--standin`` switches, artifacts kept),
and reads the kept ``timeline.json`` and ``verdicts.json``:

* stall start = the last ``job.state`` event of the job before its verdict (the
  watcher records one per change of anything that counts as progress), checked
  against the verdict's own ``last_progress_at``;
* latency (wall) = the ``job.verdict`` event's time - stall start;
* latency (fault-free) = the part of that not covered by a fault window (the
  stall clock stops while a fault is active), from the verdict's evidence;
* lateness = fault-free latency - stall window: what detection adds to the proof
  (poll interval, slow answers from a loaded cluster).

The seed copies run with 4 workload threads (the seeds' 64 would only measure the
stand-in's overload on a 2-core machine) and a tiny workload scale.

Standalone: ``python bench/verdict_latency.py [--seeds 48303,46735]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    REPO,
    RESULTS,
    BenchError,
    CommandTimeout,
    Row,
    Section,
    python,
    ratio,
    remove_owned_by,
    repo_conftest,
    run_command,
    secs,
    tail,
    write_json,
)

log = logging.getLogger("pytest_tidb_ha.bench")

SEEDS_DIR = REPO / "scenarios" / "seeds"
#: Case time x scale = wall time. 0.02 runs #48303's 30-minute schedule in 36 s; #46735's
#: kill must outlast the stand-in's floors (the seeds' integration test uses 0.05 too).
TIME_SCALE = {"48303": "0.02", "46735": "0.05", "48546": "0.05"}
WORKLOAD_SCALE = "0.00002"
THREADS = 4
#: What one seed run costs on this machine (to plan the optional ones).
EXPECTED_SECONDS = {"48303": 130.0, "46735": 150.0, "48546": 130.0}
RUN_TIMEOUT = 600.0



def seed_copy(seed: str) -> str:
    """The seed case file with fewer workload threads (nothing else changed)."""
    text = (SEEDS_DIR / f"{seed}.yaml").read_text()
    return re.sub(r"(?m)^(\s*threads:\s*)\d+", rf"\g<1>{THREADS}", text)


def stall_figures(verdict: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """Latency figures of one ``stuck`` (stall window) verdict from the kept timeline (pure)."""
    key = verdict["job_key"]
    ev = verdict.get("evidence") or {}
    decided = next((e["t"] for e in events
                    if e.get("kind") == "job.verdict" and e.get("job_key") == key), None)
    if decided is None:
        raise BenchError(f"no job.verdict event for {key} in timeline.json")
    states = [e for e in events if e.get("kind") == "job.state" and e.get("job_key") == key
              and e["t"] <= decided]
    stall_start = states[-1]["t"] if states else float(verdict["started_at"])
    window = float(ev["stall_window"])
    fault_free = float(ev["fault_free_since_progress"])
    return {
        "job_key": key, "verdict": verdict["verdict"], "reason": verdict["reason"],
        "stall_start": round(stall_start, 3),
        "evidence_last_progress_at": ev.get("last_progress_at"),
        "verdict_at": round(decided, 3),
        "latency_wall": round(decided - stall_start, 3),
        "latency_fault_free": fault_free,
        "stall_window": window,
        "lateness": round(fault_free - window, 3),
        "paused_by_faults": round(decided - stall_start - fault_free, 3),
        "job_timeout": ev.get("timeout"),
        "submitted_at": verdict.get("started_at"),
    }


def cleanup_after(pid: int) -> None:
    """A pytest run that had to be killed may leave its cluster: remove it (its pid label)."""
    from pytest_tidb_ha.cluster.lifecycle import docker_client

    docker = docker_client()
    try:
        removed = remove_owned_by(docker, pid)
        if removed:
            log.warning("removed what the killed pytest run left: %s", ", ".join(removed))
    finally:
        docker.close()


def run_seed(seed: str, *, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
    """Run one seed in its bug mode; return its verdicts and latency figures."""
    with tempfile.TemporaryDirectory(prefix=f"tidb-ha-bench-{seed}-") as tmp:
        root = Path(tmp)
        (root / "conftest.py").write_text(repo_conftest())
        (root / f"{seed}.yaml").write_text(seed_copy(seed))
        artifacts = root / "ha-artifacts"
        cmd = [python(), "-m", "pytest", f"{seed}.yaml", "--standin", f"--standin-bugs={seed}",
               f"--ha-time-scale={TIME_SCALE[seed]}", f"--ha-workload-scale={WORKLOAD_SCALE}",
               f"--ha-artifacts={artifacts}", "--ha-artifacts-keep=all",
               "-p", "no:cacheprovider", "-q", "--rootdir", str(root)]
        began = time.monotonic()
        try:
            done = run_command(cmd, timeout=timeout, cwd=root)
        except CommandTimeout as exc:
            cleanup_after(exc.pid)
            raise
        wall = time.monotonic() - began
        found = sorted(artifacts.rglob("verdicts.json"))
        if not found:
            raise BenchError(f"seed {seed}: no verdicts.json (exit {done.returncode}):\n"
                             f"{tail(done.stdout + done.stderr, 30)}")
        verdicts = json.loads(found[0].read_text())["verdicts"]
        events = json.loads((found[0].parent / "timeline.json").read_text())["events"]
    stalls = [stall_figures(v, events) for v in verdicts
              if v["verdict"] == "stuck" and (v.get("evidence") or {}).get("rule") == "stall window"]
    return {
        "seed": seed, "time_scale": float(TIME_SCALE[seed]), "exit_code": done.returncode,
        "wall_seconds": round(wall, 1),
        "verdicts": [{"job_key": v["job_key"], "verdict": v["verdict"], "reason": v["reason"]}
                     for v in verdicts],
        "stalls": stalls,
    }


def rows_for(result: dict[str, Any]) -> list[Row]:
    seed = result["seed"]
    if not result["stalls"]:
        got = ", ".join(f"{v['job_key']}={v['verdict']}" for v in result["verdicts"]) or "none"
        return [Row(f"verdict latency #{seed}", "-", f"no stall-window verdict (verdicts: {got})")]
    rows = []
    for s in result["stalls"]:
        rows.append(Row(
            f"verdict latency #{seed} {s['job_key']} (stuck)", secs(s["latency_wall"]),
            f"after the last progress; {s['latency_fault_free']:.1f} s of it fault-free "
            f"(+{s['lateness']:.1f} s to detect beyond the stall window), "
            f"{s['paused_by_faults']:.1f} s paused by fault windows; job timeout "
            f"{s['job_timeout']:.0f} s; time scale {result['time_scale']:g}",
            anchor=f"the stall window (the proof's own wait): {s['stall_window']:.1f} s",
            ratio=ratio(s["latency_fault_free"], s["stall_window"])))
    return rows


def summarize(results: list[dict[str, Any]], skipped: list[str]) -> Section:
    section = Section("verdict_latency", data={"seeds": results, "skipped": skipped})
    for result in results:
        section.rows += rows_for(result)
    for seed in skipped:
        section.rows.append(Row(f"verdict latency #{seed}", "-", "not run: time budget"))
    return section


def run(seeds: list[str]) -> Section:
    results = []
    for seed in seeds:
        log.warning("verdict latency: seed %s in bug mode", seed)
        result = run_seed(seed)
        log.warning("verdict latency: seed %s done in %.0fs: %s", seed, result["wall_seconds"],
                    result["verdicts"])
        results.append(result)
    return summarize(results, [])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="48303,46735")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    seeds = [s.strip() for s in args.seeds.split(",") if s.strip()]
    section = run(seeds)
    for row in section.rows:
        print(f"{row.figure:45} {row.value:>10}  {row.detail}")
    write_json(RESULTS / "verdict_latency.json", section.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
