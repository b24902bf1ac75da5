"""The live cluster handle every other layer receives (``tidb_cluster`` fixture).

It only *describes* a running cluster (nodes, their host ports, Docker objects) and
offers small node operations; starting and stopping live in ``lifecycle``. In attach
mode (``--tidb-dsn``) there are no containers: ``can_control_nodes`` is False and the
fault layer skips faults that need them.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from .client import TiDBClient
from .specs import (
    HOST_IP,
    PD_CLIENT_PORT,
    TIDB_PORT,
    TIDB_STATUS_PORT,
    TIKV_STATUS_PORT,
    ClusterSettings,
)

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

log = logging.getLogger("pytest_tidb_ha.cluster")

_STATUS_PORTS = {"pd": PD_CLIENT_PORT, "tikv": TIKV_STATUS_PORT, "tidb": TIDB_STATUS_PORT}


@dataclass(frozen=True)
class Node:
    """One cluster member. ``host_ports`` maps container port → host port on 127.0.0.1.

    ``ip`` is the container's address on the cluster network (None in attach mode), so
    addresses that TiDB/PD report (``10.x.y.z:4000``) can be mapped back to a node.
    """

    name: str
    component: str
    container_id: str | None = None
    host_ports: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))
    ip: str | None = None
    host: str = HOST_IP  # where the published ports listen (attach: the DSN/PD host)

    def url(self, container_port: int) -> str:
        return f"http://{self.host}:{self.host_ports[container_port]}"


def node_of_address(address: str, nodes: Iterable[Node]) -> str | None:
    """``tikv-1:20160`` / ``http://pd-0:2379`` / ``172.18.0.5:4000`` → node name."""
    host = urlsplit(address).hostname if "://" in address else address.rsplit(":", 1)[0]
    host = (host or "").strip("[]")
    for node in nodes:
        if host == node.name or (node.ip is not None and host == node.ip):
            return node.name
    return None


