"""--ha-dry-run: plans printed (even with -q), times scaled, nothing started, tests pass."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SEEDS = Path(__file__).resolve().parents[2] / "scenarios" / "seeds"


@pytest.fixture(autouse=True)
def seeds(pytester: pytest.Pytester) -> None:
    shutil.copytree(SEEDS, pytester.path / "scenarios")


def test_dry_run_passes_and_prints_plans(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--ha-dry-run", "-q", "scenarios/")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "*= tidb-ha plan =*",
        "46735::ha_tidb(ddl_owner)_kill_import_into  [[]scenarios/46735.yaml:11[]]",
        "  topology: pd=1,tikv=1,tidb=2",
        "    window 1: 3m -> 4m",
        "48303::ha_tikv(random)_to_all_network_partition  [[]scenarios/48303.yaml:12[]]",
        "  topology: pd=1,tikv=3,tidb=1",
        "    window 1: 1m -> 4m",
        "    run 1: submit at 1m, deadline 1h1m",
        "48546::ha_pdleader_to_pdfollower_all_network_partition*",
        "  topology: pd=3,tikv=1,tidb=1",
    ])


def test_time_scale_scales_the_printed_times(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--ha-dry-run", "-q", "--ha-time-scale", "0.01", "scenarios/")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "*scaled by --ha-time-scale 0.01*",
        "    window 1: 1.8s [[]3m[]] -> 2.4s [[]4m[]]",
        "    window 1: 600ms [[]1m[]] -> 2.4s [[]4m[]]",
        "    window 6: 15.6s [[]26m[]] -> 17.4s [[]29m[]]",
        "    run 1: submit at 600ms [[]1m[]], deadline 36.6s [[]1h1m[]]",
    ])


def test_workload_scale_scales_generated_rows(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--ha-dry-run", "-q", "--ha-workload-scale", "0.01",
                                "scenarios/46735.yaml")
    result.stdout.fnmatch_lines(["*generate 100000 CSV rows (as written 1000000*"])


def test_marker_tests_with_cluster_fixtures_are_skipped_and_planned(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_m="""
        import pytest

        @pytest.mark.fault("kill", selector="tidb(ddl_owner)", duration="1m", warmup="2m")
        def test_needs_cluster(tidb_cluster):
            raise AssertionError("must not run in a dry run")

        def test_plain():
            pass
    """)
    result = pytester.runpytest("--ha-dry-run", "-q", "-rs", "test_m.py")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*dry run"])
    result.stdout.fnmatch_lines([
        "*= tidb-ha plan =*",
        "test_needs_cluster  [[]test_m.py::test_needs_cluster[]]",
        "  topology: pd=1,tikv=1,tidb=2",
    ])


def test_only_selected_marker_tests_are_planned(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sel="""
        import pytest

        @pytest.mark.fault("kill", selector="tidb(ddl_owner)", duration="1m")
        @pytest.mark.parametrize("n", [pytest.param(1, marks=pytest.mark.smoke), 2])
        def test_cell(tidb_cluster, n):
            pass
    """)
    result = pytester.runpytest("--ha-dry-run", "-q", "-m", "smoke", "test_sel.py")
    result.assert_outcomes(skipped=1, deselected=1)
    plans = [line for line in result.stdout.lines if line.startswith("test_cell[")]
    assert plans
    assert all(line.startswith("test_cell[1]") for line in plans)
