"""YAML case files become ordinary test functions; bad ones fail collection with file:line."""

from __future__ import annotations

import gc
import shutil
import textwrap
from pathlib import Path

import pytest

SEEDS = Path(__file__).resolve().parents[2] / "scenarios" / "seeds"


@pytest.fixture
def seeds(pytester: pytest.Pytester) -> Path:
    dest = pytester.path / "scenarios"
    shutil.copytree(SEEDS, dest / "seeds")
    return dest


def test_one_item_per_case_with_stable_ids(pytester: pytest.Pytester, seeds: Path) -> None:
    result = pytester.runpytest("--collect-only", "-q", "scenarios/")
    result.stdout.fnmatch_lines([
        "scenarios/seeds/46735.yaml::ha_tidb(ddl_owner)_kill_import_into",
        "scenarios/seeds/48303.yaml::ha_tikv(random)_to_all_network_partition",
        "scenarios/seeds/48546.yaml::ha_pdleader_to_pdfollower_all_network_partition",
        "3 tests collected*",
    ])
    assert result.ret == 0


def test_seed_block_pasted_as_is_collects(pytester: pytest.Pytester) -> None:
    text = (SEEDS / "48546.yaml").read_text()
    assert text.startswith("      tag:")  # indented exactly as in the bug report
    pytester.makefile(".yml", pasted=text)
    result = pytester.runpytest("--collect-only", "-q", "pasted.yml")
    result.stdout.fnmatch_lines(["pasted.yml::ha_pdleader_to_pdfollower_all_network_partition"])


def test_other_yaml_files_are_ignored(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", config="database: {host: x}\n", broken="key: [oops\n")
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_other_yaml_files_are_ignored.py::test_ok",
                                 "1 test collected*"])


