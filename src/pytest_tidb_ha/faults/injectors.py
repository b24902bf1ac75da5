"""Every fault kind as an object with idempotent ``apply()`` and ``heal()``.

:func:`build` turns (kind, resolved nodes, params) into an injector for one window.
Network faults live in :mod:`.network`, ``io_delay`` in :mod:`.iodelay`; the process
faults (kill, restart, pause) and the two role resigns are here because each is a
single Docker or HTTP call.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol

from ..cluster.protocol import ClusterLike
from ..cluster.specs import LABEL_KILL_MODE
from ..cluster.supervisor import is_supervised
from .context import FaultContext, UnsupportedFault
from .disk import DiskFullFault
from .initproc import SHARED_KEY as INIT_KEY
from .initproc import InitProcesses
from .iodelay import IoDelayFault
from .ledger import ledger_add_script, ledger_remove_script
from .network import BandwidthFault, NetemFault, PartitionFault, delete_script, restore_script
from .resolve import Resolved
from .serverproc import DirectServer, ExecServer
from .silence import silence_lines
from .verify import (
    STATUS_PORTS,
    Verification,
    judge_killed,
    judge_partition,
    judge_pause,
    judge_restarted,
    judge_server_killed,
    judge_silenced,
    port_of,
    run_probe,
)

log = logging.getLogger("pytest_tidb_ha.faults")

HTTP_TIMEOUT = 5.0
START_TIMEOUT = 60.0
#: Seconds a SIGKILLed init may take to be gone (the kernel ends it at once).
KILL_WAIT = 10.0
#: Faults that act on containers (need ``cluster.can_control_nodes``).
NODE_CONTROL = frozenset({"network_partition", "network_delay", "network_loss", "kill",
                          "restart", "pause", "io_delay", "bandwidth", "disk_full"})


class Injector(Protocol):
    kind: str

    def apply(self) -> None: ...

    def heal(self) -> None: ...

    def describe(self) -> dict[str, object]: ...


class Verifiable(Protocol):
    """An injector that can prove its effect from inside the cluster (faults.verify);
    ``budget``: seconds a probe may wait for an answer. None: nothing to measure."""

    def verify(self, budget: float) -> Verification | None: ...


def _wait_status(container: Any, wanted: tuple[str, ...], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    status = "?"
    while True:
        container.reload()
        status = container.status
        if status in wanted:
            return str(status)
        if time.monotonic() > deadline:
            logs = container.logs(tail=20).decode(errors="replace")
            raise RuntimeError(f"{container.name} is {status!r}, not {'/'.join(wanted)} after "
                               f"{timeout:g}s; last log lines:\n{logs}")
        time.sleep(0.1)


def _start_and_wait(container: Any) -> None:
    """Bring a stopped node back: ``docker start`` unless it runs or Docker is already
    restarting it, then wait until it runs. *container* must be freshly reloaded.
    """
    if container.status not in ("running", "restarting"):
        container.start()
    _wait_status(container, ("running",), START_TIMEOUT)


def _refresh(cluster: ClusterLike, node: str) -> None:
    """Let the cluster handle re-read IP and ports of a restarted node (best effort)."""
    try:
        cluster.refresh([node])
    except Exception as exc:  # noqa: BLE001 - informative only
        log.debug("refresh of %s failed: %s", node, exc)


def _supervised(c: Any) -> bool:
    """``c`` runs our supervisor as PID 1 (silent or process kill mode; its cached
    attributes: no API call)."""
    return is_supervised(getattr(c, "attrs", None) or {})


def kill_mode_of(c: Any) -> str:
    """The kill mode ``c`` was started in: its label (a supervised container without
    one is from a release that had process mode only)."""
    attrs = getattr(c, "attrs", None) or {}
    if not is_supervised(attrs):
        return "container"
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return str(labels.get(LABEL_KILL_MODE) or "process")


class KillFault:
    """SIGKILL for the window, then ``docker start`` (same container, same volumes).

    The signal goes through the init process's pidfd when the run holds one
    (:mod:`.initproc`: root, local engine, no restart policy, not paused), else through
    ``docker kill``; :attr:`paths` records which, per node.

    A container started in silent or process kill mode (its PID 1 is our supervisor,
    cluster/supervisor.py) keeps running: only its server process is killed, and the
    heal starts it again in the same container (:mod:`.serverproc`). In silent mode
    the node's address is silenced towards its peers between the kill and the heal
    (:mod:`.silence`); :attr:`restarted` lists the nodes whose container (and so network
    namespace) the heal started afresh: only their other faults need applying again.
    """

    kind = "kill"

    def __init__(self, ctx: FaultContext, targets: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.targets = targets
        self.killed: list[str] = []
        self.paths: dict[str, str] = {}
        #: process mode: the server pids each node's kill ended
        self.servers: dict[str, list[int]] = {}
        #: silent mode: the rules each node's silence inserted (restore lines)
        self.silenced: dict[str, list[str]] = {}
        #: nodes the heal started with ``docker start`` (a fresh network namespace)
        self.restarted: list[str] = []

    def _inits(self) -> InitProcesses | None:
        shared = getattr(self.ctx, "shared", None)
        found = shared.get(INIT_KEY) if shared is not None else None
        return found if isinstance(found, InitProcesses) else None

    def apply(self) -> None:
        inits = self._inits()
        for node in self.targets:
            c = self.ctx.container(node)
            if _supervised(c):
                # planned before the kill: the silence follows it within one restore
                lines = (silence_lines(node, self.ctx.ips(), self.ctx.tag)
                         if kill_mode_of(c) == "silent" else [])
                self._kill_server(inits, node, c)
                if lines and node in self.killed and node not in self.silenced:
                    self.ctx.exec(node, restore_script(lines), "iptables-restore silence")
                    self.silenced[node] = lines
                continue
            if inits is not None and self._kill_direct(inits, node, c):
                continue
            self._kill_api(node, c)

    def _server(self, inits: InitProcesses | None, c: Any) -> DirectServer | ExecServer:
        """The way to the server of supervised container ``c``: its supervisor's pidfd
        when the run holds one (opened again when the supervisor changed: a restart),
        else ``docker exec``. A paused container is unpaused first, as Docker does for
        the container kill."""
        handle = inits.get(c.id) if inits is not None else None
        if inits is not None and (handle is None or not DirectServer(handle).alive()) \
                and c.id not in inits.why_not:
            c.reload()
            handle = inits.prime(c)
        if inits is not None and handle is not None:
            if inits.paused(handle):
                c.unpause()
            return DirectServer(handle)
        return ExecServer(c)

    def _kill_server(self, inits: InitProcesses | None, node: str, c: Any) -> None:
        server = self._server(inits, c)
        try:
            killed = server.kill(KILL_WAIT)
        except Exception as exc:
            if "paused" not in str(exc).lower():
                raise
            c.unpause()  # docker exec refuses a paused container
            killed = server.kill(KILL_WAIT)
        self.paths[node] = f"process:{'pidfd' if isinstance(server, DirectServer) else 'exec'}"
        if killed:  # none: no server ran (someone else's kill): nothing of ours to undo
            self.servers[node] = killed
            if node not in self.killed:
                self.killed.append(node)

    def _heal_server(self, inits: InitProcesses | None, node: str, c: Any) -> bool:
        """Start the server again when none runs; False: the supervisor is gone too (the
        container exited): the container heal decides."""
        server = self._server(inits, c)
        if isinstance(server, DirectServer) and not server.alive():
            return False
        try:
            running = server.servers()
        except Exception:
            c.reload()
            if c.status != "running":
                return False
            raise
        if not running:
            server.start(self.servers.get(node, []), START_TIMEOUT)
        return True

    def _kill_direct(self, inits: InitProcesses, node: str, c: Any) -> bool:
        """SIGKILL the init through its pidfd and wait for it to be gone (no API call).
        False: the API path decides (no handle, paused, or the process was gone already)."""
        handle = inits.get(c.id)
        if handle is None or inits.paused(handle):
            return False  # paused: Docker unpauses first (a kill under the freezer confuses it)
        if not handle.kill():
            inits.drop(c.id)  # exited meanwhile (someone else's kill): Docker answers
            return False
        if not handle.wait_gone(KILL_WAIT):
            raise RuntimeError(f"{node}: init process {handle.pid} still there {KILL_WAIT:g}s "
                               "after SIGKILL")
        inits.drop(c.id)  # a new start has a new init: heal opens its pidfd
        if node not in self.killed:
            self.killed.append(node)
        self.paths[node] = "pidfd"
        return True

    def _kill_api(self, node: str, c: Any) -> None:
        # kill first, ask later: a status read per window is an API round trip on
        # the path the fault's timing is measured on; Docker answers what is wrong
        try:
            c.kill(signal="SIGKILL")
        except Exception as exc:
            text = str(exc).lower()
            if "paused" in text:
                c.unpause()
                c.kill(signal="SIGKILL")
            elif "is not running" not in text:
                raise
            # not running already (someone else's kill): nothing of ours to undo
        else:
            if node not in self.killed:
                self.killed.append(node)
            self.paths[node] = "api"
        # Docker's own wait (no polling): returns once the container is not running
        c.wait(condition="not-running", timeout=30)

    def heal(self) -> None:
        inits = self._inits()
        for node in self.targets:
            c = self.ctx.container(node)
            if node in self.silenced:  # lifted first: the new server is heard at once
                self.ctx.exec(node, delete_script(self.silenced[node], self.ctx.tag),
                              "iptables-restore -D silence", missing_ok=True)
                del self.silenced[node]
            if _supervised(c) and self._heal_server(inits, node, c):
                continue
            if node not in self.restarted:
                self.restarted.append(node)
            if self.paths.get(node) == "pidfd":
                # the process is gone; Docker may not have recorded the exit yet, and a
                # start before it has answers "already running" (304) and does nothing
                c.wait(condition="not-running", timeout=30)
            try:
                c.start()  # a running container answers 304: nothing to do
            except Exception:  # noqa: BLE001 - paused or restarting: decide on its state
                c.reload()
                _start_and_wait(c)
            else:
                _wait_status(c, ("running",), START_TIMEOUT)
            if inits is not None:  # the fresh attributes of the wait: the new init's pid
                inits.prime(c)
            _refresh(self.ctx.cluster, node)

    def describe(self) -> dict[str, object]:
        return {"killed": list(self.killed), "paths": dict(self.paths),
                **({"servers": dict(self.servers)} if self.servers else {}),
                **({"silenced": sorted(self.silenced)} if self.silenced else {})}

    def verify(self, budget: float) -> Verification | None:
        """Each killed container is stopped and its process gone. After a pidfd kill
        Docker records the exit a moment later: its state is polled within ``budget``.
        Process kill mode: the container runs and no server process is in it; silent
        mode: besides, a peer's new connection to the node goes unanswered."""
        result: Verification | None = None
        inits = self._inits()
        for node in self.targets:
            c = self.ctx.container(node)
            if _supervised(c):
                c.reload()
                servers = self._server(inits, c).servers() if c.status == "running" else []
                result = judge_server_killed(str(c.status), servers,
                                             self.servers.get(node, []), node)
                if not result.ok:
                    return result
                if node in self.silenced:
                    result = judge_silenced(result, self._probe_silence(node, budget))
                    if not result.ok:
                        return result
                continue
            deadline = time.monotonic() + max(budget, 1.0)
            while True:
                c.reload()
                pid = int((c.attrs.get("State") or {}).get("Pid") or 0)
                result = judge_killed(str(c.status), pid, node)
                if result.ok or time.monotonic() >= deadline:
                    break
                time.sleep(0.01)
            if not result.ok:
                return result
        return result

    def _probe_silence(self, node: str, budget: float) -> Verification | None:
        """A peer's new connection to the silenced node must go unanswered (a refusal
        is what process mode gives, a connect would mean no silence at all); probed from
        a node this window did not kill (None: every node was killed)."""
        ips = self.ctx.ips()
        peer = next((n for n in ips if n not in self.targets), None)
        if peer is None or node not in ips:
            return None
        results = run_probe(self.ctx, peer, [(ips[node], port_of(node))], 2, budget)
        return judge_partition(results, f"{peer} -> {node}:{port_of(node)} (silenced)")


