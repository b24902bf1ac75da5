"""The scenario matrix's `smoke` subset (the PR gate's cells) passes on the fixed stand-in.

Runs `pytest scenarios/matrix -m smoke --standin` from the repository root, as a user's CI
gate would (with the stand-in images instead of Docker Hub's), and reads the verdicts from
the JUnit properties the gate publishes.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
#: The gate's time scale. The cells' fault schedules start when the job is first seen
#: running, so the DDL owner kill lands while its scheduler moves the import to its import
#: step; the stand-in makes that transition as TiDB does (job row first, then the step with
#: all its subtasks in one transaction: tests/standin/test_dxf_takeover_units.py), so the
#: next owner converges it and no false ``stuck`` follows.
SMOKE_SCALE = "0.1"


def test_smoke_cells_converge_and_publish_verdicts(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "scenarios/matrix", "-m", "smoke", "--standin",
           "--ha-time-scale", SMOKE_SCALE, "--ha-workload-scale", "0.1",
           "--ha-artifacts", str(tmp_path / "artifacts"), f"--junitxml={junit}",
           "-o", "junit_family=xunit2", "-p", "no:cacheprovider", "-q"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    story = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, story
    cases = ET.parse(junit).getroot().iter("testcase")
    verdicts = {}
    faults = {}
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        verdicts[case.get("name")] = props.get("ha_verdict")
        faults[case.get("name")] = props.get("ha_faults") or "0/0"
    assert len(verdicts) == 2, (verdicts, story)
    assert all(v == "converged" for v in verdicts.values()), (verdicts, story)
    # the gate's own check: every cell applied its faults (applied/planned)
    assert all(int(f.split("/")[0]) >= 1 for f in faults.values()), (faults, story)
