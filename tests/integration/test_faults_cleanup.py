"""Every way out of a test heals its faults; a SIGKILLed run is healed by the next.

A pytester subprocess runs a marker test with the real ``nemesis`` fixture against
the mini cluster of :mod:`test_faults_harness` (its ``tidb_cluster`` is overridden in
the inner conftest). The outer test then looks inside the containers: after a pass,
a failure, a pytest-timeout and a KeyboardInterrupt nothing is left; after SIGKILL
the rules and the delayer are still there, and :func:`heal_leftovers` removes
exactly those.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_faults_harness import leftover_faults, mini_cluster, reachability  # noqa: F401

from pytest_tidb_ha.cluster.handle import Cluster
from pytest_tidb_ha.faults.ledger import LEDGER_CHAIN, parse_rules
from pytest_tidb_ha.faults.netns import make_runner
from pytest_tidb_ha.faults.reaper import heal_leftovers

pytestmark = pytest.mark.docker

INNER_CONFTEST = '''
import json, os
import docker
import pytest
from pytest_tidb_ha.cluster.handle import Cluster, Node

@pytest.fixture
def tidb_cluster():
    spec = json.loads(os.environ["FAULTS_MINI_CLUSTER"])
    nodes = [Node(name=n["name"], component=n["component"], container_id=n["container_id"], ip=n["ip"])
             for n in spec["nodes"]]
    return Cluster(spec["name"], nodes, docker=docker.from_env(), network_name=spec["network"],
                   labels=spec["labels"])
'''

INNER_TEST = '''
import os, signal, time
import pytest

@pytest.mark.fault("network_partition", selector="tikv-0_to_all", duration="1h")
@pytest.mark.fault("network_delay", selector="tidb-0", duration="1h", latency="100ms")
def test_under_faults(nemesis):
    deadline = time.monotonic() + 30
    while len(nemesis.active) < 2:
        assert not nemesis.errors, nemesis.errors
        assert time.monotonic() < deadline, "faults never applied"
        time.sleep(0.05)
    open(os.environ["FAULTS_APPLIED_FLAG"], "w").write("applied")
    mode = os.environ["FAULTS_MODE"]
    if mode == "fail":
        assert False, "the test fails while faults are applied"
    if mode == "timeout":
        time.sleep(60)
    if mode == "interrupt":
        raise KeyboardInterrupt
    if mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.fixture
def inner(pytester: pytest.Pytester, mini_cluster: Cluster,  # noqa: F811
          monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.Pytester]:
    spec = {
        "name": mini_cluster.name, "network": mini_cluster.network_name,
        "labels": dict(mini_cluster.labels),
        "nodes": [{"name": n.name, "component": n.component, "container_id": n.container_id,
                   "ip": n.ip} for n in mini_cluster.nodes],
    }
    monkeypatch.setenv("FAULTS_MINI_CLUSTER", json.dumps(spec))
    monkeypatch.setenv("FAULTS_APPLIED_FLAG", str(pytester.path / "applied.flag"))
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TEST)
    assert leftover_faults(mini_cluster) == {}
    yield pytester
    # whatever happened, leave the module's cluster clean for the next test
    heal_leftovers(mini_cluster.docker, only=[n.container_id for n in mini_cluster.nodes
                                              if n.container_id])


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str,
        *args: str) -> pytest.RunResult:
    monkeypatch.setenv("FAULTS_MODE", mode)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args,
                                           timeout=120)
    assert (pytester.path / "applied.flag").exists(), result.stdout.str()[-3000:]
    return result


@pytest.mark.parametrize(("mode", "args", "outcome"), [
    ("pass", (), {"passed": 1}),
    ("fail", (), {"failed": 1}),
    ("timeout", ("--timeout=10",), {"failed": 1}),
])
def test_every_outcome_heals(inner: pytest.Pytester, mini_cluster: Cluster,  # noqa: F811
                             monkeypatch: pytest.MonkeyPatch, mode: str, args: tuple[str, ...],
                             outcome: dict[str, int]) -> None:
    result = run(inner, monkeypatch, mode, *args)
    result.assert_outcomes(**outcome)
    assert leftover_faults(mini_cluster) == {}
    assert all(reachability(mini_cluster).values())


def test_keyboard_interrupt_heals(inner: pytest.Pytester, mini_cluster: Cluster,  # noqa: F811
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(inner, monkeypatch, "interrupt")
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()[-2000:]
    assert leftover_faults(mini_cluster) == {}


def delayer_pids(cluster: Cluster) -> list[int]:
    runner = make_runner(cluster.docker)
    try:
        out = runner.run(cluster.container("tidb-0"), f"iptables -S {LEDGER_CHAIN} 2>/dev/null").output
    finally:
        runner.close()
    return [int(r.attrs["dpid"]) for r in parse_rules(out) if r.attrs.get("dpid", "0") != "0"]


def test_sigkilled_run_is_healed_by_the_next_one(inner: pytest.Pytester, mini_cluster: Cluster,  # noqa: F811
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(inner, monkeypatch, "sigkill")
    assert result.ret != 0
    left = leftover_faults(mini_cluster)
    assert set(left) >= {"tikv-0", "tidb-0"}, left  # the dead run could not heal
    cut = {p for p, ok in reachability(mini_cluster).items() if not ok}
    assert ("tikv-0", "pd-0") in cut
    assert ("pd-0", "tidb-0") not in cut
    pids = delayer_pids(mini_cluster)  # NFQUEUE backend only (kernels without netem)
    ids = [n.container_id for n in mini_cluster.nodes if n.container_id]
    healed = heal_leftovers(mini_cluster.docker, only=ids)
    assert healed.rules, healed
    assert not healed.problems, healed
    assert leftover_faults(mini_cluster) == {}
    assert all(reachability(mini_cluster).values())
    deadline = time.monotonic() + 5  # SIGTERM: the delayer releases what it holds, then exits
    while any(os.path.exists(f"/proc/{pid}") for pid in pids):
        assert time.monotonic() < deadline, f"delayer(s) {pids} survived the reaper"
        time.sleep(0.1)
    assert heal_leftovers(mini_cluster.docker, only=ids).rules == []  # nothing twice


def test_reaper_leaves_live_runs_alone(mini_cluster: Cluster) -> None:  # noqa: F811
    from pytest_tidb_ha.faults.nemesis import Nemesis
    from pytest_tidb_ha.scenario.model import Duration, FaultSpec, Schedule
    from pytest_tidb_ha.scenario.selectors import parse_selector
    from pytest_tidb_ha.timeline import Timeline

    spec = FaultSpec("network_partition", parse_selector("tikv-1_to_tidb-0"),
                     Schedule(Duration(0), Duration(3600)), {"direction": "both"})
    with Nemesis(mini_cluster, [spec], Timeline(), 1.0) as n:
        deadline = time.monotonic() + 20
        while not n.active:
            assert time.monotonic() < deadline, n.errors
            assert not n.errors, n.errors
            time.sleep(0.05)
        healed: Any = heal_leftovers(mini_cluster.docker)  # every container: only dead tags go
        assert healed.rules == []
        assert leftover_faults(mini_cluster)  # still ours, still there
    assert leftover_faults(mini_cluster) == {}
