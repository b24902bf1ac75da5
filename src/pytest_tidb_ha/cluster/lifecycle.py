"""Start and stop a cluster: carry out the specs, wait like TiUP does, clean up always.

Order (reference §2): all PD members together → PD answers ``/pd/api/v1/members``
with ``cluster_id != 0`` and every member healthy → TiKVs → every store ``Up`` in
``/pd/api/v1/stores`` → TiDBs → ``/status`` 200 and ``SELECT 1`` on each.

Every wait has a deadline and a poll interval, fails fast when a container exits, and
on expiry raises :class:`ClusterStartError` with the container states and the last log
lines. Start-up runs inside try/except: a failure removes everything it created.

Host ports are chosen here (free loopback ports) and pinned, because Docker hands out
new random ports when a container is restarted — and fault injectors restart nodes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..redact import redact
from .client import SQLError, TiDBClient
from .handle import Cluster, Node, container_ip, host_ports_from_attrs
from .http import HTTPProblem, get_json
from .specs import (
    HOST_IP,
    LABEL_CLUSTER,
    LABEL_COMPONENT,
    LABEL_KEEPER_FOR,
    PD_CLIENT_PORT,
    TIDB_PORT,
    TIDB_STATUS_PORT,
    TIKV_PORT,
    ClusterSettings,
    ContainerSpec,
    VolumeMount,
    mounts,
    render_specs,
    with_image_volumes,
)
from .supervisor import ENTRYPOINT, SHELL, missing_shell

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

log = logging.getLogger("pytest_tidb_ha.cluster")

LOG_TAIL = 30  # lines per container in error stories
_PORT_RETRIES = 3


class DockerUnavailable(RuntimeError):
    """No Docker engine answers; the message is one line meant for the user."""


class ClusterStartError(RuntimeError):
    """Start-up failed; the message tells what was awaited, the states and log tails."""


def disable_ryuk_unless_enabled() -> None:
    """Ryuk is never required (reference §5: its atexit hook removes Ryuk before it reaps).

    We clean up ourselves and reap dead runs by label, so Ryuk is switched off unless
    the user configured it (env ``TESTCONTAINERS_RYUK_DISABLED`` or ``ryuk.disabled``).
    """
    if "TESTCONTAINERS_RYUK_DISABLED" in os.environ:
        return
    try:
        from testcontainers.core.config import testcontainers_config
    except ImportError:  # pragma: no cover - testcontainers is a dependency
        return
    if "ryuk.disabled" in (testcontainers_config.tc_properties or {}):
        return
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
    testcontainers_config.ryuk_disabled = True


def _short_reason(exc: BaseException) -> str:
    """``FileNotFoundError: No such file or directory`` out of docker-py's nested wrapping."""
    text = str(exc)
    m = re.search(r"(\w+(?:Error|Exception))\((?:\d+, )?'([^']+)'\)", text)
    if m:
        return f"{m.group(1)}: {m.group(2)}"
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def docker_client(timeout: float = 60) -> DockerClient:
    """A docker SDK client that has answered a ping, or :class:`DockerUnavailable`."""
    import docker

    where = os.environ.get("DOCKER_HOST") or "the default socket"
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        reason = _short_reason(exc)
        raise DockerUnavailable(
            f"no Docker engine answers at {where} ({reason[:200]}); start one "
            "(scripts/ensure-docker.sh) or attach to a running cluster with --tidb-dsn"
        ) from None
    return client


# ------------------------------------------------------------------------------------
# Stories for errors
# ------------------------------------------------------------------------------------
def _container_state(container: Container) -> str:
    try:
        container.reload()
    except Exception as exc:  # noqa: BLE001
        return f"gone ({type(exc).__name__})"
    st = container.attrs.get("State", {})
    if st.get("Status") == "exited":
        oom = " OOM-killed" if st.get("OOMKilled") else ""
        return f"exited({st.get('ExitCode')}){oom}"
    return str(st.get("Status", container.status))


def _tail(container: Container, lines: int = LOG_TAIL) -> str:
    try:
        return container.logs(tail=lines).decode("utf-8", "replace").rstrip()
    except Exception as exc:  # noqa: BLE001
        return f"<logs unavailable: {exc}>"


def story(containers: Iterable[tuple[str, Container]], lines: int = LOG_TAIL) -> str:
    """States and last log lines of every container: what an expired wait reports."""
    parts = []
    for node, c in containers:
        parts.append(f"--- {node} [{_container_state(c)}], last {lines} log lines:")
        parts.append(_tail(c, lines) or "<no output>")
    return redact("\n".join(parts))


