"""New workload connections spread over a cluster's TiDBs (round robin, with failover).

Shared by the ``ha_workload`` fixture and the case runner, so both open
connections the same way; kept apart from the fixture module so the runner
needs no pytest glue for it.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Protocol

from .sysbench import Connection
from .target import WORKLOAD_READ_TIMEOUT, Target

__all__ = ["RoundRobin", "round_robin_factory", "target_of"]


def target_of(client: Any, read_timeout: float | None = WORKLOAD_READ_TIMEOUT
              ) -> Target | None:
    """Every TiDB of ``client`` (a ``TiDBClient``) as a :class:`Target`; None without
    endpoints. The run's read timeout is the workload's, not the client's."""
    endpoints = getattr(client, "endpoints", None)
    if not endpoints:
        return None
    return Target.of(endpoints, user=str(getattr(client, "user", "root")),
                     password=str(getattr(client, "password", "") or ""),
                     connect_timeout=float(getattr(client, "connect_timeout", 3.0)),
                     read_timeout=read_timeout or WORKLOAD_READ_TIMEOUT)


class _Connects(Protocol):
    """What :class:`RoundRobin` needs of the cluster client (``TiDBClient.connect``)."""

    def connect(self, node: str | None = None, database: str | None = None,
                read_timeout: float | None = None) -> Connection: ...


class RoundRobin:
    """New connections spread over the TiDB nodes, failing over when one is down.

    Like ``sysbench --mysql-host=a,b``: each new connection goes to the next
    node; if that node does not answer, ``client.connect()`` picks any that does.
    ``target`` carries the endpoints themselves, for the run (either driver).
    """

    def __init__(self, client: Any, read_timeout: float | None) -> None:
        self.client: _Connects = client
        self.read_timeout = read_timeout
        self.nodes = sorted(getattr(client, "endpoints", {}) or {})
        self.target = target_of(client, read_timeout)
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def __call__(self) -> Connection:
        if len(self.nodes) < 2:
            return self.client.connect(read_timeout=self.read_timeout)
        with self._lock:
            node = self.nodes[next(self._counter) % len(self.nodes)]
        try:
            return self.client.connect(node=node, read_timeout=self.read_timeout)
        except Exception:  # noqa: BLE001 - any failure on the chosen node: any node will do
            return self.client.connect(read_timeout=self.read_timeout)


def round_robin_factory(client: Any, read_timeout: float | None = WORKLOAD_READ_TIMEOUT
                        ) -> RoundRobin:
    """A :class:`RoundRobin` over ``client``'s TiDBs (``read_timeout`` None: the client's)."""
    return RoundRobin(client, read_timeout)
