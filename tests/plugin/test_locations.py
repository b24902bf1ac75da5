"""Where a YAML case's result points: the case file and the case's line, never our code.

No Docker engine is needed: DOCKER_HOST names a socket that does not exist, so every case
skips (``--ha-no-docker=skip``) or errors at set-up, which is exactly the result whose
location CI tools print.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

CASES = """\
# two cases; the second starts on line 5
cases:
  - name: first
    distTask: on
  - name: second
    faultType: kill
    selector: tikv(random)
    faultDuration: 10s
"""

#: Prints what annotation plugins read (report.location) for every failed/skipped phase.
CONFTEST = """
def pytest_runtest_logreport(report):
    if report.failed or report.skipped:
        print(f"LOCATION {report.nodeid} {report.location[0]}:{report.location[1]}")
"""


@pytest.fixture
def no_engine(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    pytester.makefile(".yaml", cases=CASES)
    pytester.makeconftest(CONFTEST)
    return pytester


def _testcases(path: object) -> dict[str, dict[str, str]]:
    root = ET.parse(str(path)).getroot()
    return {tc.get("name", ""): dict(tc.attrib) for tc in root.iter("testcase")}


def test_skips_point_at_the_case_line(no_engine: pytest.Pytester) -> None:
    junit = no_engine.path / "junit.xml"
    result = no_engine.runpytest_subprocess(
        "--ha-no-docker=skip", "-rs", "-s", f"--junitxml={junit}", "-o", "junit_family=xunit1",
        "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([
        "*LOCATION cases.yaml::first cases.yaml:2",
        "*LOCATION cases.yaml::second cases.yaml:4",
    ], consecutive=False)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] cases.yaml:3: pytest-tidb-ha: no Docker*",
                                 "SKIPPED [[]1[]] cases.yaml:5: pytest-tidb-ha: no Docker*"])
    assert "case_test.py" not in result.stdout.str()
    assert "fixtures.py" not in result.stdout.str()
    cases = _testcases(junit)
    # JUnit's line is pytest's 0-based location line, as for Python tests
    assert (cases["first"]["file"], cases["first"]["line"]) == ("cases.yaml", "2")
    assert (cases["second"]["file"], cases["second"]["line"]) == ("cases.yaml", "4")


def test_errors_point_at_the_case_line(no_engine: pytest.Pytester) -> None:
    junit = no_engine.path / "junit.xml"
    result = no_engine.runpytest_subprocess(
        "-s", f"--junitxml={junit}", "-o", "junit_family=xunit1", "-p", "no:cacheprovider",
        timeout=120)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*LOCATION cases.yaml::second cases.yaml:4"], consecutive=False)
    assert "case_test.py" not in result.stdout.str()
    assert _testcases(junit)["second"]["file"] == "cases.yaml"
    assert _testcases(junit)["second"]["line"] == "4"


def test_python_tests_keep_their_own_location(pytester: pytest.Pytester,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    pytester.makepyfile(test_py="""
        import pytest

        def test_skips(tidb_cluster):
            pass
    """)
    result = pytester.runpytest_subprocess("--ha-no-docker=skip", "-rs", "-p", "no:cacheprovider",
                                           timeout=120)
    result.assert_outcomes(skipped=1)
    # a Python test keeps pytest's own location: its def line
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_py.py:3: pytest-tidb-ha: no Docker*"])