# ------------------------------------------------------------------------------------
# Waiting
# ------------------------------------------------------------------------------------
@dataclass
class _Started:
    """What a start-up created so far (torn down on failure)."""

    settings: ClusterSettings
    docker: DockerClient
    network_name: str | None = None
    volumes: list[str] = field(default_factory=list)
    keepers: list[Any] = field(default_factory=list)  # containers holding tmpfs volumes
    containers: dict[str, Any] = field(default_factory=dict)  # node -> DockerContainer
    host_ports: dict[str, dict[int, int]] = field(default_factory=dict)

    def wrapped(self, nodes: Iterable[str] | None = None) -> list[tuple[str, Container]]:
        out = []
        for node, dc in self.containers.items():
            if nodes is not None and node not in nodes:
                continue
            inner = _wrapped(dc)
            if inner is not None:
                out.append((node, inner))
        return out


def _wrapped(dc: Any) -> Container | None:
    """The docker-py container of a testcontainers ``DockerContainer``, once created."""
    from testcontainers.core.exceptions import ContainerStartException

    try:
        inner: Container = dc.get_wrapped_container()
    except ContainerStartException:
        return None
    return inner


def wait_until(
    what: str,
    probe: Callable[[], tuple[bool, str]],
    *,
    name: str,
    containers: Callable[[], list[tuple[str, Container]]],
    timeout: float,
    interval: float,
) -> None:
    """Poll *probe* until it says ready; fail fast on an exited container; raise on expiry.

    *containers* lists the containers to watch (node, docker Container); their states and
    log tails make up the story of the error.
    """
    deadline = time.monotonic() + timeout
    began = time.monotonic()
    detail = "not probed yet"
    while True:
        for node, c in containers():
            state = _container_state(c)
            if state.startswith(("exited", "dead", "gone")):
                raise ClusterStartError(
                    f"cluster {name}: {node} {state} while waiting for {what}; "
                    f"last probe: {detail}\n{story(containers())}"
                )
        try:
            ok, detail = probe()
        except Exception as exc:  # noqa: BLE001 - a probe failure is "not ready yet"
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        if ok:
            log.info("cluster %s: %s after %.1fs", name, what, time.monotonic() - began)
            return
        if time.monotonic() >= deadline:
            raise ClusterStartError(
                f"cluster {name}: timed out after {timeout:.0f}s waiting for {what}; "
                f"last probe: {detail}\n{story(containers())}"
            )
        time.sleep(interval)


# ------------------------------------------------------------------------------------
# Readiness probes (pure over the HTTP answers)
# ------------------------------------------------------------------------------------
def pd_ready(answer_members: Any, answer_health: Any, expected: Sequence[str]) -> tuple[bool, str]:
    """``/members`` has a cluster id and every expected member; ``/health`` all healthy."""
    header = (answer_members or {}).get("header") or {}
    if not header.get("cluster_id"):
        return False, f"members header without cluster_id: {header}"
    names = sorted(m.get("name", "") for m in (answer_members or {}).get("members") or [])
    if sorted(expected) != names:
        return False, f"members {names}, expected {sorted(expected)}"
    if answer_health is not None:
        unhealthy = [h.get("name") for h in answer_health if not h.get("health")]
        if unhealthy:
            return False, f"unhealthy PD members {unhealthy}"
    return True, "ok"


def stores_ready(answer: Any, expected_addresses: Sequence[str]) -> tuple[bool, str]:
    """Every expected TiKV address is a store with ``state_name == "Up"``."""
    states = {}
    for entry in (answer or {}).get("stores") or []:
        store = entry.get("store") or {}
        states[store.get("address")] = store.get("state_name")
    missing = [a for a in expected_addresses if a not in states]
    if missing:
        return False, f"stores not registered yet: {missing} (have {states})"
    not_up = {a: states[a] for a in expected_addresses if states[a] != "Up"}
    if not_up:
        return False, f"stores not Up: {not_up}"
    return True, "ok"


