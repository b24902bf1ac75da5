"""What every layer may ask of a cluster handle: the one seam, as Protocols.

The fault engine, the job watcher, the diagnostics, the role lookups and the
workload fixture all take a cluster; they take it as :class:`ClusterLike`, never
as the concrete :class:`~pytest_tidb_ha.cluster.handle.Cluster` and never as
``Any`` probed with ``getattr``. So a reader sees in one place what a cluster
must offer, mypy checks that :class:`Cluster` offers it, and a test can hand in
a small fake that implements only what its code path calls.

Capabilities a cluster may lack are *values* of the protocol, not missing
attributes: an attached cluster (``--tidb-dsn``) has ``docker`` None,
``can_control_nodes`` False and ``import_dir`` None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .client import TiDBClient

__all__ = ["ClusterLike", "NodeLike"]


class NodeLike(Protocol):
    """One member of the cluster (``pd-0``, ``tikv-1``, ``tidb-0``)."""

    @property
    def name(self) -> str: ...
    @property
    def component(self) -> str: ...
    @property
    def container_id(self) -> str | None: ...
    @property
    def ip(self) -> str | None: ...


@runtime_checkable
class ClusterLike(Protocol):
    """A running or attached cluster, as the faults, jobs and workload layers use it."""

    @property
    def nodes(self) -> Sequence[NodeLike]: ...
    @property
    def docker(self) -> Any:
        """The Docker client that owns the containers; None when attached."""
    @property
    def network_name(self) -> str | None: ...
    @property
    def labels(self) -> Mapping[str, str]:
        """The labels of every resource of the run (the reaper's key)."""
    @property
    def can_control_nodes(self) -> bool:
        """False when attached: no container to kill, pause or partition."""
    @property
    def database(self) -> str | None:
        """The test's own database (None: the test names one)."""
    @property
    def import_dir(self) -> Path | None:
        """Host folder every TiDB reads IMPORT INTO data from (None when attached)."""

    def client(self, **kwargs: Any) -> TiDBClient:
        """A failover SQL client over every TiDB (kwargs: timeouts, user, database)."""
    def pd_urls(self) -> list[str]: ...
    def status_urls(self, component: str) -> dict[str, str]: ...
    def node_of_address(self, address: str) -> str | None: ...
    def container(self, node: str) -> Any:
        """The docker-py container of *node* (raises when attached)."""
    def logs(self, node: str, tail: int = 200) -> str: ...
    def refresh(self, names: Iterable[str] | None = None) -> None:
        """Re-read addresses of restarted nodes."""
