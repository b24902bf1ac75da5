"""Every random choice comes from --ha-seed: targets, random schedules, mixes (pure)."""

from __future__ import annotations

import itertools
import time

import pytest
from test_faults_nemesis import ROLES, FakeCluster, Recorder

from pytest_tidb_ha.cluster.specs import ClusterSettings, render_specs
from pytest_tidb_ha.faults.nemesis import Nemesis, plan_windows, window_rng
from pytest_tidb_ha.scenario import build
from pytest_tidb_ha.scenario.errors import ScenarioError
from pytest_tidb_ha.scenario.loader import load_text
from pytest_tidb_ha.scenario.model import FaultSpec, Topology
from pytest_tidb_ha.scenario.needs import disk_limits, plan_topology
from pytest_tidb_ha.scenario.plan import render_plan
from pytest_tidb_ha.scenario.sizes import SizeError, format_rate, parse_rate, parse_size
from pytest_tidb_ha.timeline import Timeline


def targets_of(seed: int, windows: int = 6, only: set[str] | None = None) -> dict[str, list[str]]:
    spec = build.make_fault("pause", selector="tikv(random)", duration_value="0.01s",
                            period="0.02s", total=f"{0.02 * windows}s")
    tl, rec = Timeline(), Recorder()
    n = Nemesis(FakeCluster(), [spec], tl, 1.0, seed=seed, roles=ROLES, factory=rec.factory,
                only=only)
    with n:
        assert n.wait(10)
    assert n.errors == []
    return {e.data["fault_id"]: e.data["targets"] for e in tl.events("fault.inject")}


def test_the_same_seed_pauses_the_same_tikv_in_every_window() -> None:
    first, second = targets_of(1234), targets_of(1234)
    assert len(first) == 6
    assert first == second
    assert len({t[0] for t in targets_of(1234, 40).values()}) == 2  # both TiKVs get picked


def test_leaving_windows_out_keeps_the_others_choices() -> None:
    full = targets_of(99)
    part = targets_of(99, only={"f0.1", "f0.4"})
    assert part == {k: full[k] for k in ("f0.1", "f0.4")}


def test_different_seeds_choose_differently() -> None:
    picks = {tuple(v[0] for v in targets_of(s, 8).values()) for s in range(6)}
    assert len(picks) > 1


def test_window_rng_is_stable_across_processes() -> None:
    # string seeds hash with SHA-512 (not PYTHONHASHSEED): the same draw in every process
    assert window_rng(7, "f0.1").random() == window_rng(7, "f0.1").random()
    assert window_rng(7, "f0.1").random() != window_rng(8, "f0.1").random()


def random_spec(kinds: object = None, kind: object = "kill") -> FaultSpec:
    return build.make_fault(kind, kinds=kinds, selector="tikv-0", duration_value="10s",
                            schedule="random", interval_value="10s..60s", total="10m",
                            warmup="1m", params={"latency": "100ms"} if kinds else None)


def test_random_schedules_are_drawn_from_the_seed_within_the_interval() -> None:
    spec = random_spec()
    a = plan_windows([spec], 1.0, seed=5)
    assert a == plan_windows([spec], 1.0, seed=5)
    assert [w.start for w in a] != [w.start for w in plan_windows([spec], 1.0, seed=6)]
    assert a[0].start == 60.0
    for prev, nxt in itertools.pairwise(a):
        assert 10.0 - 1e-9 <= nxt.start - prev.end <= 60.0 + 1e-9
    assert all(w.start < 60 + 600 for w in a)
    assert a[-1].start + 10 + 60 >= 600


def test_fault_types_mix_kinds_one_per_window() -> None:
    spec = random_spec(kinds=["pause", "network_delay"], kind=None)
    assert spec.kinds == ("pause", "network_delay")
    windows = plan_windows([spec], 1.0, seed=11)
    assert {w.kind for w in windows} == {"pause", "network_delay"}
    assert [w.kind for w in windows] == [w.kind for w in plan_windows([spec], 1.0, seed=11)]


