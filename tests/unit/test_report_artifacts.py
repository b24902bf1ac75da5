"""Artifacts folder: files written, keep policy, removal confined to the root."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_tidb_ha.record import HARecord
from pytest_tidb_ha.report.artifacts import (
    TestOutcome,
    apply_keep_policy,
    clear_stale,
    overall_outcome,
    should_keep,
    write_artifacts,
)
from pytest_tidb_ha.report.sample import bug_48303


def _record(tmp_path: Path) -> HARecord:
    tl, verdicts = bug_48303(0.01)
    return HARecord("scenarios/seed_48303.yaml::ha_tikv", tl, tmp_path / "arts" / "seed",
                    case_id="seed_48303::ha_tikv", verdicts=verdicts)


def test_write_artifacts_files_and_content(tmp_path: Path) -> None:
    rec = _record(tmp_path)
    written = write_artifacts(rec, TestOutcome("failed", "AssertionError: stuck"),
                              time_scale=0.01)
    assert sorted(p.name for p in written) == [
        "report.html", "timeline.json", "timeline.svg", "verdicts.json"]
    data = json.loads((rec.artifacts_dir / "timeline.json").read_text())
    assert len(data["events"]) == len(rec.timeline.events())
    assert data["case_id"] == "seed_48303::ha_tikv"
    v = json.loads((rec.artifacts_dir / "verdicts.json").read_text())
    assert [x["verdict"] for x in v["verdicts"]] == ["stuck", "cancel-ineffective", "stuck"]
    assert v["outcome"] == "failed"
    assert v["ok"] is False
    root = ET.parse(rec.artifacts_dir / "timeline.svg").getroot()
    assert root.tag.endswith("svg")
    html = (rec.artifacts_dir / "report.html").read_text()
    assert html.count("<svg") == 1
    assert "queueing behind stuck job 475" in html
    assert "AssertionError: stuck" in html


def test_overall_outcome() -> None:
    assert overall_outcome({"setup": "passed", "call": "passed", "teardown": "passed"}) == "passed"
    assert overall_outcome({"setup": "passed", "call": "failed"}) == "failed"
    assert overall_outcome({"setup": "failed"}) == "error"
    assert overall_outcome({"setup": "passed", "call": "passed", "teardown": "failed"}) == "error"
    assert overall_outcome({"setup": "skipped"}) == "skipped"
    assert overall_outcome({"setup": "passed", "call": "rerun", "teardown": "passed"}) == "rerun"


def test_keep_policy(tmp_path: Path) -> None:
    assert should_keep("all", False)
    assert should_keep("failed", True)
    assert not should_keep("failed", False)
    with pytest.raises(ValueError, match="--ha-artifacts-keep"):
        should_keep("some", True)
    root = tmp_path / "arts"
    folder = root / "t"
    folder.mkdir(parents=True)
    (folder / "x").write_text("x")
    assert apply_keep_policy(folder, root, "failed", True) == folder
    assert apply_keep_policy(folder, root, "failed", False) is None
    assert not folder.exists()
    assert root.exists()
    assert apply_keep_policy(folder, root, "all", False) is None  # nothing to keep


def test_never_removes_outside_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    root = tmp_path / "arts"
    root.mkdir()
    assert apply_keep_policy(outside, root, "failed", False) == outside
    assert apply_keep_policy(root, root, "failed", False) == root  # nor the root itself
    clear_stale(outside, root)
    assert outside.exists()
    assert root.exists()
    stale = root / "t"
    stale.mkdir()
    clear_stale(stale, root)
    assert not stale.exists()


def test_rerender_reproduces_the_written_picture(tmp_path: Path) -> None:
    from pytest_tidb_ha.report.rerender import main, rerender

    rec = _record(tmp_path)
    rec.cluster = "pd=3,tikv=3,tidb=2 images=tidb-standin:latest"
    write_artifacts(rec, TestOutcome("failed"), time_scale=0.01)
    written = (rec.artifacts_dir / "timeline.svg").read_text()
    assert rerender(rec.artifacts_dir) == written
    out = tmp_path / "again.svg"
    assert main([str(rec.artifacts_dir), str(out)]) == 0
    assert out.read_text() == written


def test_sanitise_nodeid_readable_and_distinct() -> None:
    from pytest_tidb_ha.recording import sanitise_nodeid

    assert sanitise_nodeid("scenarios/seeds/48303.yaml::ha_tikv(random)_to_all") == \
        "scenarios_seeds_48303.yaml_ha_tikv(random)_to_all"
    a = sanitise_nodeid("t.py::test_x[" + "a" * 200 + "1]")
    b = sanitise_nodeid("t.py::test_x[" + "a" * 200 + "2]")
    assert a != b
    assert len(a) == len(b) == 150
    assert "/" not in a
    assert sanitise_nodeid("///") == "test"


def test_attempt_folders_and_clearing_earlier_runs(tmp_path: Path) -> None:
    from pytest_tidb_ha.recording import attempt_folder, clear_earlier_runs

    nodeid = "t.py::test_x[a]"
    first, second = (attempt_folder(tmp_path, nodeid, n) for n in (1, 2))
    assert (first.name, second.name) == ("t.py_test_x_a", "t.py_test_x_a-retry1")
    other = tmp_path / "t.py_test_x_a-retry1-extra"  # not an attempt of this test
    for folder in (first, second, tmp_path / "t.py_test_x_a-retry7", other):
        folder.mkdir()
    clear_earlier_runs(tmp_path, nodeid)
    assert [p.name for p in tmp_path.iterdir()] == [other.name]
