"""Model, topology needs, marker cases and the dry-run plan (all pure)."""

from __future__ import annotations

import pytest

from pytest_tidb_ha.scenario.durations import parse_duration
from pytest_tidb_ha.scenario.errors import ScenarioError
from pytest_tidb_ha.scenario.loader import load_text
from pytest_tidb_ha.scenario.markers import case_from_markers
from pytest_tidb_ha.scenario.model import Case, Duration, Schedule, Topology
from pytest_tidb_ha.scenario.needs import check_case_topology, plan_topology, required_topology
from pytest_tidb_ha.scenario.plan import render_plan


def d(text: str) -> Duration:
    return parse_duration(text)


def test_periodic_windows_start_before_total_ends() -> None:
    s = Schedule(warmup=d("1m"), duration=d("3m"), period=d("5m"), total=d("30m"))
    assert len(s.windows()) == 6
    assert s.windows(0.01)[0] == pytest.approx((0.6, 2.4))


def test_one_shot_window() -> None:
    s = Schedule(warmup=d("2m"), duration=d("1m"))
    assert s.windows() == [(120, 180)]


def one_case(yaml_text: str) -> Case:
    cases = load_text(yaml_text, "c.yaml")
    assert cases is not None
    return cases[0]


def fault_case(kind: str, selector: str, extra: str = "") -> Case:
    return one_case(f"cases:\n  - {{name: a, faultType: {kind}, selector: '{selector}', "
                    f"faultDuration: 1m{extra}}}\n")


@pytest.mark.parametrize(
    ("kind", "selector", "topology"),
    [
        ("network_partition", "tikv(random)_to_all", Topology(1, 3, 1)),
        ("network_partition", "pdleader_to_pdfollower(all)", Topology(3, 1, 1)),
        ("kill", "tidb(ddl_owner)", Topology(1, 1, 2)),
        ("network_partition", "ddlowner", Topology(1, 1, 2)),
        ("kill", "pd(random)", Topology(3, 1, 1)),
        ("pause", "tikv(one)", Topology(1, 3, 1)),
        ("io_delay", "tikv(one)", Topology(1, 1, 1)),
        ("network_delay", "tikv(one)", Topology(1, 1, 1)),
    ],
)
def test_required_topology(kind: str, selector: str, topology: Topology) -> None:
    extra = ", latency: 1s" if kind in ("io_delay", "network_delay") else ""
    assert required_topology(fault_case(kind, selector, extra)) == topology


def test_requested_topology_is_a_minimum_and_reasons_are_given() -> None:
    case = fault_case("kill", "tidb(ddl_owner)")
    plan = plan_topology(case, Topology(pd=3, tikv=1, tidb=1))
    assert plan.topology == Topology(3, 1, 2)
    assert any("another TiDB" in r for r in plan.reasons)
    assert any("--tidb-topology" in r for r in plan.reasons)


def test_selector_count_is_checked_not_grown() -> None:
    case = fault_case("kill", "tikv(5)")
    topo = required_topology(case)
    assert topo.tikv == 3
    with pytest.raises(ScenarioError, match=r"c.yaml:2: selector tikv\(5\): .*has 3"):
        check_case_topology(case, topo)
    check_case_topology(case, Topology(tikv=5))


def test_marker_case() -> None:
    case = case_from_markers(
        "t.py::test_x", "test_x",
        faults=[(("network_partition",), {"selector": "tikv(random)_to_all", "duration": "3m",
                                          "period": "5m", "total": "30m", "warmup": "1m"})],
        workload=(("sysbench",), {"tables": 4, "table_size": 1000, "threads": 8}),
        cluster=((), {"pd": 3, "version": "v8.5.1"}),
    )
    assert len(case.faults[0].schedule.windows()) == 6
    assert case.workloads[0].tables == 4
    assert case.topology == Topology(pd=3)
    assert case.version == "v8.5.1"
    assert required_topology(case) == Topology(3, 3, 1)


@pytest.mark.parametrize(
    ("faults", "workload", "cluster", "message"),
    [
        ([(("kill",), {"selector": "tikv", "duration": "1m", "duraton": 1})], None, None,
         "unexpected keyword 'duraton' (did you mean 'duration'?)"),
        ([((), {"selector": "tikv"})], None, None, "give the fault kind (first argument) or fault_types"),
        ([(("boom",), {"selector": "tikv", "duration": "1m"})], None, None,
         "unknown kind 'boom'"),
        ([(("kill",), {"selector": "tikv", "duration": "-1m"})], None, None,
         "duration must be longer than zero"),
        ([(("kill",), {"selector": "tikv", "duration": "6m", "period": "5m", "total": "1h"})],
         None, None, "duration 6m is longer than its period 5m"),
        ([], (("sysbench",), {"tables": 0}), None, "tables must be a whole number >= 1"),
        ([], (("sysbench",), {"tabels": 2}), None, "unexpected keyword argument 'tabels'"),
        ([], None, ((3,), {}), "@pytest.mark.tidb_cluster: too many positional arguments"),
        ([], None, ((), {"version": 8}), "version must be a string"),
    ],
)
def test_marker_errors_name_the_nodeid(faults, workload, cluster, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScenarioError) as info:
        case_from_markers("t.py::test_x", "test_x", faults=faults, workload=workload,
                          cluster=cluster)
    text = str(info.value)
    assert text.startswith("t.py::test_x: @pytest.mark.")
    assert message in text


def test_plan_shows_scaled_and_unscaled_windows_and_deadlines() -> None:
    case = one_case("""\
cases:
  - name: p
    warmUpTime: 1m
    faultType: network_partition
    selector: tikv(random)_to_all
    period: "@every 5m"
    faultDuration: 3m
    faultTotalRunTime: 30m
    ddl:
      addIndex:
        - {db: d, table: t, index_col_name: c, timeout: 60m, times: 2}
""")
    text = render_plan(case, time_scale=0.01)
    assert "topology: pd=1,tikv=3,tidb=1" in text
    assert "window 1: 600ms [1m] -> 2.4s [4m]" in text
    assert "window 6: 15.6s [26m] -> 17.4s [29m]" in text
    assert "window 7" not in text
    assert "run 1: submit at 600ms [1m], deadline 36.6s [1h1m]" in text
    assert "run 2: submit when run 1 ends" in text
    unscaled = render_plan(case)
    assert "window 1: 1m -> 4m" in unscaled


def test_plan_redacts_secrets() -> None:
    case = one_case("""\
cases:
  - name: s
    importInto:
      - {db: d, table: t, timeout: 1m,
         source: "s3://b/x.csv?access-key=AKIAXXX&secret-access-key=topsecret"}
""")
    text = render_plan(case)
    assert "topsecret" not in text
    assert "AKIAXXX" not in text


def test_generated_file_names_match_the_source_glob() -> None:
    import fnmatch

    case = one_case("""\
cases:
  - name: g
    importInto:
      - {db: d, table: t, source: /import/user_data1.*.csv, timeout: 1m,
         generate: {rows: 10, files: 3}}
      - {db: d, table: u, source: /import/one.csv, timeout: 1m, generate: {rows: 10}}
""")
    many, one = case.jobs
    assert many.generated_files() == ["user_data1.1.csv", "user_data1.2.csv",  # type: ignore[union-attr]
                                      "user_data1.3.csv"]
    assert all(fnmatch.fnmatch(n, "user_data1.*.csv") for n in many.generated_files())  # type: ignore[union-attr]
    assert one.generated_files() == ["one.csv"]  # type: ignore[union-attr]
