"""Topology → container specs (pure: no Docker, no I/O).

Everything a container needs is decided here, so unit tests can compare the rendered
command lines with the reference lines (shared/reference/tidb-containers.md §1.5) and
the lifecycle module only has to carry the specs out.

Conventions (docs/contracts.md "Node naming"): node name = container hostname =
network alias = PD member name: ``pd-0``, ``tikv-0``, ``tidb-0``, ... The entry point
is set explicitly to the real images' ENTRYPOINT (``/pd-server``, ``/tikv-server``,
``/tidb-server``) so one stand-in image can play all three roles.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..options import (
    COMPONENTS,
    DEFAULT_KILL_MODE,
    DEFAULT_TIDB_VERSION,
    SUPERVISED_KILL_MODES,
    default_images,
)
from ..scenario.model import Topology
from .supervisor import check_mode, wrap

LABEL_PREFIX = "org.pytest-tidb-ha"
LABEL_PLUGIN = f"{LABEL_PREFIX}.plugin"
LABEL_RUN = f"{LABEL_PREFIX}.run"
LABEL_PID = f"{LABEL_PREFIX}.pid"
LABEL_HOST = f"{LABEL_PREFIX}.host"
LABEL_COMPONENT = f"{LABEL_PREFIX}.component"
LABEL_CLUSTER = f"{LABEL_PREFIX}.cluster"
LABEL_NODE = f"{LABEL_PREFIX}.node"
#: ``--ha-kill-mode`` a supervised node was started in (``silent``/``process``): the
#: kill fault reads it from the container, as it reads the supervisor from its entry point.
LABEL_KILL_MODE = f"{LABEL_PREFIX}.kill-mode"
#: Set on resources of a ``--ha-keep-cluster`` run: the reaper leaves them alone.
LABEL_KEEP = f"{LABEL_PREFIX}.keep"
PLUGIN_NAME = "pytest-tidb-ha"

ENTRYPOINTS: Mapping[str, str] = MappingProxyType(
    {"pd": "/pd-server", "tikv": "/tikv-server", "tidb": "/tidb-server"}
)

# Container ports (reference §1.2). Peer (2380) stays inside the cluster network.
PD_CLIENT_PORT = 2379
PD_PEER_PORT = 2380
TIKV_PORT = 20160
TIKV_STATUS_PORT = 20180
TIDB_PORT = 4000
TIDB_STATUS_PORT = 10080
PUBLISHED_PORTS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "pd": (PD_CLIENT_PORT,),
        "tikv": (TIKV_PORT, TIKV_STATUS_PORT),
        "tidb": (TIDB_PORT, TIDB_STATUS_PORT),
    }
)

DATA_ROOT = "/data"
#: Where each component's data volume is mounted; TiDB's (only for a case with
#: ``disk_full``) is its temp dir, where ingest sorts and IMPORT INTO stages data.
DATA_TARGETS: Mapping[str, str] = MappingProxyType(
    {"pd": DATA_ROOT, "tikv": DATA_ROOT, "tidb": "/tmp/tidb"})  # noqa: S108 - a path inside the tidb container
#: Label of the container that keeps a size-limited volume mounted: the node it serves.
LABEL_KEEPER_FOR = f"{LABEL_PREFIX}.keeper-for"
IMPORT_MOUNT = "/import"
CONFIG_PATHS: Mapping[str, str] = MappingProxyType(
    {"pd": "/pd.toml", "tikv": "/tikv.toml", "tidb": "/tidb.toml"}
)
#: Published ports bind to loopback only: a test cluster is never reachable from outside.
HOST_IP = "127.0.0.1"


@dataclass(frozen=True)
class ClusterSettings:
    """Everything that decides what a cluster looks like (one pool key per value).

    ``env`` maps a component (``pd``/``tikv``/``tidb``) to extra environment variables;
    our own conftest uses it for ``STANDIN_BUGS`` / ``STANDIN_TIME_SCALE``.
    ``entrypoints`` overrides the entry point per component (tests use it to simulate a
    component that exits at start-up); empty means the real images' entry points.
    """

    run_id: str
    topology: Topology = Topology()
    version: str = DEFAULT_TIDB_VERSION
    images: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(default_images(DEFAULT_TIDB_VERSION))
    )
    env: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    import_dir: Path | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    keep: bool = False
    name_prefix: str = "tidb-ha"
    worker: str | None = None  # pytest-xdist worker id (gw0, gw1, ...)
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    entrypoints: Mapping[str, Sequence[str]] = field(default_factory=lambda: MappingProxyType({}))
    #: Pull an image that is not present locally (False: fail at once with a clear message).
    pull_missing: bool = True
    startup_timeout: float = 180.0  # seconds per readiness stage
    poll_interval: float = 0.5
    #: Host IP the engine publishes ports on, and where they are reached from here
    #: (another host's name for a remote engine; see cluster/engines.py).
    publish_ip: str = HOST_IP
    address: str = HOST_IP
    engine: str | None = None  # --ha-docker-hosts URL of the engine; None: DOCKER_HOST/default
    #: ``{component: bytes}``: data volumes created with a size limit (a case with
    #: ``disk_full``, scenario.needs.disk_limits); TiDB's is its temp dir
    disk_limits: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    #: ``--ha-kill-mode``: ``silent`` and ``process`` run each server under the sh
    #: supervisor (cluster/supervisor.py), so a kill ends the process and the container
    #: stays; ``container``: the server is the container's PID 1
    kill_mode: str = DEFAULT_KILL_MODE

    def __post_init__(self) -> None:
        check_mode(self.kill_mode)
        missing = [c for c in COMPONENTS if c not in self.images]
        if missing:
            raise ValueError(f"ClusterSettings.images lacks {', '.join(missing)}")
        unknown = sorted(set(self.env) - set(COMPONENTS))
        if unknown:
            raise ValueError(f"ClusterSettings.env: unknown component(s) {', '.join(unknown)}")
        t = self.topology
        if min(t.pd, t.tikv, t.tidb) < 1:
            raise ValueError(f"topology needs at least one node per component, got {t}")

    @property
    def key(self) -> str:
        """A short digest of what makes two clusters different (topology, images, env)."""
        blob = json.dumps(
            {
                "topology": [self.topology.pd, self.topology.tikv, self.topology.tidb],
                "images": dict(sorted(self.images.items())),
                "env": {c: dict(sorted(v.items())) for c, v in sorted(self.env.items())},
                "entrypoints": {c: list(v) for c, v in sorted(self.entrypoints.items())},
                "import": str(self.import_dir) if self.import_dir else None,
                **({"disk": dict(sorted(self.disk_limits.items()))} if self.disk_limits else {}),
                **({"kill": self.kill_mode} if self.kill_mode != "container" else {}),
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:6]

    @property
    def cluster_name(self) -> str:
        """Docker-safe, unique per run, worker and key; prefix of every resource name."""
        t = self.topology
        parts = [self.name_prefix, self.run_id]
        if self.worker:
            parts.append(self.worker)
        parts.append(f"{t.pd}-{t.tikv}-{t.tidb}-{self.key}")
        return "-".join(parts)

    def base_labels(self) -> dict[str, str]:
        """Labels every resource of this cluster carries (the reaper reads pid + host)."""
        labels = {
            **self.labels,
            LABEL_PLUGIN: PLUGIN_NAME,
            LABEL_RUN: self.run_id,
            LABEL_PID: str(self.pid),
            LABEL_HOST: self.host,
            LABEL_CLUSTER: self.cluster_name,
        }
        if self.keep:
            labels[LABEL_KEEP] = "true"
        return labels


@dataclass(frozen=True)
class VolumeMount:
    """A named Docker volume (created with labels) mounted into a container."""

    volume: str
    target: str
    read_only: bool = False
    #: a size-limited tmpfs volume of this many bytes (disk_full), kept mounted by a
    #: keeper container so the node's data survives its own kill; None: a plain volume
    size: int | None = None


@dataclass(frozen=True)
class BindMount:
    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class ContainerSpec:
    """One container, fully decided: lifecycle only carries it out."""

    node: str  # pd-0, tikv-1, ...; also hostname and network alias
    component: str
    container_name: str
    image: str
    entrypoint: tuple[str, ...]
    command: tuple[str, ...]
    env: Mapping[str, str]
    ports: tuple[int, ...]  # container ports published on 127.0.0.1 (random host ports)
    volumes: tuple[VolumeMount, ...]
    binds: tuple[BindMount, ...]
    files: Mapping[str, str]  # container path -> content, copied in before start
    labels: Mapping[str, str]


def node_names(component: str, count: int) -> list[str]:
    return [f"{component}-{i}" for i in range(count)]


def pd_endpoints(topology: Topology) -> str:
    """``pd-0:2379,pd-1:2379,...`` (TiDB ``--path``, TiKV ``--pd-endpoints``: no scheme)."""
    return ",".join(f"{n}:{PD_CLIENT_PORT}" for n in node_names("pd", topology.pd))


def pd_command(name: str, topology: Topology) -> tuple[str, ...]:
    initial = ",".join(f"{n}=http://{n}:{PD_PEER_PORT}" for n in node_names("pd", topology.pd))
    return (
        f"--name={name}",
        f"--data-dir={DATA_ROOT}/{name}",
        f"--client-urls=http://0.0.0.0:{PD_CLIENT_PORT}",
        f"--advertise-client-urls=http://{name}:{PD_CLIENT_PORT}",
        f"--peer-urls=http://0.0.0.0:{PD_PEER_PORT}",
        f"--advertise-peer-urls=http://{name}:{PD_PEER_PORT}",
        f"--initial-cluster={initial}",
        f"--config={CONFIG_PATHS['pd']}",
    )


def tikv_command(name: str, topology: Topology) -> tuple[str, ...]:
    return (
        f"--addr=0.0.0.0:{TIKV_PORT}",
        f"--advertise-addr={name}:{TIKV_PORT}",
        f"--status-addr=0.0.0.0:{TIKV_STATUS_PORT}",
        f"--advertise-status-addr={name}:{TIKV_STATUS_PORT}",
        f"--pd-endpoints={pd_endpoints(topology)}",
        f"--data-dir={DATA_ROOT}/{name}",
        f"--config={CONFIG_PATHS['tikv']}",
    )


def tidb_command(name: str, topology: Topology) -> tuple[str, ...]:
    return (
        "--store=tikv",
        f"--path={pd_endpoints(topology)}",
        "-P",
        str(TIDB_PORT),
        f"--status={TIDB_STATUS_PORT}",
        f"--advertise-address={name}",
        f"--config={CONFIG_PATHS['tidb']}",
    )


def pd_config(topology: Topology) -> str:
    """Small-cluster PD config (reference §1.6: tiup playground, tidb-docker-compose)."""
    return (
        "# pytest-tidb-ha: PD for a small test cluster\n"
        "[replication]\n"
        f"max-replicas = {min(3, topology.tikv)}\n"
        "\n[schedule]\n"
        'patrol-region-interval = "100ms"\n'
    )


def tikv_config(topology: Topology) -> str:
    """Small-machine TiKV config (reference §1.6).

    ``max-open-files`` keeps TiKV's fd check (1000 + rocksdb + raftdb) below Docker's
    default nofile limit; ``reserve-space = 0`` stops TiKV from reserving 5 GB per store;
    an explicit block cache stops every TiKV sizing itself for the whole host.
    """
    return (
        "# pytest-tidb-ha: TiKV for a small test cluster\n"
        "[storage]\n"
        'reserve-space = "0MB"\n'
        'reserve-raft-space = "0MB"\n'
        "\n[storage.block-cache]\n"
        'capacity = "256MB"\n'
        "\n[rocksdb]\n"
        "max-open-files = 1024\n"
        "\n[raftdb]\n"
        "max-open-files = 1024\n"
    )


def tidb_config(topology: Topology) -> str:
    """TiDB needs nothing special: flags carry store/path/ports (reference §1.6)."""
    return "# pytest-tidb-ha: TiDB for a small test cluster\n[log]\nlevel = \"info\"\n"


_COMMANDS = {"pd": pd_command, "tikv": tikv_command, "tidb": tidb_command}
_CONFIGS = {"pd": pd_config, "tikv": tikv_config, "tidb": tidb_config}


def volume_name(settings: ClusterSettings, node: str) -> str:
    return f"{settings.cluster_name}-{node}-data"


def with_image_volumes(spec: ContainerSpec, declared: Iterable[str]) -> ContainerSpec:
    """*spec* plus a named volume for each ``VOLUME`` its image declares and nothing mounts.

    Docker gives such a path an anonymous volume at container creation: it carries no
    labels, so a run killed before its teardown leaves it where no reaper can find it.
    Named here, it is created with the cluster's labels like the data volumes.
    """
    mounted = {v.target for v in spec.volumes} | {b.target for b in spec.binds}
    extra = tuple(
        VolumeMount(f"{spec.container_name}-vol{i}", path)
        for i, path in enumerate(sorted(p for p in declared if p not in mounted))
    )
    return dataclasses.replace(spec, volumes=spec.volumes + extra) if extra else spec


def mounts(spec: ContainerSpec) -> list[tuple[str, str, str]]:
    """``(source, target, mode)`` of every mount of *spec*, as Docker is to be given them.

    A bind's source is made absolute: Docker reads a source without a ``/`` as the name of
    a volume, and creates that volume, unlabelled, when it does not exist.
    """
    out = [(v.volume, v.target, "ro" if v.read_only else "rw") for v in spec.volumes]
    out += [(str(Path(b.source).absolute()), b.target, "ro" if b.read_only else "rw")
            for b in spec.binds]
    return out


def render_specs(settings: ClusterSettings) -> list[ContainerSpec]:
    """All containers of the cluster, PDs first, then TiKVs, then TiDBs (start order)."""
    topology = settings.topology
    counts = {"pd": topology.pd, "tikv": topology.tikv, "tidb": topology.tidb}
    base = settings.base_labels()
    supervised = settings.kill_mode in SUPERVISED_KILL_MODES
    specs: list[ContainerSpec] = []
    for component in COMPONENTS:
        entrypoint = tuple(settings.entrypoints.get(component, (ENTRYPOINTS[component],)))
        config = _CONFIGS[component](topology)
        for node in node_names(component, counts[component]):
            labels = {**base, LABEL_COMPONENT: component, LABEL_NODE: node}
            if supervised:
                labels[LABEL_KILL_MODE] = settings.kill_mode
            volumes: tuple[VolumeMount, ...] = ()
            limit = settings.disk_limits.get(component)
            if component in ("pd", "tikv") or limit:
                volumes = (VolumeMount(volume_name(settings, node), DATA_TARGETS[component],
                                       size=limit or None),)
            binds: tuple[BindMount, ...] = ()
            if component == "tidb" and settings.import_dir is not None:
                binds = (BindMount(settings.import_dir, IMPORT_MOUNT, read_only=True),)
            entry, command = entrypoint, _COMMANDS[component](node, topology)
            if supervised:
                entry, command = wrap(entry, command)
            specs.append(
                ContainerSpec(
                    node=node,
                    component=component,
                    container_name=f"{settings.cluster_name}-{node}",
                    image=settings.images[component],
                    entrypoint=entry,
                    command=command,
                    env=MappingProxyType(dict(settings.env.get(component, {}))),
                    ports=PUBLISHED_PORTS[component],
                    volumes=volumes,
                    binds=binds,
                    files=MappingProxyType({CONFIG_PATHS[component]: config}),
                    labels=MappingProxyType(labels),
                )
            )
    return specs
