"""The scenario matrix's txn cells that fit 3 PD / 1 store / 2 TiDB, on the real binaries.

Runs ``pytest scenarios/matrix --realbin`` from the repository root, as a user's gate
would, selecting the ``add_index_txn`` cells whose faults the one-store cluster can take
(the plugin's own topology needs decide which: a TiKV partition needs 3 TiKV), and reads
the verdicts from the JUnit properties.

Time scale 0.5, not lower: the real cluster's timers do not scale, and a killed DDL
owner's etcd lease (60 s) must expire inside the default stall window (60 s of case
time x scale after the kill window of 60 s x scale ends).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_tidb_ha.scenario.markers import fault_from_marker
from pytest_tidb_ha.scenario.model import SourceRef
from pytest_tidb_ha.scenario.needs import fault_needs

pytestmark = [pytest.mark.realbin, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
MATRIX = REPO / "scenarios" / "matrix" / "test_matrix.py"
TOPOLOGY = {"pd": 3, "tikv": 1, "tidb": 2}
SCALE = "0.5"
#: Full-size tables, and the backfill slowed with TiDB's own knobs (``slow_backfill``: batch
#: size 32, one worker, as test_ha_realbin): real TiDB backfills even the full-size table in
#: seconds at its defaults, and whether a fault that starts when the job is first seen
#: running landed inside it was a matter of load.
WORKLOAD_SCALE = "1"
#: Seconds the job must still run after its fault was applied: the window opened inside
#: the backfill, not at its last moment.
MARGIN = 1.0


def fitting_faults() -> tuple[list[str], list[str]]:
    """Fault names of the matrix whose needs fit the topology, and the others (pure)."""
    spec = importlib.util.spec_from_file_location("realbin_matrix", MATRIX)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fits: list[str] = []
    not_fit: list[str] = []
    for name, mark in module.FAULTS.items():
        fault = fault_from_marker(mark.args, mark.kwargs, SourceRef())
        too_big = [n for n in fault_needs(fault) if n.count > TOPOLOGY[n.component]]
        (not_fit if too_big else fits).append(name)
    return fits, not_fit


def applied_while_running(events: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Fault ids applied after the job was first seen ``running`` and before TiDB reported
    it ``synced``/``done``, each with the seconds the job still ran after it (pure; events
    as the artifacts' timeline.json holds them)."""
    events = list(events)
    states = [(float(e["t"]), e.get("state")) for e in events if e.get("kind") == "job.state"]
    start = next((t for t, st in states if st == "running"), None)
    end = next((t for t, st in states if st in ("synced", "done")), float("inf"))
    if start is None:
        return {}
    return {str(e.get("fault_id")): end - float(e["t"]) for e in events
            if e.get("kind") == "fault.applied" and start <= float(e["t"]) < end}


def test_only_tikv_partition_needs_more_stores() -> None:
    fits, not_fit = fitting_faults()
    assert not_fit == ["tikv-partition"], (fits, not_fit)
    assert len(fits) == 4, fits


def test_txn_cells_converge_on_real_binaries(tmp_path: Path) -> None:
    fits, _ = fitting_faults()
    junit = tmp_path / "junit.xml"
    select = "add_index_txn and (" + " or ".join(fits) + ")"
    cmd = [sys.executable, "-m", "pytest", "scenarios/matrix", "-k", select, "--realbin",
           "-p", "slow_backfill",
           "--tidb-topology", ",".join(f"{k}={v}" for k, v in TOPOLOGY.items()),
           "--ha-time-scale", SCALE, "--ha-workload-scale", WORKLOAD_SCALE,
           "--ha-artifacts", str(tmp_path / "artifacts"), "--ha-artifacts-keep", "all",
           f"--junitxml={junit}",
           "-o", "junit_family=xunit2", "-p", "no:cacheprovider", "-q"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1500, env=env)
    story = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, story
    verdicts = {}
    faults = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        verdicts[case.get("name")] = props.get("ha_verdict")
        faults[case.get("name")] = props.get("ha_faults") or "0/0"
    assert len(verdicts) == len(fits), (verdicts, story)
    assert all(v == "converged" for v in verdicts.values()), (verdicts, story)
    # each cell converged *under* its fault: a window applied (the schedules follow the job)
    assert all(int(f.split("/")[0]) >= 1 for f in faults.values()), (faults, story)
    # ... and while TiDB still reported the job running (a window opened after the job
    # ended applies a fault that tests nothing)
    missed = {}
    for name in verdicts:
        cell = str(name)[str(name).index("[") + 1:-1]
        found = list((tmp_path / "artifacts").glob(f"*_{cell}/timeline.json"))
        assert len(found) == 1, (cell, found)
        events = json.loads(found[0].read_text())["events"]
        left = applied_while_running(events)
        if not left or max(left.values()) < MARGIN:
            missed[cell] = [(e["t"], e["kind"], e.get("state") or e.get("fault_id"))
                            for e in events if e["kind"] in ("job.state", "fault.applied")]
    assert not missed, missed
