"""The shipped GitHub workflows: the single-job smoke gate and the sharded matrix + merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return data


def _run_lines(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_smoke_gate_stays_one_job() -> None:
    gate = _load("tidb-ha-gate.yml")
    assert list(gate["jobs"]) == ["smoke"]
    assert "pytest scenarios/matrix -m smoke" in _run_lines(gate["jobs"]["smoke"])


def test_sharded_workflow_runs_every_shard_and_merges_them() -> None:
    wf = _load("tidb-ha-sharded.yml")
    shards = int(wf["env"]["SHARDS"])
    shard, merge = wf["jobs"]["shard"], wf["jobs"]["merge"]
    assert shard["strategy"]["matrix"]["shard"] == list(range(1, shards + 1))
    assert shard["strategy"]["fail-fast"] is False
    assert "--ha-shard ${{ matrix.shard }}/${{ env.SHARDS }}" in _run_lines(shard)
    assert "--junitxml=ha-junit.xml" in _run_lines(shard)
    upload = [s for s in shard["steps"] if str(s.get("uses", "")).startswith("actions/upload")]
    assert upload
    assert upload[0]["if"] == "always()"
    assert "ha-artifacts/" in upload[0]["with"]["path"]  # holds shard-K-of-N.json
    assert upload[0]["with"]["name"] == "tidb-ha-shard-${{ matrix.shard }}"
    assert merge["needs"] == "shard"
    assert merge["if"] == "always()"
    download = [s for s in merge["steps"] if str(s.get("uses", "")).startswith("actions/download")]
    assert download[0]["with"]["pattern"] == "tidb-ha-shard-*"
    assert "python -m pytest_tidb_ha merge shards/*" in _run_lines(merge)
