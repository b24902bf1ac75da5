"""The workload through a TiKV partition on the stand-in cluster (real Docker).

Acceptance of issue 7: errors appear in the fault window and throughput
recovers after heal — read from the recorded ``workload.metrics`` events, the
same data the report draws.
"""

from __future__ import annotations

import shutil
import time
import uuid
from typing import Any

import pytest

from pytest_tidb_ha.cluster.lifecycle import start_cluster, stop_cluster
from pytest_tidb_ha.cluster.specs import ClusterSettings
from pytest_tidb_ha.faults.nemesis import Nemesis
from pytest_tidb_ha.scenario.markers import fault_from_marker
from pytest_tidb_ha.scenario.model import SourceRef, Topology, Workload
from pytest_tidb_ha.timeline import Timeline
from pytest_tidb_ha.workload.connections import round_robin_factory
from pytest_tidb_ha.workload.sysbench import Sysbench

pytestmark = pytest.mark.docker

WARMUP = 8.0  # seconds of healthy load before the partition
PARTITION = 10.0
RECOVERY = 20.0  # how long after heal throughput may take to come back
DRIVERS = ["python", pytest.param("sysbench", marks=pytest.mark.skipif(
    shutil.which("sysbench") is None, reason="sysbench is not installed "
    "(scripts/ensure-test-deps.sh installs it)"))]


def metrics(timeline: Timeline) -> list[dict[str, Any]]:
    return [e.data for e in timeline.events("workload.metrics")]


@pytest.mark.parametrize("driver", DRIVERS)
def test_tikv_partition_shows_errors_in_the_window_and_recovery_after(
        docker_engine: Any, standin_image: str, driver: str) -> None:
    settings = ClusterSettings(run_id="wl" + uuid.uuid4().hex[:6], topology=Topology(1, 1, 1),
                               images={c: standin_image for c in ("pd", "tikv", "tidb")},
                               pull_missing=False, startup_timeout=120)
    cluster = start_cluster(settings, docker_engine)
    timeline = Timeline()
    try:
        client = cluster.client(connect_timeout=2, read_timeout=5, write_timeout=5)
        sb = Sysbench(round_robin_factory(client),
                      Workload(db="sbtest", tables=1, table_size=1000, threads=2,
                               ignore_errors="all"),
                      timeline, stop_timeout=8.0, driver=driver)
        sb.prepare()
        fault = fault_from_marker(("network_partition",),
                                  {"selector": "tikv(random)_to_all",
                                   "duration": f"{PARTITION}s", "warmup": f"{WARMUP}s"},
                                  SourceRef(nodeid="test_workload_standin"))
        sb.start()
        try:
            with Nemesis(cluster, [fault], timeline, 1.0, seed=7) as nemesis:
                assert nemesis.wait(WARMUP + PARTITION + 60), "nemesis did not finish"
            healed = [e.t for e in timeline.events("fault.healed")]
            assert healed, [e.kind for e in timeline.events("fault.")]
            deadline = healed[0] + RECOVERY
            # poll: recovered once two whole seconds after heal commit transactions
            while timeline.now() < deadline:
                after = [m for m in metrics(timeline) if m["second"] >= healed[0]]
                if sum(1 for m in after if m["transactions"] > 0) >= 2:
                    break
                time.sleep(0.2)
        finally:
            sb.stop()
        windows = timeline.fault_windows()
        assert len(windows) == 1, windows
        assert windows[0].end is not None, windows
        start, end = windows[0].start, windows[0].end
        samples = metrics(timeline)
        before = [m for m in samples if m["second"] + 1 <= start and m["interval"] == 1.0]
        inside = [m for m in samples if start <= m["second"] and m["second"] + 1 <= end]
        after = [m for m in samples if m["second"] >= end]
        assert timeline.events("workload.start")[0].data["driver"].startswith(driver)
        story = (f"{driver}: window {start:.1f}-{end:.1f}s; samples: "
                 + ", ".join(f"{m['second']:.0f}:{m['tps']}/{m['errors']}" for m in samples))
        assert before, story
        assert inside, story
        assert after, story

        def rate(ms: list[dict[str, Any]]) -> float:
            total: float = sum(m["transactions"] for m in ms)
            return total / len(ms)

        healthy = rate(before)
        assert healthy > 0, story
        assert sum(sum(m["errors"].values()) for m in before) == 0, story
        # errors appear in the fault window, and throughput drops there
        assert sum(sum(m["errors"].values()) for m in inside) > 0, story
        assert rate(inside) < 0.5 * healthy, story
        # and comes back after heal
        assert max(m["tps"] for m in after) >= 0.3 * healthy, story
    finally:
        stop_cluster(cluster)