class Cluster:
    """A running (or attached) cluster. Shared by all tests that use the same topology.

    ``database`` is the per-test database (set by the ``tidb_cluster`` fixture on a view
    made by :meth:`with_database`); views share the node table, so a restart seen through
    one view is seen through all.
    """

    def __init__(
        self,
        name: str,
        nodes: Iterable[Node],
        *,
        docker: DockerClient | None = None,
        network_name: str | None = None,
        labels: Mapping[str, str] | None = None,
        settings: ClusterSettings | None = None,
        user: str = "root",
        password: str = "",
        database: str | None = None,
        volumes: Iterable[str] = (),
    ) -> None:
        self.name = name
        self._nodes: dict[str, Node] = {n.name: n for n in nodes}
        self._nodes_lock = threading.Lock()
        self.docker = docker
        self.network_name = network_name
        self.labels: Mapping[str, str] = MappingProxyType(dict(labels or {}))
        self.settings = settings
        self.user = user
        self.password = password
        self.database = database
        self.volumes: tuple[str, ...] = tuple(volumes)

    def __repr__(self) -> str:
        return f"Cluster({self.name!r}, {self.describe()})"

    # -- description -------------------------------------------------------------------
    @property
    def can_control_nodes(self) -> bool:
        """False in attach mode: no container to kill, pause or partition."""
        return self.docker is not None and all(n.container_id for n in self.nodes)

    @property
    def nodes(self) -> list[Node]:
        with self._nodes_lock:
            return list(self._nodes.values())

    def nodes_of(self, component: str) -> list[Node]:
        return [n for n in self.nodes if n.component == component]

    def node(self, name: str) -> Node:
        with self._nodes_lock:
            try:
                return self._nodes[name]
            except KeyError:
                raise KeyError(f"no node {name!r} in cluster {self.name} "
                               f"(have {sorted(self._nodes)})") from None

    def node_of_address(self, address: str) -> str | None:
        return node_of_address(address, self.nodes)

    @property
    def import_dir(self) -> Path | None:
        """Host folder mounted read-only at ``/import`` in every TiDB (None when attached)."""
        return self.settings.import_dir if self.settings is not None else None

    def describe(self) -> str:
        """``pd=3,tikv=3,tidb=2 images=...`` for report headers."""
        counts = {c: len(self.nodes_of(c)) for c in ("pd", "tikv", "tidb")}
        text = ",".join(f"{c}={n}" for c, n in counts.items())
        if self.settings is not None:
            images = sorted(set(self.settings.images.values()))
            text += " images=" + ",".join(images)
        else:
            text += " (attached)"
        return text

    def pd_urls(self) -> list[str]:
        """``http://127.0.0.1:<port>`` per PD (host side)."""
        return [n.url(PD_CLIENT_PORT) for n in self.nodes_of("pd") if PD_CLIENT_PORT in n.host_ports]

    def status_urls(self, component: str) -> dict[str, str]:
        """Host-side HTTP base URL per node: PD client port, TiKV 20180, TiDB 10080."""
        port = _STATUS_PORTS[component]
        return {n.name: n.url(port) for n in self.nodes_of(component) if port in n.host_ports}

    def sql_endpoints(self) -> dict[str, tuple[str, int]]:
        """Host-side ``(host, port)`` per TiDB node."""
        return {
            n.name: (n.host, n.host_ports[TIDB_PORT])
            for n in self.nodes_of("tidb")
            if TIDB_PORT in n.host_ports
        }

    def client(self, **kwargs: Any) -> TiDBClient:
        """A failover client over every TiDB (kwargs: TiDBClient timeouts, user, database)."""
        kwargs.setdefault("user", self.user)
        kwargs.setdefault("password", self.password)
        kwargs.setdefault("database", self.database)
        return TiDBClient(self.sql_endpoints(), **kwargs)

    def dsn(self, node: str | None = None, database: str | None = None) -> str:
        """``mysql://user[:password]@127.0.0.1:<port>/<db>`` of one TiDB."""
        endpoints = self.sql_endpoints()
        name = node or sorted(endpoints)[0]
        host, port = endpoints[name]
        auth = quote(self.user, safe="") + (f":{quote(self.password, safe='')}" if self.password else "")
        db = database if database is not None else (self.database or "")
        return f"mysql://{auth}@{host}:{port}/{db}"

    def with_database(self, database: str | None) -> Cluster:
        """A view of the same cluster whose clients default to *database*."""
        view = object.__new__(Cluster)
        view.__dict__.update(self.__dict__)
        view.database = database
        return view

    # -- Docker access -----------------------------------------------------------------
    def _require_docker(self) -> DockerClient:
        if self.docker is None:
            raise RuntimeError(f"cluster {self.name} is attached (--tidb-dsn): no containers to control")
        return self.docker

    def container(self, node: str) -> Container:
        """The docker-py Container of *node* (fresh attributes)."""
        docker = self._require_docker()
        cid = self.node(node).container_id
        if cid is None:
            raise RuntimeError(f"node {node} has no container")
        return docker.containers.get(cid)

    def logs(self, node: str, tail: int = 200) -> str:
        """The last *tail* lines of *node*'s output (stdout+stderr), '' when unavailable."""
        if self.docker is None:
            return ""
        try:
            raw = self.container(node).logs(tail=tail, timestamps=False)
        except Exception as exc:  # noqa: BLE001 - logs are diagnostics, never fatal
            return f"<logs of {node} unavailable: {exc}>"
        return raw.decode("utf-8", "replace")

    def state(self, node: str) -> str:
        """Docker status (running, exited, paused, ...) or 'attached'."""
        if self.docker is None:
            return "attached"
        try:
            c = self.container(node)
        except Exception as exc:  # noqa: BLE001
            return f"unknown ({exc})"
        st = c.attrs.get("State", {})
        if st.get("Status") == "exited":
            return f"exited({st.get('ExitCode')})"
        return str(st.get("Status", c.status))

    def refresh(self, names: Iterable[str] | None = None) -> None:
        """Re-read container IPs and host ports (they can change when Docker restarts one)."""
        docker = self._require_docker()
        for name in list(names) if names is not None else [n.name for n in self.nodes]:
            current = self.node(name)
            if current.container_id is None:
                continue
            attrs = docker.containers.get(current.container_id).attrs
            ports = dict(current.host_ports)
            ports.update(host_ports_from_attrs(attrs))
            ip = container_ip(attrs, self.network_name) or current.ip
            with self._nodes_lock:
                self._nodes[name] = dataclasses.replace(
                    current, host_ports=MappingProxyType(ports), ip=ip
                )

    # -- node operations (fault injectors build on these) ------------------------------
    def stop_node(self, node: str, timeout: int = 10) -> None:
        self.container(node).stop(timeout=timeout)

    def kill_node(self, node: str, signal: str = "SIGKILL") -> None:
        self.container(node).kill(signal=signal)

    def start_node(self, node: str) -> None:
        self.container(node).start()
        self.refresh([node])

    def restart_node(self, node: str, timeout: int = 10) -> None:
        """Stop (SIGTERM, then SIGKILL after *timeout*) and start again; data is kept."""
        self.container(node).restart(timeout=timeout)
        self.refresh([node])


def host_ports_from_attrs(attrs: Mapping[str, Any]) -> dict[int, int]:
    """``{container port: host port}`` from a container's inspect data."""
    result: dict[int, int] = {}
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    for key, bindings in ports.items():
        if not bindings:
            continue
        cport = int(str(key).split("/", 1)[0])
        for b in bindings:
            if b.get("HostPort"):
                result[cport] = int(b["HostPort"])
                break
    if not result:
        # Before start (or when stopped) only the requested bindings are known.
        for key, bindings in ((attrs.get("HostConfig") or {}).get("PortBindings") or {}).items():
            for b in bindings or ():
                if b.get("HostPort"):
                    result[int(str(key).split("/", 1)[0])] = int(b["HostPort"])
                    break
    return result


def container_ip(attrs: Mapping[str, Any], network_name: str | None) -> str | None:
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    if network_name and network_name in networks:
        return networks[network_name].get("IPAddress") or None
    for net in networks.values():
        if net.get("IPAddress"):
            return str(net["IPAddress"])
    return None
