"""The report end to end, in a pytest subprocess, without Docker.

The fake tests fill ``ha_record`` the way the layers do (fault, job and
workload events, verdicts, a diagnostics file) and pass or fail; we then read
what a user would: the terminal summary, the JUnit file (both families), the
artifacts folders, the GitHub step summary — and grep all of it for a secret
that went in through an IMPORT INTO URL.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SECRETS = ("AKIAEXAMPLE", "SECRETEXAMPLE")

#: plugin.py registers ReportHooks as "tidb-ha-report"; the fake tests need no conftest.
CONFTEST = """
import pytest
"""

FAKE_TESTS = '''
import pytest
from pytest_tidb_ha.verdicts import Verdict
from pytest_tidb_ha.redact import redact

URL = "s3://bucket/data/*.csv?access-key=AKIAEXAMPLE&secret-access-key=SECRETEXAMPLE"


def fill(rec, key, verdict, ok, job_id, raw=True):
    """Events always carry the raw URL (the timeline stores what it is given; the
    report redacts on output). ``raw=False``: the record's own fields follow the
    contract (reasons/notes already redacted), as they must for a failing test,
    whose traceback shows the ``ha_record`` argument's repr."""
    clean = (lambda s: s) if raw else redact
    tl = rec.timeline
    rec.cluster = "pd=1,tikv=1,tidb=1"
    tl.record("cluster.ready", nodes=["pd-0", "tikv-0", "tidb-0"])
    tl.record("fault.inject", fault_id="f1", fault_kind="kill", targets=["tidb-0"],
              sources=[], roles={"ddl_owner": "tidb-0"}, planned_start=0.0,
              planned_end=0.1, params={})
    tl.record("fault.applied", fault_id="f1", fault_kind="kill")
    kind = key.split("#")[0]
    tl.record("job.submit", job_key=key, job_kind=kind, job_id=None,
              query=f"IMPORT INTO sbtest.t FROM '{URL}' WITH skip_rows=1")
    tl.record("job.state", job_key=key, job_id=job_id, state="running",
              import_step="importing", imported_rows=10, error=f"reading {URL}: timeout")
    tl.record("workload.metrics", tps=120.0, qps=2400.0, errors={"1105": 2}, p50=1.0,
              p95=2.0, p99=3.0)
    tl.record("workload.error", code=1105, message=f"backend {URL} unavailable")
    tl.record("fault.healed", fault_id="f1", fault_kind="kill")
    reason = f"{verdict}: import of {URL} at step importing"
    tl.record("job.verdict", job_key=key, job_id=job_id, verdict=verdict, reason=reason)
    evidence = {"url": URL, "access-key": "AKIAEXAMPLE"} if raw else {"url": redact(URL)}
    rec.verdicts.append(Verdict(key, kind, job_id, verdict, clean(reason), ok, evidence,
                                started_at=0.0, decided_at=tl.now()))
    rec.notes.append(clean(f"pprof of tidb-0 timed out while importing {URL}"))
    rec.artifacts_dir.mkdir(parents=True, exist_ok=True)
    (rec.artifacts_dir / "diagnostics.txt").write_text(redact(f"ADMIN SHOW DDL ... {URL}"))


def test_converges(ha_record):
    fill(ha_record, "import_into#1", "converged", True, 5)


def test_two_jobs_one_stuck(ha_record):
    fill(ha_record, "import_into#1", "converged", True, 7, raw=False)
    fill(ha_record, "import_into#2", "stuck", False, 8, raw=False)
    pytest.fail(redact(f"import_into#2 stuck: {URL}"))


def test_without_record():
    pass
'''

TEARDOWN_ERROR = '''
import pytest
from pytest_tidb_ha.verdicts import Verdict


@pytest.fixture
def broken(ha_record):
    yield ha_record
    raise RuntimeError("cleanup failed")


def test_passes_but_teardown_fails(broken):
    broken.verdicts.append(Verdict("add_index#1", "add_index", 1, "converged", "synced", True))
