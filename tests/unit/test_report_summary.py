"""Terminal summary lines, header/reproduce command, JUnit properties, GitHub Markdown."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from types import MappingProxyType

from pytest_tidb_ha.options import HAOptions
from pytest_tidb_ha.report import github, junit
from pytest_tidb_ha.report.sample import bug_48303
from pytest_tidb_ha.report.summary import (
    CaseSummary,
    format_duration,
    header_lines,
    reproduce_command,
    summary_lines,
)
from pytest_tidb_ha.scenario.model import Topology
from pytest_tidb_ha.timeline import Event
from pytest_tidb_ha.verdicts import Verdict

SECRET_URL = "s3://bucket/data.csv?access-key=AKIAEXAMPLE&secret-access-key=SECRETEXAMPLE"


def v(key: str, verdict: str, ok: bool, reason: str = "r", job_id: int | None = 1,
      start: float | None = 0.0, end: float | None = 12.0) -> Verdict:
    kind = key.split("#")[0]
    return Verdict(key, kind, job_id, verdict, reason, ok,
                   started_at=start, decided_at=end)


def test_format_duration() -> None:
    assert format_duration(None) == "-"
    assert format_duration(0.84) == "0.8s"
    assert format_duration(18.2) == "18s"
    assert format_duration(245) == "4m05s"
    assert format_duration(3720) == "1h02m"


def test_summary_one_aligned_line_per_job_in_job_order(tmp_path: Path) -> None:
    tests = [
        CaseSummary("scenarios/seed.yaml::a", "seed::a",
                    (v("add_index#1", "stuck", False, "no progress for 5m", 475, 0, 300),
                     v("add_index#2", "stuck", False, "queueing behind 475", 476, 300, 360)),
                    "failed", artifacts=tmp_path / "seed_a"),
        CaseSummary("t.py::test_b", None,
                    (v("import_into#1", "converged", True, "finished with 1000 rows", 9),),
                    "passed"),
    ]
    lines = summary_lines(tests, tmp_path, "failed")
    assert lines[0].split()[:4] == ["seed::a", "add_index#1", "(job", "475)"]
    assert " stuck " in lines[0]
    assert lines[0].endswith("no progress for 5m")
    assert "5m00s" in lines[0]
    assert "add_index#2 (job 476)" in lines[1]
    assert "1m00s" in lines[1]
    assert lines[2].strip() == f"artifacts: {tmp_path / 'seed_a'}"
    assert lines[3].startswith("t.py::test_b")
    assert "converged" in lines[3]
    assert lines[-1] == f"artifacts folder: {tmp_path} (--ha-artifacts-keep=failed)"
    # aligned: the verdict column starts at the same offset on every job line
    assert lines[0].index("stuck") == lines[3].index("converged")


def test_summary_reason_on_one_line_and_redacted() -> None:
    t = CaseSummary("x", None, (v("import_into#1", "failed-unexpected", False,
                                  f"failed:\n {SECRET_URL}"),), "failed")
    (line,) = summary_lines([t])
    assert "SECRETEXAMPLE" not in line
    assert "AKIAEXAMPLE" not in line
    assert "\n" not in line


def test_summary_test_without_jobs() -> None:
    (line,) = summary_lines([CaseSummary("t.py::x", None, (), "error")])
    assert "(no jobs)" in line
    assert "error" in line
    assert summary_lines([]) == []


def test_reproduce_command_spells_out_resolved_options() -> None:
    opts = HAOptions(tidb_version="v8.1.2", time_scale=0.01, topology=Topology(3, 3, 2),
                     images=MappingProxyType({"pd": "pingcap/pd:v8.1.2",
                                              "tikv": "pingcap/tikv:v8.1.2",
                                              "tidb": "tidb-standin:latest"}))
    cmd = reproduce_command(["scenarios/", "--ha-time-scale", "0.5", "--tidb-version=v7.5.0",
                             "-k", "seed"], opts)
    argv = shlex.split(cmd)
    assert argv[:4] == ["pytest", "scenarios/", "-k", "seed"]
    assert argv.count("--ha-time-scale") == 1
    assert argv[argv.index("--ha-time-scale") + 1] == "0.01"
    assert argv[argv.index("--tidb-version") + 1] == "v8.1.2"
    assert "--tidb-version=v7.5.0" not in argv
    assert argv[argv.index("--tidb-image") + 1] == "tidb=tidb-standin:latest"
    assert argv.count("--tidb-image") == 1  # defaults are not repeated
    assert argv[argv.index("--tidb-topology") + 1] == "pd=3,tikv=3,tidb=2"


def test_header_lines_and_secret_dsn() -> None:
    opts = HAOptions(dsn="mysql://root:hunter2@127.0.0.1:4000/test", time_scale=0.1)
    first, second = header_lines(opts, ["tests/"])
    assert first.startswith("tidb-ha: TiDB v8.5.7")
    assert "time scale 0.1" in first
    assert second.startswith("tidb-ha reproduce: pytest tests/")
    assert "hunter2" not in first + second
    first, _ = header_lines(HAOptions(), [])
    assert "pd=pingcap/pd:v8.5.7" in first
    assert "sized per case" in first


def _events(*specs: tuple[float, str, dict[str, object]]) -> list[Event]:
    return [Event(t, t, k, d) for t, k, d in specs]


def test_junit_properties() -> None:
    tl, verdicts = bug_48303(0.01)
    props = dict(junit.properties(verdicts, tl.events(), Path("ha-artifacts/x")))
    assert props["ha_verdict"] == "stuck,cancel-ineffective,stuck"
    assert props["ha_faults"] == "5/5"
    assert props["ha_artifacts"] == "ha-artifacts/x"
    jobs = json.loads(props["ha_jobs"])
    assert [j["key"] for j in jobs] == ["add_index#1", "add_index#1/cancel", "add_index#2"]
    assert jobs[0]["id"] == 475
    assert jobs[0]["ok"] is False
    assert jobs[0]["last"]["schema_state"] == "write reorganization"
    assert jobs[2]["last"]["state"] == "queueing"
    assert " " not in props["ha_jobs"].split('"reason"')[0]  # compact separators
    assert "ha_artifacts" not in dict(junit.properties(verdicts, [], None))
    assert "ha_workload_driver" not in props  # no workload in this case


def test_junit_names_the_workload_driver() -> None:
    events = _events((0, "workload.start", {"db": "sbtest", "driver": "sysbench 1.0.20"}),
                     (0, "workload.start", {"db": "other", "driver": "python"}))
    assert dict(junit.properties([], events, None))["ha_workload_driver"] == \
        "sysbench 1.0.20,python"


def test_junit_properties_redacted() -> None:
    events = _events((0, "job.submit", {"job_key": "import_into#1", "query": SECRET_URL}),
                     (1, "job.state", {"job_key": "import_into#1", "state": "failed",
                                       "error": SECRET_URL}))
    props = junit.properties([v("import_into#1", "failed-unexpected", False, SECRET_URL)],
                             events, None)
    blob = repr(props)
    assert "SECRETEXAMPLE" not in blob
    assert "AKIAEXAMPLE" not in blob
    assert dict(props)["ha_verdict"] == "failed-unexpected"


def test_github_markdown_and_append(tmp_path: Path) -> None:
    tests = [CaseSummary("a", "seed::a", (v("add_index#1", "stuck", False, "x | y"),),
                         "failed", artifacts=Path("ha-artifacts/a"))]
    md = github.markdown_summary(tests, header="tidb-ha: TiDB v8.5.7")
    assert "| seed::a | add_index#1 (job 1) | ⏳ stuck | 12s | x \\| y | `ha-artifacts/a` |" in md
    target = tmp_path / "summary.md"
    target.write_text("before\n")
    assert github.append_step_summary(md, {"GITHUB_STEP_SUMMARY": str(target)}) == target
    assert target.read_text().startswith("before\n## tidb-ha verdicts")
    assert github.append_step_summary(md, {}) is None
    assert github.markdown_summary([]) == ""


def test_summary_from_junit_properties_roundtrip() -> None:
    """Under pytest-xdist the controller only sees the report's properties."""
    from pytest_tidb_ha.report.summary import summary_from_properties

    tl, verdicts = bug_48303(0.01)
    props = junit.properties(verdicts, tl.events(), Path("arts/x"))
    s = summary_from_properties("t.py::x", props, "failed")
    assert s is not None
    assert [(v.job_key, v.job_id, v.verdict, v.ok) for v in s.verdicts] == [
        ("add_index#1", 475, "stuck", False),
        ("add_index#1/cancel", 475, "cancel-ineffective", False),
        ("add_index#2", 476, "stuck", False)]
    assert s.artifacts == Path("arts/x")
    assert s.outcome == "failed"
    assert format_duration(s.verdicts[0].duration) == format_duration(verdicts[0].duration)
    assert summary_from_properties("t.py::y", [("other", "1")], "passed") is None


def test_ha_faults_is_applied_over_planned_and_shown_in_the_summary() -> None:
    """A green run whose faults never applied must not look like one that had them."""
    from pytest_tidb_ha.report.summary import summary_from_properties

    events = _events(
        (0.0, "fault.inject", {"fault_id": "f0.0", "fault_kind": "network_partition"}),
        (0.1, "fault.error", {"fault_id": "f0.0", "fault_kind": "network_partition",
                              "phase": "apply", "error": "no helper image"}),
        (9.0, "nemesis.summary", {"applied": 0, "planned": 3, "healed": 0,
                                  "problems": ["fault f0.0 ... was not applied"]}))
    props = dict(junit.properties([], events, None))
    assert props["ha_faults"] == "0/3"
    s = summary_from_properties("t.py::x", [*list(props.items()), ("ha_jobs", "[]")], "failed")
    assert s is not None
    assert s.faults == "0/3"
    lines = summary_lines([s])
    assert "    faults applied/planned: 0/3" in lines
