"""Remove what earlier runs left behind (crash, SIGKILL, pytest-timeout's thread method).

Every resource carries ``org.pytest-tidb-ha.pid`` and ``.host``. At session start we
remove containers, networks and volumes whose owning process is gone: same host and
``os.kill(pid, 0)`` says no such process. Resources of live processes (other sessions,
other xdist workers) and of ``--ha-keep-cluster`` runs are never touched; resources of
another host are never touched either (we cannot tell whether their owner lives).
Ryuk would not do this for us: see reference/tidb-containers.md §5.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..procs import process_alive
from .lifecycle import remove_network, remove_volume
from .specs import LABEL_HOST, LABEL_KEEP, LABEL_PID, LABEL_PLUGIN, PLUGIN_NAME

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger("pytest_tidb_ha.cluster")


def pid_alive(pid: int) -> bool:
    """True unless the process certainly does not exist (EPERM means it does)."""
    if pid <= 0:
        return True  # unknown: be safe
    return process_alive(pid)


def is_stale(labels: Mapping[str, str], *, host: str,
             alive: Callable[[int], bool] = pid_alive) -> bool:
    """Pure decision: a labelled resource whose owner (pid on this host) is gone."""
    if labels.get(LABEL_PLUGIN) != PLUGIN_NAME:
        return False
    if labels.get(LABEL_KEEP) == "true":
        return False
    if labels.get(LABEL_HOST) != host:
        return False
    try:
        pid = int(labels.get(LABEL_PID, ""))
    except ValueError:
        return False
    return not alive(pid)


@dataclass
class Reaped:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.containers or self.networks or self.volumes)

    def __str__(self) -> str:
        return (f"{len(self.containers)} container(s), {len(self.networks)} network(s), "
                f"{len(self.volumes)} volume(s)")


def _name(obj: object) -> str:
    """Name of a container/network/volume, also for sparse container listings."""
    attrs = getattr(obj, "attrs", {}) or {}
    if attrs.get("Names"):
        return str(attrs["Names"][0]).lstrip("/")
    return str(attrs.get("Name") or getattr(obj, "id", "?"))


def _labels(obj: object) -> Mapping[str, str]:
    attrs = getattr(obj, "attrs", {}) or {}
    labels = attrs.get("Labels")
    if labels is None:
        labels = (attrs.get("Config") or {}).get("Labels")
    return labels or {}


def reap_stale(docker: DockerClient, *, host: str | None = None,
               alive: Callable[[int], bool] = pid_alive) -> Reaped:
    """Remove every stale labelled container, then networks, then volumes."""
    host = host or socket.gethostname()
    flt: dict[str, str | list[str] | bool] = {"label": [f"{LABEL_PLUGIN}={PLUGIN_NAME}"]}
    reaped = Reaped()

    def stale(what: str, list_them: Callable[[], Iterable[object]]) -> list[object]:
        """The stale ones of *what*; none (with a warning) when the engine cannot list them."""
        try:
            return [o for o in list_them() if is_stale(_labels(o), host=host, alive=alive)]
        except Exception as exc:  # noqa: BLE001 - reaping is best effort
            log.warning("reaper: cannot list %s: %s", what, exc)
            return []

    # sparse: no per-container inspect, which fails when another session removes one
    # of its containers between the list and the inspect.
    for c in stale("containers",
                   lambda: docker.containers.list(all=True, filters=flt, sparse=True)):
        try:
            c.remove(force=True, v=True)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - keep reaping the rest
            log.warning("reaper: cannot remove container %s: %s", _name(c), exc)
            continue
        reaped.containers.append(_name(c))
    # Networks and volumes only after the containers that hold them; the removers retry
    # "in use" and log instead of raising.
    for n in stale("networks", lambda: docker.networks.list(filters=flt)):
        remove_network(docker, _name(n))
        reaped.networks.append(_name(n))
    for v in stale("volumes", lambda: docker.volumes.list(filters=flt)):
        remove_volume(docker, _name(v))
        reaped.volumes.append(_name(v))
    if reaped:
        log.warning("reaper: removed leftovers of dead runs: %s (%s)", reaped,
                    ", ".join(reaped.containers + reaped.networks + reaped.volumes))
    return reaped
