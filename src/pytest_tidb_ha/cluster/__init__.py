"""The cluster layer: topology → containers, start/readiness/stop, roles, SQL client.

Public names (docs/contracts.md "cluster package"): :class:`Cluster`, :class:`Node`,
:class:`TiDBClient`, :class:`SQLError`, :class:`ClusterSettings`, ``render_specs``,
``start_cluster`` / ``stop_cluster`` (``lifecycle``), ``roles.*``.
"""

from __future__ import annotations

from .client import SQLError, TiDBClient, TiDBUnavailable
from .handle import Cluster, Node
from .specs import ClusterSettings, ContainerSpec, render_specs

__all__ = [
    "Cluster",
    "ClusterSettings",
    "ContainerSpec",
    "Node",
    "SQLError",
    "TiDBClient",
    "TiDBUnavailable",
    "render_specs",
]