# ------------------------------------------------------------------------------------
# Start
# ------------------------------------------------------------------------------------
def _free_ports(count: int) -> list[int]:
    """*count* distinct free loopback ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST_IP, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ensure_image(docker: DockerClient, image: str, pull: bool) -> None:
    import docker as docker_mod

    try:
        docker.images.get(image)
        return
    except docker_mod.errors.ImageNotFound:
        pass
    if not pull:
        raise ClusterStartError(f"image {image} is not present locally (pulling is off)")
    log.info("pulling image %s", image)
    try:
        docker.images.pull(image)
    except Exception as exc:  # noqa: BLE001
        raise ClusterStartError(
            f"image {image} is not present locally and could not be pulled: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None


def _start_container(started: _Started, spec: ContainerSpec) -> None:
    """Create (with pinned loopback ports, labels, files) and start one container."""
    from docker.types import EndpointConfig
    from testcontainers.core.container import DockerContainer

    assert started.network_name is not None
    last_error: Exception | None = None
    for attempt in range(_PORT_RETRIES):
        ports = dict(zip(spec.ports, _free_ports(len(spec.ports)), strict=True))
        # docker-py's create() arguments, passed through: our network, the node name
        # as its alias there (peers find each other by node name)
        extra: dict[str, Any] = {
            "hostname": spec.node,
            "entrypoint": list(spec.entrypoint),
            "labels": dict(spec.labels),
            "network": started.network_name,
            "networking_config": {started.network_name: EndpointConfig(
                started.docker.api.api_version, aliases=[spec.node])},
        }
        dc = DockerContainer(
            spec.image,
            command=list(spec.command),  # type: ignore[arg-type]
            env=dict(spec.env),
            name=spec.container_name,
            docker_client_kw=_client_kw(started.settings),
        ).with_kwargs(**extra)  # not the constructor: its ``network`` is testcontainers' own
        for cport, hport in ports.items():
            dc.ports[f"{cport}/tcp"] = (started.settings.publish_ip, hport)  # type: ignore[assignment]
        for source, target, mode in mounts(spec):  # named volumes were created labelled
            dc.with_volume_mapping(source, target, mode)
        for path, content in spec.files.items():
            dc.with_copy_into_container(content.encode(), path)
        started.containers[spec.node] = dc
        try:
            dc.start()
        except Exception as exc:  # noqa: BLE001 - classified below
            message = str(exc)
            _remove_container(dc)
            started.containers.pop(spec.node, None)
            if "address already in use" in message or "port is already allocated" in message:
                last_error = exc
                log.info("cluster %s: %s host port taken, retrying (%d)",
                         started.settings.cluster_name, spec.node, attempt + 1)
                continue
            if spec.entrypoint == ENTRYPOINT and missing_shell(message):
                raise ClusterStartError(
                    f"--ha-kill-mode={started.settings.kill_mode} runs each server under "
                    f"{SHELL}, and image "
                    f"{spec.image} ({spec.node}) has no {SHELL}: use --ha-kill-mode=container "
                    "with this image") from None
            raise ClusterStartError(
                f"cluster {started.settings.cluster_name}: could not start {spec.node} "
                f"({spec.image}): {redact(message.splitlines()[0] if message else repr(exc))}"
            ) from None
        started.host_ports[spec.node] = ports
        log.info("cluster %s: started %s (%s) ports %s", started.settings.cluster_name,
                 spec.node, spec.image, {c: h for c, h in ports.items()})
        return
    raise ClusterStartError(
        f"cluster {started.settings.cluster_name}: no free host ports for {spec.node}: {last_error}"
    )


def _client_kw(settings: ClusterSettings) -> dict[str, Any] | None:
    """testcontainers' client for the settings' engine (None: its default, as ours)."""
    if settings.engine is None:
        return None
    from .engines import client_kwargs

    return client_kwargs(settings.engine)


def _remove_container(dc: Any) -> None:
    inner = _wrapped(dc)
    if inner is None:
        return
    with contextlib.suppress(Exception):
        inner.remove(force=True, v=True)


PortOf = Callable[[str, int], str]  # (node, container port) -> host-side base URL


def _pd_probe(url_of: PortOf, pd_nodes: Sequence[str]) -> Callable[[], tuple[bool, str]]:
    def probe() -> tuple[bool, str]:
        for node in pd_nodes:
            base = url_of(node, PD_CLIENT_PORT)
            members = get_json(base + "/pd/api/v1/members", timeout=3)
            try:
                health = get_json(base + "/pd/api/v1/health", timeout=3)
            except HTTPProblem as exc:
                return False, f"{node}: {exc.detail}"
            ok, detail = pd_ready(members, health, pd_nodes)
            if not ok:
                return False, f"{node}: {detail}"
        return True, "ok"

    return probe


def _stores_probe(url_of: PortOf, pd_nodes: Sequence[str],
                  tikv_nodes: Sequence[str]) -> Callable[[], tuple[bool, str]]:
    expected = [f"{n}:{TIKV_PORT}" for n in tikv_nodes]

    def probe() -> tuple[bool, str]:
        problems = []
        for node in pd_nodes:  # any PD that answers will do
            try:
                answer = get_json(url_of(node, PD_CLIENT_PORT) + "/pd/api/v1/stores", timeout=3)
            except HTTPProblem as exc:
                problems.append(str(exc))
                continue
            return stores_ready(answer, expected)
        return False, "; ".join(problems)

    return probe


def _tidb_probe(url_of: PortOf, tidb_nodes: Sequence[str],
                client: TiDBClient) -> Callable[[], tuple[bool, str]]:
    def probe() -> tuple[bool, str]:
        for node in tidb_nodes:
            try:
                get_json(url_of(node, TIDB_STATUS_PORT) + "/status", timeout=3)
            except HTTPProblem as exc:
                return False, f"{node} /status: {exc.detail}"
            try:
                client.query("SELECT 1", node=node, database="", timeout=5)
            except SQLError as exc:
                return False, f"{node} SELECT 1: {exc}"
        return True, "ok"

    return probe


def create_volume(docker: DockerClient, vol: VolumeMount, labels: Mapping[str, str]) -> None:
    """A labelled volume; with ``size``, a tmpfs of that many bytes (disk_full: a disk of its
    own that a balloon may fill, never one the host shares)."""
    if vol.size is None:
        docker.volumes.create(vol.volume, labels={**labels})
        return
    docker.volumes.create(vol.volume, driver="local", labels={**labels},
                          driver_opts={"type": "tmpfs", "device": "tmpfs",
                                       "o": f"size={int(vol.size)}"})


def image_volumes(docker: DockerClient, image: str) -> list[str]:
    """The paths *image* declares ``VOLUME`` (Docker would mount anonymous volumes there)."""
    config = docker.images.get(image).attrs.get("Config") or {}
    return sorted(config.get("Volumes") or {})


def start_keeper(docker: DockerClient, spec: ContainerSpec, vol: VolumeMount) -> Any:
    """A container that keeps a tmpfs volume mounted for the cluster's life.

    Docker unmounts a local volume when no running container uses it, and a tmpfs
    loses its content then: without a keeper a killed node would come back empty. The
    keeper runs the node's own image (nothing to pull), sleeps, has no network, and
    carries the cluster's labels (removed and reaped with it).
    """
    labels = {**spec.labels, LABEL_COMPONENT: "keeper", LABEL_KEEPER_FOR: spec.container_name}
    return docker.containers.run(
        spec.image, entrypoint=["/bin/sh", "-c", "while :; do sleep 3600; done"],
        name=f"{spec.container_name}-keeper", detach=True, network_mode="none",
        labels=labels, volumes={vol.volume: {"bind": "/keep", "mode": "rw"}})


def _started_url_of(started: _Started) -> PortOf:
    host = started.settings.address
    return lambda node, port: f"http://{host}:{started.host_ports[node][port]}"


def start_cluster(settings: ClusterSettings, docker: DockerClient | None = None) -> Cluster:
    """Create network, volumes and containers; wait until the cluster answers SQL.

    Raises :class:`DockerUnavailable` (no engine) or :class:`ClusterStartError`; in both
    cases nothing this call created is left behind.
    """
    disable_ryuk_unless_enabled()
    docker = docker or docker_client()
    specs = render_specs(settings)
    started = _Started(settings=settings, docker=docker)
    name = settings.cluster_name
    began = time.monotonic()
    log.info("cluster %s: starting %s (%s)", name, settings.topology,
             ", ".join(f"{c}={i}" for c, i in sorted(settings.images.items())))
    try:
        declared: dict[str, list[str]] = {}
        for image in sorted(set(settings.images.values())):
            _ensure_image(docker, image, settings.pull_missing)
            declared[image] = image_volumes(docker, image)
        specs = [with_image_volumes(s, declared.get(s.image, ())) for s in specs]
        # our own client (the engine's) creates the network (testcontainers' Network would
        # open one more API client that only private attributes could close)
        docker.networks.create(name, labels=settings.base_labels())
        started.network_name = name
        for spec in specs:
            for vol in spec.volumes:
                create_volume(docker, vol, spec.labels)
                started.volumes.append(vol.volume)
                if vol.size is not None:
                    started.keepers.append(start_keeper(docker, spec, vol))

        by_component = {c: [s for s in specs if s.component == c] for c in ("pd", "tikv", "tidb")}
        pd_nodes = [s.node for s in by_component["pd"]]
        tikv_nodes = [s.node for s in by_component["tikv"]]
        tidb_nodes = [s.node for s in by_component["tidb"]]
        timeout, interval = settings.startup_timeout, settings.poll_interval
        url_of = _started_url_of(started)

        for spec in by_component["pd"]:
            _start_container(started, spec)
        log.info("cluster %s: waiting for PD members %s", name, pd_nodes)
        wait_until(f"PD members {pd_nodes} healthy", _pd_probe(url_of, pd_nodes),
                   name=name, containers=started.wrapped, timeout=timeout,
                   interval=interval)

        for spec in by_component["tikv"]:
            _start_container(started, spec)
        log.info("cluster %s: waiting for TiKV stores %s to be Up", name, tikv_nodes)
        wait_until(f"TiKV stores {tikv_nodes} Up", _stores_probe(url_of, pd_nodes, tikv_nodes),
                   name=name, containers=started.wrapped, timeout=timeout,
                   interval=interval)

        for spec in by_component["tidb"]:
            _start_container(started, spec)
        client = TiDBClient(
            {n: (settings.address, started.host_ports[n][TIDB_PORT]) for n in tidb_nodes},
            connect_timeout=2, read_timeout=5, write_timeout=5,
        )
        log.info("cluster %s: waiting for TiDB %s (/status and SELECT 1)", name, tidb_nodes)
        wait_until(f"TiDB {tidb_nodes} /status and SELECT 1", _tidb_probe(url_of, tidb_nodes, client),
                   name=name, containers=started.wrapped, timeout=timeout,
                   interval=interval)

        cluster = _handle(started, specs)
    except BaseException:
        # KeyboardInterrupt too: nothing we created may outlive a failed start.
        _teardown(started)
        raise
    finally:
        _close_clients(started)
    log.info("cluster %s: ready in %.1fs (%s)", name, time.monotonic() - began, cluster.describe())
    return cluster


def wait_ready(cluster: Cluster, *, timeout: float = 60.0, interval: float = 0.5) -> None:
    """Wait until a running cluster is whole again: PD healthy, stores Up, TiDBs answer.

    Used before handing a reused cluster to the next test (a fault may have just healed).
    Raises :class:`ClusterStartError` with the story, like start-up does.
    """
    pd_nodes = [n.name for n in cluster.nodes_of("pd")]
    tikv_nodes = [n.name for n in cluster.nodes_of("tikv")]
    tidb_nodes = [n.name for n in cluster.nodes_of("tidb")]

    def url_of(node: str, port: int) -> str:
        return cluster.node(node).url(port)

    def containers() -> list[tuple[str, Container]]:
        out = []
        for n in cluster.nodes:
            with contextlib.suppress(Exception):
                out.append((n.name, cluster.container(n.name)))
        return out

    client = cluster.client(connect_timeout=2, read_timeout=5, write_timeout=5)
    watch = containers if cluster.can_control_nodes else list
    for what, probe in (
        (f"PD members {pd_nodes} healthy", _pd_probe(url_of, pd_nodes)),
        (f"TiKV stores {tikv_nodes} Up", _stores_probe(url_of, pd_nodes, tikv_nodes)),
        (f"TiDB {tidb_nodes} answering", _tidb_probe(url_of, tidb_nodes, client)),
    ):
        wait_until(what, probe, name=cluster.name, containers=watch, timeout=timeout,
                   interval=interval)


def _handle(started: _Started, specs: Sequence[ContainerSpec]) -> Cluster:
    nodes = []
    for spec in specs:
        inner = started.containers[spec.node].get_wrapped_container()
        inner.reload()
        ports = host_ports_from_attrs(inner.attrs) or started.host_ports[spec.node]
        nodes.append(
            Node(
                name=spec.node,
                component=spec.component,
                container_id=inner.id,
                host_ports=MappingProxyType(ports),
                ip=container_ip(inner.attrs, started.network_name),
                host=started.settings.address,
            )
        )
    return Cluster(
        started.settings.cluster_name,
        nodes,
        docker=started.docker,
        network_name=started.network_name,
        labels=started.settings.base_labels(),
        settings=started.settings,
        volumes=started.volumes,
    )


# ------------------------------------------------------------------------------------
# Stop
# ------------------------------------------------------------------------------------
def _close_clients(started: _Started) -> None:
    """testcontainers opens one API client per container; the handle uses ours. A created
    container's docker-py model carries that client (``Container.client``)."""
    for dc in started.containers.values():
        inner = _wrapped(dc)
        client = inner.client if inner is not None else None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


