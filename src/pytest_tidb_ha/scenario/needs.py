"""How big a cluster a case needs, and why.

A fault that takes away a node the cluster cannot live without tests
nothing but an outage, so the case's faults raise the minimum topology:

* any selector naming ``pdleader``/``pdfollower``, or ``pd_leader_resign``:
  >= 3 PD -- a leader change needs a quorum of the rest;
* a kill/pause/restart/partition of ``pd`` nodes: >= 3 PD (etcd quorum);
* the DDL owner (``ddlowner`` / ``tidb(ddl_owner)``) killed, paused,
  restarted, partitioned or resigned: >= 2 TiDB, so another can take over
  and the SQL client can still reach one;
* other TiDB nodes killed/paused/restarted/partitioned: >= 2 TiDB;
* TiKV killed/paused/restarted/partitioned: >= 3 TiKV, so Raft keeps a
  majority of each region's replicas;
* delays, loss and io_delay only slow a node down: no minimum.

The result is the element-wise maximum of the requested topology
(``--tidb-topology``), the case's own (``tidb_cluster`` marker or
``topology:``) and these needs, default 1/1/1. Counts in quantifiers
(``tikv(5)``) and node names (``tikv-4``) do not grow the cluster: they are
checked against the result by :func:`~.selectors.check_selector` so a typo
is an error instead of a silently bigger cluster.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .errors import ScenarioError
from .model import Case, FaultSpec, NodeSelector, Selector, Topology
from .selectors import selector_problems

DISRUPTIVE = frozenset({"kill", "pause", "restart", "network_partition"})


@dataclass(frozen=True)
class Need:
    component: str  # pd | tikv | tidb
    count: int
    reason: str


def _sides(fault: FaultSpec) -> list[NodeSelector]:
    return _selector_sides(fault.selector)


def _selector_sides(selector: Selector | None) -> list[NodeSelector]:
    if selector is None:
        return []
    sides = [selector.source]
    if selector.target is not None:
        sides.append(selector.target)
    return sides


def _component_of(side: NodeSelector) -> str | None:
    if side.group in ("pd", "pdleader", "pdfollower"):
        return "pd"
    if side.group in ("tidb", "ddlowner"):
        return "tidb"
    if side.group == "tikv":
        return "tikv"
    if side.group == "node" and side.name:
        return side.name.split("-")[0]
    return None


def fault_needs(fault: FaultSpec) -> list[Need]:
    """What one fault needs of the topology, with the reason in words."""
    return list(_kind_needs(fault.kind, fault.selector))


@functools.lru_cache(maxsize=1024)
def _kind_needs(kind: str, selector: Selector | None) -> tuple[Need, ...]:
    """:func:`fault_needs` of a fault of ``kind`` on ``selector``: all it depends on.

    Asked for every case at collection (the cluster each case needs); a suite's
    faults use a few dozen kind and selector pairs, and the answer (words included)
    is immutable, so it is worked out once per pair.
    """
    needs: list[Need] = []
    label = f"{kind} on {selector}"
    if kind == "pd_leader_resign":
        needs.append(Need("pd", 3, f"{label}: a new PD leader needs a quorum of 3 PD"))
    if kind == "ddl_owner_resign":
        needs.append(Need("tidb", 2, f"{label}: another TiDB must take DDL ownership"))
    for side in _selector_sides(selector):
        if side.group in ("pdleader", "pdfollower"):
            needs.append(Need("pd", 3, f"{label}: PD leader/follower roles need 3 PD "
                                       f"(a quorum survives the fault)"))
        if kind not in DISRUPTIVE:
            continue
        component = _component_of(side)
        if side.group == "ddlowner":
            needs.append(Need("tidb", 2, f"{label}: another TiDB must take over DDL ownership"))
        elif component == "pd" and side.group == "pd":
            needs.append(Need("pd", 3, f"{label}: etcd keeps a quorum only with 3 PD"))
        elif component == "tidb":
            needs.append(Need("tidb", 2, f"{label}: SQL must stay reachable through "
                                         f"another TiDB"))
        elif component == "tikv":
            needs.append(Need("tikv", 3, f"{label}: Raft keeps a majority of replicas only "
                                         f"with 3 TiKV"))
    return tuple(needs)


def case_needs(case: Case) -> list[Need]:
    """Every need of the case's faults (duplicates removed, order kept)."""
    out: list[Need] = []
    for fault in case.faults:
        for variant in fault.variants():
            for need in fault_needs(variant):
                if need not in out:
                    out.append(need)
    return out


def disk_limits(case: Case) -> dict[str, int]:
    """``{component: bytes}``: the components whose data volume a ``disk_full`` fault of
    the case may fill, and the size its volume must be created with (the largest
    ``diskSize`` asked). Only such volumes are ever filled: never a disk the host shares."""
    limits: dict[str, int] = {}
    for fault in case.faults:
        for variant in fault.variants():
            if variant.kind != "disk_full":
                continue
            size = int(variant.params.get("disk_size", 0))  # type: ignore[call-overload]
            sides = _sides(variant)
            components = {_component_of(side) for side in sides}
            if not sides or None in components or any(s.group == "all" for s in sides):
                components = {"pd", "tikv", "tidb"}
            for component in components:
                assert component is not None
                limits[component] = max(limits.get(component, 0), size)
    return limits


@dataclass(frozen=True)
class TopologyPlan:
    topology: Topology
    reasons: tuple[str, ...]


def plan_topology(case: Case, requested: Topology | None = None, *,
                  explain: bool = True) -> TopologyPlan:
    """The topology to start for ``case`` and the reasons for each raised count
    (none when not ``explain``: collection asks every case for its topology only)."""
    reasons: list[str] = []
    topo = Topology()
    if requested is not None:
        topo = topo.merge_max(requested)
        if explain:
            reasons.append(f"{requested}: requested (--tidb-topology)")
    if case.topology is not None:
        topo = topo.merge_max(case.topology)
        if explain:
            reasons.append(f"{case.topology}: requested by the case (tidb_cluster / topology:)")
    for need in case_needs(case):
        if getattr(topo, need.component) < need.count:
            topo = topo.merge_max(Topology(**{need.component: need.count}))
        if explain:
            reasons.append(f"{need.component}>={need.count}: {need.reason}")
    return TopologyPlan(topo, tuple(reasons))


def required_topology(case: Case, requested: Topology | None = None) -> Topology:
    """Max of ``requested``, the case's own topology and what its faults need."""
    return plan_topology(case, requested, explain=False).topology


def check_case_topology(case: Case, topology: Topology) -> None:
    """Raise :class:`ScenarioError` (at the fault's line) for a selector that can never match."""
    for fault in case.faults:
        if fault.selector is None:
            continue
        problems = selector_problems(fault.selector, topology)
        if problems:
            where = fault.source if (fault.source.file or fault.source.nodeid) else case.source
            raise ScenarioError(where, f"selector {fault.selector}: " + "; ".join(problems)
                                + " (raise the topology with --tidb-topology or tidb_cluster)")