'''


def _run(pytester: pytest.Pytester, *args: str, source: str = FAKE_TESTS) -> tuple[
        pytest.RunResult, Path]:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_fake=source)
    arts = pytester.path / "arts"
    result = pytester.runpytest_subprocess(f"--ha-artifacts={arts}", "-p", "no:cacheprovider",
                                           *args)
    return result, arts


def test_summary_lines_carry_the_verdicts(pytester: pytest.Pytester) -> None:
    result, arts = _run(pytester, "--ha-time-scale=0.01")
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if "tidb-ha verdicts" in ln)
    section = lines[start + 1:]
    conv = [ln for ln in section if ln.startswith("test_fake.py::test_converges ")]
    assert len(conv) == 1
    assert "import_into#1 (job 5)" in conv[0]
    assert "converged" in conv[0]
    two = [ln for ln in section if ln.startswith("test_fake.py::test_two_jobs_one_stuck ")]
    assert ["converged" in two[0], "stuck" in two[1]] == [True, True]
    assert "import_into#2 (job 8)" in two[1]
    kept = [ln.strip() for ln in section if ln.strip().startswith("artifacts:")]
    assert kept == [f"artifacts: {arts / 'test_fake.py_test_two_jobs_one_stuck'}"]
    assert f"artifacts folder: {arts} (--ha-artifacts-keep=failed)" in out
    assert not any("test_without_record" in ln for ln in section)
    assert "tidb-ha reproduce: pytest" in out
    assert "--ha-time-scale 0.01" in out


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_junit_properties_in_both_families(pytester: pytest.Pytester, family: str) -> None:
    xml_path = pytester.path / "junit.xml"
    result, arts = _run(pytester, f"--junitxml={xml_path}", "-o", f"junit_family={family}")
    result.assert_outcomes(passed=2, failed=1)
    assert "incompatible with junit_family" not in result.stdout.str()
    root = ET.parse(xml_path).getroot()
    cases = {tc.get("name"): tc for tc in root.iter("testcase")}
    props = {name: {p.get("name"): p.get("value") for p in tc.iter("property")}
             for name, tc in cases.items()}
    assert props["test_converges"]["ha_verdict"] == "converged"
    assert props["test_converges"]["ha_faults"] == "1/1"
    assert "ha_artifacts" not in props["test_converges"]  # passed: folder removed
    stuck = props["test_two_jobs_one_stuck"]
    assert stuck["ha_verdict"] == "converged,stuck"
    assert stuck["ha_artifacts"] == str(arts / "test_fake.py_test_two_jobs_one_stuck")
    jobs_text = stuck["ha_jobs"]
    assert jobs_text is not None
    jobs = json.loads(jobs_text)
    assert [(j["key"], j["id"], j["verdict"], j["ok"]) for j in jobs] == [
        ("import_into#1", 7, "converged", True), ("import_into#2", 8, "stuck", False)]
    assert jobs[1]["last"]["import_step"] == "importing"
    assert props["test_without_record"] == {}


def test_artifacts_policy_failed_keeps_only_failures(pytester: pytest.Pytester) -> None:
    result, arts = _run(pytester)
    result.assert_outcomes(passed=2, failed=1)
    assert sorted(p.name for p in arts.iterdir()) == ["test_fake.py_test_two_jobs_one_stuck"]
    folder = arts / "test_fake.py_test_two_jobs_one_stuck"
    assert sorted(p.name for p in folder.iterdir()) == [
        "diagnostics.txt", "report.html", "timeline.json", "timeline.svg", "verdicts.json"]
    timeline = json.loads((folder / "timeline.json").read_text())
    kinds = [e["kind"] for e in timeline["events"]]
    for kind in ("fault.inject", "fault.applied", "fault.healed", "job.submit", "job.state",
                 "workload.metrics", "job.verdict"):
        assert kind in kinds
    inject = next(e for e in timeline["events"] if e["kind"] == "fault.inject")
    assert inject["targets"] == ["tidb-0"]
    assert inject["roles"] == {"ddl_owner": "tidb-0"}
    verdicts = json.loads((folder / "verdicts.json").read_text())
    assert verdicts["outcome"] == "failed"
    assert [v["verdict"] for v in verdicts["verdicts"]] == ["converged", "stuck"]
    assert "import_into#2 stuck" in verdicts["failure"]
    ET.parse(folder / "timeline.svg")  # well-formed
    html = (folder / "report.html").read_text()
    assert "<svg" in html
    assert "stuck" in html
    assert "diagnostics.txt" in html


def test_artifacts_policy_all_keeps_everything(pytester: pytest.Pytester) -> None:
    result, arts = _run(pytester, "--ha-artifacts-keep=all")
    result.assert_outcomes(passed=2, failed=1)
    assert sorted(p.name for p in arts.iterdir()) == [
        "test_fake.py_test_converges", "test_fake.py_test_two_jobs_one_stuck"]


def test_teardown_error_keeps_the_folder(pytester: pytest.Pytester) -> None:
    result, arts = _run(pytester, source=TEARDOWN_ERROR)
    result.assert_outcomes(passed=1, errors=1)
    folder = arts / "test_fake.py_test_passes_but_teardown_fails"
    assert (folder / "timeline.svg").exists()


def test_github_step_summary(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    target = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    result, _ = _run(pytester)
    result.assert_outcomes(passed=2, failed=1)
    md = target.read_text()
    assert "## tidb-ha verdicts" in md
    assert "| test_fake.py::test_two_jobs_one_stuck | import_into#2 (job 8) | ⏳ stuck |" in md


FAKE_HTML_CONFTEST = CONFTEST + '''

