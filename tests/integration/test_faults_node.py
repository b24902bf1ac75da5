"""kill / pause / restart / io_delay / resigns and the PD leader partition, observed.

The cluster faults run against the stand-in cluster (real etcd raft for PD): the
cluster itself must notice -- PD marks the store Disconnected, ``SELECT 1`` fails --
and recover after heal. ``io_delay`` is measured with fsync inside a container.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_faults_harness import (
    BASE_IMAGE,
    dial,
    ips,
    leftover_faults,
    remove,
    start_mini_cluster,
    wait_for,
)

from pytest_tidb_ha.cluster import roles
from pytest_tidb_ha.cluster.handle import Cluster
from pytest_tidb_ha.cluster.lifecycle import start_cluster, stop_cluster
from pytest_tidb_ha.cluster.specs import TIDB_PORT, ClusterSettings
from pytest_tidb_ha.faults.iodelay import cgroup_dir
from pytest_tidb_ha.faults.nemesis import Nemesis
from pytest_tidb_ha.faults.netns import container_pid
from pytest_tidb_ha.scenario.model import Duration, FaultSpec, Schedule, Topology
from pytest_tidb_ha.scenario.selectors import parse_selector
from pytest_tidb_ha.timeline import Timeline

pytestmark = pytest.mark.docker

SCALE = "0.3"  # stand-in timings (heartbeats, election timeout) x0.3: faster, same shape


def spec(kind: str, selector: str, duration: float = 3600, **params: Any) -> FaultSpec:
    return FaultSpec(kind=kind, selector=parse_selector(selector),
                     schedule=Schedule(Duration(0), Duration(duration)), params=params)


def started(cluster: Cluster, fault: FaultSpec, **kw: Any) -> Nemesis:
    n = Nemesis(cluster, [fault], Timeline(), 1.0, seed=3, **kw)
    n.start()
    wait_for("fault applied", lambda: n.active or n.errors, 60)
    assert not n.errors, n.errors
    return n


@pytest.fixture(scope="module")
def standin(docker_engine: Any, standin_image: str) -> Iterator[Cluster]:
    env = {c: {"STANDIN_TIME_SCALE": SCALE} for c in ("pd", "tikv", "tidb")}
    settings = ClusterSettings(run_id="flt" + uuid.uuid4().hex[:6], topology=Topology(3, 2, 1),
                               images={c: standin_image for c in ("pd", "tikv", "tidb")},
                               env=env, pull_missing=False, startup_timeout=120,
                               kill_mode="container")  # these tests pin container mode
    cluster = start_cluster(settings, docker_engine)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


def select_1(cluster: Cluster) -> bool:
    try:
        rows = cluster.client(connect_timeout=1, read_timeout=2).query("SELECT 1")
        return bool(rows)
    except Exception:  # noqa: BLE001 - failing is what we look for
        return False


def store_state(cluster: Cluster, node: str) -> str | None:
    for s in roles.tikv_stores(cluster):
        if s["node"] == node:
            return str(s["state_name"])
    return None


@pytest.fixture
def healthy(standin: Cluster) -> Iterator[Cluster]:
    """Before and after each test: everything answers, no fault is left."""
    wait_for("cluster healthy", lambda: select_1(standin) and {store_state(standin, n) for n in
             ("tikv-0", "tikv-1")} == {"Up"} and roles.pd_leader(standin), 90)
    yield standin
    assert leftover_faults(standin) == {}
    assert all(standin.state(n.name) == "running" for n in standin.nodes), \
        {n.name: standin.state(n.name) for n in standin.nodes}


def test_kill_tikv_store_disconnects_and_comes_back(healthy: Cluster) -> None:
    n = started(healthy, spec("kill", "tikv-1"))
    try:
        # the kill returns once the process is gone (the init's pidfd, faults.initproc);
        # Docker records the exit a moment later
        wait_for("Docker records the exit", lambda: healthy.state("tikv-1").startswith("exited"), 10)
        path = "pidfd" if os.geteuid() == 0 else "api"  # root next to a local engine
        assert n.timeline.events("fault.applied")[0].data["detail"]["paths"] == {"tikv-1": path}
        wait_for("store Disconnected/Down", lambda: store_state(healthy, "tikv-1") in ("Disconnected", "Down"),
                 30)
    finally:
        n.stop()
    assert healthy.state("tikv-1") == "running"
    wait_for("store Up again", lambda: store_state(healthy, "tikv-1") == "Up", 60)
    assert [e.kind for e in n.timeline.events("fault.")] == ["fault.inject", "fault.applied",
                                                             "fault.verified", "fault.healed"]
    verified = n.timeline.events("fault.verified")[0].data
    assert verified["ok"] is True, verified
    assert verified["measured"]["state"] == "exited", verified


def test_kill_tidb_select_fails_then_recovers(healthy: Cluster) -> None:
    """Container kill mode, the default: for the window the node is gone with its address.

    Once Docker has torn its network namespace down (a moment after the kill: until then
    the namespace's own stack still refuses), a peer's new connection to it goes unanswered
    (a timeout, or "no route" once ARP gives up), as when a Kubernetes pod is deleted (Chaos
    Mesh ``pod-kill``) -- not refused for the whole window, as when only the process dies
    and the host stays (``--ha-kill-mode=process``, ``test_kill_process_standin``). Which
    one a peer sees decides how soon it gives up.
    """
    address = ips(healthy)["tidb-0"]
    assert dial(healthy, "pd-0", address, TIDB_PORT) == "open"
    n = started(healthy, spec("kill", "tidb(one)"))
    try:
        assert not select_1(healthy)
        wait_for("the killed node's address to go silent",
                 lambda: dial(healthy, "pd-0", address, TIDB_PORT) in ("timeout", "EHOSTUNREACH"),
                 30)
    finally:
        n.stop()
    wait_for("SELECT 1 answers again", lambda: select_1(healthy), 60, lambda: healthy.logs("tidb-0", 20))


def test_pause_freezes_tidb_and_unpause_recovers(healthy: Cluster) -> None:
    n = started(healthy, spec("pause", "tidb-0"))
    try:
        assert healthy.state("tidb-0") == "paused"
        assert not select_1(healthy)
    finally:
        n.stop()
    assert healthy.state("tidb-0") == "running"
    wait_for("SELECT 1 answers again", lambda: select_1(healthy), 30)


def test_restart_is_instant_and_recovers(healthy: Cluster) -> None:
    before = healthy.container("tidb-0").attrs["State"]["StartedAt"]
    n = Nemesis(healthy, [spec("restart", "tidb-0", duration=0)], Timeline(), 1.0)
    with n:
        assert n.wait(60)
    assert n.errors == []
    assert healthy.container("tidb-0").attrs["State"]["StartedAt"] != before
    wait_for("SELECT 1 answers again", lambda: select_1(healthy), 60)


def test_pdleader_partition_elects_a_new_leader_and_records_both(healthy: Cluster) -> None:
    old = roles.pd_leader(healthy)
    n = Nemesis(healthy, [spec("network_partition", "pdleader_to_pdfollower(all)", duration=8)],
                Timeline(), 1.0, seed=5)
    with n:
        assert n.wait(60)
    assert n.errors == []
    inject = n.timeline.events("fault.inject")[0].data
    healed = n.timeline.events("fault.healed")[0].data
    assert inject["sources"] == [old]
    assert sorted(inject["targets"]) == sorted({"pd-0", "pd-1", "pd-2"} - {old})
    assert inject["roles"]["pd_leader"] == old
    new = healed["roles_after"]["pd_leader"]
    assert new in inject["targets"], json.dumps([inject, healed], default=str)
    assert roles.pd_leader(healthy) != old or new != old


def test_pd_leader_resign_moves_leadership(healthy: Cluster) -> None:
    old = roles.pd_leader(healthy)
    n = Nemesis(healthy, [spec("pd_leader_resign", "pdleader", duration=0)], Timeline(), 1.0)
    with n:
        assert n.wait(30)
    assert n.errors == []
    assert n.timeline.events("fault.inject")[0].data["roles"]["pd_leader"] == old
    wait_for("another PD leads", lambda: roles.pd_leader(healthy) not in (None, old), 30)


def test_ddl_owner_resign_is_accepted_by_the_owner(healthy: Cluster) -> None:
    owner = wait_for("a DDL owner", lambda: roles.ddl_owner(healthy), 30)
    n = Nemesis(healthy, [spec("ddl_owner_resign", "ddlowner", duration=0)], Timeline(), 1.0)
    with n:
        assert n.wait(30)
    assert n.errors == [], n.errors
    inject = n.timeline.events("fault.inject")[0].data
    assert inject["targets"] == [owner]
    assert inject["roles"]["ddl_owner"] == owner
    wait_for("a DDL owner again", lambda: roles.ddl_owner(healthy), 30)


FSYNC = """
import os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
lat = []
for i in range(n):
    os.pwrite(fd, os.urandom(4096), (i % 8) * 4096)
    t = time.perf_counter(); os.fsync(fd); lat.append(time.perf_counter() - t)
lat.sort()
print(lat[len(lat) // 2])
"""


def fsync_median(c: Any, n: int = 5) -> float:
    code, out = c.exec_run(["python3", "-c", FSYNC, "/data/fsync-probe", str(n)])
    assert code == 0, out.decode(errors="replace")
    return float(out.decode().strip())


@pytest.fixture
def disk_node(docker_engine: Any) -> Iterator[Cluster]:
    try:
        docker_engine.images.get(BASE_IMAGE)
    except Exception:  # noqa: BLE001
        pytest.skip(f"image {BASE_IMAGE} is missing")
    cluster, containers, net = start_mini_cluster(docker_engine, ("tikv-0",), volumes=True)
    try:
        yield cluster
    finally:
        remove(docker_engine, containers, net)


def test_io_delay_raises_fsync_latency_and_heal_restores_it(disk_node: Cluster) -> None:
    c = disk_node.container("tikv-0")
    latency = 0.25
    before = fsync_median(c)
    assert before < latency / 4, before
    n = started(disk_node, spec("io_delay", "tikv-0", latency=Duration(latency, "250ms")))
    try:
        during = fsync_median(c)
        detail = n.timeline.events("fault.applied")[0].data["detail"]
    finally:
        n.stop()
    after = fsync_median(c)
    assert during >= latency, (before, during, after, detail)
    assert after < latency / 4, (before, during, after)
    pid = container_pid(c)
    version, cg = cgroup_dir(Path(f"/proc/{pid}/cgroup").read_text())
    files = ([cg / f"blkio.throttle.{rw}_iops_device" for rw in ("read", "write")] if version == 1
             else [cg / "io.max"])
    left = {str(f): f.read_text().strip() for f in files if f.read_text().strip()}
    assert left == {}, "a throttle is left on the container's cgroup"
    assert leftover_faults(disk_node) == {}