@pytest.mark.parametrize(("keys", "message"), [
    ("schedule: random\n    interval: 10s..60s", "needs faultTotalRunTime"),
    ("schedule: random\n    faultTotalRunTime: 5m", "random needs interval"),
    ("interval: 10s..60s", "interval belongs to schedule: random"),
    ("schedule: random\n    interval: 60s..10s\n    faultTotalRunTime: 5m", "not below the shortest"),
    ("schedule: sometimes", "schedule must be one of periodic, random"),
])
def test_random_schedule_errors(keys: str, message: str) -> None:
    text = f"""cases:
  - name: c
    faultType: pause
    selector: tikv-0
    faultDuration: 10s
    {keys}
"""
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(")):
        load_text(text, "c.yaml")


def test_yaml_new_kinds_and_partition_options() -> None:
    text = """cases:
  - name: c
    faults:
      - faultType: network_partition
        shape: majorities_ring
        faultDuration: 10s
      - faultType: network_partition
        selector: tidb_to_pd
        ports: [2379]
        faultDuration: 10s
      - faultType: bandwidth
        selector: tikv-0_to_pd-0
        rate: 1mbit
        faultDuration: 10s
      - faultType: disk_full
        selector: tikv(random)
        free: 10MB
        diskSize: 64MiB
        faultDuration: 10s
      - faultTypes: [kill, pause]
        selector: tikv(random)
        schedule: random
        interval: 1s..2s
        faultTotalRunTime: 30s
        faultDuration: 2s
"""
    (case,) = load_text(text, "c.yaml") or ()
    shape, ports, bw, disk, mix = case.faults
    assert str(shape.selector) == "all"
    assert shape.params["shape"] == "majorities_ring"
    assert ports.params["ports"] == (2379,)
    assert bw.kind == "bandwidth"
    assert bw.params["rate"] == 1e6
    assert disk.params == {"free": 10_000_000, "disk_size": 64 * 2**20}
    assert mix.kinds == ("kill", "pause")
    assert mix.schedule.is_random
    assert disk_limits(case) == {"tikv": 64 * 2**20}
    # the mix's kill grows the cluster as a kill would
    assert plan_topology(case).topology.tikv == 3
    plan = render_plan(case)
    assert "free=10MB" in plan
    assert "rate=1mbit" in plan
    assert "kill | pause" in plan
    assert "random gaps 1s..2s (seeded by --ha-seed)" in plan


@pytest.mark.parametrize(("fault", "message"), [
    ("faultType: network_partition\n    shape: rings", "shape must be one of"),
    ("faultType: network_partition\n    shape: halves\n    selector: tikv_to_pd",
     "cuts the selected nodes among themselves"),
    ("faultType: network_partition\n    ports: [70000]\n    selector: tikv", "TCP port numbers"),
    ("faultType: bandwidth\n    selector: tikv", "bandwidth needs rate"),
    ("faultType: bandwidth\n    rate: fast\n    selector: tikv", "not a rate"),
    ("faultType: disk_full\n    free: 1GiB\n    diskSize: 64MiB\n    selector: tikv",
     "not below the volume's size"),
    ("faultTypes: [kill, kill]\n    selector: tikv", "kill listed twice"),
    ("faultTypes: [kill]\n    faultType: pause\n    selector: tikv", "exclude each other"),
])
def test_new_keys_errors(fault: str, message: str) -> None:
    text = f"""cases:
  - name: c
    {fault}
    faultDuration: 10s
"""
    with pytest.raises(ScenarioError, match=message):
        load_text(text, "c.yaml")


def test_sizes_and_rates() -> None:
    assert parse_size("10MB") == 10_000_000
    assert parse_size("512MiB") == 512 * 2**20
    assert parse_size(0) == 0
    assert parse_size("1G") == 2**30
    assert parse_rate("1mbit") == 1e6
    assert parse_rate("100kbps") == 8e5
    assert parse_rate("10MB/s") == 8e7
    assert format_rate(5e5) == "500kbit"
    for bad in ("-1", "ten", True):
        with pytest.raises(SizeError):
            parse_size(bad)


def test_limited_volumes_in_the_cluster_specs() -> None:
    plain = ClusterSettings(run_id="r", topology=Topology(1, 1, 1))
    limited = ClusterSettings(run_id="r", topology=Topology(1, 1, 1),
                              disk_limits={"tikv": 64 * 2**20, "tidb": 32 * 2**20})
    assert plain.key != limited.key  # another cluster, never a shared one
    vols = {s.node: s.volumes for s in render_specs(limited)}
    assert vols["tikv-0"][0].size == 64 * 2**20
    assert vols["tikv-0"][0].target == "/data"
    assert vols["tidb-0"][0].target == "/tmp/tidb"
    assert vols["tidb-0"][0].size == 32 * 2**20
    assert vols["pd-0"][0].size is None
    assert {s.node: s.volumes for s in render_specs(plain)}["tidb-0"] == ()


def test_windows_of_one_run_do_not_wait_for_each_other_on_a_slow_trigger() -> None:
    """A nemesis with only a trigger stops promptly when asked (no busy wait)."""
    spec = build.make_fault("pause", selector="tikv-0", duration_value="1s",
                            when={"job": 1, "state": "running"})
    n = Nemesis(FakeCluster(), [spec], Timeline(), 1.0, seed=1, roles=ROLES,
                factory=Recorder().factory)
    n.start()
    t = time.monotonic()
    n.stop()
    assert time.monotonic() - t < 2.0
