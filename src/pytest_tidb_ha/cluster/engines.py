"""Several Docker engines (``--ha-docker-hosts``): which one a worker uses, how to reach it.

A QA matrix outgrows one machine long before it outgrows the plugin. With
``--ha-docker-hosts URL,URL`` each pytest-xdist worker takes **one engine at a
time, by lock**, and starts all its clusters there:

* the lock is an ``flock`` on ``engine-E.slot-S.lock`` in a folder every worker of
  the run shares (pytest's base temp of the run). A worker tries the slots in
  order, slot 0 of every engine before slot 1 of any, starting with engine
  ``worker number mod engines`` — so ``-n 2`` on two engines puts one worker on
  each, ``-n 4`` two on each. The kernel drops the lock when a worker dies, so a
  restarted worker finds the free slot again;
* without xdist the one process uses the first engine.

Where a cluster's published ports are reached depends on the engine: a
``unix://`` engine, or a ``tcp://``/``ssh://`` engine on a loopback address, is
this machine — ports bind to 127.0.0.1 and the cluster's import folder (a bind
mount of a local folder) is shared. Any other engine is remote: ports bind to
all of that host's addresses and are reached at its host name, and there is no
shared import folder (generated IMPORT INTO data needs an engine on this
machine). Faults choose their way in from the engine too
(:func:`~..faults.netns.make_runner`): ``nsenter`` only for a local unix-socket
engine, the helper container everywhere else.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .specs import HOST_IP

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger("pytest_tidb_ha.cluster")

#: Slots tried per engine before a worker gives up locking and shares its first choice.
MAX_SLOTS = 64
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - the address a container port is published on, as docker reports it


@dataclass(frozen=True)
class Engine:
    """A Docker engine URL and what follows from it (pure)."""

    url: str

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def hostname(self) -> str | None:
        return None if self.scheme == "unix" else urlsplit(self.url).hostname

    @property
    def on_this_machine(self) -> bool:
        """A unix socket, or a TCP/SSH engine on a loopback address."""
        host = self.hostname
        if host is None:
            return True
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def address(self) -> str:
        """Where this engine's published ports are reached from here."""
        return HOST_IP if self.on_this_machine else str(self.hostname)

    @property
    def publish_ip(self) -> str:
        """The host IP the engine publishes ports on (loopback when it is this machine)."""
        return HOST_IP if self.on_this_machine else ANY_ADDRESS


def worker_number(worker: str | None) -> int:
    """``gw3`` -> 3 (0 without xdist or for an unexpected id)."""
    m = re.fullmatch(r"gw(\d+)", worker or "")
    return int(m.group(1)) if m else 0


def lease_order(worker: int, engines: int, slots: int = MAX_SLOTS) -> list[tuple[int, int]]:
    """(slot, engine) pairs in the order a worker tries to lock them (see the module doc)."""
    return [(slot, (worker + offset) % engines) for slot in range(slots)
            for offset in range(engines)]


class EngineLease:
    """This worker's engine, held by an ``flock`` until :meth:`release` (or the process ends)."""

    def __init__(self, engines: Sequence[str], *, lock_dir: Path | None,
                 worker: str | None) -> None:
        if not engines:
            raise ValueError("no engine to lease")
        self.engines = tuple(engines)
        self.lock_dir = lock_dir
        self.worker = worker
        self._file: IO[bytes] | None = None
        self.url: str | None = None
        self.slot: int | None = None

    def acquire(self) -> str:
        """Lock a free (slot, engine) and return the engine's URL."""
        if self.url is not None:
            return self.url
        first = worker_number(self.worker) % len(self.engines)
        if self.lock_dir is None:  # one process: nobody to share with
            self.url = self.engines[first]
            return self.url
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        for slot, index in lease_order(worker_number(self.worker), len(self.engines)):
            fh = (self.lock_dir / f"engine-{index}.slot-{slot}.lock").open("ab")
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            self._file, self.url, self.slot = fh, self.engines[index], slot
            log.info("worker %s: Docker engine %s (slot %d)", self.worker or "-", self.url, slot)
            return self.url
        log.warning("worker %s: every engine slot is taken; sharing %s", self.worker,
                    self.engines[first])
        self.url = self.engines[first]
        return self.url

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def client_kwargs(url: str) -> dict[str, Any]:
    """``docker.from_env`` arguments that reach ``url`` (testcontainers' ``docker_client_kw``).

    The engine URL replaces ``DOCKER_HOST``; the other ``DOCKER_*`` settings of the
    environment (``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``) still apply, so a TLS
    engine works as it does for the docker CLI. SSH goes through the ``ssh`` client.
    """
    import os

    env = {k: v for k, v in os.environ.items() if k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = url
    return {"environment": env, "use_ssh_client": url.startswith("ssh://")}


def engine_client(url: str, timeout: float = 60) -> DockerClient:
    """A docker SDK client for ``url`` that has answered a ping, or :class:`DockerUnavailable`."""
    import docker

    from .lifecycle import DockerUnavailable, _short_reason

    try:
        client = docker.from_env(timeout=int(timeout), **client_kwargs(url))
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        raise DockerUnavailable(
            f"no Docker engine answers at {url} ({_short_reason(exc)}); check the "
            "--ha-docker-hosts URL and that the engine runs"
        ) from None
    return client


def lock_dir_for_run(basetemp: Path, worker: str | None) -> Path | None:
    """The folder every xdist worker of this run shares for engine locks (None alone)."""
    if not worker:
        return None
    return basetemp.parent / "tidb-ha-engines"

