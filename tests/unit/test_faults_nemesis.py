"""The nemesis schedule with fake injectors: order of events, timing, healing."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from pytest_tidb_ha.faults.api import Roles, static_roles
from pytest_tidb_ha.faults.context import FaultContext
from pytest_tidb_ha.faults.nemesis import THREAD_NAME, Nemesis, plan_windows
from pytest_tidb_ha.faults.resolve import Resolved
from pytest_tidb_ha.scenario.model import Duration, FaultSpec, Schedule
from pytest_tidb_ha.scenario.selectors import parse_selector
from pytest_tidb_ha.timeline import Timeline


@dataclass(frozen=True)
class FakeNode:
    name: str
    component: str
    container_id: str | None = "c"
    ip: str | None = None


class FakeCluster:
    def __init__(self, control: bool = True) -> None:
        self.nodes = [FakeNode(n, n.split("-")[0]) for n in
                      ("pd-0", "pd-1", "pd-2", "tikv-0", "tikv-1", "tidb-0")]
        self.docker = None
        self.network_name = None
        self.can_control_nodes = control
        self.labels = {"org.pytest-tidb-ha.run": "unit"}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []  # (action, fault kind, thread)
        self.fail_apply: set[str] = set()
        self.fail_heal_once: set[str] = set()
        self.lock = threading.Lock()

    def factory(self, kind: str, ctx: FaultContext, resolved: Resolved,
                params: Mapping[str, object]) -> FakeInjector:
        return FakeInjector(self, kind, resolved)


class FakeInjector:
    def __init__(self, rec: Recorder, kind: str, resolved: Resolved) -> None:
        self.rec, self.kind, self.resolved = rec, kind, resolved

    def apply(self) -> None:
        self.rec.calls.append(("apply", self.kind, threading.current_thread().name))
        if self.kind in self.rec.fail_apply:
            raise RuntimeError("boom on apply")

    def heal(self) -> None:
        self.rec.calls.append(("heal", self.kind, threading.current_thread().name))
        if self.kind in self.rec.fail_heal_once:
            self.rec.fail_heal_once.discard(self.kind)
            raise RuntimeError("boom on heal")

    def describe(self) -> dict[str, object]:
        return {"fake": True}


def spec(kind: str, selector: str, warmup: float, duration: float,
         period: float | None = None, total: float | None = None) -> FaultSpec:
    return FaultSpec(
        kind=kind,
        selector=parse_selector(selector),
        schedule=Schedule(Duration(warmup), Duration(duration),
                          Duration(period) if period is not None else None,
                          Duration(total) if total is not None else None),
    )


ROLES = static_roles(Roles(pd_leader="pd-1", pd_members=("pd-0", "pd-1", "pd-2")))


def nemesis(specs: list[FaultSpec], rec: Recorder, tl: Timeline, scale: float = 0.01,
            cluster: FakeCluster | None = None) -> Nemesis:
    return Nemesis(cluster or FakeCluster(), specs, tl, scale, seed=1, roles=ROLES,
                   factory=rec.factory)


def kinds(tl: Timeline, prefix: str = "fault.") -> list[tuple[str, str]]:
    return [(e.kind, str(e.data.get("fault_id"))) for e in tl.events(prefix)]


def test_plan_windows_scaled_and_ordered() -> None:
    specs = [spec("kill", "tikv(one)", 60, 180, 300, 900), spec("pause", "tidb-0", 30, 10)]
    windows = plan_windows(specs, 0.01)
    assert [(w.fault_id, round(w.start, 3), round(w.end, 3)) for w in windows] == [
        ("f1.0", 0.3, 0.4), ("f0.0", 0.6, 2.4), ("f0.1", 3.6, 5.4), ("f0.2", 6.6, 8.4)]


def test_periodic_windows_record_inject_before_apply_and_heal_on_time() -> None:
    rec, tl = Recorder(), Timeline()
    n = nemesis([spec("network_partition", "pdleader_to_pdfollower(all)", 5, 10, 20, 40)], rec, tl)
    with n:
        assert n.wait(10)
    assert kinds(tl) == [("fault.inject", "f0.0"), ("fault.applied", "f0.0"), ("fault.healed", "f0.0"),
                         ("fault.inject", "f0.1"), ("fault.applied", "f0.1"), ("fault.healed", "f0.1")]
    inject = tl.events("fault.inject")[0].data
    assert inject["sources"] == ["pd-1"]
    assert inject["targets"] == ["pd-0", "pd-2"]
    assert inject["roles"] == {"pd_leader": "pd-1"}
    assert inject["fault_kind" if "fault_kind" in inject else "kind"] == "network_partition"
    start = tl.events("nemesis.start")[0].t
    assert inject["planned_start"] == pytest.approx(start + 0.05, abs=0.01)
    assert inject["planned_end"] == pytest.approx(start + 0.15, abs=0.01)
    for ev in tl.events("fault.applied") + tl.events("fault.healed"):
        assert 0 <= ev.data["lag"] < 0.5, ev
    healed = tl.events("fault.healed")[0]
    assert healed.data["roles_after"] == {"pd_leader": "pd-1"}
    assert healed.t >= inject["planned_end"] - 0.001
    assert {c[2] for c in rec.calls} == {THREAD_NAME}
    assert [w.end for w in tl.fault_windows()] == [e.t for e in tl.events("fault.healed")]


def test_concurrent_schedules_overlap() -> None:
    rec, tl = Recorder(), Timeline()
    n = nemesis([spec("kill", "tikv(one)", 0, 30), spec("pause", "tidb-0", 10, 10)], rec, tl)
    with n:
        assert n.wait(10)
    assert [c[:2] for c in rec.calls] == [("apply", "kill"), ("apply", "pause"), ("heal", "pause"),
                                          ("heal", "kill")]
    windows = tl.fault_windows()
    assert windows[0].start < windows[1].start < windows[1].end < windows[0].end  # type: ignore[operator]


def test_stop_heals_mid_window() -> None:
    rec, tl = Recorder(), Timeline()
    n = nemesis([spec("kill", "tikv-1", 0, 3600)], rec, tl)
    n.start()
    deadline = time.monotonic() + 5
    while not n.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert n.active == ["f0.0"]
    n.stop()
    assert n.active == []
    assert [c[:2] for c in rec.calls] == [("apply", "kill"), ("heal", "kill")]
    assert tl.events("fault.healed")[0].data["reason"] == "stop"
    assert not any(t.name == THREAD_NAME and t.is_alive() for t in threading.enumerate())


def test_apply_error_is_recorded_and_healed_at_once() -> None:
    rec, tl = Recorder(), Timeline()
    rec.fail_apply.add("kill")
    with nemesis([spec("kill", "tikv-1", 0, 3600)], rec, tl) as n:
        assert n.wait(5)
    assert [e.kind for e in tl.events("fault.")] == ["fault.inject", "fault.error", "fault.healed"]
    assert tl.events("fault.error")[0].data["phase"] == "apply"
    assert "boom on apply" in n.errors[0]


def test_heal_error_is_retried_by_stop() -> None:
    rec, tl = Recorder(), Timeline()
    rec.fail_heal_once.add("pause")
    with nemesis([spec("pause", "tikv-1", 0, 1)], rec, tl) as n:
        assert n.wait(5)
    assert [c[0] for c in rec.calls] == ["apply", "heal", "heal"]
    assert [e.kind for e in tl.events("fault.")][-2:] == ["fault.error", "fault.healed"]
    assert n.active == []


def test_resolve_error_is_recorded_without_inject() -> None:
    rec, tl = Recorder(), Timeline()
    with nemesis([spec("kill", "tikv(5)", 0, 1)], rec, tl) as n:
        assert n.wait(5)
    assert kinds(tl) == [("fault.error", "f0.0")]
    assert tl.events("fault.error")[0].data["phase"] == "resolve"
    assert rec.calls == []


def test_attach_mode_skips_node_faults_but_not_resigns() -> None:
    rec, tl = Recorder(), Timeline()
    specs = [spec("kill", "tikv-1", 0, 1), spec("pd_leader_resign", "pdleader", 0, 0)]
    with nemesis(specs, rec, tl, cluster=FakeCluster(control=False)) as n:
        assert n.wait(5)
    assert [s.kind for s, _ in n.skipped] == ["kill"]
    assert "attached" in n.skipped[0][1]
    assert [c[:2] for c in rec.calls] == [("apply", "pd_leader_resign"), ("heal", "pd_leader_resign")]
    assert tl.events("nemesis.skip")


def test_instant_fault_opens_and_closes() -> None:
    rec, tl = Recorder(), Timeline()
    with nemesis([spec("restart", "tidb-0", 0, 0, 10, 30)], rec, tl) as n:
        assert n.wait(5)
    assert [c[0] for c in rec.calls] == ["apply", "heal"] * 3


# -- planned vs applied vs healed ---------------------------------------------------------
def test_every_window_applied_and_healed_leaves_no_failure() -> None:
    rec, tl = Recorder(), Timeline()
    with nemesis([spec("pause", "tikv-1", 0, 1, 10, 30)], rec, tl) as n:
        assert n.wait(5)
    assert n.book.counts() == (3, 3, 3)
    assert n.fault_failures() == ([], [])
    summary = tl.events("nemesis.summary")[-1].data
    assert (summary["applied"], summary["planned"], summary["problems"]) == (3, 3, [])


def test_a_window_that_could_not_be_applied_fails_naming_fault_window_selector_cause() -> None:
    rec, tl = Recorder(), Timeline()
    rec.fail_apply.add("kill")
    with nemesis([spec("kill", "tikv(random)", 0, 3600)], rec, tl) as n:
        assert n.wait(5)
    failing, allowed = n.fault_failures()
    assert allowed == []
    assert len(failing) == 1
    msg = failing[0]
    assert "fault f0.0 kill window 1 on tikv(random)" in msg
    assert "was not applied: apply: RuntimeError: boom on apply" in msg
    assert n.book.counts()[:2] == (0, 1)


def test_a_selector_that_resolves_to_nothing_fails_the_window() -> None:
    rec, tl = Recorder(), Timeline()
    with nemesis([spec("kill", "tikv(5)", 0, 1)], rec, tl) as n:
        assert n.wait(5)
    (msg,), _ = n.fault_failures()
    assert "f0.0 kill window 1 on tikv(5)" in msg
    assert "resolve:" in msg


def test_a_heal_that_keeps_failing_fails_the_test() -> None:
    rec, tl = Recorder(), Timeline()

    class NeverHeals(FakeInjector):
        def heal(self) -> None:
            raise RuntimeError("iptables: resource busy")

    n = Nemesis(FakeCluster(), [spec("pause", "tikv-1", 0, 0.5)], tl, 1.0, seed=1, roles=ROLES,
                factory=lambda kind, ctx, res, params: NeverHeals(rec, kind, res))
    with n:
        deadline = time.monotonic() + 5
        while not n.book.records[0].applied and time.monotonic() < deadline:
            time.sleep(0.01)
    (msg,), _ = n.fault_failures()
    assert "was applied but not healed" in msg
    assert "iptables: resource busy" in msg


def test_allowed_fault_errors_become_notes() -> None:
    rec, tl = Recorder(), Timeline()
    rec.fail_apply.add("kill")
    n = Nemesis(FakeCluster(), [spec("kill", "tikv-1", 0, 3600)], tl, 0.01, seed=1, roles=ROLES,
                factory=rec.factory, allow_errors=True)
    with n:
        assert n.wait(5)
    failing, allowed = n.fault_failures()
    assert failing == []
    assert len(allowed) == 1
    assert "boom on apply" in allowed[0]


def test_a_run_that_ends_before_the_first_window_tested_nothing() -> None:
    rec, tl = Recorder(), Timeline()
    with nemesis([spec("kill", "tikv-1", 3600, 60)], rec, tl, scale=1.0) as n:
        pass
    (msg,), _ = n.fault_failures()
    assert "no fault window was applied" in msg
    assert "f0.0 kill window 1" in msg
    assert rec.calls == []


def test_later_windows_not_reached_after_one_applied_are_no_failure() -> None:
    rec, tl = Recorder(), Timeline()
    with nemesis([spec("pause", "tikv-1", 0, 0.2, 3600, 7200)], rec, tl, scale=1.0) as n:
        deadline = time.monotonic() + 5
        while not n.book.records[0].healed and time.monotonic() < deadline:
            time.sleep(0.01)
    assert n.fault_failures() == ([], [])
    assert [r.status() for r in n.book.records] == ["healed", "not reached"]
    assert n.book.counts()[:2] == (1, 2)


def test_a_fault_the_cluster_cannot_take_is_a_failure() -> None:
    rec, tl = Recorder(), Timeline()
    specs = [spec("kill", "tikv-1", 0, 1), spec("pd_leader_resign", "pdleader", 0, 0)]
    with nemesis(specs, rec, tl, cluster=FakeCluster(control=False)) as n:
        assert n.wait(5)
    (msg,), _ = n.fault_failures()
    assert msg.startswith("fault f0.0 kill window 1 on tikv-1")
    assert "attached" in msg
    assert [r.fault_id for r in n.book.records if r.applied] == ["f1.0"]


def test_a_window_due_when_stop_is_asked_still_opens_then_heals() -> None:
    """A test body that ends the instant its first window is due must not race it: the
    window runs (and heals), so its record is applied, never 'due but skipped'."""
    for _ in range(20):
        rec, tl = Recorder(), Timeline()
        n = nemesis([spec("pd_leader_resign", "pdleader", 0, 0)], rec, tl, scale=1.0)
        n.start()
        n.stop()
        assert [c[0] for c in rec.calls] == ["apply", "heal"]
        assert n.fault_failures() == ([], [])


def test_warm_up_runs_before_t0_and_its_problems_do_not_stop_the_windows() -> None:
    rec, tl = Recorder(), Timeline()
    n = nemesis([spec("network_partition", "tikv-0_to_pd-0", 0, 10)], rec, tl)
    with n:
        assert n.wait(10)
    warm = tl.events("nemesis.warmup")
    assert len(warm) == 1
    assert warm[0].t <= tl.events("nemesis.start")[0].t
    assert warm[0].data["nodes"] == 2  # the nodes the selector can touch, not all six
    assert len(warm[0].data["problems"]) == 2  # the fake cluster has no containers
    assert [c[:2] for c in rec.calls] == [("apply", "network_partition"),
                                          ("heal", "network_partition")]


def test_no_warm_up_for_faults_without_namespace_commands_or_processes() -> None:
    rec, tl = Recorder(), Timeline()
    with nemesis([spec("pd_leader_resign", "pdleader", 0, 10)], rec, tl) as n:
        assert n.wait(10)
    assert tl.events("nemesis.warmup") == []


def test_kill_warm_up_holds_init_processes_and_says_why_not() -> None:
    # no shells for kill: only its candidates' init processes (faults.initproc); the
    # fake cluster has no containers, so each node's kill is recorded as the API path
    rec, tl = Recorder(), Timeline()
    with nemesis([spec("kill", "tikv(random)", 0, 10)], rec, tl) as n:
        assert n.wait(10)
    warm = tl.events("nemesis.warmup")
    assert len(warm) == 1
    assert warm[0].data["kill_pidfd"] == 0
    assert sorted(warm[0].data["kill_api"]) == ["tikv-0", "tikv-1"]
    assert "nodes" not in warm[0].data  # no namespace shells started
    assert [c[:2] for c in rec.calls] == [("apply", "kill"), ("heal", "kill")]


class Refreshable(FakeInjector):
    """A network fault: records which restarted nodes it was asked to apply again on."""

    def refresh(self, restarted: list[str]) -> None:
        self.rec.calls.append(("refresh", ",".join(restarted), "-"))


class KillOf(FakeInjector):
    def __init__(self, rec: Recorder, kind: str, resolved: Resolved,
                 restarted: list[str]) -> None:
        super().__init__(rec, kind, resolved)
        self.restarted = restarted


@pytest.mark.parametrize("restarted", [[], ["tikv-0"]])
def test_a_kill_heal_applies_open_network_faults_again_only_where_the_container_restarted(
        restarted: list[str]) -> None:
    """A silent or process kill keeps the node's namespace and its rules: applying the
    partition again there would insert its rules twice, and its heal delete them once."""
    rec, tl = Recorder(), Timeline()

    def factory(kind: str, ctx: FaultContext, resolved: Resolved,
                params: Mapping[str, object]) -> FakeInjector:
        if kind == "kill":
            return KillOf(rec, kind, resolved, restarted)
        return Refreshable(rec, kind, resolved)

    n = Nemesis(FakeCluster(), [spec("network_partition", "tikv-0_to_pd-0", 0, 60),
                                spec("kill", "tikv-0", 5, 5)], tl, 0.01, seed=1,
                roles=ROLES, factory=factory)
    with n:
        assert n.wait(10)
    refreshes = [c[1] for c in rec.calls if c[0] == "refresh"]
    assert refreshes == (["tikv-0"] if restarted else [])
    assert [e.kind for e in tl.events("fault.reapplied")] == (["fault.reapplied"]
                                                              if restarted else [])