def test_items_are_functions_that_get_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import sys, types
        import pytest

        calls = []
        fake = types.ModuleType("pytest_tidb_ha.runner")
        def run_case(case, *, cluster, record, options):
            assert cluster == "fake-cluster"
            assert record.case_id == case.id
            calls.append((case.id, options.time_scale))
        fake.run_case = run_case
        sys.modules["pytest_tidb_ha.runner"] = fake

        @pytest.fixture
        def tidb_cluster():
            return "fake-cluster"

        def pytest_terminal_summary(terminalreporter):
            terminalreporter.write_line(f"RAN {calls}")
    """)
    pytester.makefile(".yaml", cases="""
        cases:
          - name: one
          - name: two
            markers: [smoke]
    """)
    result = pytester.runpytest_subprocess("-q", "--ha-time-scale", "0.5", "-m", "smoke")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["RAN [('cases::two', 0.5)]"])



def test_case_items_name_their_fixtures_and_get_them_set_up_before_the_call(
        pytester: pytest.Pytester) -> None:
    """A case item's resolved closure is ``request`` (plus autouse fixtures); it names
    ``ha_record`` and ``tidb_cluster`` in ``fixturenames``, and pytest sets both up (with
    what they depend on) before the case runs and tears them down after it."""
    pytester.makeconftest("""
        import sys, types
        import pytest

        fake = types.ModuleType("pytest_tidb_ha.runner")
        def run_case(case, *, cluster, record, options):
            assert cluster == "cluster-from-base"
            assert record.case_id == case.id
            print("RUNNING", case.id)
        fake.run_case = run_case
        sys.modules["pytest_tidb_ha.runner"] = fake

        @pytest.fixture
        def base():
            print("BASE UP")
            yield "base"
            print("BASE DOWN")

        @pytest.fixture
        def tidb_cluster(base):
            return f"cluster-from-{base}"

        def pytest_collection_finish(session):
            for item in session.items:
                print("NAMES", item.nodeid, sorted(item.fixturenames))
    """)
    pytester.makefile(".yaml", cases="cases:\n  - name: one\n")
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "NAMES cases.yaml::one ['ha_record', 'request', 'tidb_cluster']",
        "*BASE UP*", "*RUNNING cases::one*", "*BASE DOWN*"])
    dry = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", "--ha-dry-run")
    dry.assert_outcomes(passed=1)
    dry.stdout.fnmatch_lines(["NAMES cases.yaml::one ['request']"])
    assert "BASE UP" not in dry.stdout.str()

BAD_FILES = {
    "unknown_key": ("""
        cases:
          - name: a
            faultTyp: kill
        """, "unknown_key.yaml:3: unknown key 'faultTyp' in a case (did you mean 'faultType'?)*"),
    "malformed": ("cases:\n  - name: [a\n", "malformed.yaml:2: malformed YAML*"),
    "wrong_type": ("""
        cases:
          - name: a
            ddl: {addIndex: [{db: d, table: t, index_col_name: c, timeout: 1m, times: many}]}
        """, "wrong_type.yaml:3: times must be a whole number, got 'many'"),
    "zero_duration": ("""
        cases:
          - {name: a, faultType: kill, selector: tikv(one), faultDuration: 0s}
        """, "zero_duration.yaml:2: faultDuration must be longer than zero*"),
    "negative_duration": ("""
        cases:
          - {name: a, warmUpTime: -5m}
        """, "negative_duration.yaml:2: warmUpTime must not be negative*"),
    "longer_than_period": ("""
        cases:
          - name: a
            faultType: kill
            selector: tikv(one)
            period: "@every 5m"
            faultDuration: 6m
            faultTotalRunTime: 30m
        """, "longer_than_period.yaml:6: faultDuration 6m is longer than its period @every 5m*"),
    "unknown_fault": ("""
        cases:
          - {name: a, faultType: partition, selector: tikv, faultDuration: 1m}
        """, "unknown_fault.yaml:2: unknown faultType 'partition'*"),
    "unknown_selector": ("""
        cases:
          - name: a
            faultType: kill
            selector: tikv(sum)
            faultDuration: 1m
        """, "unknown_selector.yaml:4: selector 'tikv(sum)'*"),
    "never_matches": ("""
        cases:
          - name: a
            faultType: kill
            selector: tikv(5)
            faultDuration: 1m
        """, "never_matches.yaml:4: selector tikv(5): tikv(5) needs 5 node(s) but the group "
             "'tikv' has 3*"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_input_is_a_collection_error_with_file_and_line(pytester: pytest.Pytester,
                                                            name: str) -> None:
    text, expected = BAD_FILES[name]
    pytester.makefile(".yaml", **{name: textwrap.dedent(text).lstrip("\n")})
    result = pytester.runpytest("-q")
    result.stdout.fnmatch_lines([expected])
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_topology_from_cli_makes_a_selector_valid(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", five=textwrap.dedent("""
        cases:
          - {name: a, faultType: kill, selector: tikv(5), faultDuration: 1m}
    """))
    result = pytester.runpytest("--collect-only", "-q", "--tidb-topology", "tikv=5")
    result.stdout.fnmatch_lines(["five.yaml::a"])


def test_each_case_item_resolves_the_fixtures_of_its_own_folder(
        pytester: pytest.Pytester) -> None:
    """Case items resolve their fixtures one by one, as hand-written tests do (no
    resolution shared through pytest's private attributes): a folder's conftest overrides
    ``tidb_cluster`` and adds an autouse fixture for that folder's cases only, in a plain
    file and in QA's config list alike."""
    pytester.makeconftest("""
        import sys, types
        import pytest

        calls = []
        fake = types.ModuleType("pytest_tidb_ha.runner")
        def run_case(case, *, cluster, record, options):
            calls.append((case.id, cluster))
        fake.run_case = run_case
        sys.modules["pytest_tidb_ha.runner"] = fake

        @pytest.fixture
        def tidb_cluster():
            return "root"

        def pytest_terminal_summary(terminalreporter):
            terminalreporter.write_line(f"RAN {sorted(calls)}")
    """)
    inner = pytester.mkdir("inner")
    (inner / "conftest.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.fixture
        def tidb_cluster():
            return "inner"

        @pytest.fixture(autouse=True)
        def only_inner(request):
            request.node.user_properties.append(("only_inner", True))
    """))
    case_list = "cases:\n  - name: one\n  - name: two\n"
    (inner / "plain.yaml").write_text(case_list)
    (inner / "qa.yaml").write_text(
        "- name: cfg\n  default: |\n" + textwrap.indent(case_list, "    "))
    (pytester.path / "outer.yaml").write_text(case_list)
    pytester.makepyfile(test_show="""
        def test_names(request):
            for item in request.session.items:
                if item.name != "test_names":
                    print("NAMES", item.nodeid, "only_inner" in item.fixturenames)
    """)
    result = pytester.runpytest_subprocess("-q", "-s")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines([
        "RAN [('outer::one', 'root'), ('outer::two', 'root'), ('plain::one', 'inner'), "
        "('plain::two', 'inner'), ('qa::cfg::one', 'inner'), ('qa::cfg::two', 'inner')]",
    ])
    out = result.stdout.str()
    for nodeid in ("inner/plain.yaml::one", "inner/qa.yaml::cfg::two"):
        assert f"NAMES {nodeid} True" in out
    assert "NAMES outer.yaml::one False" in out


def test_keyword_selection_ignores_the_case_functions_signature(
        pytester: pytest.Pytester) -> None:
    """The case functions carry ``__signature__`` (computed once, for collection's pace);
    pytest copies it into each item's keywords, and ``-k`` must not match it."""
    pytester.makefile(".yaml", cases="cases:\n  - name: one\n  - name: signature_two\n")
    result = pytester.runpytest("--collect-only", "-q", "-k", "signature")
    result.stdout.fnmatch_lines(["cases.yaml::signature_two", "1/2 tests collected (1 deselected)*"])


#: Registered before the plugin collects anything, so it runs after the plugin's exit hook.
FREEZE_PROBE = """
import atexit, gc, os

atexit.register(lambda: os.write(1, f"FROZEN {gc.get_freeze_count() > 0}\\n".encode()))
"""


@pytest.mark.parametrize(("files", "frozen"), [("yaml", True), ("py", False)])
def test_shutdown_skips_walking_the_collected_cases_only_when_there_are_some(
        pytester: pytest.Pytester, files: str, frozen: bool) -> None:
    """A session that collected QA case files freezes the live objects at exit (so
    CPython's shutdown does not collect them again); a suite without one is untouched."""
    pytester.makeconftest(FREEZE_PROBE)
    if files == "yaml":
        pytester.makefile(".yaml", cases="cases:\n  - name: one\n")
    else:
        pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([f"FROZEN {frozen}"])


PROBE = """
import gc

def test_probe():
    print(f"FROZEN-DURING {gc.get_freeze_count() > 0}")
"""


@pytest.mark.parametrize(("files", "frozen"), [("yaml", True), ("py", False)])
def test_collected_cases_are_frozen_for_the_session_only(
        pytester: pytest.Pytester, files: str, frozen: bool) -> None:
    """A session that collected QA case files runs its tests with the collected objects
    frozen (pytest's end-of-run collections skip them), and unfreezes them at its end:
    a session inside another process (here, in-process) leaves nothing frozen there."""
    if files == "yaml":
        pytester.makefile(".yaml", cases="cases:\n  - name: one\n")
    pytester.makepyfile(test_probe=PROBE)
    assert gc.get_freeze_count() == 0
    result = pytester.runpytest_inprocess("-s", "-q", "-p", "no:cacheprovider", "-k", "probe")
    result.stdout.fnmatch_lines([f"FROZEN-DURING {frozen}"])
    assert gc.get_freeze_count() == 0
