"""Running iptables/tc inside a container's network namespace.

The pingcap images carry neither iptables nor tc, so commands never run *in* the
target container. Two ways in (DESIGN.md "Faults on Docker"):

* :class:`NsenterRunner` — ``nsenter -t <pid> -n`` with the host's tools, when we are
  root and the Docker engine is local (fast: no container start);
* :class:`HelperRunner` — a helper container that joins the target's network
  namespace (``network_mode=container:<id>``, ``NET_ADMIN``), labelled
  ``component=helper``, reused for the target while this runner lives and removed by
  :meth:`close` (the reaper removes helpers of dead runs). Its image is the plugin's
  own, built when missing (:mod:`.helper_image`), or the one ``--ha-fault-helper-image``
  names.

Both answer ``run(container, script) -> (exit code, output)`` for a POSIX shell script.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from .helper_image import DEFAULT_HELPER_IMAGE, HelperImageError, ensure_helper_image
from .ledger import host_id

log = logging.getLogger("pytest_tidb_ha.faults")

__all__ = ["DEFAULT_HELPER_IMAGE", "HelperRunner", "NsenterRunner", "make_runner"]
LABEL_PREFIX = "org.pytest-tidb-ha"
COMMAND_TIMEOUT = 30.0


class FaultExecError(RuntimeError):
    """A command inside a container's network namespace failed (message has its output)."""


@dataclass(frozen=True)
class Result:
    code: int
    output: str


class NetnsRunner(Protocol):
    method: str

    def run(self, container: Any, script: str, *, timeout: float = COMMAND_TIMEOUT) -> Result: ...

    def close(self) -> None: ...


def check(result: Result, what: str, container: Any) -> Result:
    if result.code != 0:
        name = getattr(container, "name", container)
        raise FaultExecError(f"{what} in {name} failed (exit {result.code}): {result.output.strip()[-2000:]}")
    return result


def container_pid(container: Any) -> int:
    """The host pid of the container's init process (0 when it is not running)."""
    container.reload()
    return int(container.attrs.get("State", {}).get("Pid") or 0)


