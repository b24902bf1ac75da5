"""Before the first window: start the run's long-lived helpers, so windows only apply.

A window's apply is measured against its planned start (issue 13: p95 <= 100 ms), so
what every window would otherwise pay once -- a shell in each node's network namespace
(:class:`~.netns.ShellSession`), the interface holding each node's cluster IP, whether
the kernel has ``sch_netem``, the NFQUEUE delayer of a ``network_delay`` on a kernel
without it -- is done here, before t0, and kept in the nemesis' ``shared`` store for the
run (closed at its stop). For ``kill`` it opens the pidfd of each candidate node's init
process (:mod:`.initproc`), so a kill window signals it without a Docker call. A
warm-up failure never stops the schedule: the window that
needs the helper starts it as before, and its own errors count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..cluster.protocol import ClusterLike
from ..scenario.model import FaultSpec, Selector
from .api import component_of
from .context import FaultContext
from .initproc import init_processes
from .ledger import Tag
from .netns import NetnsRunner
from .network import NETEM_MISSING, NetemFault, in_parallel

log = logging.getLogger("pytest_tidb_ha.faults")

#: Kinds whose windows run commands in nodes' network namespaces.
NETNS_KINDS = frozenset({"network_partition", "network_delay", "network_loss", "pause",
                         "io_delay", "bandwidth", "disk_full"})
#: Kinds that look up the interface holding a node's cluster IP.
IFACE_KINDS = frozenset({"network_delay", "network_loss", "bandwidth"})
#: A throwaway qdisc on ``lo`` (not our fault handle ``7e57:``): added and removed at once.
NETEM_PROBE = ("tc qdisc add dev lo root handle 7e59: netem delay 0ms 2>&1; rc=$?; "
               "tc qdisc del dev lo root handle 7e59: 2>/dev/null; exit $rc")


def kinds_of(specs: Sequence[FaultSpec]) -> set[str]:
    return {k for s in specs for k in (s.kinds or (s.kind,))}


def candidates(selector: Selector | None, names: Sequence[str]) -> list[str]:
    """Every node a window of ``selector`` could act on, whatever the live roles and the
    draws of ``(random)``/``(N)`` turn out to be (pure): the groups of both sides."""
    if selector is None:
        return []
    out: list[str] = []
    for side in [selector.source] + ([selector.target] if selector.target else []):
        group = side.group
        if group == "all":
            pool = list(names)
        elif group == "node":
            pool = [side.name] if side.name is not None and side.name in names else []
        elif group in ("pdleader", "pdfollower"):
            pool = [n for n in names if component_of(n) == "pd"]
        elif group == "ddlowner":
            pool = [n for n in names if component_of(n) == "tidb"]
        else:
            pool = [n for n in names if component_of(n) == group]
        out += [n for n in pool if n not in out]
    return out


def warm_up(cluster: ClusterLike, runner: NetnsRunner, shared: dict[str, Any],
            specs: Sequence[FaultSpec], tag: Tag) -> dict[str, object]:
    """Start the shells of every node a window may touch, read their interfaces, probe
    netem, start delayers (see module doc). Returns what it did, for ``nemesis.warmup``."""
    began = time.monotonic()
    kinds = kinds_of(specs)
    ctx = FaultContext(cluster=cluster, runner=runner, tag=tag, shared=shared)
    ips = ctx.ips()
    names = [n.name for n in cluster.nodes]
    problems: list[str] = []

    def prepare(node: str) -> None:
        try:
            if kinds & IFACE_KINDS and node in ips:
                ctx.iface(node, ips[node])  # also starts the node's shell
            else:
                ctx.exec(node, "true", "start the node's shell")
        except Exception as exc:  # noqa: BLE001 - the window retries and counts its errors
            problems.append(f"{node}: {exc}")

    touched = [n for n in names if any(n in candidates(s.selector, names) for s in specs)]
    in_parallel(prepare, touched)
    delayers = 0
    if "network_delay" in kinds and touched and not NetemFault.netem_missing:
        probe = ctx.exec(touched[0], NETEM_PROBE, "netem probe", check=False)
        if NETEM_MISSING in probe.output:
            NetemFault.netem_missing = True  # one kernel per Docker engine: asked once
    if "network_delay" in kinds and NetemFault.netem_missing:
        for spec in specs:
            if "network_delay" not in (spec.kinds or (spec.kind,)):
                continue
            nodes = candidates(spec.selector, names)
            fault = NetemFault("network_delay", ctx, (), nodes, spec.params)
            try:
                delayers += fault.prepare()
            except Exception as exc:  # noqa: BLE001 - the window retries and counts its errors
                problems.append(f"delayers of {spec.selector}: {exc}")
    return {"seconds": round(time.monotonic() - began, 3), "nodes": len(touched),
            "method": runner.method, "netem": not NetemFault.netem_missing,
            "delayers": delayers, "problems": problems}


def prime_inits(cluster: ClusterLike, container: Callable[[str], Any], shared: dict[str, Any],
                specs: Sequence[FaultSpec]) -> dict[str, object]:
    """``kill``: hold the init process of every node a kill window may act on
    (:mod:`.initproc`); ``container`` is the run's container lookup. Returns what it did
    for ``nemesis.warmup``: how many are held, and why the others take the API path."""
    kill_specs = [s for s in specs if "kill" in (s.kinds or (s.kind,))]
    inits = init_processes(shared, cluster.docker) if kill_specs else None
    if inits is None:
        return {}
    names = [n.name for n in cluster.nodes]
    nodes = list(dict.fromkeys(n for s in kill_specs for n in candidates(s.selector, names)))
    held, api = 0, {}
    for node in nodes:
        try:
            c = container(node)
            c.reload()
            if inits.prime(c) is not None:
                held += 1
            else:
                api[node] = inits.why_not.get(c.id, "?")
        except Exception as exc:  # noqa: BLE001 - that node's kill takes the API path
            api[node] = f"{type(exc).__name__}: {exc}"
    return {"kill_pidfd": held, **({"kill_api": api} if api else {})}
