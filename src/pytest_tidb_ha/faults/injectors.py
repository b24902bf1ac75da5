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

from .context import FaultContext, UnsupportedFault
from .iodelay import IoDelayFault
from .ledger import ledger_add_script, ledger_remove_script
from .network import NetemFault, PartitionFault
from .resolve import Resolved

log = logging.getLogger("pytest_tidb_ha.faults")

HTTP_TIMEOUT = 5.0
START_TIMEOUT = 60.0
#: Faults that act on containers (need ``cluster.can_control_nodes``).
NODE_CONTROL = frozenset({"network_partition", "network_delay", "network_loss", "kill",
                          "restart", "pause", "io_delay"})


class Injector(Protocol):
    kind: str

    def apply(self) -> None: ...

    def heal(self) -> None: ...

    def describe(self) -> dict[str, object]: ...


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


def _refresh(cluster: Any, node: str) -> None:
    """Let the cluster handle re-read IP and ports of a restarted node (when it can)."""
    refresh = getattr(cluster, "refresh", None)
    if refresh is not None:
        try:
            refresh([node])
        except Exception as exc:  # noqa: BLE001 - informative only
            log.debug("refresh of %s failed: %s", node, exc)


class KillFault:
    """SIGKILL for the window, then ``docker start`` (same container, same volumes)."""

    kind = "kill"

    def __init__(self, ctx: FaultContext, targets: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.targets = targets
        self.killed: list[str] = []

    def apply(self) -> None:
        for node in self.targets:
            c = self.ctx.container(node)
            c.reload()
            if c.status == "paused":
                c.unpause()
            if c.status in ("running", "paused", "restarting"):
                c.kill(signal="SIGKILL")
                if node not in self.killed:
                    self.killed.append(node)
            _wait_status(c, ("exited", "dead", "created"), 30)

    def heal(self) -> None:
        for node in self.targets:
            c = self.ctx.container(node)
            c.reload()
            _start_and_wait(c)
            _refresh(self.ctx.cluster, node)

    def describe(self) -> dict[str, object]:
        return {"killed": list(self.killed)}


class RestartFault:
    """``docker restart`` at window open (SIGTERM, SIGKILL after 10 s, start)."""

    kind = "restart"

    def __init__(self, ctx: FaultContext, targets: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.targets = targets

    def apply(self) -> None:
        for node in self.targets:
            c = self.ctx.container(node)
            c.restart(timeout=10)
            _refresh(self.ctx.cluster, node)

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
            c.reload()
            if c.status == "paused":
                continue
            self.ctx.exec(node, ledger_add_script(self.ctx.tag, {"kind": "pause"}), "ledger")
            c.pause()

    def heal(self) -> None:
        for node in self.targets:
            try:
                c = self.ctx.container(node)
                c.reload()
            except Exception as exc:  # noqa: BLE001
                if type(exc).__name__ == "NotFound":
                    continue
                raise
            if c.status == "paused":
                c.unpause()
            self.ctx.exec(node, ledger_remove_script(self.ctx.tag, {"kind": "pause"}), "ledger",
                          missing_ok=True)

    def describe(self) -> dict[str, object]:
        return {}


def http_post(url: str, timeout: float = HTTP_TIMEOUT) -> tuple[int, str]:
    """POST with an empty body; returns (status, body) also for HTTP errors."""
    req = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our cluster
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


def unsupported_reason(kind: str, cluster: Any) -> str | None:
    """Why ``kind`` cannot run on ``cluster`` (None when it can)."""
    if kind in NODE_CONTROL and not getattr(cluster, "can_control_nodes", True):
        return (f"{kind} needs control of the node containers, but this cluster is attached "
                f"(--tidb-dsn): only pd_leader_resign and ddl_owner_resign can run")
    return None