class NsenterRunner:
    """``nsenter -t <pid> -n sh -c <script>`` on this host (root, local engine).

    The container's pid is asked from Docker once and kept while ``/proc/<pid>/ns/net``
    still is the namespace it was (a restarted container has a new pid and namespace):
    a fault's apply then spends no API call on it.
    """

    method = "nsenter"
    python = sys.executable  # the delayer runs with the host's python in the target netns

    def __init__(self) -> None:
        self._pids: dict[str, tuple[int, str]] = {}  # container id -> (pid, netns link)

    def _pid(self, container: Any) -> int:
        cached = self._pids.get(container.id)
        if cached is not None:
            pid, ns = cached
            try:
                if os.readlink(f"/proc/{pid}/ns/net") == ns:
                    return pid
            except OSError:
                pass
        pid = container_pid(container)
        if pid > 0:
            try:
                self._pids[container.id] = (pid, os.readlink(f"/proc/{pid}/ns/net"))
            except OSError:
                self._pids.pop(container.id, None)
        return pid

    def run(self, container: Any, script: str, *, timeout: float = COMMAND_TIMEOUT) -> Result:
        pid = self._pid(container)
        if pid <= 0:
            raise FaultExecError(f"container {container.name} is not running (no pid)")
        try:
            proc = subprocess.run(  # noqa: S603 - a fixed argv, no shell of ours
                ["nsenter", "-t", str(pid), "-n", "sh", "-c", script],  # noqa: S607 - the host's nsenter, by name as an admin runs it
                capture_output=True, text=True, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise FaultExecError(f"nsenter into {container.name} timed out after {timeout}s: "
                                 f"{script[:200]}") from exc
        return Result(proc.returncode, (proc.stdout or "") + (proc.stderr or ""))

    def close(self) -> None:
        return None


def helper_labels(target_id: str, run: str) -> dict[str, str]:
    return {
        f"{LABEL_PREFIX}.plugin": "pytest-tidb-ha",
        f"{LABEL_PREFIX}.component": "helper",
        f"{LABEL_PREFIX}.run": run,
        f"{LABEL_PREFIX}.pid": str(os.getpid()),
        f"{LABEL_PREFIX}.host": socket.gethostname(),
        f"{LABEL_PREFIX}.hostid": host_id(),
        f"{LABEL_PREFIX}.target": target_id,
    }


class HelperRunner:
    """A helper container per target sharing its network namespace (any Docker engine)."""

    method = "helper"
    python = "python3"

    def __init__(self, docker: Any, image: str = DEFAULT_HELPER_IMAGE, *, run: str = "run") -> None:
        self._docker = docker
        self._image = image
        self._run = run
        self._helpers: dict[str, tuple[Any, str]] = {}  # target id -> (helper, target StartedAt)
        self._lock = threading.Lock()

    def _helper(self, container: Any) -> Any:
        with self._lock:
            container.reload()
            started = str(container.attrs.get("State", {}).get("StartedAt", ""))
            cached = self._helpers.get(container.id)
            if cached is not None:
                helper, at = cached
                if at == started:
                    return helper
                # the target restarted: the helper still sits in the old namespace
                try:
                    helper.remove(force=True, v=True)
                except Exception as exc:  # noqa: BLE001 - the reaper finds it by label
                    log.warning("could not remove stale fault helper %s: %s", helper.name, exc)
            try:
                ensure_helper_image(self._docker, self._image)
            except HelperImageError as exc:
                raise FaultExecError(str(exc)) from exc
            helper = self._docker.containers.run(
                self._image,
                ["sleep", "infinity"],
                detach=True,
                network_mode=f"container:{container.id}",
                cap_add=["NET_ADMIN"],
                labels=helper_labels(container.id, self._run),
                name=f"tidb-ha-helper-{container.id[:12]}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
                auto_remove=False,
            )
            self._helpers[container.id] = (helper, started)
            log.debug("fault helper %s for %s", helper.name, container.name)
            return helper

    def run(self, container: Any, script: str, *, timeout: float = COMMAND_TIMEOUT) -> Result:
        helper = self._helper(container)
        # docker exec has no timeout of its own: bound it inside the helper.
        argv = ["timeout", str(int(max(1, timeout))), "sh", "-c", script]
        code, output = helper.exec_run(argv, demux=False)
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output or "")
        return Result(int(code if code is not None else 1), text)

    def close(self) -> None:
        with self._lock:
            helpers, self._helpers = [h for h, _ in self._helpers.values()], {}
        for helper in helpers:
            try:
                helper.remove(force=True, v=True)
            except Exception as exc:  # noqa: BLE001 - the reaper finds it by label
                log.warning("could not remove fault helper %s: %s", getattr(helper, "name", "?"), exc)


def engine_is_local(docker: Any) -> bool:
    """True when the Docker engine is reached through a local unix socket."""
    try:
        base = str(docker.api.base_url)
    except Exception:  # noqa: BLE001
        return False
    # docker-py names a unix-socket engine ``http+docker://localhost`` (ssh: ``.../ssh``).
    return base in ("http+docker://localhost", "http+docker://localunixsocket") or base.startswith(
        ("http+unix://", "unix://"))


def can_nsenter(docker: Any) -> bool:
    return os.geteuid() == 0 and engine_is_local(docker) and shutil.which("nsenter") is not None


def make_runner(docker: Any, helper_image: str | None = None, *, run: str = "run") -> NetnsRunner:
    """nsenter when root on a local engine and no helper image was asked for, else a helper."""
    if helper_image is None and can_nsenter(docker):
        return NsenterRunner()
    return HelperRunner(docker, helper_image or DEFAULT_HELPER_IMAGE, run=run)
