"""How quickly each injector applies and heals, against the schedule's planned times.

Starts a few ``tidb-standin-base`` containers on a private labelled network (the
same mini cluster the fault tests use), then runs one periodic schedule per injector
through the real :class:`~pytest_tidb_ha.faults.nemesis.Nemesis`. From the timeline:

* ``apply``: seconds the injector's ``apply()`` took (``fault.applied.apply_seconds``);
* ``apply lag``: applied minus planned start (what a case's windows really look like);
* ``heal`` / ``heal lag``: the same for ``heal()`` against the planned end.

Usage::

    python bench/faults.py [--windows 8] [--period 3] [--duration 1] [--kinds kill,pause]

Prints a table (median / p95 per column) and writes ``bench/results/faults.json``.
Needs Docker and the ``tidb-standin-base:latest`` image; root for nsenter and io_delay
(without root the helper-container path runs and io_delay is reported unsupported).
The machine is shared: read single numbers as +-20 %.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

from test_faults_harness import remove, start_mini_cluster, wait_all_reachable  # noqa: E402

from pytest_tidb_ha.faults.api import Roles, static_roles  # noqa: E402
from pytest_tidb_ha.faults.nemesis import Nemesis  # noqa: E402
from pytest_tidb_ha.scenario.model import Duration, FaultSpec, Schedule  # noqa: E402
from pytest_tidb_ha.scenario.selectors import parse_selector  # noqa: E402
from pytest_tidb_ha.timeline import Timeline  # noqa: E402

log = logging.getLogger("pytest_tidb_ha.bench")

#: kind -> (selector, params). Instant faults (restart) have a zero-length window.
INJECTORS: dict[str, tuple[str, dict[str, object]]] = {
    "network_partition": ("tikv(random)_to_all", {"direction": "both"}),
    "network_delay": ("tikv-0_to_pd-0", {"latency": Duration(0.05, "50ms"), "direction": "both"}),
    "network_loss": ("tikv-0_to_all", {"loss": 30.0, "direction": "both"}),
    "pause": ("tidb-0", {}),
    "kill": ("tikv-1", {}),
    "restart": ("tikv-1", {}),
    "io_delay": ("tikv-0", {"latency": Duration(0.05, "50ms")}),
}
INSTANT = {"restart"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values) if values else float("nan"),
            "p95": percentile(values, 0.95), "n": len(values)}


def run_kind(cluster: Any, kind: str, windows: int, period: float, duration: float) -> dict[str, Any]:
    selector, params = INJECTORS[kind]
    dur = 0.0 if kind in INSTANT else duration
    spec = FaultSpec(kind, parse_selector(selector),
                     Schedule(Duration(0.2), Duration(dur), Duration(period), Duration(period * windows)),
                     params)
    tl = Timeline()
    n = Nemesis(cluster, [spec], tl, 1.0, seed=1, roles=static_roles(Roles(pd_leader="pd-0")))
    with n:
        n.wait(period * windows + 120)
    applied = [e.data for e in tl.events("fault.applied")]
    healed = [e.data for e in tl.events("fault.healed")]
    backends = sorted({str(b) for a in applied for b in (a.get("detail") or {}).get("backends", {}).values()})
    return {
        "kind": kind, "selector": selector, "windows": len(n.windows), "errors": n.errors,
        "backend": ",".join(backends) or None,
        "apply": summary([a["apply_seconds"] for a in applied]),
        "apply_lag": summary([a["lag"] for a in applied]),
        "heal": summary([h["heal_seconds"] for h in healed]),
        "heal_lag": summary([h["lag"] for h in healed]),
    }


def ms(value: float) -> str:
    return "-" if value != value else f"{value * 1000:8.1f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (f"{'injector':<18}{'n':>4}  {'apply med':>9}{'p95':>9}  {'lag med':>9}{'p95':>9}  "
            f"{'heal med':>9}{'p95':>9}  {'lag med':>9}{'p95':>9}  (ms)")
    print(head)
    print("-" * len(head))
    for r in rows:
        cells = [r["apply"], r["apply_lag"], r["heal"], r["heal_lag"]]
        line = f"{r['kind']:<18}{r['apply']['n']:>4}  " + "  ".join(
            f"{ms(c['median']):>9}{ms(c['p95']):>9}" for c in cells)
        if r["backend"]:
            line += f"  [{r['backend']}]"
        if r["errors"]:
            line += f"  errors: {len(r['errors'])} ({r['errors'][0][:80]})"
        print(line)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=8, help="windows per injector (default 8)")
    ap.add_argument("--period", type=float, default=3.0, help="seconds between windows (default 3)")
    ap.add_argument("--duration", type=float, default=1.0, help="window length in seconds (default 1)")
    ap.add_argument("--kinds", default=",".join(INJECTORS), help="comma list of injectors")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "faults.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import docker

    client = docker.from_env()
    cluster, containers, net = start_mini_cluster(client, volumes=True)
    rows: list[dict[str, Any]] = []
    try:
        wait_all_reachable(cluster)
        for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
            t = time.monotonic()
            rows.append(run_kind(cluster, kind, args.windows, args.period, args.duration))
            log.warning("%s done in %.1fs", kind, time.monotonic() - t)
    finally:
        remove(client, containers, net)
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"host": platform.node(), "python": platform.python_version(),
                                    "windows": args.windows, "period": args.period,
                                    "duration": args.duration, "results": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0 if all(not r["errors"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
