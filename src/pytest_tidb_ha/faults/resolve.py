"""Selector → node sets, decided on the live cluster when a fault window opens.

Roles move (a partition elects a new PD leader, a resign moves the DDL owner), so a
selector like ``pdleader`` is resolved at each window, never at collection. The
decision itself is the pure function :func:`resolve_nodes` of (selector, node names,
roles, rng) and is unit-tested without Docker; :func:`resolve` only adds the live
role lookup.

Meaning (see ``scenario/selectors.py`` for the grammar): no quantifier or ``(all)``
= every member of the group; ``(one)`` the first by name; ``(random)`` one at random;
``(N)`` N at random; ``(N%)`` that share rounded up, at least one. For
``SOURCE_to_TARGET`` the target side never contains a source node, and ``all`` on the
target side is every node that is not a source. A single-sided selector yields
``sources=()`` and the selected nodes as ``targets`` (the nodes the fault acts on).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..cluster.protocol import ClusterLike
from ..scenario.model import NodeSelector, Selector
from .api import Roles, RoleSource, component_of, live_roles, node_sort_key


class ResolveError(RuntimeError):
    """A selector matches no node on the live cluster (the message says why)."""


@dataclass(frozen=True)
class Resolved:
    """The nodes a fault window acts on, and the roles seen when it opened."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    roles: dict[str, object] = field(default_factory=dict)

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every affected node, sources first."""
        return self.sources + tuple(t for t in self.targets if t not in self.sources)


def roles_needed(selector: Selector | None) -> frozenset[str]:
    """Which live roles the selector depends on."""
    if selector is None:
        return frozenset()
    sides = [selector.source] + ([selector.target] if selector.target else [])
    need: set[str] = set()
    for side in sides:
        if side.group in ("pdleader", "pdfollower"):
            need.add("pd_leader")
        elif side.group == "ddlowner":
            need.add("ddl_owner")
    return frozenset(need)


def _role_holder(side: NodeSelector, holder: str | None, role: str, names: Sequence[str],
                 nobody: str) -> list[str]:
    """The node holding a live role (PD leader, DDL owner), as a one-node group.

    Both roles fail the same two ways: nobody holds the role right now (*nobody* says how
    that showed), or the holder is not one of this cluster's nodes.
    """
    if holder is None:
        raise ResolveError(f"{side}: {nobody}")
    if holder not in names:
        raise ResolveError(f"{side}: {role} {holder!r} is not a node of this cluster")
    return [holder]


def _group(side: NodeSelector, names: Sequence[str], roles: Roles) -> list[str]:
    pd = [n for n in names if component_of(n) == "pd"]
    group = side.group
    if group == "pd":
        return pd
    if group in ("tikv", "tidb"):
        return [n for n in names if component_of(n) == group]
    if group == "all":
        return list(names)
    if group == "node":
        if side.name is None or side.name not in names:
            raise ResolveError(f"{side}: no node named {side.name!r} (nodes: {', '.join(names)})")
        return [side.name]
    if group == "pdleader":
        return _role_holder(side, roles.pd_leader, "PD leader", names,
                            "PD has no leader right now (no PD answered with one)")
    if group == "pdfollower":
        if roles.pd_leader is None:
            raise ResolveError(f"{side}: no PD leader, so no PD follower either")
        members = [m for m in roles.pd_members if m in pd] or pd
        return [n for n in members if n != roles.pd_leader]
    if group == "ddlowner":
        return _role_holder(side, roles.ddl_owner, "DDL owner", names,
                            "no TiDB reports being the DDL owner right now")
    raise ResolveError(f"{side}: unknown selector group {group!r}")


def _pick(side: NodeSelector, pool: list[str], rng: random.Random, what: str) -> list[str]:
    pool = sorted(pool, key=node_sort_key)
    if not pool:
        raise ResolveError(f"{side}: no node to pick from ({what})")
    q = side.quantifier
    if q.mode == "all":
        return pool
    if q.mode == "one":
        return pool[:1]
    if q.mode == "random":
        return [rng.choice(pool)]
    if q.mode == "count":
        n = q.value or 0
        if n > len(pool):
            raise ResolveError(f"{side}: needs {n} node(s) but only {len(pool)} ({what}): "
                               f"{', '.join(pool)}")
        return sorted(rng.sample(pool, n), key=node_sort_key)
    if q.mode == "percent":
        n = min(len(pool), max(1, math.ceil(len(pool) * (q.value or 0) / 100)))
        return sorted(rng.sample(pool, n), key=node_sort_key)
    raise ResolveError(f"{side}: unknown quantifier {q.mode!r}")


def resolve_nodes(
    selector: Selector, names: Iterable[str], roles: Roles, rng: random.Random
) -> Resolved:
    """Pure resolution of ``selector`` over ``names`` with ``roles`` (see module doc)."""
    all_names = sorted(set(names), key=node_sort_key)
    src_side = selector.source
    sources = _pick(src_side, _group(src_side, all_names, roles), rng, f"group {src_side.group}")
    role_map = roles.as_event()
    if selector.target is None:
        return Resolved(sources=(), targets=tuple(sources), roles=role_map)
    tgt_side = selector.target
    pool = [n for n in _group(tgt_side, all_names, roles) if n not in sources]
    targets = _pick(tgt_side, pool, rng, f"group {tgt_side.group} without the source(s) "
                                         f"{', '.join(sources)}")
    return Resolved(sources=tuple(sources), targets=tuple(targets), roles=role_map)


def resolve(
    selector: Selector,
    cluster: ClusterLike,
    rng: random.Random,
    *,
    roles: RoleSource = live_roles,
) -> Resolved:
    """Resolve ``selector`` on the live ``cluster`` now (roles looked up as needed)."""
    names = [n.name for n in cluster.nodes]
    need = roles_needed(selector)
    looked_up = roles(cluster, need) if need else Roles()
    return resolve_nodes(selector, names, looked_up, rng)
