"""Markers: registered with signatures, validated at collection, errors name the nodeid."""

from __future__ import annotations

import pytest

from pytest_tidb_ha.stash import CASE_KEY


def test_markers_are_listed_with_signatures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines([
        "@pytest.mark.fault(kind, [*], selector, duration, period=None, total=None, "
        "warmup=None, **params): *",
        "@pytest.mark.workload(kind='sysbench', *",
        "@pytest.mark.tidb_cluster([*], pd=None, tikv=None, tidb=None, version=None): *",
    ])


def test_strict_markers_accepts_ours(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.tidb_cluster(pd=3)
        @pytest.mark.workload("sysbench", tables=2)
        @pytest.mark.fault("pd_leader_resign", warmup="1m")
        def test_x():
            pass
    """)
    result = pytester.runpytest("--strict-markers", "-q")
    result.assert_outcomes(passed=1)


def test_marker_case_is_in_the_item_stash(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        pytestmark = pytest.mark.fault("network_delay", selector="tikv(one)", duration="1m",
                                       latency="100ms")

        @pytest.mark.fault("kill", selector="tidb(random)", duration="30s", warmup="10s")
        @pytest.mark.tidb_cluster(tikv=3, version="v8.1.2")
        def test_x():
            pass
    """)
    items, _ = pytester.inline_genitems()
    (item,) = items
    case = item.stash[CASE_KEY]
    assert [f.kind for f in case.faults] == ["kill", "network_delay"]
    assert case.topology is not None
    assert case.topology.tikv == 3
    assert case.version == "v8.1.2"


def test_invalid_markers_are_one_usage_error_before_anything_runs(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad="""
        import pytest

        @pytest.mark.fault("kill", selector="tikv(random)", duraton="1m")
        def test_a():
            raise AssertionError("must not run")

        @pytest.mark.workload("sysbench", tables=0)
        def test_b():
            raise AssertionError("must not run")

        @pytest.mark.fault("kill", selector="pdfollower(4)", duration="1m")
        def test_c():
            raise AssertionError("must not run")

        def test_fine():
            pass
    """)
    result = pytester.runpytest("-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: pytest-tidb-ha: invalid markers:",
        "  test_bad.py::test_a: @pytest.mark.fault: unexpected keyword 'duraton' "
        "(did you mean 'duration'?)*",
        "  test_bad.py::test_b: @pytest.mark.workload: tables must be a whole number >= 1, got 0",
        "  test_bad.py::test_c: selector pdfollower(4): *group 'pdfollower' has 2*",
    ])
    assert "must not run" not in result.stdout.str()


def test_marks_on_a_class_or_module_reach_each_item_and_plain_items_stay_plain(
        pytester: pytest.Pytester) -> None:
    """The parents' marks are read once per parent (``plugin._ChainMarks``): each item
    still gets its own closest marks -- module, class, its own -- and a test without
    HA marks, next to them, gets no case."""
    pytester.makepyfile(test_marked="""
        import pytest

        pytestmark = pytest.mark.workload("sysbench", threads=2)

        @pytest.mark.fault("pause", selector="tikv(one)", duration="20s")
        class TestPaused:
            def test_a(self):
                pass

            @pytest.mark.fault("kill", selector="tidb(random)", duration="30s")
            def test_b(self):
                pass

        def test_workload_only():
            pass
    """, test_plain="""
        import pytest

        @pytest.mark.parametrize("i", range(3))
        def test_p(i):
            pass

        @pytest.mark.timeout(7)
        def test_own_timeout():
            pass
    """)
    items, _ = pytester.inline_genitems()
    cases = {item.name: item.stash.get(CASE_KEY, None) for item in items}
    kinds = {name: [f.kind for f in case.faults] for name, case in cases.items()
             if case is not None}
    assert kinds == {"test_a": ["pause"], "test_b": ["kill", "pause"],
                     "test_workload_only": []}
    assert cases["test_workload_only"] is not None
    assert cases["test_workload_only"].workloads[0].threads == 2
    plain = [name for name, case in cases.items() if case is None]
    assert sorted(plain) == ["test_own_timeout", "test_p[0]", "test_p[1]", "test_p[2]"]


def test_each_item_of_a_parametrized_cluster_test_counts_as_a_cluster_test(
        pytester: pytest.Pytester) -> None:
    """Items of one parametrized test share their fixture-name list, and the plugin asks
    once per list (``plugin._ClusterUse``): every such item is still a cluster test (each
    gets its pytest-timeout deadline), and a plain parametrized test next to it is not."""
    pytest.importorskip("pytest_timeout")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.parametrize("i", range(3))
        def test_cluster(tidb_cluster, i):
            pass

        @pytest.mark.parametrize("i", range(2))
        def test_plain(i):
            pass
    """)
    items, _ = pytester.inline_genitems()
    deadlines = {item.name: item.get_closest_marker("timeout") is not None for item in items}
    assert deadlines == {"test_cluster[0]": True, "test_cluster[1]": True,
                         "test_cluster[2]": True, "test_plain[0]": False,
                         "test_plain[1]": False}
