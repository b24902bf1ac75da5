"""The README's main job, timed: the three seeds end to end at ``--ha-time-scale 0.05``.

Issue 13's goal: the three seed scenarios (``scripts/main-job.sh``, fixed stand-in)
finish in at most 5 minutes at time scale 0.05 on this 2-core machine, with their
verdicts unchanged (every job converges on the fixed stand-in). The bench runs
``scripts/main-job.sh`` exactly as a user does (its own set-up included, warm), with
``HA_TIME_SCALE=0.05`` and a JUnit file, and reads each test's ``ha_verdict`` property.

The anchor is the plan's own estimate of the same run (``--ha-dry-run``: per case set-up,
fault schedule and job deadlines at this scale, the figure ``--ha-shard`` balances by):
the ratio says how much the run costs beyond what its schedule itself demands.

Standalone: ``python bench/mainjob.py [--time-scale 0.05]``; writes
``bench/results/mainjob.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import tempfile
import time
import xml.etree.ElementTree as ET
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
    run_command,
    secs,
    tail,
    verdict,
    write_json,
)

log = logging.getLogger("pytest_tidb_ha.bench")

TIME_SCALE = "0.05"
GOAL_SECONDS = 300.0
#: What the run costs on this machine (to plan it inside bench/run.py's budget).
EXPECTED_SECONDS = 330.0
RUN_TIMEOUT = 1200.0
#: On the fixed stand-in every job of every seed converges (README, issue 14 item 12).
EXPECTED_VERDICT = "converged"
_ESTIMATE = re.compile(r"^\s*estimate: ~(?P<wall>\S+) wall", re.MULTILINE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def duration_seconds(text: str) -> float:
    """``1m30s`` -> 90.0 (the plan's Go-style durations; pure)."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise BenchError(f"not a plan duration: {text!r}")
    return sum(float(n) * _UNIT[u] for n, u in parts)


def plan_estimate(plan_text: str) -> float:
    """Sum of the ``estimate: ~X wall`` lines of a dry-run plan (pure)."""
    found = [duration_seconds(m["wall"]) for m in _ESTIMATE.finditer(plan_text)]
    if not found:
        raise BenchError("the dry-run plan has no 'estimate:' lines")
    return sum(found)


def junit_verdicts(path: Path) -> dict[str, str]:
    """``{test name: ha_verdict}`` from the run's JUnit file (pure but for the read)."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):  # noqa: S314 - our own run wrote it
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        out[case.get("name", "")] = props.get("ha_verdict") or "(none)"
    return out


def run(time_scale: str = TIME_SCALE) -> dict[str, Any]:
    env = {**os.environ, "HA_TIME_SCALE": time_scale}
    with tempfile.TemporaryDirectory(prefix="tidb-ha-bench-mainjob-") as tmp:
        root = Path(tmp)
        env["HA_ARTIFACTS"] = str(root / "ha-artifacts")
        plan = run_command([python(), "-m", "pytest", "scenarios/seeds", "--standin",
                            "--ha-dry-run", f"--ha-time-scale={time_scale}",
                            f"--ha-workload-scale={os.environ.get('HA_WORKLOAD_SCALE', '0.00002')}",
                            "-p", "no:cacheprovider", "-q"], timeout=300, cwd=REPO)
        if plan.returncode != 0:
            raise BenchError(f"dry run exit {plan.returncode}:\n{tail(plan.stdout + plan.stderr)}")
        estimate = plan_estimate(plan.stdout)
        junit = root / "junit.xml"
        began = time.monotonic()
        try:
            done = run_command(["bash", "scripts/main-job.sh", f"--junitxml={junit}"],
                               timeout=RUN_TIMEOUT, cwd=REPO, env=env)
        except CommandTimeout as exc:
            raise BenchError(str(exc)) from None
        wall = time.monotonic() - began
        if not junit.exists():
            raise BenchError(f"main job wrote no JUnit file (exit {done.returncode}):\n"
                             f"{tail(done.stdout + done.stderr, 30)}")
        verdicts = junit_verdicts(junit)
    return {"time_scale": float(time_scale), "wall_seconds": round(wall, 1),
            "plan_estimate_seconds": round(estimate, 1), "exit_code": done.returncode,
            "verdicts": verdicts, "summary": verdict_summary(done.stdout)}


def verdict_summary(output: str) -> list[str]:
    """The run's ``tidb-ha verdicts`` section and pytest's last line (what the README shows)."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if "tidb-ha verdicts" in line), len(lines))
    return [line for line in lines[start:] if "artifacts:" not in line][-60:]


def summarize(result: dict[str, Any]) -> Section:
    verdicts = result["verdicts"]
    unchanged = bool(verdicts) and all(
        all(v == EXPECTED_VERDICT for v in vs.split(",")) for vs in verdicts.values())
    wall = result["wall_seconds"]
    met = unchanged and result["exit_code"] == 0 and wall <= GOAL_SECONDS
    got = "; ".join(f"{name}: {vs}" for name, vs in sorted(verdicts.items()))
    section = Section("mainjob", data=result)
    section.rows.append(Row(
        f"main job: 3 seeds at time scale {result['time_scale']:g}", secs(wall),
        f"scripts/main-job.sh (fixed stand-in), exit {result['exit_code']}; verdicts "
        f"{'unchanged (every job converged)' if unchanged else 'CHANGED'}: {got}",
        goal=f"<= {GOAL_SECONDS / 60:.0f} min, verdicts unchanged",
        anchor=f"the plan's own estimate (--ha-dry-run): {secs(result['plan_estimate_seconds'])}",
        ratio=ratio(wall, result["plan_estimate_seconds"]), verdict=verdict(met)))
    return section


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-scale", default=TIME_SCALE)
    ap.add_argument("--out", type=Path, default=RESULTS / "mainjob.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    result = run(args.time_scale)
    write_json(args.out, result)
    print(json.dumps(result, indent=1))
    section = summarize(result)
    return 0 if section.rows and section.rows[0].verdict == "met" else 1


if __name__ == "__main__":
    raise SystemExit(main())
