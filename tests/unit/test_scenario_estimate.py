"""The planner's estimate: schedules, jobs and data weigh in; the time scale shrinks case time."""

from __future__ import annotations

import textwrap

import pytest

from pytest_tidb_ha.cluster_key import cluster_key
from pytest_tidb_ha.options import HAOptions, resolve_options
from pytest_tidb_ha.scenario.estimate import (
    JOB_RUN,
    MIN_JOB_WALL,
    SETUP_WALL,
    estimate_case,
)
from pytest_tidb_ha.scenario.loader import load_text
from pytest_tidb_ha.scenario.markers import case_from_markers
from pytest_tidb_ha.scenario.model import Case
from pytest_tidb_ha.scenario.plan import render_plan

CASE = textwrap.dedent("""\
    workloads:
      - type: sysbench
        db: sbtest
        tableNum: 2
        tableSize: 50000
        threads: 4
    cases:
      - name: "ha_partition"
        warmUpTime: 1m
        faultType: network_partition
        selector: "tikv(random)_to_all"
        period: "@every 5m"
        faultDuration: 3m
        faultTotalRunTime: 30m
        ddl:
          addIndex:
            - db: sbtest
              table: sbtest1
              timeout: 2m
              times: 3
              index_col_name: c
""")


def _case() -> Case:
    cases = load_text(CASE, "cases.yaml", stem="cases")
    assert cases is not None
    (case,) = cases
    return case


def test_yaml_case_estimate_parts() -> None:
    est = estimate_case(_case())
    assert est.setup == SETUP_WALL + 100_000 / 50_000
    assert est.faults == 29 * 60.0  # windows start at 1m, 6m, ... 26m and last 3m
    assert est.jobs == 60.0 + 3 * 120.0  # warm-up, then three runs capped by their 2m timeout
    assert est.seconds == est.setup + est.faults


def test_time_scale_shrinks_case_time_not_the_floors() -> None:
    est = estimate_case(_case(), time_scale=0.01)
    assert est.faults == pytest.approx(29 * 60.0 * 0.01)
    assert est.jobs == pytest.approx(60.0 * 0.01 + 3 * MIN_JOB_WALL)
    assert est.setup == SETUP_WALL + 100_000 / 50_000


def test_marker_case_counts_one_job_run() -> None:
    case = case_from_markers("t.py::test_x", "test_x",
                             faults=[(("kill",), {"selector": "tidb(ddl_owner)",
                                                  "warmup": "1m", "duration": "1m"})],
                             workload=None, cluster=None)
    est = estimate_case(case)
    assert est.faults == 120.0
    assert case.warmup.seconds == 0.0  # a marker test's faults carry their own warm-up
    assert est.jobs == JOB_RUN
    assert est.seconds == SETUP_WALL + JOB_RUN


def test_plan_prints_the_estimate() -> None:
    text = render_plan(_case(), time_scale=0.1)
    assert "  estimate: ~3m1s wall (setup 7s, faults end 2m54s, jobs end 42s)" in text


def test_cluster_key_follows_topology_needs_and_images() -> None:
    opts = resolve_options({}, {}, {})
    key = cluster_key(_case(), opts)
    assert key.startswith("pd=1,tikv=3,tidb=1 pd=pingcap/pd:v8.5.7,")
    assert cluster_key(None, opts).startswith("pd=1,tikv=1,tidb=1 ")
    other = resolve_options({"tidb_image": ["tidb=mine:1"]}, {}, {})
    assert cluster_key(_case(), other) != key
    assert cluster_key(_case(), HAOptions(dsn="mysql://root@127.0.0.1:4000")).startswith("attach")
