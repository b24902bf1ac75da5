"""What the fault engine needs from a cluster: roles, node names, event fields.

The cluster itself is a :class:`~pytest_tidb_ha.cluster.protocol.ClusterLike`:
the fault engine never imports the concrete handle, and
unit/integration tests can hand in a small adapter over plain containers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..cluster.protocol import ClusterLike
from ..events import FAULT_KIND

log = logging.getLogger("pytest_tidb_ha.faults")

_NODE = re.compile(r"^(pd|tikv|tidb)-(\d+)$")


def node_sort_key(name: str) -> tuple[int, int, str]:
    """pd, tikv, tidb order, then by index (``tikv-10`` after ``tikv-9``)."""
    m = _NODE.match(name)
    if not m:
        return (9, 0, name)
    return (("pd", "tikv", "tidb").index(m.group(1)), int(m.group(2)), name)


def component_of(name: str) -> str | None:
    m = _NODE.match(name)
    return m.group(1) if m else None


@dataclass(frozen=True)
class Roles:
    """Who holds which role when a window opens (None: unknown / no answer)."""

    pd_leader: str | None = None
    pd_members: tuple[str, ...] = ()
    ddl_owner: str | None = None

    def as_event(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.pd_leader is not None or self.pd_members:
            out["pd_leader"] = self.pd_leader
        if self.ddl_owner is not None:
            out["ddl_owner"] = self.ddl_owner
        return out


class RoleSource(Protocol):
    """Looks roles up on the live cluster; ``need`` names the roles a selector uses."""

    def __call__(self, cluster: ClusterLike, need: frozenset[str]) -> Roles: ...


def live_roles(cluster: ClusterLike, need: frozenset[str]) -> Roles:
    """Roles from ``pytest_tidb_ha.cluster.roles`` (the cluster engineer's HTTP lookups).

    Only the roles in ``need`` are looked up (``pd_leader``, ``ddl_owner``): a DDL owner
    lookup during a partition can take its whole timeout, so nobody pays for it unasked.
    A lookup that fails counts as unknown (None) and is logged.
    """
    from ..cluster import roles as cluster_roles  # late: the cluster layer is optional here

    leader: str | None = None
    members: tuple[str, ...] = ()
    owner: str | None = None
    if "pd_leader" in need:
        try:
            leader = cluster_roles.pd_leader(cluster)
        except Exception as exc:  # noqa: BLE001 - unknown role, resolution decides
            log.warning("PD leader lookup failed: %s", exc)
        try:
            members = tuple(cluster_roles.pd_members(cluster))
        except Exception as exc:  # noqa: BLE001
            log.warning("PD members lookup failed: %s", exc)
    if "ddl_owner" in need:
        try:
            owner = cluster_roles.ddl_owner(cluster)
        except Exception as exc:  # noqa: BLE001
            log.warning("DDL owner lookup failed: %s", exc)
    return Roles(pd_leader=leader, pd_members=members, ddl_owner=owner)


def static_roles(roles: Roles) -> RoleSource:
    """A role source that always answers ``roles`` (unit tests, dry runs)."""

    def source(cluster: ClusterLike, need: frozenset[str]) -> Roles:
        return roles

    return source


def params_for_event(params: Mapping[str, object]) -> dict[str, object]:
    """Fault parameters as JSON-friendly values (Durations as their text)."""
    out: dict[str, object] = {}
    for k, v in params.items():
        if hasattr(v, "seconds") and hasattr(v, "text"):
            out[k] = str(v)
        else:
            out[k] = v
    return out


def record(timeline: Any, event: str, **data: object) -> Any:
    """``timeline.record(event, **data)`` with the fault's ``kind`` sent as ``fault_kind``.

    An event's own kind is ``fault.inject`` etc.; the fault kind rides beside it under
    another name so neither shadows the other (see ``Timeline.record``).
    """
    if "kind" in data:
        data[FAULT_KIND] = data.pop("kind")
    return timeline.record(event, **data)
