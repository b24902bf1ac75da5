"""Where a workload connects: every TiDB of the cluster and the credentials (pure).

Both drivers need the addresses themselves, not a connection factory: the
sysbench binary takes them as ``--mysql-host``/``--mysql-port`` lists, and the
Python driver opens its own non-blocking sockets (:mod:`.driver_python`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Read timeout of workload statements (seconds). An OLTP statement answers in
#: milliseconds; one that blocks this long is a fault's symptom, and counting it as an
#: error (2013) and reconnecting shows the fault in the metrics while it lasts.
WORKLOAD_READ_TIMEOUT = 5.0


@dataclass(frozen=True)
class Target:
    """TiDB endpoints ``(host, port)`` in node-name order, user and timeouts."""

    endpoints: tuple[tuple[str, int], ...]
    user: str = "root"
    password: str = ""
    connect_timeout: float = 3.0
    read_timeout: float = WORKLOAD_READ_TIMEOUT

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("a workload target needs at least one endpoint")

    def __repr__(self) -> str:  # never the password
        hosts = ",".join(f"{h}:{p}" for h, p in self.endpoints)
        return f"Target({hosts}, user={self.user!r})"

    @classmethod
    def of(cls, endpoints: Mapping[str, tuple[str, int]], **kw: Any) -> Target:
        """From a ``{node: (host, port)}`` map (``TiDBClient.endpoints``)."""
        return cls(tuple(endpoints[n] for n in sorted(endpoints)), **kw)

    def host_port_lists(self) -> tuple[list[str], list[int]] | None:
        """``(hosts, ports)`` whose product is exactly the endpoints, else None.

        sysbench pairs every ``--mysql-host`` with every ``--mysql-port``; a Docker
        cluster publishes its TiDBs on one host with several ports, which fits.
        """
        hosts = list(dict.fromkeys(h for h, _ in self.endpoints))
        ports = list(dict.fromkeys(p for _, p in self.endpoints))
        if len(hosts) * len(ports) != len(set(self.endpoints)):
            return None
        return hosts, ports
