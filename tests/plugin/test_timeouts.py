"""pytest-timeout deadlines: each HA test gets its case's budget plus a start-up margin.

The deadline is a ``timeout`` mark added at collection; the user's own mark or run-wide
setting wins, and without pytest-timeout no mark is added at all.
"""

from __future__ import annotations

import pytest

CASES = """\
cases:
  - name: alpha
    warmUpTime: 1m
    faultType: kill
    selector: tikv(random)
    faultDuration: 10s
    ddl:
      addIndex:
        - db: d
          table: t
          index_col_name: c
          timeout: 10m
          times: 2
"""

TESTS = '''
import pytest

@pytest.mark.fault("kill", selector="tikv(random)", duration="10s")
def test_marker(tidb_cluster):
    pass

@pytest.mark.timeout(7)
@pytest.mark.tidb_cluster(pd=3)
def test_own(tidb_cluster):
    pass

def test_plain():
    pass
'''

#: Prints each item's timeout / xdist_group mark arguments after collection.
SHOW_MARKS = """
def pytest_collection_finish(session):
    for item in session.items:
        t = item.get_closest_marker("timeout")
        g = item.get_closest_marker("xdist_group")
        print("MARKS", item.nodeid, t.args[0] if t else None, g.args[0] if g else None)
"""


def _marks(result: pytest.RunResult) -> dict[str, tuple[str, str]]:
    out = {}
    for line in result.stdout.lines:
        if line.startswith("MARKS "):
            _, nodeid, timeout, group = line.split()
            out[nodeid] = (timeout, group)
    return out


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", cases=CASES)
    pytester.makepyfile(test_m=TESTS)
    pytester.makeconftest(SHOW_MARKS)
    return pytester


def _expected(case_id: str, scale: float = 1.0) -> str:
    """The deadline computed the way the plugin documents it (budget + margin)."""
    import math

    from pytest_tidb_ha.scenario import timing
    from pytest_tidb_ha.scenario.loader import load_text

    if case_id == "alpha":
        (case,) = load_text(CASES, "cases.yaml") or ()
        budget = timing.case_budget(case, scale)
    else:  # a Python test: its jobs are not in its plan
        from pytest_tidb_ha.scenario.markers import case_from_markers

        case = case_from_markers("test_m.py::test_marker", "test_marker",
                                 faults=[(("kill",), {"selector": "tikv(random)",
                                                      "duration": "10s"})],
                                 workload=None, cluster=None)
        budget = timing.case_budget(case, scale, jobs_declared=False)
    return str(math.ceil(budget + timing.STARTUP_MARGIN))


def test_each_cluster_test_gets_its_budget(project: pytest.Pytester) -> None:
    result = project.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    marks = _marks(result)
    # alpha: warmUp 1m + 2 x (10m timeout + stall 60s + cancel 60s + 2 x 30s) + stall 60s
    assert marks["cases.yaml::alpha"][0] == _expected("alpha") == str(60 + 2 * 780 + 60 + 900)
    assert marks["test_m.py::test_marker"][0] == _expected("marker")
    assert marks["test_m.py::test_own"][0] == "7"  # the test's own mark wins
    assert marks["test_m.py::test_plain"][0] == "None"  # no cluster: no deadline of ours


def test_deadline_shrinks_with_the_time_scale(project: pytest.Pytester) -> None:
    result = project.runpytest("--collect-only", "-q", "-p", "no:cacheprovider",
                               "--ha-time-scale", "0.1")
    assert _marks(result)["cases.yaml::alpha"][0] == _expected("alpha", 0.1)
    assert int(_expected("alpha", 0.1)) < int(_expected("alpha"))


@pytest.mark.parametrize("how", [("--timeout", "30"), ("-o", "timeout=30")],
                         ids=["cli", "ini"])
def test_a_run_wide_timeout_wins(project: pytest.Pytester, how: tuple[str, str]) -> None:
    result = project.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", *how)
    marks = _marks(result)
    assert marks["cases.yaml::alpha"][0] == "None"
    assert marks["test_m.py::test_marker"][0] == "None"
    assert marks["test_m.py::test_own"][0] == "7"


def test_env_timeout_wins(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_TIMEOUT", "30")
    result = project.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert _marks(result)["cases.yaml::alpha"][0] == "None"


def test_no_mark_without_pytest_timeout(project: pytest.Pytester) -> None:
    result = project.runpytest("--collect-only", "-q", "-p", "no:cacheprovider",
                               "-p", "no:timeout", "--strict-markers")
    assert result.ret == 0, result.stdout.str()
    assert _marks(result)["cases.yaml::alpha"][0] == "None"


def test_dry_run_adds_no_deadline(project: pytest.Pytester) -> None:
    result = project.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", "--ha-dry-run")
    assert _marks(result)["cases.yaml::alpha"][0] == "None"


HANGING_RUNNER = """
import sys, time, types

import pytest
import pytest_tidb_ha.scenario.timing as timing

timing.STARTUP_MARGIN = 1.0  # the budget alone decides in this test

fake = types.ModuleType("pytest_tidb_ha.runner")
def run_case(case, *, cluster, record, options):
    time.sleep(60)  # a cluster that never answers
fake.run_case = run_case
sys.modules["pytest_tidb_ha.runner"] = fake

@pytest.fixture
def tidb_cluster():
    return "fake-cluster"
"""

SHORT_CASE = """\
cases:
  - name: hangs
    faultType: kill
    selector: tikv(random)
    faultDuration: 10s
"""


def test_pytest_timeout_enforces_the_deadline(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HANGING_RUNNER)
    pytester.makefile(".yaml", cases=SHORT_CASE)
    # budget: the one 10s window x 0.1 = 1s, plus the 1s margin -> 2s
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ha-time-scale", "0.1",
                                           timeout=50)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout (>2.0s) from pytest-timeout*"])