import json


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.pluginmanager.register(object(), "html")  # pretend pytest-html is active


def pytest_runtest_logreport(report):
    extras = getattr(report, "extras", None)
    if extras:
        with open("extras.jsonl", "a") as fh:
            fh.write(json.dumps({"nodeid": report.nodeid, "when": report.when,
                                 "extras": extras}) + "\\n")
'''

FAKE_HTML_EXTRAS = '''
def html(content):
    return {"format_type": "html", "content": content}


def text(content, name="Text"):
    return {"format_type": "text", "content": content, "name": name}


def url(content, name="URL"):
    return {"format_type": "url", "content": content, "name": name}
'''


def test_pytest_html_extras_when_that_plugin_is_active(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("pytest_html")
    (pytester.path / "pytest_html" / "extras.py").write_text(FAKE_HTML_EXTRAS)
    pytester.makeconftest(FAKE_HTML_CONFTEST)
    pytester.makepyfile(test_fake=FAKE_TESTS)
    arts = pytester.path / "arts"
    result = pytester.runpytest_subprocess(f"--ha-artifacts={arts}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    rows = [json.loads(ln) for ln in (pytester.path / "extras.jsonl").read_text().splitlines()]
    by_test = {r["nodeid"].split("::")[1]: r for r in rows}
    stuck = by_test["test_two_jobs_one_stuck"]
    assert stuck["when"] == "teardown"
    kinds = [e["format_type"] for e in stuck["extras"]]
    assert kinds == ["text", "html", "url"]
    assert "import_into#2: stuck" in stuck["extras"][0]["content"]
    assert "<svg" in stuck["extras"][1]["content"]
    assert "SECRETEXAMPLE" not in json.dumps(rows)
    # a passed test's folder is gone: reasons only, no picture to link
    assert [e["format_type"] for e in by_test["test_converges"]["extras"]] == ["text"]


def test_progress_lines_are_logged(pytester: pytest.Pytester) -> None:
    result, _ = _run(pytester, "-o", "log_cli=true", "--log-cli-level=INFO")
    out = result.stdout.str()
    assert "INFO     pytest_tidb_ha.progress" in out
    assert "workload: running — tps 120.0, errors 2/s, p99 3.0 ms" in out
    assert "fault f1: kill at" not in out  # the nemesis says that itself, at INFO
    result, _ = _run(pytester, "-o", "log_cli=true", "--log-cli-level=DEBUG")
    out = result.stdout.str()
    assert "fault f1: kill at" in out
    assert "import_into#2: running / importing — imported rows 10" in out
    assert "import_into#2: verdict stuck" in out


def test_no_secret_anywhere(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The IMPORT INTO URL's keys went through events, reasons, errors, notes, logs:
    no artifact, no JUnit byte, no terminal line may carry them."""
    xml_path = pytester.path / "junit.xml"
    step = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    result, arts = _run(pytester, "--ha-artifacts-keep=all", f"--junitxml={xml_path}",
                        "-o", "junit_logging=all", "-o", "log_cli=true",
                        "--log-cli-level=DEBUG", "-rA")
    result.assert_outcomes(passed=2, failed=1)
    files = [p for p in arts.rglob("*") if p.is_file()] + [xml_path, step]
    assert len(files) >= 12
    leaks = [str(p) for p in files for s in SECRETS if s in p.read_text(errors="replace")]
    out = result.stdout.str() + result.stderr.str()
    leaks += [f"terminal: {s}" for s in SECRETS if s in out]
    assert leaks == []
    # and the URL did flow through (masked), so the test is not vacuous
    timeline = (arts / "test_fake.py_test_converges" / "timeline.json").read_text()
    assert "secret-access-key=xxxxxx" in timeline
    assert "xxxxxx" in xml_path.read_text()
