"""Seed reproductions: does each triggered seed variant give its bug verdict on its first run?

Issue 12 item 5: a bug reproduction that depends on timing luck is a failing test. The
seed files (``scenarios/seeds/``) stay verbatim; ``scenarios/triggered/`` holds each seed
plus a ``when:`` job-state trigger that makes the bug's trigger happen on purpose (the
partition opens when ADD INDEX #1 is seen backfilling; the owner kill counts from the
import seen ``importing``). This bench runs each variant ``--reps`` times (default 10) in
the stand-in's bug mode for that seed, each repetition on a **fresh cluster** (a reused one
would carry the previous run's stuck job), no retries, and counts the repetitions whose
first job run got the seed's bug verdict:

* ``48303``: ``add_index#1`` ``stuck`` (the ingest backfill's lock-order deadlock);
* ``48546``: ``add_index#1`` ``failed-unexpected`` naming ``mutex: session is expired``;
* ``46735``: ``import_into#1`` ``stuck`` with ``status=running, step=importing``.

Each repetition runs with ``--ha-stop-at-first-bad-run``: the figure is about the first run
only, and the runs a case would submit after it (#48546's four more ADD INDEX runs, #48303's
queued one) add a minute of cluster time each without changing it.

Goal: 10/10 (``k/N`` with N = the repetitions run). One pytest invocation per seed, the
repetitions as its items (N copies of the variant file, ``--ha-artifacts-keep=all``); a
conftest in the run's folder loads the repository's (``--standin``) and narrows the cluster
pool to one test, so every item starts and removes its own cluster. ``--workers 2`` runs
the items on two xdist workers (two clusters at once; the triggers follow the job, not the
clock, so load does not decide the verdict). Each run's wall time is its JUnit
``testcase`` time (cluster start, the case, teardown).

Not part of ``bench/run.py`` (30 runs take about 20 minutes, more than that bench's
budget); ``--markdown docs/bench.md`` replaces this section of the page and carries the
others over, as ``bench/run.py`` carries this one. ``--seeds`` runs some seeds; the others
keep their figures from the last results file (``--out``), dated, or where it lacks them
their rows on the page (the report says the section is ``partial``).

Standalone: ``python bench/reproductions.py [--seeds 48303,48546,46735] [--reps 10]
[--workers 2] [--markdown docs/bench.md]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    REPO,
    RESULTS,
    BenchError,
    CommandTimeout,
    Row,
    Section,
    ensure_docker,
    machine,
    median,
    python,
    repo_conftest,
    run_command,
    secs,
    standin_image,
    tail,
    verdict,
    write_json,
)

log = logging.getLogger("pytest_tidb_ha.bench")

TRIGGERED = REPO / "scenarios" / "triggered"
SEEDS = ("48303", "48546", "46735")
#: The settings of ``scripts/main-job.sh --standin-bugs`` and of the bug-mode tests
#: (tests/integration/test_seeds_standin.py): 14000 rows in the ADD INDEX table, so the
#: backfill still has batches to write when the triggered partition lands.
TIME_SCALE = "0.05"
WORKLOAD_SCALE = "0.0002"
REPS = 10
GOAL = 1.0  # every repetition
#: Seconds one repetition may take at most (cluster start + case + teardown), loaded machine.
RUN_SECONDS = 300.0

#: Added to the repository's conftest (`common.repo_conftest`): a cluster pool per test, so
#: that each repetition's first run is a first run on a fresh cluster.
POOL_PER_TEST = """

import pytest


@pytest.fixture
def tidb_cluster_pool(tidb_cluster_settings):
    from pytest_tidb_ha.cluster.pool import ClusterPool

    pool = ClusterPool(tidb_cluster_settings)
    try:
        yield pool
    finally:
        pool.close()
"""


def _verdict_of(verdicts: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    return next((v for v in verdicts if v.get("job_key") == key), None)


def _expect(key: str, want: str, says: str | None = None) -> Callable[[list[dict[str, Any]]], str | None]:
    """A check of one run's verdicts: ``None`` when *key* got *want* (naming *says*), else why not."""
    def check(verdicts: list[dict[str, Any]]) -> str | None:
        v = _verdict_of(verdicts, key)
        if v is None:
            return f"no verdict for {key}"
        if v["verdict"] != want:
            return f"{key} {v['verdict']}: {v['reason'][:160]}"
        if says is not None and says not in v["reason"]:
            return f"{key} {want} without {says!r}: {v['reason'][:160]}"
        return None
    return check


