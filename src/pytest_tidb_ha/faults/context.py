"""What an injector needs to touch one cluster: containers, IPs, a netns runner, its tag."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

from ..cluster.protocol import ClusterLike
from .ledger import Tag
from .netns import FaultExecError, NetnsRunner, Result
from .netns import check as check_result

log = logging.getLogger("pytest_tidb_ha.faults")


class UnsupportedFault(RuntimeError):
    """This fault cannot be applied in this environment (the message says why)."""


def _not_found(exc: Exception) -> bool:
    return type(exc).__name__ in ("NotFound", "ImageNotFound")


def container_of(cluster: ClusterLike, name: str) -> Any:
    """The docker container of node ``name`` (the handle looks it up: fresh attributes)."""
    return cluster.container(name)


def container_ip(container: Any, network: str | None) -> str | None:
    """The container's IP on ``network`` (or its only network) right now."""
    nets = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    if network and network in nets:
        return nets[network].get("IPAddress") or None
    ips = [n.get("IPAddress") for n in nets.values() if n.get("IPAddress")]
    return ips[0] if len(ips) == 1 else None


def _network_ips(docker: Any, network: str | None) -> dict[str, str]:
    """``{container id: IP}`` of every container on ``network`` (one API call; {} on error)."""
    if docker is None or not network:
        return {}
    try:
        info = docker.api.inspect_network(network)
    except Exception as exc:  # noqa: BLE001 - the per-container path still works
        log.debug("network inspect %s failed: %s", network, exc)
        return {}
    out: dict[str, str] = {}
    for cid, entry in (info.get("Containers") or {}).items():
        addr = str((entry or {}).get("IPv4Address") or "").split("/")[0]
        if addr:
            out[cid] = addr
    return out


@dataclass
class FaultContext:
    """One fault window's view of the cluster; built by the nemesis per window."""

    cluster: ClusterLike
    runner: NetnsRunner
    tag: Tag
    #: this window's own generator (seeded from --ha-seed and the fault id): shapes, picks
    rng: random.Random = field(default_factory=lambda: random.Random(0))  # noqa: S311 - a seeded schedule, not a secret
    #: kept by the nemesis across windows (long-lived helpers), closed at its stop;
    #: None: a fault used alone owns what it starts and stops it at heal
    shared: dict[str, Any] | None = None
    _ifaces: dict[str, str] = field(default_factory=dict)
    _containers: dict[str, Any] = field(default_factory=dict)

    def container(self, node: str) -> Any:
        """The node's container object (callers ``reload()`` when they need its state).

        Looked up once per run and container (kept in :attr:`shared`): a window's apply
        spends no Docker call on finding containers it already knows.
        """
        c = self._containers.get(node)
        if c is None:
            cid = next((n.container_id for n in self.cluster.nodes if n.name == node), None)
            known: dict[str, Any] = (self.shared.setdefault("containers", {})
                                     if self.shared is not None else {})
            key = f"{node}:{cid}"
            c = known.get(key) if cid else None
            if c is None:
                c = container_of(self.cluster, node)
                if cid:
                    known[key] = c
            self._containers[node] = c
        return c

    def forget(self, node: str) -> None:
        """Drop what is cached about ``node`` (it restarted: new pid, maybe new interface)."""
        self._ifaces.pop(node, None)

    def ips(self) -> dict[str, str]:
        """IP of every node on the cluster network (restarts move IPs).

        One ``network inspect`` answers for every container at once; a node it does not
        list is read from its own container (or the handle) as before. Kept for the run
        while no node's network namespace changed (see :meth:`_namespaces`).
        """
        stamp = self._namespaces()
        cached = (self.shared or {}).get("ips")
        if stamp is not None and cached is not None and cached[0] == stamp:
            return dict(cached[1])
        out: dict[str, str] = {}
        network = self.cluster.network_name
        by_id = _network_ips(self.cluster.docker, network)
        for node in self.cluster.nodes:
            ip: str | None = None
            cid = node.container_id
            if cid and cid in by_id:
                ip = by_id[cid]
            if ip is None:
                try:
                    c = self.container(node.name)
                    c.reload()
                    ip = container_ip(c, network)
                except Exception as exc:  # noqa: BLE001 - fall back to what the handle knows
                    log.debug("no live IP for %s: %s", node.name, exc)
            ip = ip or node.ip
            if ip:
                out[node.name] = ip
        if stamp is not None and self.shared is not None:
            self.shared["ips"] = (stamp, dict(out))
        return out

    def _namespaces(self) -> tuple[str, ...] | None:
        """Every node's network namespace right now, when the runner can tell without an
        API call (nsenter: a ``readlink`` each): the IPs read for the same namespaces are
        still right, so a window reuses them. None: read the IPs from Docker."""
        if self.shared is None or not getattr(self.runner, "cheap_namespace_key", False):
            return None
        try:
            return tuple(f"{n.name}={self.runner.namespace_key(self.container(n.name))}"
                         for n in self.cluster.nodes)
        except Exception as exc:  # noqa: BLE001 - Docker answers instead
            log.debug("namespace keys unavailable: %s", exc)
            return None

    def exec(self, node: str, script: str, what: str, *, missing_ok: bool = False,
             check: bool = True, timeout: float | None = None) -> Result:
        """Run ``script`` in ``node``'s network namespace; raise with its output on failure.

        ``missing_ok``: a node whose container is gone or stopped counts as done (its
        namespace, and every rule or qdisc in it, went with it) -- used by heal.
        """
        try:
            c = self.container(node)
            # missing_ok: no status check first (an API call per heal): a runner raises
            # FaultExecError for a container that is not running, checked below
            result = (self.runner.run(c, script) if timeout is None
                      else self.runner.run(c, script, timeout=timeout))
        except FaultExecError:
            if missing_ok and not self._running(node):
                return Result(0, f"{node} stopped: nothing to heal")
            raise
        except Exception as exc:
            if missing_ok and _not_found(exc):
                return Result(0, f"{node} is gone: nothing to heal")
            raise
        return check_result(result, what, c) if check else result

    def _running(self, node: str) -> bool:
        try:
            c = self.container(node)
            c.reload()
            return bool(c.status in ("running", "paused"))
        except Exception:  # noqa: BLE001
            return False

    def iface(self, node: str, ip: str, *, missing_ok: bool = False) -> str | None:
        """The interface holding ``ip`` inside ``node`` (cached per window)."""
        from .network import iface_for_ip

        if node in self._ifaces:
            return self._ifaces[node]
        key = f"iface:{node}:{ip}"  # the same address in the same cluster: the same interface
        if self.shared is not None and key in self.shared:
            self._ifaces[node] = self.shared[key]
            return str(self.shared[key])
        result = self.exec(node, "ip -o -4 addr show", "ip addr", missing_ok=missing_ok)
        dev = iface_for_ip(result.output, ip)
        if dev is None:
            if missing_ok:
                return None
            raise FaultExecError(f"no interface of {node} has {ip}: {result.output.strip()}")
        self._ifaces[node] = dev
        if self.shared is not None:
            self.shared[key] = dev
        return dev
