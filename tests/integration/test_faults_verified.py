"""Verified faults and the new kinds, on the mini cluster (issue 12 items 3 and 4).

Each fault's own verification (``fault.verified``) must show the effect, a fault whose
apply does nothing must count as *not applied*, and the new kinds -- partition shapes,
port-scoped partitions, bandwidth, disk_full -- must do what they say, measured from
inside the containers, and leave nothing behind.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from test_faults_harness import (  # noqa: F401 - fixture re-exported for this module
    BASE_IMAGE,
    ECHO_SERVER,
    LABEL,
    NAMES,
    labels,
    leftover_faults,
    mini_cluster,
    probe,
    reachability,
)

from pytest_tidb_ha.cluster.handle import Cluster, Node, container_ip
from pytest_tidb_ha.cluster.lifecycle import create_volume, start_keeper
from pytest_tidb_ha.cluster.specs import ContainerSpec, VolumeMount
from pytest_tidb_ha.faults.api import Roles, static_roles
from pytest_tidb_ha.faults.context import FaultContext
from pytest_tidb_ha.faults.grudges import reachable
from pytest_tidb_ha.faults.injectors import Injector, build
from pytest_tidb_ha.faults.nemesis import Nemesis
from pytest_tidb_ha.faults.resolve import Resolved
from pytest_tidb_ha.scenario import build as scenario
from pytest_tidb_ha.timeline import Timeline

pytestmark = pytest.mark.docker

ROLES = static_roles(Roles(pd_leader="pd-0", pd_members=("pd-0",)))


@pytest.fixture(autouse=True)
def nothing_left(mini_cluster: Cluster) -> Iterator[None]:  # noqa: F811
    assert leftover_faults(mini_cluster) == {}, "a previous test left faults behind"
    yield
    assert leftover_faults(mini_cluster) == {}


def one_window(cluster: Cluster, kind: str, selector: str, factory: Any = build,
               seconds: float = 4.0, **params: Any) -> Nemesis:
    """Run one window of ``kind`` to its end; the nemesis (stopped) is returned."""
    spec = scenario.make_fault(kind, selector=selector, duration_value=f"{seconds}s",
                               params=params)
    n = Nemesis(cluster, [spec], Timeline(), 1.0, seed=1, roles=ROLES, factory=factory)
    with n:
        assert n.wait(seconds + 60)
    return n


def verified(n: Nemesis) -> Mapping[str, Any]:
    (ev,) = n.timeline.events("fault.verified")
    return ev.data


@pytest.mark.parametrize(("kind", "selector", "params", "method"), [
    ("network_partition", "tikv-0_to_pd-0", {}, "tcp connect"),
    ("network_partition", "tikv-0_to_all", {"ports": [2379]}, "tcp connect"),
    ("network_delay", "tikv-0_to_pd-0", {"latency": "150ms"}, "tcp handshake rtt"),
    ("network_loss", "tikv-0", {"loss": "40%"}, "tcp handshakes"),
    ("bandwidth", "tikv-0_to_pd-0", {"rate": "1mbit"}, "tc class"),
    ("pause", "tidb-0", {}, "container state"),
    ("kill", "tikv-1", {}, "container state"),
])
def test_each_fault_is_verified_from_inside(mini_cluster: Cluster, kind: str,  # noqa: F811
                                            selector: str, params: dict[str, Any],
                                            method: str) -> None:
    n = one_window(mini_cluster, kind, selector, **params)
    v = verified(n)
    assert n.errors == [], n.errors
    assert v["ok"] is True, v
    assert v["method"] == method, v
    assert n.fault_failures() == ([], [])
    assert n.book.records[0].verified is True


def test_restart_is_verified_by_its_new_start_time(mini_cluster: Cluster) -> None:  # noqa: F811
    spec = scenario.make_fault("restart", selector="tidb-0", duration_value=None)
    n = Nemesis(mini_cluster, [spec], Timeline(), 1.0, seed=1, roles=ROLES)
    with n:
        assert n.wait(60)
    v = verified(n)
    assert v["ok"] is True
    assert v["measured"]["started_after"] != v["measured"]["started_before"]


class Hollow:
    """A real injector whose apply does nothing: its verification must catch that."""

    def __init__(self, inner: Injector) -> None:
        self.inner = inner
        self.kind = inner.kind

    def apply(self) -> None:
        self.inner.sides()  # type: ignore[attr-defined]  # resolve IPs, change nothing

    def heal(self) -> None:
        self.inner.heal()

    def describe(self) -> dict[str, object]:
        return self.inner.describe()

    def verify(self, budget: float) -> Any:
        return self.inner.verify(budget)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("kind", "params"), [("network_partition", {}),
                                              ("network_delay", {"latency": "200ms"})])
def test_a_fault_that_did_not_take_effect_counts_as_not_applied(
        mini_cluster: Cluster, kind: str, params: dict[str, Any]) -> None:  # noqa: F811
    def hollow(kind: str, ctx: FaultContext, resolved: Resolved,
               p: Mapping[str, object]) -> Injector:
        return Hollow(build(kind, ctx, resolved, p))

    n = one_window(mini_cluster, kind, "tikv-0_to_pd-0", factory=hollow, seconds=2.0, **params)
    assert verified(n)["ok"] is False
    failing, _ = n.fault_failures()
    assert len(failing) == 1, failing
    assert "was not applied: verify:" in failing[0], failing
    assert n.book.counts()[0] == 0  # applied/planned = 0/1


@pytest.mark.parametrize("shape", ["halves", "bridge", "majorities_ring"])
def test_partition_shapes_cut_exactly_the_grudge(mini_cluster: Cluster, shape: str) -> None:  # noqa: F811
    spec = scenario.make_fault("network_partition", selector="all", duration_value="3600s",
                               params={"shape": shape})
    n = Nemesis(mini_cluster, [spec], Timeline(), 1.0, seed=7, roles=ROLES)
    n.start()
    try:
        deadline = time.monotonic() + 30
        while not n.timeline.events("fault.verified"):
            assert time.monotonic() < deadline, n.errors
            assert not n.errors, n.errors
            time.sleep(0.05)
        grudge = {k: frozenset(v) for k, v in
                  n.timeline.events("fault.applied")[0].data["detail"]["grudge"].items()}
        during = reachability(mini_cluster)
    finally:
        n.stop()
    assert n.errors == []
    assert verified(n)["ok"] is True
    # TCP needs both directions: a pair connects iff neither side refuses the other
    expected = {(a, b): reachable(grudge, a, b) and reachable(grudge, b, a) for a, b in during}
    assert during == expected
    assert not all(during.values())
    assert all(reachability(mini_cluster).values())


def test_a_port_scoped_partition_leaves_other_ports_alone(mini_cluster: Cluster) -> None:  # noqa: F811
    spec = scenario.make_fault("network_partition", selector="tikv-0_to_all",
                               duration_value="3600s", params={"ports": [7000]})
    n = Nemesis(mini_cluster, [spec], Timeline(), 1.0, seed=1, roles=ROLES)
    n.start()
    try:
        deadline = time.monotonic() + 30
        while not n.timeline.events("fault.verified"):
            assert time.monotonic() < deadline, n.errors
            assert not n.errors, n.errors
            time.sleep(0.05)
        tcp = reachability(mini_cluster)  # TCP on port 7000
        udp = {p: r["ok"] > 0 for p, r in probe(mini_cluster, "udp", n=3, timeout=0.4).items()}
    finally:
        n.stop()
    assert verified(n)["ok"] is True
    assert {p for p, ok in tcp.items() if not ok} == {
        p for p in tcp if "tikv-0" in p}
    assert all(udp.values()), udp  # the echo on UDP 7001 crosses the cut


# -- disk_full -----------------------------------------------------------------------------

@pytest.fixture
def disk_cluster(docker_engine: Any) -> Iterator[Cluster]:
    """One node whose /data is a 64MiB tmpfs volume held by a keeper, one with a plain volume."""
    run = uuid.uuid4().hex[:8]
    lab = labels(run)
    net = docker_engine.networks.create(f"tidb-ha-disk-{run}", labels=lab)
    made: list[Any] = []
    vols: list[str] = []
    try:
        nodes = []
        for name, size in (("tikv-0", 64 * 2**20), ("tikv-1", None)):
            vol = VolumeMount(f"tidb-ha-disk-{run}-{name}", "/data", size=size)
            node_labels = {**lab, f"{LABEL}.component": "tikv"}
            create_volume(docker_engine, vol, node_labels)
            vols.append(vol.volume)
            cname = f"tidb-ha-disk-{run}-{name}"
            if size is not None:
                made.append(start_keeper(docker_engine, ContainerSpec(
                    node=name, component="tikv", container_name=cname, image=BASE_IMAGE,
                    entrypoint=(), command=(), env={}, ports=(), volumes=(vol,), binds=(),
                    files={}, labels=node_labels), vol))
            c = docker_engine.containers.run(
                BASE_IMAGE, ["python3", "-c", ECHO_SERVER], detach=True, name=cname,
                hostname=name, network=net.name, labels=node_labels,
                volumes={vol.volume: {"bind": "/data", "mode": "rw"}})
            made.append(c)
            c.reload()
            nodes.append(Node(name=name, component="tikv", container_id=c.id,
                              ip=container_ip(c.attrs, net.name)))
        yield Cluster(f"disk-{run}", nodes, docker=docker_engine, network_name=net.name,
                      labels=lab)
    finally:
        for c in made:
            with contextlib.suppress(Exception):
                c.remove(force=True)
        for v in vols:
            with contextlib.suppress(Exception):
                docker_engine.volumes.get(v).remove(force=True)
        with contextlib.suppress(Exception):
            net.remove()


def free_bytes(cluster: Cluster, node: str) -> int:
    code, out = cluster.container(node).exec_run(["sh", "-c", "df -k -P /data | tail -1"])
    assert isinstance(out, bytes)  # not streamed
    assert code == 0, out
    return int(out.decode().split()[3]) * 1024


def test_disk_full_leaves_free_bytes_and_heal_gives_them_back(disk_cluster: Cluster) -> None:
    before = free_bytes(disk_cluster, "tikv-0")
    assert before > 60 * 2**20
    spec = scenario.make_fault("disk_full", selector="tikv-0", duration_value="3600s",
                               params={"free": "4MiB"})
    n = Nemesis(disk_cluster, [spec], Timeline(), 1.0, seed=1, roles=ROLES)
    n.start()
    try:
        deadline = time.monotonic() + 30
        while not n.timeline.events("fault.verified"):
            assert time.monotonic() < deadline, n.errors
            assert not n.errors, n.errors
            time.sleep(0.05)
        during = free_bytes(disk_cluster, "tikv-0")
        code, out = disk_cluster.container("tikv-0").exec_run(
            ["sh", "-c", "dd if=/dev/zero of=/data/big bs=1M count=8 2>&1; rm -f /data/big"])
        assert code == 0, out
        assert b"No space left" in out, out
    finally:
        n.stop()
    assert verified(n)["ok"] is True, during
    assert during <= 5 * 2**20, during
    assert free_bytes(disk_cluster, "tikv-0") > 60 * 2**20
    assert n.fault_failures() == ([], [])
    assert leftover_faults(disk_cluster) == {}


def test_disk_full_refuses_a_volume_without_a_size_limit(disk_cluster: Cluster) -> None:
    n = one_window(disk_cluster, "disk_full", "tikv-1", seconds=1.0)
    failing, _ = n.fault_failures()
    assert failing, failing
    assert "never fills a disk the host shares" in failing[0], failing


def test_a_limited_volume_keeps_its_data_when_the_node_is_killed(disk_cluster: Cluster) -> None:
    c = disk_cluster.container("tikv-0")
    assert c.exec_run(["sh", "-c", "echo kept > /data/marker"])[0] == 0
    n = one_window(disk_cluster, "kill", "tikv-0", seconds=1.0)
    assert n.errors == []
    code, out = disk_cluster.container("tikv-0").exec_run(["cat", "/data/marker"])
    assert isinstance(out, bytes)  # not streamed
    assert code == 0
    assert out.strip() == b"kept"
