"""Network faults measured from inside the containers: before, during, after.

For each fault the full matrix of node pairs is probed; exactly the selected pairs may
change, and after heal everything is as before with no rule or qdisc left behind.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from test_faults_harness import (  # noqa: F401 - fixture re-exported for this module
    BASE_IMAGE,
    NAMES,
    leftover_faults,
    mini_cluster,
    oneway,
    probe,
    reachability,
)

from pytest_tidb_ha.cluster.handle import Cluster
from pytest_tidb_ha.faults import helper_image
from pytest_tidb_ha.faults.api import Roles, static_roles
from pytest_tidb_ha.faults.nemesis import Nemesis
from pytest_tidb_ha.faults.netns import HelperRunner, NsenterRunner
from pytest_tidb_ha.scenario.model import Duration, FaultSpec, Schedule
from pytest_tidb_ha.scenario.selectors import parse_selector
from pytest_tidb_ha.timeline import Timeline

pytestmark = pytest.mark.docker

ROLES = static_roles(Roles(pd_leader="pd-0", pd_members=("pd-0",)))
ALL_PAIRS = {(a, b) for a in NAMES for b in NAMES if a != b}


@pytest.fixture(scope="module")
def helper_tag(mini_cluster: Cluster) -> Iterator[str]:  # noqa: F811
    """A fault-helper image for the ``helper`` runner, built from the mini cluster's base.

    Why not the plugin's default image: that one is built from ``alpine`` on Docker Hub
    when missing (what a non-root user's machine gets), and a machine without a registry
    cannot build it -- these tests are about the runner, not where its image comes from
    (``test_faults_applied`` covers the build). A tag of this module's own, removed after.
    """
    docker = mini_cluster.docker
    assert docker is not None
    tag = f"pytest-tidb-ha/fault-helper-test:{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as mp:  # only the plugin's own tag is ever built
        mp.setattr(helper_image, "DEFAULT_HELPER_IMAGE", tag)
        helper_image.ensure_helper_image(docker, tag, base=BASE_IMAGE,
                                         network_mode="none")
    yield tag
    docker.images.remove(tag, force=True)


def make_runner(cluster: Cluster, runner: str, tag: str) -> Any:
    return NsenterRunner() if runner == "nsenter" else HelperRunner(cluster.docker, tag)


@pytest.fixture(autouse=True)
def nothing_left(mini_cluster: Cluster) -> Iterator[None]:  # noqa: F811
    assert leftover_faults(mini_cluster) == {}, "a previous test left faults behind"
    yield
    assert leftover_faults(mini_cluster) == {}


def spec(kind: str, selector: str, **params: Any) -> FaultSpec:
    return FaultSpec(kind=kind, selector=parse_selector(selector),
                     schedule=Schedule(Duration(0), Duration(3600)), params=params)


def running(cluster: Cluster, fault: FaultSpec, runner: Any = None, seed: int = 1) -> Nemesis:
    """A started nemesis whose only window is open (applied) now."""
    n = Nemesis(cluster, [fault], Timeline(), 1.0, seed=seed, roles=ROLES, runner=runner)
    n.start()
    deadline = time.monotonic() + 30
    while not n.active:
        assert not n.errors, n.errors
        assert time.monotonic() < deadline, "fault never applied"
        time.sleep(0.02)
    return n


def cut(sources: set[str], targets: set[str]) -> set[tuple[str, str]]:
    return {(s, t) for s in sources for t in targets} | {(t, s) for s in sources for t in targets}


@pytest.mark.parametrize("runner", ["nsenter", "helper"])
def test_partition_cuts_exactly_the_selected_pairs(mini_cluster: Cluster, runner: str,  # noqa: F811
        helper_tag: str) -> None:
    assert all(reachability(mini_cluster).values())
    r = make_runner(mini_cluster, runner, helper_tag)
    n = running(mini_cluster, spec("network_partition", "tikv(random)_to_all"), runner=r)
    try:
        inject = n.timeline.events("fault.inject")[0].data
        (victim,) = inject["sources"]
        assert set(inject["targets"]) == set(NAMES) - {victim}
        assert inject["method"] == runner
        during = reachability(mini_cluster)
        expected_cut = cut({victim}, set(NAMES) - {victim})
        assert {p for p, ok in during.items() if not ok} == expected_cut, during
        assert leftover_faults(mini_cluster), "rules are not visible in the containers"
    finally:
        n.stop()
    assert n.errors == []
    assert all(reachability(mini_cluster).values())
    assert mini_cluster.docker is not None
    assert not mini_cluster.docker.containers.list(
        all=True, filters={"label": ["org.pytest-tidb-ha.component=helper",
                                     f"org.pytest-tidb-ha.target={mini_cluster.node(victim).container_id}"]})


def test_partition_between_groups_leaves_others_alone(mini_cluster: Cluster) -> None:  # noqa: F811
    n = running(mini_cluster, spec("network_partition", "pdleader_to_tikv(all)"))
    try:
        during = reachability(mini_cluster)
    finally:
        n.stop()
    assert {p for p, ok in during.items() if not ok} == cut({"pd-0"}, {"tikv-0", "tikv-1"})
    assert during[("tikv-0", "tikv-1")]
    assert during[("tidb-0", "pd-0")]
    assert all(reachability(mini_cluster).values())


@pytest.mark.parametrize("direction", ["to", "from"])
def test_partition_direction_is_one_way(mini_cluster: Cluster, direction: str) -> None:  # noqa: F811
    n = running(mini_cluster, spec("network_partition", "tikv-0_to_tidb-0", direction=direction))
    try:
        during = oneway(mini_cluster)
    finally:
        n.stop()
    dropped = {("tikv-0", "tidb-0")} if direction == "to" else {("tidb-0", "tikv-0")}
    assert {p for p, ok in during.items() if not ok} == dropped, during
    assert all(oneway(mini_cluster).values())


def rtts(cluster: Cluster) -> dict[tuple[str, str], float]:
    return {p: r["rtt"] for p, r in probe(cluster, "tcp", n=5, timeout=3).items()}


@pytest.mark.parametrize("runner", ["nsenter", "helper"])
def test_delay_slows_exactly_the_selected_pairs(mini_cluster: Cluster, runner: str,  # noqa: F811
        helper_tag: str) -> None:
    before = rtts(mini_cluster)
    assert max(before.values()) < 0.05, before
    latency = 0.2
    r = make_runner(mini_cluster, runner, helper_tag)
    n = running(mini_cluster, spec("network_delay", "tikv-1_to_pd-0", latency=Duration(latency, "200ms")),
                runner=r)
    try:
        during = rtts(mini_cluster)
    finally:
        n.stop()
    slow = cut({"tikv-1"}, {"pd-0"})
    for pair, rtt in during.items():
        if pair in slow:  # both directions delayed: a TCP handshake waits twice
            assert rtt >= 2 * latency * 0.95, (pair, during)
        else:
            assert rtt < latency / 2, (pair, during)
    after = rtts(mini_cluster)
    assert max(after.values()) < 0.05, after


def test_delay_on_a_whole_node(mini_cluster: Cluster) -> None:  # noqa: F811
    n = running(mini_cluster, spec("network_delay", "tidb-0", latency=Duration(0.15, "150ms"),
                                   jitter=Duration(0.01, "10ms")))
    try:
        during = rtts(mini_cluster)
    finally:
        n.stop()
    for (a, b), rtt in during.items():
        if "tidb-0" in (a, b):  # only tidb-0's egress is delayed: once per handshake
            assert rtt >= 0.13, ((a, b), during)
        else:
            assert rtt < 0.075, ((a, b), during)
    assert max(rtts(mini_cluster).values()) < 0.05


def loss_rates(cluster: Cluster) -> dict[tuple[str, str], float]:
    # 0.15 s per echo: a loaded machine must not look like a lossy network
    return {p: 1 - r["ok"] / r["n"] for p, r in probe(cluster, "udp", n=100, timeout=0.15).items()}


def test_loss_hits_exactly_the_selected_pairs(mini_cluster: Cluster) -> None:  # noqa: F811
    assert max(loss_rates(mini_cluster).values()) <= 0.02
    n = running(mini_cluster, spec("network_loss", "tikv(one)_to_tidb", loss=50.0))
    try:
        during = loss_rates(mini_cluster)
    finally:
        n.stop()
    lossy = cut({"tikv-0"}, {"tidb-0"})
    for pair, rate in during.items():
        if pair in lossy:  # echo crosses the lossy link twice: about 75% lost
            assert 0.5 <= rate <= 0.95, (pair, during)
        else:
            assert rate <= 0.08, (pair, during)
    assert max(loss_rates(mini_cluster).values()) <= 0.02


def test_apply_and_heal_are_idempotent(mini_cluster: Cluster) -> None:  # noqa: F811
    from pytest_tidb_ha.faults.context import FaultContext
    from pytest_tidb_ha.faults.injectors import build
    from pytest_tidb_ha.faults.ledger import Tag
    from pytest_tidb_ha.faults.resolve import resolve_nodes

    for kind, params in (("network_partition", {}), ("network_delay", {"latency": Duration(0.1)}),
                         ("network_loss", {"loss": 10.0})):
        resolved = resolve_nodes(parse_selector("tikv-0_to_tikv-1"), NAMES, Roles(), random.Random(0))
        ctx = FaultContext(mini_cluster, NsenterRunner(), Tag.mine("idem", kind))
        inj = build(kind, ctx, resolved, {"direction": "both", **params})
        inj.apply()
        inj.apply()
        try:
            lines = leftover_faults(mini_cluster)["tikv-0"].splitlines()
            tag = str(ctx.tag)
            if kind == "network_partition":  # one rule per direction, not two
                assert len([ln for ln in lines if tag in ln and "-j DROP" in ln]) == 2, lines
            elif inj.backends["tikv-0"] == "netem":  # type: ignore[attr-defined]
                assert len([ln for ln in lines if "netem" in ln]) == 1, lines
            else:
                assert len([ln for ln in lines if ln.startswith("-A OUTPUT") and tag in ln]) == 1, lines
        finally:
            inj.heal()
            inj.heal()
        assert leftover_faults(mini_cluster) == {}


def test_two_shaping_faults_on_one_node(mini_cluster: Cluster) -> None:  # noqa: F811
    """netem allows one root qdisc per node (the second fault fails clearly); the
    iptables backend stacks both. Either way everything heals."""
    first = spec("network_delay", "tikv-0", latency=Duration(0.05))
    second = spec("network_loss", "tikv-0", loss=5.0)
    n = Nemesis(mini_cluster, [first, second], Timeline(), 1.0, seed=1, roles=ROLES)
    with n:
        deadline = time.monotonic() + 20
        while len(n.timeline.events("fault.error")) + len(n.timeline.events("fault.applied")) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        applied = n.timeline.events("fault.applied")
        backends = {b for e in applied for b in e.data["detail"]["backends"].values()}
        if backends == {"netem"}:
            (err,) = n.timeline.events("fault.error")
            assert "another tidb-ha fault owns the root qdisc" in err.data["error"]
        else:
            assert backends == {"iptables"}, applied
            assert len(applied) == 2, applied
            assert sorted(n.active) == ["f0.0", "f1.0"]
    assert n.active == []
    assert n.errors == []


@pytest.mark.parametrize("runner", ["nsenter", "helper"])
def test_partition_survives_a_kill_of_one_of_its_nodes(mini_cluster: Cluster, runner: str,  # noqa: F811
        helper_tag: str) -> None:
    """A killed node comes back with a fresh namespace; the open partition is re-applied."""
    partition = spec("network_partition", "tikv-0_to_all")
    kill = FaultSpec(kind="kill", selector=parse_selector("tikv-0"),
                     schedule=Schedule(Duration(1), Duration(1)))
    r = make_runner(mini_cluster, runner, helper_tag)
    n = Nemesis(mini_cluster, [partition, kill], Timeline(), 1.0, seed=1, roles=ROLES, runner=r)
    with n:
        deadline = time.monotonic() + 60
        while not n.timeline.events("fault.reapplied"):
            assert not n.errors, n.errors
            assert time.monotonic() < deadline, n.errors
            time.sleep(0.05)
        assert n.active == ["f0.0"]
        mini_cluster.refresh(["tikv-0"])
        # the restarted node enforces its side again (not only its peers' rules)
        own = [ln for ln in leftover_faults(mini_cluster).get("tikv-0", "").splitlines() if "DROP" in ln]
        assert len(own) == 6, own  # 3 peers x (INPUT, OUTPUT)
        during = reachability(mini_cluster)
    assert n.errors == []
    assert {p for p, ok in during.items() if not ok} == cut({"tikv-0"}, {"pd-0", "tikv-1", "tidb-0"})
    assert n.timeline.events("fault.reapplied")[0].data["cause"] == "f1.0"
    mini_cluster.refresh(["tikv-0"])
    deadline = time.monotonic() + 20
    while not all(reachability(mini_cluster).values()):
        assert time.monotonic() < deadline, reachability(mini_cluster)
        time.sleep(0.2)