def _teardown(started: _Started) -> None:
    for dc in list(started.containers.values()):
        _remove_container(dc)
    for keeper in started.keepers:
        with contextlib.suppress(Exception):
            keeper.remove(force=True, v=True)
    if started.network_name:
        remove_network(started.docker, started.network_name)
    for vol in started.volumes:
        remove_volume(started.docker, vol)


def remove_network(docker: DockerClient, name: str, attempts: int = 10) -> None:
    """Remove a network, retrying while endpoints detach (moby#19261: "active endpoints")."""
    import docker as docker_mod

    for attempt in range(attempts):
        try:
            docker.networks.get(name).remove()
            return
        except docker_mod.errors.NotFound:
            return
        except Exception as exc:  # noqa: BLE001
            if attempt == attempts - 1:
                log.warning("could not remove network %s: %s", name, exc)
                return
            with contextlib.suppress(Exception):
                net = docker.networks.get(name)
                for cid in (net.attrs.get("Containers") or {}):
                    net.disconnect(cid, force=True)
            time.sleep(0.3)


def remove_volume(docker: DockerClient, name: str, attempts: int = 10) -> None:
    import docker as docker_mod

    for attempt in range(attempts):
        try:
            docker.volumes.get(name).remove(force=True)
            return
        except docker_mod.errors.NotFound:
            return
        except Exception as exc:  # noqa: BLE001 - "volume is in use" while a container dies
            if attempt == attempts - 1:
                log.warning("could not remove volume %s: %s", name, exc)
                return
            time.sleep(0.3)


