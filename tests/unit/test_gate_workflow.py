"""The shipped GitHub gate fails when a smoke cell's faults did not apply."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "tidb-ha-gate.yml"

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
  <testcase classname="scenarios.matrix.test_matrix" name="cell-a">
    <properties><property name="ha_verdict" value="converged"/>
    <property name="ha_faults" value="{a}"/></properties></testcase>
  <testcase classname="scenarios.matrix.test_matrix" name="cell-b">
    <properties><property name="ha_verdict" value="converged"/>
    <property name="ha_faults" value="{b}"/></properties></testcase>
</testsuite></testsuites>
"""


def check_script() -> str:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["smoke"]["steps"]
    run = next(s["run"] for s in steps if s.get("name") == "Every smoke cell applied its faults")
    return str(run.split("<<'EOF'\n", 1)[1].rsplit("EOF", 1)[0])


def gate(tmp_path: Path, a: str, b: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "ha-junit.xml").write_text(JUNIT.format(a=a, b=b))
    return subprocess.run([sys.executable, "-c", check_script()], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


def test_the_gate_passes_when_every_cell_applied_faults(tmp_path: Path) -> None:
    done = gate(tmp_path, "2/2", "1/3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 smoke cells ran" in done.stdout


def test_the_gate_fails_when_a_cell_applied_none(tmp_path: Path) -> None:
    done = gate(tmp_path, "2/2", "0/2")
    assert done.returncode == 1
    assert "cell-b: ha_faults=0/2" in done.stdout