#: The bug verdict each seed's first job run must get (the module docstring's list).
EXPECTED: dict[str, tuple[str, Callable[[list[dict[str, Any]]], str | None]]] = {
    "48303": ("add_index#1 stuck", _expect("add_index#1", "stuck")),
    "48546": ("add_index#1 failed-unexpected, mutex: session is expired",
              _expect("add_index#1", "failed-unexpected", "mutex: session is expired")),
    "46735": ("import_into#1 stuck, status=running, step=importing",
              _expect("import_into#1", "stuck", "status=running, step=importing")),
}


def junit_times(path: Path) -> dict[str, float]:
    """Repetition name (``48303_r01``) -> its testcase's wall seconds, from a JUnit XML report."""
    out: dict[str, float] = {}
    if not path.is_file():
        return out
    root = ET.parse(path).getroot()  # noqa: S314 - the JUnit file our own pytest run wrote
    for case in root.iter("testcase"):
        found = REP_NAME.search(f"{case.get('classname', '')} {case.get('name', '')}")
        if found:
            out[found.group(0)] = float(case.get("time") or 0.0)
    return out


REP_NAME = re.compile(r"\d+_r\d{2}")


def rep_name(seed: str, i: int) -> str:
    return f"{seed}_r{i:02d}"


def judge_rep(seed: str, verdicts_json: dict[str, Any], events: list[dict[str, Any]],
              triggers: dict[str, int]) -> dict[str, Any]:
    """One repetition's outcome from its kept artifacts (pure)."""
    verdicts = verdicts_json.get("verdicts") or []
    why_not = EXPECTED[seed][1](verdicts)
    fired = next((e for e in events if e.get("kind") == "fault.trigger"), None)
    applied = next((e for e in events if e.get("kind") == "fault.applied"
                    and (fired is None or e["t"] >= fired["t"])), None)
    return {
        "reproduced": why_not is None,
        "why_not": why_not,
        "verdicts": [{"job_key": v["job_key"], "verdict": v["verdict"]} for v in verdicts],
        "trigger_fired_at": fired["t"] if fired else None,
        "fault_applied_after_trigger": (round(applied["t"] - fired["t"], 3)
                                        if fired and applied else None),
        "bug_triggers_counted": int(triggers.get(seed, 0)),
        "outcome": verdicts_json.get("outcome"),
    }


def run_seed(seed: str, reps: int, workers: int) -> dict[str, Any]:
    """One pytest invocation: *reps* copies of the seed's triggered variant in its bug mode."""
    variant = (TRIGGERED / f"{seed}.yaml").read_text()
    with tempfile.TemporaryDirectory(prefix=f"tidb-ha-bench-repro-{seed}-") as tmp:
        root = Path(tmp)
        (root / "conftest.py").write_text(repo_conftest(POOL_PER_TEST))
        for i in range(1, reps + 1):
            (root / f"{rep_name(seed, i)}.yaml").write_text(variant)
        artifacts = root / "ha-artifacts"
        junit = root / "junit.xml"
        cmd = [python(), "-m", "pytest", ".", "--standin", f"--standin-bugs={seed}",
               f"--ha-time-scale={TIME_SCALE}", f"--ha-workload-scale={WORKLOAD_SCALE}",
               f"--ha-artifacts={artifacts}", "--ha-artifacts-keep=all",
               "--ha-stop-at-first-bad-run", f"--junitxml={junit}", "-p", "no:cacheprovider",
               "-p", "no:randomly", "-q",
               "--rootdir", str(root)]
        if workers > 1:
            cmd += ["-n", str(workers)]
        began = time.monotonic()
        try:
            done = run_command(cmd, timeout=RUN_SECONDS * reps / max(1, workers) + 300, cwd=root)
        except CommandTimeout as exc:
            from verdict_latency import cleanup_after

            cleanup_after(exc.pid)
            raise
        wall = time.monotonic() - began
        times = junit_times(junit)
        runs = []
        for i in range(1, reps + 1):
            name = rep_name(seed, i)
            folders = [p.parent for p in artifacts.rglob("verdicts.json")
                       if name in json.loads(p.read_text()).get("nodeid", "")]
            if not folders:
                runs.append({"rep": i, "reproduced": False, "why_not": "no verdicts.json kept",
                             "wall_seconds": times.get(name)})
                continue
            folder = folders[0]
            trig_path = folder / "standin-triggers.json"
            result = judge_rep(
                seed, json.loads((folder / "verdicts.json").read_text()),
                json.loads((folder / "timeline.json").read_text())["events"],
                json.loads(trig_path.read_text()) if trig_path.is_file() else {})
            runs.append({"rep": i, **result, "wall_seconds": times.get(name)})
    if not any("outcome" in r for r in runs):
        raise BenchError(f"seed {seed}: no repetition kept artifacts (exit {done.returncode}):\n"
                         f"{tail(done.stdout + done.stderr, 30)}")
    return {"seed": seed, "date": machine()["date"], "reps": reps, "workers": workers, "time_scale": float(TIME_SCALE),
            "workload_scale": float(WORKLOAD_SCALE), "exit_code": done.returncode,
            "wall_seconds": round(wall, 1), "expected": EXPECTED[seed][0],
            "stop_at_first_bad_run": True, "runs": runs}