class RestartFault:
    """``docker restart`` at window open (SIGTERM, SIGKILL after 10 s, start)."""

    kind = "restart"

    def __init__(self, ctx: FaultContext, targets: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.targets = targets
        self.started_before: dict[str, str] = {}

    def apply(self) -> None:
        for node in self.targets:
            c = self.ctx.container(node)
            c.reload()
            self.started_before[node] = str((c.attrs.get("State") or {}).get("StartedAt", ""))
            c.restart(timeout=10)
            _refresh(self.ctx.cluster, node)

    def verify(self, budget: float) -> Verification | None:
        """Each container started again after the window opened."""
        result: Verification | None = None
        for node in self.targets:
            c = self.ctx.container(node)
            c.reload()
            after = str((c.attrs.get("State") or {}).get("StartedAt", ""))
            result = judge_restarted(self.started_before.get(node, ""), after, str(c.status),
                                     node)
            if not result.ok:
                return result
        return result

    def heal(self) -> None:
        for node in self.targets:
            c = self.ctx.container(node)
            c.reload()
            if c.status == "paused":
                continue  # someone else's pause window; not ours to end
            _start_and_wait(c)

    def describe(self) -> dict[str, object]:
        return {}


class PauseFault:
    """``docker pause`` (cgroup freezer) for the window; the ledger marker lets a reaper unpause."""

    kind = "pause"

    def __init__(self, ctx: FaultContext, targets: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.targets = targets

    def apply(self) -> None:
        for node in self.targets:
            c = self.ctx.container(node)
            # the marker first (a crash after the pause leaves it for the reaper), then
            # the pause; no status read first (an API round trip per window): Docker
            # answers "already paused" for someone else's pause, which is not ours
            self.ctx.exec(node, ledger_add_script(self.ctx.tag, {"kind": "pause"}), "ledger")
            try:
                c.pause()
            except Exception as exc:
                if "already paused" not in str(exc).lower():
                    raise
                self.ctx.exec(node, ledger_remove_script(self.ctx.tag, {"kind": "pause"}),
                              "ledger", missing_ok=True)

    def heal(self) -> None:
        for node in self.targets:
            try:
                c = self.ctx.container(node)
                c.unpause()  # no status read first: Docker says when it is not paused
            except Exception as exc:
                if type(exc).__name__ == "NotFound":
                    continue
                if "not paused" not in str(exc).lower():
                    raise
            self.ctx.exec(node, ledger_remove_script(self.ctx.tag, {"kind": "pause"}), "ledger",
                          missing_ok=True)

    def describe(self) -> dict[str, object]:
        return {}

    def verify(self, budget: float) -> Verification | None:
        """Docker says ``paused``, and a request to the node's status port, sent from a
        running peer's namespace, gets no answer."""
        node = self.targets[0]
        c = self.ctx.container(node)
        c.reload()
        answers: list[str] = []
        peer = next((n.name for n in self.ctx.cluster.nodes if n.name not in self.targets), None)
        ip = self.ctx.ips().get(node) if peer is not None else None
        if peer is not None and ip:
            port = STATUS_PORTS.get(node.split("-")[0], 10080)
            try:
                results = run_probe(self.ctx, peer, [(ip, port)], 1, budget,
                                    send="GET /status HTTP/1.0\r\n\r\n")
                answers = [o for v in results.values() for o, _ in v]
            except Exception as exc:  # noqa: BLE001 - the state still tells
                log.debug("pause probe from %s failed: %s", peer, exc)
        return judge_pause(str(c.status), answers, node)


def http_post(url: str, timeout: float = HTTP_TIMEOUT) -> tuple[int, str]:
    """POST with an empty body; returns (status, body) also for HTTP errors."""
    req = urllib.request.Request(url, data=b"", method="POST")  # noqa: S310 - our cluster's http URL
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the same URL
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")


class PdLeaderResign:
    """``POST /pd/api/v1/leader/resign`` on the first PD that answers (any member forwards)."""

    kind = "pd_leader_resign"

    def __init__(self, ctx: FaultContext) -> None:
        self.ctx = ctx
        self.answer: str | None = None

    def apply(self) -> None:
        errors: list[str] = []
        urls = list(self.ctx.cluster.pd_urls())
        for url in urls:
            try:
                status, body = http_post(f"{url.rstrip('/')}/pd/api/v1/leader/resign")
            except OSError as exc:
                errors.append(f"{url}: {exc}")
                continue
            if 200 <= status < 300:
                self.answer = body.strip()[:200]
                return
            errors.append(f"{url}: HTTP {status} {body.strip()[:200]}")
        raise RuntimeError(f"PD leader resign failed on every PD: {'; '.join(errors) or 'no PD'}")

    def heal(self) -> None:
        return None  # the next election is the cluster's business

    def describe(self) -> dict[str, object]:
        return {"answer": self.answer}


class DdlOwnerResign:
    """``POST /ddl/owner/resign`` on the owner's status port (only the owner may resign)."""

    kind = "ddl_owner_resign"

    def __init__(self, ctx: FaultContext, targets: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.targets = targets
        self.answer: str | None = None

    def apply(self) -> None:
        urls: Mapping[str, str] = self.ctx.cluster.status_urls("tidb")
        for node in self.targets:
            url = urls.get(node)
            if url is None:
                raise RuntimeError(f"no status URL for DDL owner {node} (known: {', '.join(urls)})")
            status, body = http_post(f"{url.rstrip('/')}/ddl/owner/resign")
            if not 200 <= status < 300:
                raise RuntimeError(f"DDL owner resign on {node} failed: HTTP {status} {body.strip()[:200]}")
            self.answer = body.strip()[:200]

    def heal(self) -> None:
        return None

    def describe(self) -> dict[str, object]:
        return {"answer": self.answer}


def build(kind: str, ctx: FaultContext, resolved: Resolved, params: Mapping[str, object]) -> Injector:
    """The injector of ``kind`` for one window over ``resolved`` nodes."""
    targets = resolved.targets
    if kind == "network_partition":
        return PartitionFault(ctx, resolved.sources, targets, params)
    if kind in ("network_delay", "network_loss"):
        return NetemFault(kind, ctx, resolved.sources, targets, params)
    if kind == "bandwidth":
        return BandwidthFault(ctx, resolved.sources, targets, params)
    if kind == "disk_full":
        return DiskFullFault(ctx, targets, dict(params))
    if kind == "kill":
        return KillFault(ctx, targets)
    if kind == "restart":
        return RestartFault(ctx, targets)
    if kind == "pause":
        return PauseFault(ctx, targets)
    if kind == "io_delay":
        return IoDelayFault(ctx, targets, dict(params))
    if kind == "pd_leader_resign":
        return PdLeaderResign(ctx)
    if kind == "ddl_owner_resign":
        return DdlOwnerResign(ctx, targets)
    raise UnsupportedFault(f"unknown fault kind {kind!r}")


def unsupported_reason(kind: str, cluster: ClusterLike) -> str | None:
    """Why ``kind`` cannot run on ``cluster`` (None when it can)."""
    if kind in NODE_CONTROL and not cluster.can_control_nodes:
        return (f"{kind} needs control of the node containers, but this cluster is attached "
                f"(--tidb-dsn): only pd_leader_resign and ddl_owner_resign can run")
    return None