def keep_instructions(cluster: Cluster) -> str:
    """How to reach and how to remove a kept cluster (``--ha-keep-cluster``)."""
    lines = [f"cluster {cluster.name} kept running:"]
    for node, (host, port) in sorted(cluster.sql_endpoints().items()):
        lines.append(f"  {node}: mysql -h {host} -P {port} -u root")
    for url in cluster.pd_urls():
        lines.append(f"  PD API: {url}/pd/api/v1/members")
    flt = f"label={LABEL_CLUSTER}={cluster.name}"
    engine = cluster.settings.engine if cluster.settings is not None else None
    d = f"docker -H {engine}" if engine else "docker"
    lines.append("  remove it with:")
    lines.append(f"    {d} rm -f -v $({d} ps -aq --filter {flt})")
    lines.append(f"    {d} network rm $({d} network ls -q --filter {flt})")
    lines.append(f"    {d} volume rm $({d} volume ls -q --filter {flt})")
    return "\n".join(lines)


def stop_cluster(cluster: Cluster, *, keep: bool = False) -> None:
    """Remove containers, network and volumes (or keep them and log how to reach them)."""
    if cluster.docker is None:
        return  # attached: not ours
    if keep:
        log.warning("%s", keep_instructions(cluster))
        return
    docker = cluster.docker
    flt: dict[str, str | list[str] | bool] = {"label": [f"{LABEL_CLUSTER}={cluster.name}"]}
    log.info("cluster %s: removing containers, network and volumes", cluster.name)
    # By label: also catches helper containers (faults) that joined this cluster.
    try:
        containers = docker.containers.list(all=True, filters=flt, sparse=True)
    except Exception as exc:  # noqa: BLE001
        log.warning("cluster %s: cannot list containers: %s", cluster.name, exc)
        containers = []
    ids = {str(c.id) for c in containers}
    ids |= {n.container_id for n in cluster.nodes if n.container_id is not None}
    for cid in ids:
        with contextlib.suppress(Exception):
            docker.containers.get(cid).remove(force=True, v=True)
    if cluster.network_name:
        remove_network(docker, cluster.network_name)
    names = set(cluster.volumes)
    with contextlib.suppress(Exception):
        names |= {v.name for v in docker.volumes.list(filters=flt)}
    for vol in sorted(names):
        remove_volume(docker, vol)


__all__ = [
    "LABEL_COMPONENT",
    "ClusterStartError",
    "DockerUnavailable",
    "docker_client",
    "keep_instructions",
    "start_cluster",
    "stop_cluster",
    "story",
]
