"""One cluster per (topology, images, env), started on first use and reused by later tests.

A cluster costs tens of seconds to start, so the session keeps it; tests get isolation
from their own database instead. Before a reused cluster is handed out it must be whole
again (every container running, PD healthy, stores Up, TiDBs answering); a cluster that
cannot recover is replaced. At most ``max_clusters`` live at once (small machines):
the least recently used one is stopped first.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..scenario.model import Topology
from .engines import Engine, EngineLease, engine_client
from .handle import Cluster
from .lifecycle import (
    ClusterStartError,
    DockerUnavailable,
    docker_client,
    start_cluster,
    stop_cluster,
    wait_ready,
)
from .reaper import reap_stale
from .specs import ClusterSettings

if TYPE_CHECKING:
    from collections.abc import Mapping

    from docker import DockerClient

log = logging.getLogger("pytest_tidb_ha.cluster")


class ClusterPool:
    """Session-wide owner of the clusters (``tidb_cluster_pool`` fixture)."""

    def __init__(
        self,
        base: ClusterSettings,
        *,
        docker_factory: Callable[[], DockerClient] = docker_client,
        max_clusters: int = 2,
        reuse_timeout: float = 60.0,
        reap: bool = True,
        engines: Sequence[str] = (),
        lock_dir: Path | None = None,
        engine_factory: Callable[[str], DockerClient] = engine_client,
    ) -> None:
        self.base = base
        self._docker_factory = docker_factory
        self._engines = tuple(engines)
        self._lease = EngineLease(engines, lock_dir=lock_dir, worker=base.worker) if engines else None
        self._engine_factory = engine_factory
        self.engine: Engine | None = None
        self._docker: DockerClient | None = None
        self._docker_error: DockerUnavailable | None = None
        self._clusters: OrderedDict[str, Cluster] = OrderedDict()
        self._lock = threading.Lock()
        self.max_clusters = max(1, max_clusters)
        self.reuse_timeout = reuse_timeout
        self._reap = reap

    # -- engine --------------------------------------------------------------------
    def docker(self) -> DockerClient:
        """The engine client (pinged once; the failure is remembered, one line)."""
        if self._docker is not None:
            return self._docker
        if self._docker_error is not None:
            raise self._docker_error
        try:
            if self._lease is not None:
                self.engine = Engine(self._lease.acquire())
                self._docker = self._engine_factory(self.engine.url)
            else:
                self._docker = self._docker_factory()
        except DockerUnavailable as exc:
            self._docker_error = exc
            raise
        if self._reap:
            self._reap_all(self._docker)
        return self._docker

    def _reap_all(self, mine: DockerClient) -> None:
        """Remove dead runs' leftovers on this engine and on every other one given."""
        reap_stale(mine, host=self.base.host)
        for url in self._engines:
            if self.engine is not None and url == self.engine.url:
                continue
            try:
                other = self._engine_factory(url)
            except DockerUnavailable as exc:
                log.warning("reaper: skipping engine %s: %s", url, exc)
                continue
            try:
                reap_stale(other, host=self.base.host)
            finally:
                other.close()

    def on_engine(self, settings: ClusterSettings) -> ClusterSettings:
        """``settings`` for the engine this pool uses (ports, address, import folder)."""
        if self.engine is None:
            return settings
        changes: dict[str, object] = {"engine": self.engine.url,
                                      "publish_ip": self.engine.publish_ip,
                                      "address": self.engine.address}
        if not self.engine.on_this_machine:
            changes["import_dir"] = None  # a local folder the remote engine cannot mount
        return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]

    # -- clusters ------------------------------------------------------------------
    def settings_for(self, topology: Topology, *, images: Mapping[str, str] | None = None,
                     env: Mapping[str, Mapping[str, str]] | None = None) -> ClusterSettings:
        changes: dict[str, object] = {"topology": topology}
        if images is not None:
            changes["images"] = images
        if env is not None:
            changes["env"] = env
        return dataclasses.replace(self.base, **changes)  # type: ignore[arg-type]

    def get(self, settings: ClusterSettings) -> Cluster:
        """A ready cluster for *settings* (started, or reused after a readiness check)."""
        with self._lock:
            docker = self.docker()
            settings = self.on_engine(settings)
            key = settings.cluster_name
            cluster = self._clusters.get(key)
            if cluster is not None:
                try:
                    self._revive(cluster)
                    self._clusters.move_to_end(key)
                    return cluster
                except ClusterStartError as exc:
                    log.warning("cluster %s did not recover; replacing it: %s", key,
                                str(exc).splitlines()[0])
                    self._clusters.pop(key)
                    stop_cluster(cluster)
            while len(self._clusters) >= self.max_clusters:
                _, old = self._clusters.popitem(last=False)
                log.info("cluster pool: stopping %s to make room for %s", old.name, key)
                stop_cluster(old, keep=settings.keep)
            cluster = start_cluster(settings, docker)
            self._clusters[key] = cluster
            return cluster

    def _revive(self, cluster: Cluster) -> None:
        """Start stopped/paused containers (a test may have failed mid-fault), then wait."""
        for node in cluster.nodes:
            try:
                container = cluster.container(node.name)
                status = container.status
                if status == "paused":
                    log.warning("cluster %s: %s was left paused; unpausing", cluster.name, node.name)
                    container.unpause()
                elif status != "running":
                    log.warning("cluster %s: %s was left %s; starting it", cluster.name, node.name,
                                status)
                    cluster.start_node(node.name)
            except Exception as exc:
                raise ClusterStartError(f"cluster {cluster.name}: cannot revive {node.name}: {exc}") from exc
        wait_ready(cluster, timeout=self.reuse_timeout, interval=self.base.poll_interval)

    @property
    def clusters(self) -> list[Cluster]:
        return list(self._clusters.values())

    def close(self) -> None:
        """Stop every cluster (``keep``: leave them running and say how to reach them)."""
        with self._lock:
            while self._clusters:
                _, cluster = self._clusters.popitem(last=False)
                try:
                    stop_cluster(cluster, keep=self.base.keep)
                except Exception as exc:  # noqa: BLE001 - keep stopping the others
                    log.warning("cluster %s: teardown failed: %s", cluster.name, exc)
            if self._lease is not None:
                self._lease.release()