def row_for(result: dict[str, Any]) -> Row:
    runs = result["runs"]
    k = sum(1 for r in runs if r["reproduced"])
    n = len(runs)
    walls = [r["wall_seconds"] for r in runs if r.get("wall_seconds") is not None]
    misses = [f"r{r['rep']}: {r['why_not']}" for r in runs if not r["reproduced"]]
    lags = [r["fault_applied_after_trigger"] for r in runs
            if r.get("fault_applied_after_trigger") is not None]
    detail = (f"expected on the first run: {result['expected']}; wall per run (cluster start, "
              f"case, teardown) median {secs(median(walls))}, min {secs(min(walls, default=None))}, "
              f"max {secs(max(walls, default=None))}; {result['workers']} worker(s), "
              f"{result['wall_seconds']:.0f} s for all"
              f"{' (no runs after the first bad one)' if result.get('stop_at_first_bad_run') else ''}; "
              f"time scale {result['time_scale']:g}, "
              f"workload scale {result['workload_scale']:g}; fault applied "
              f"{secs(median(lags), 2)} (median) after the trigger fired")
    if misses:
        detail += "; missed: " + "; ".join(misses)
    if result.get("date"):
        detail += f"; measured {result['date']}"
    return Row(f"#{result['seed']} triggered reproduction", f"{k}/{n}", detail,
               goal=f"{n}/{n} (every first run)", anchor="-", ratio="-",
               verdict=verdict(k >= GOAL * n))


def earlier_results(path: Path, skip: set[str]) -> list[dict[str, Any]]:
    """The seeds of an earlier results file that this run does not measure, each with its date."""
    if not path.is_file():
        return []
    try:
        report = json.loads(path.read_text())
        seeds = report["sections"]["reproductions"]["data"]["seeds"]
        date = report["machine"]["date"]
    except (ValueError, KeyError, TypeError):
        return []
    return [{**s, "date": s.get("date", date)} for s in seeds if s.get("seed") not in skip]


def summarize(results: list[dict[str, Any]]) -> Section:
    section = Section("reproductions", data={"seeds": results})
    section.rows += [row_for(r) for r in results]
    return section


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default=",".join(SEEDS))
    ap.add_argument("--reps", type=int, default=REPS)
    ap.add_argument("--workers", type=int, default=2, help="xdist workers (1: no xdist)")
    ap.add_argument("--out", type=Path, default=RESULTS / "reproductions.json")
    ap.add_argument("--markdown", type=Path, default=None,
                    help="also replace this section of the figures page (e.g. docs/bench.md)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    seeds = [s.strip() for s in args.seeds.split(",") if s.strip()]
    unknown = sorted(set(seeds) - set(SEEDS))
    if unknown or args.reps < 1:
        ap.error(f"--seeds: unknown {unknown} (known: {','.join(SEEDS)})" if unknown
                 else "--reps must be at least 1")
    info = machine()
    began = time.monotonic()
    ensure_docker()
    image = standin_image()
    # One seed per run keeps each Docker-heavy run short: the seeds this run leaves out keep
    # their figures from the last results file, dated.
    results = earlier_results(args.out, skip=set(seeds))
    section = Section("reproductions")
    try:
        for seed in seeds:
            log.warning("reproductions: seed %s, %d runs", seed, args.reps)
            results.append(run_seed(seed, args.reps, args.workers))
            log.warning("reproductions: %s", row_for(results[-1]).value)
        section = summarize(results)
    except BenchError as exc:
        section = summarize(results)
        section.error = str(exc)
    section.seconds = time.monotonic() - began
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    for row in section.rows:
        print(f"{row.figure}: {row.value}  (goal {row.goal}: {row.verdict})\n    {row.detail}")
    if section.error:
        print(f"reproductions: FAILED: {section.error}")
    report = {"machine": info, "image": image, "script": "bench/reproductions.py",
              "budget_seconds": 0.0,
              "total_seconds": round(section.seconds, 1), "skipped": [],
              "sections": {section.name: section.to_json()},
              # seeds neither run now nor in the results file keep their rows on the page
              "partial": [section.name] if {r.get("seed") for r in results} != set(SEEDS) else []}
    write_json(args.out, report)
    if args.markdown is not None:
        from run import write_page

        write_page(args.markdown, report)
        print(f"wrote {args.markdown}")
    return 1 if section.error or any(r.verdict != "met" for r in section.rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
