"""Attach mode (``--tidb-dsn`` [+ ``--tidb-pd-url``]): describe a cluster we did not start.

Nothing is started or stopped; ``can_control_nodes`` is False, so faults that need
containers are skipped by the fault layer. The TiDB status port is assumed to be the
default 10080 on the DSN host (there is no way to ask TiDB for it over SQL before
``/info`` is reachable); roles still work through SQL (``ADMIN SHOW DDL``).
"""

from __future__ import annotations

from types import MappingProxyType
from urllib.parse import unquote, urlsplit

from .handle import Cluster, Node
from .specs import PD_CLIENT_PORT, TIDB_PORT, TIDB_STATUS_PORT


class AttachError(ValueError):
    """A DSN or PD URL that cannot be used; the message names the bad value."""


def parse_dsn(dsn: str) -> tuple[str, int, str, str, str | None]:
    """``mysql://user:password@host:port/db`` → (host, port, user, password, db)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("mysql", "tidb") or not parts.hostname:
        raise AttachError(f"--tidb-dsn must look like mysql://user[:password]@host[:port][/db], "
                          f"got {parts.scheme}://{parts.hostname or ''}...")
    try:
        port = parts.port or TIDB_PORT
    except ValueError as exc:
        raise AttachError(f"--tidb-dsn has a bad port: {exc}") from None
    user = unquote(parts.username or "root")
    password = unquote(parts.password or "")
    db = parts.path.lstrip("/") or None
    return parts.hostname, port, user, password, db


def attach_cluster(dsn: str, pd_url: str | None = None, *, name: str = "attached") -> Cluster:
    host, port, user, password, db = parse_dsn(dsn)
    nodes = [Node("tidb-0", "tidb", host_ports=MappingProxyType(
        {TIDB_PORT: port, TIDB_STATUS_PORT: TIDB_STATUS_PORT}), host=host)]
    if pd_url:
        pd = urlsplit(pd_url if "://" in pd_url else f"http://{pd_url}")
        if not pd.hostname:
            raise AttachError(f"--tidb-pd-url must look like http://host:2379, got {pd_url!r}")
        nodes.append(Node("pd-0", "pd", host_ports=MappingProxyType(
            {PD_CLIENT_PORT: pd.port or PD_CLIENT_PORT}), host=pd.hostname))
    return Cluster(name, nodes, user=user, password=password, database=db)
