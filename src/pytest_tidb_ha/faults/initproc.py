"""A container's init process held by a pidfd, so ``kill`` needs no Docker round trip.

Why (issue 13: kill apply p95 <= 100 ms): ``docker kill`` + ``docker wait`` is Docker's
own round trip -- the API, containerd, the shim, back -- about 150 ms on this machine,
more under load. When pytest is root next to a local engine, the container's init
process is a process of this host: SIGKILL to it ends the container (the kernel kills
every process of a pid namespace whose init dies), and Docker records the exit
(``exited``, code 137) as for ``docker kill``.

Safety: the process is held by a **pidfd** opened before the window (at warm-up, and
after each heal's start), never by a bare pid, so a signal can never reach another
process that reused the number; the pidfd is opened from Docker's ``State.Pid`` and
then checked against ``/proc/<pid>/cgroup`` naming the container. The direct path is
taken only when every precondition holds (:func:`kill_path`); otherwise -- a remote
engine, not root, a restart policy (Docker restarts a container whose process died,
not one it killed itself), a paused container, no pidfd -- the fault uses the Docker
API as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("pytest_tidb_ha.faults")

PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: Restart policies under which a process that died stays down (Docker's names).
NO_RESTART = frozenset({"", "no"})
#: The key of the run's :class:`InitProcesses` in the nemesis' shared store.
SHARED_KEY = "init-processes"


def pidfd_supported() -> bool:
    return hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")


def kill_path(*, root: bool, local_engine: bool, pidfd: bool, restart_policy: str,
              running: bool, pid: int) -> tuple[str, str]:
    """``("pidfd", "")`` when a container may be killed through its init's pidfd, else
    ``("api", why not)`` (pure: the preconditions, in the order a reader checks them)."""
    if not root:
        return "api", "not root"
    if not local_engine:
        return "api", "the Docker engine is not local"
    if not pidfd:
        return "api", "no pidfd_open/pidfd_send_signal here"
    if restart_policy not in NO_RESTART:
        return "api", f"restart policy {restart_policy!r} would restart a process that died"
    if not running or pid <= 0:
        return "api", "the container is not running"
    return "pidfd", ""


def cgroup_names(proc_cgroup: str, container_id: str) -> bool:
    """True when ``/proc/<pid>/cgroup`` text puts the process in the container's cgroup
    (cgroupfs ``/docker/<id>``, systemd ``docker-<id>.scope``: the id is in the path)."""
    return bool(container_id) and any(container_id in line.split(":", 2)[-1]
                                      for line in proc_cgroup.splitlines())


def frozen(proc_cgroup: str, root: Path = CGROUP_ROOT) -> bool:
    """True when the cgroup v2 freezer holds the process (``docker pause``); a v1 host
    answers from ``freezer.state``. Unknown layouts answer False (Docker then decides)."""
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        rel = path.lstrip("/")
        try:
            if controllers == "":
                return (root / rel / "cgroup.freeze").read_text().strip() == "1"
            if "freezer" in controllers.split(","):
                return (root / "freezer" / rel / "freezer.state").read_text().strip() != "THAWED"
        except OSError:
            continue
    return False


@dataclass
class InitHandle:
    """One container's init process: its pid (for messages) and a pidfd (for signals)."""

    container_id: str
    pid: int
    fd: int

    def kill(self) -> bool:
        """SIGKILL through the pidfd; False when the process is gone already."""
        try:
            signal.pidfd_send_signal(self.fd, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def wait_gone(self, timeout: float) -> bool:
        """True once the process has exited (its pidfd turns readable), within ``timeout``."""
        return pidfd_exited(self.fd, timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def pidfd_open(pid: int) -> int:
    return os.pidfd_open(pid)


def pidfd_exited(fd: int, timeout: float) -> bool:
    """True once the process of pidfd ``fd`` has exited (the fd turns readable), within
    ``timeout`` seconds (0: a look, no wait)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def read_cgroup(pid: int) -> str:
    """``/proc/<pid>/cgroup`` ("" when the process is gone)."""
    try:
        return (PROC / str(pid) / "cgroup").read_text()
    except OSError:
        return ""


class InitProcesses:
    """The run's init-process handles by container id (kept in the nemesis' shared store
    under :data:`SHARED_KEY`, closed at its stop). ``enabled`` is the host's part of
    :func:`kill_path` (root, local engine, pidfd), asked once."""

    def __init__(self, *, root: bool, local_engine: bool,
                 opener: Callable[[int], int] = pidfd_open,
                 cgroup_of: Callable[[int], str] = read_cgroup,
                 cgroup_root: Path = CGROUP_ROOT) -> None:
        self.root = root
        self.local_engine = local_engine
        self.pidfd = pidfd_supported()
        self._open = opener
        self._cgroup_of = cgroup_of
        self._cgroup_root = cgroup_root
        self._handles: dict[str, InitHandle] = {}
        self._lock = threading.Lock()
        self.why_not: dict[str, str] = {}  # container id -> why it takes the API path

    def prime(self, container: Any) -> InitHandle | None:
        """Open the pidfd of ``container``'s init from its *fresh* attributes (the caller
        reloaded it); replaces an older handle. None (and :attr:`why_not`) when the API
        path must be used."""
        attrs = getattr(container, "attrs", None) or {}
        state = attrs.get("State") or {}
        policy = str(((attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "")
        pid = int(state.get("Pid") or 0)
        path, why = kill_path(root=self.root, local_engine=self.local_engine, pidfd=self.pidfd,
                              restart_policy=policy, running=bool(state.get("Running")), pid=pid)
        self.drop(container.id)
        if path != "pidfd":
            self.why_not[container.id] = why
            return None
        try:
            fd = self._open(pid)
        except OSError as exc:
            self.why_not[container.id] = f"pidfd_open({pid}): {exc}"
            return None
        handle = InitHandle(container.id, pid, fd)
        if not cgroup_names(self._cgroup_of(pid), container.id):
            handle.close()  # exited and the number was reused meanwhile, or an unknown layout
            self.why_not[container.id] = f"pid {pid} is not in the container's cgroup"
            return None
        with self._lock:
            self._handles[container.id] = handle
        self.why_not.pop(container.id, None)
        return handle

    def paused(self, handle: InitHandle) -> bool:
        """The freezer holds ``handle``'s process (``docker pause``): leave it to Docker."""
        return frozen(self._cgroup_of(handle.pid), self._cgroup_root)

    def get(self, container_id: str) -> InitHandle | None:
        with self._lock:
            return self._handles.get(container_id)

    def drop(self, container_id: str) -> None:
        """Forget (and close) a handle whose process exited or was killed."""
        with self._lock:
            handle = self._handles.pop(container_id, None)
        if handle is not None:
            handle.close()

    def close(self) -> None:
        with self._lock:
            handles, self._handles = list(self._handles.values()), {}
        for handle in handles:
            handle.close()

    def __repr__(self) -> str:
        return f"InitProcesses({len(self._handles)} held)"


def init_processes(shared: dict[str, Any] | None, docker: Any) -> InitProcesses | None:
    """The run's :class:`InitProcesses` (made on first use); None without a shared store
    (a fault used alone takes the API path)."""
    if shared is None:
        return None
    found = shared.get(SHARED_KEY)
    if found is None:
        from .netns import engine_is_local

        found = shared[SHARED_KEY] = InitProcesses(root=os.geteuid() == 0,
                                                   local_engine=engine_is_local(docker))
    assert isinstance(found, InitProcesses)
    return found