def test_ha_workload_fixture_on_the_standin_cluster(pytester: pytest.Pytester,
                                                     standin_image: str,
                                                     docker_engine: Any) -> None:
    """Marker -> Case -> tidb_cluster -> ha_workload, in a pytest subprocess."""
    images = [a for c in ("pd", "tikv", "tidb") for a in ("--tidb-image", f"{c}={standin_image}")]
    pytester.makepyfile("""
        import shutil
        import time
        import pytest

        @pytest.mark.workload("sysbench", tables=4, table_size=20_000, threads=2)
        def test_runs(ha_workload, ha_record, tidb_cluster, tidb_client):
            assert ha_workload.db == tidb_cluster.database  # no db=: the test's own
            assert (ha_workload.tables, ha_workload.table_size) == (1, 1000)  # scale 0.01
            if shutil.which("sysbench"):  # auto takes the binary; the stand-in has no PS
                assert ha_workload.driver.startswith("sysbench")
                assert ha_record.timeline.events("workload.start")[0].data["ps_mode"] == "disable"
            rows = tidb_client.query("SELECT COUNT(*) AS n FROM sbtest1")
            assert int(rows[0]["n"]) == 1000
            deadline = time.monotonic() + 60
            while sum(e.data["transactions"]
                      for e in ha_record.timeline.events("workload.metrics")) < 3:
                assert time.monotonic() < deadline, "no transactions within 60 s"
                time.sleep(0.2)
    """)
    result = pytester.runpytest_subprocess(*images, "--ha-workload-scale", "0.01",
                                           "-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=1)


def test_marker_story_workload_through_a_partition(pytester: pytest.Pytester,
                                                   standin_image: str,
                                                   docker_engine: Any) -> None:
    """The developer's story: fault + workload markers, ``nemesis`` and ``ha_workload``.

    A TiDB cut off from PD and TiKV (2 TiDBs: the case's needs): the connections the
    workload spread onto it fail in the window (server error or the 5 s read timeout),
    the other TiDB keeps serving, and after heal both do.
    """
    images = [a for c in ("pd", "tikv", "tidb") for a in ("--tidb-image", f"{c}={standin_image}")]
    pytester.makepyfile("""
        import time
        import pytest

        @pytest.mark.fault("network_partition", selector="tidb(random)_to_all",
                           duration="12s", warmup="6s")
        @pytest.mark.workload("sysbench", tables=1, table_size=1000, threads=2)
        def test_story(nemesis, ha_workload, ha_record):
            tl = ha_record.timeline
            assert tl.events("workload.start")[0].t <= tl.events("nemesis.start")[0].t
            assert nemesis.wait(90)
            [w] = tl.fault_windows()
            deadline = time.monotonic() + 30
            while not [m for m in ha_workload.samples
                       if m.second >= w.end and m.transactions > 0]:
                assert time.monotonic() < deadline, "no transaction after heal"
                time.sleep(0.2)
            inside = [m for m in ha_workload.samples
                      if w.start <= m.second and m.second + 1 <= w.end]
            assert sum(m.error_count for m in inside) > 0
            before = [m for m in ha_workload.samples if m.second + 1 <= w.start]
            assert sum(m.transactions for m in before) > 0
    """)
    result = pytester.runpytest_subprocess(*images, "-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=1)
