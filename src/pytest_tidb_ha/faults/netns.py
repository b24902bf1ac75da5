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

import contextlib
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .helper_image import DEFAULT_HELPER_IMAGE, HelperImageError, ensure_helper_image
from .ledger import host_id

log = logging.getLogger("pytest_tidb_ha.faults")

__all__ = ["DEFAULT_HELPER_IMAGE", "HelperRunner", "NsenterRunner", "ShellSession", "make_runner"]
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
    #: :meth:`namespace_key` costs no Docker API call (so callers may ask every window)
    cheap_namespace_key: bool

    def run(self, container: Any, script: str, *, timeout: float = COMMAND_TIMEOUT) -> Result: ...

    def namespace_key(self, container: Any) -> str: ...

    def close(self) -> None: ...


def check(result: Result, what: str, container: Any) -> Result:
    if result.code != 0:
        name = getattr(container, "name", container)
        raise FaultExecError(f"{what} in {name} failed (exit {result.code}): {result.output.strip()[-2000:]}")
    return result


class ShellSession:
    """One long-lived POSIX shell that runs the scripts written to its stdin, one at a time.

    Why: a fault window used to start ``nsenter`` + ``sh`` (two execs, a namespace switch)
    per command; a session pays that once per namespace and run, and a window's batched
    ``iptables-restore`` is then the only process it starts (issue 13). Each script runs in
    a subshell (a fork, no exec), so its ``exit`` ends only the subshell, with its stdin
    from ``/dev/null`` (a stray read never eats the next script) and stderr merged into the
    output; an end line with a per-session nonce carries its exit status. A script that
    outlives ``timeout`` kills the session (and what it started in its process group): the
    next call starts a fresh one.
    """

    def __init__(self, argv: Sequence[str], key: object = None) -> None:
        self.key = key
        self._marker = f"__tidb_ha_end_{uuid.uuid4().hex}"
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell of ours
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, bufsize=0,
        )

    def alive(self) -> bool:
        return self._proc.poll() is None

    def run(self, script: str, timeout: float = COMMAND_TIMEOUT) -> Result:
        with self._lock:
            return self._run(script, timeout)

    def _run(self, script: str, timeout: float) -> Result:
        proc = self._proc
        assert proc.stdin is not None
        assert proc.stdout is not None
        framed = f"(\n{script}\n) </dev/null 2>&1; printf '\\n{self._marker} %s\\n' \"$?\"\n"
        try:
            proc.stdin.write(framed.encode())
        except OSError as exc:  # the shell is gone (killed namespace, syntax error earlier)
            self.close()
            raise FaultExecError(f"fault shell exited: {exc}") from exc
        end = f"\n{self._marker} ".encode()
        buf = bytearray()
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                at = buf.find(end)
                if at >= 0 and buf.endswith(b"\n"):
                    status = buf[at + len(end):].strip()
                    return Result(int(status or 1), buf[:at].decode(errors="replace"))
                left = deadline - time.monotonic()
                if left <= 0:
                    self.close()
                    raise FaultExecError(f"command timed out after {timeout:g}s: {script[:200]}")
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:  # EOF: the shell died (a syntax error ends a non-interactive sh)
                    self.close()
                    code = proc.returncode if proc.returncode else 2
                    return Result(code, buf.decode(errors="replace"))
                buf += chunk

    def close(self, *, kill_group: bool = True) -> None:
        """End the shell. ``kill_group``: and whatever it still runs (a hung command, in
        its process group); a clean close only ends its input, so what a script started
        to outlive it (the run's NFQUEUE delayer, stopped by its owner) keeps running."""
        proc = self._proc
        if kill_group and proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=2)
        for f in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if f is not None:
                    f.close()


def container_pid(container: Any) -> int:
    """The host pid of the container's init process (0 when it is not running)."""
    container.reload()
    return int(container.attrs.get("State", {}).get("Pid") or 0)


class NsenterRunner:
    """A long-lived ``nsenter -t <pid> -n sh`` per container (root, local engine).

    The container's pid is asked from Docker once and kept while ``/proc/<pid>/ns/net``
    still is the namespace it was (a restarted container has a new pid and namespace):
    a fault's apply then spends no API call on it. The shell (:class:`ShellSession`) is
    kept for the same namespace and run, so a command costs no ``nsenter``/``sh`` start;
    :meth:`close` ends them (an orphaned one ends at our exit: its stdin closes).
    """

    method = "nsenter"
    cheap_namespace_key = True
    python = sys.executable  # the delayer runs with the host's python in the target netns

    def __init__(self) -> None:
        self._pids: dict[str, tuple[int, str]] = {}  # container id -> (pid, netns link)
        self._sessions: dict[str, ShellSession] = {}  # container id -> its shell
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._sessions)

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

    def namespace_key(self, container: Any) -> str:
        """Which network namespace the container has now (changes when it restarts)."""
        pid = self._pid(container)
        return f"{pid}:{self._pids.get(container.id, (0, ''))[1]}"

    def _session(self, container: Any) -> ShellSession:
        pid = self._pid(container)
        if pid <= 0:
            raise FaultExecError(f"container {container.name} is not running (no pid)")
        key = self._pids.get(container.id)
        with self._lock:
            found = self._sessions.get(container.id)
            if found is not None and found.key == key and found.alive():
                return found
            if found is not None:  # the namespace it sits in is gone, or it died
                found.close()
            # the host's nsenter and sh, by name as an admin runs them
            session = ShellSession(["nsenter", "-t", str(pid), "-n", "sh"], key=key)
            self._sessions[container.id] = session
            return session

    def run(self, container: Any, script: str, *, timeout: float = COMMAND_TIMEOUT) -> Result:
        session = self._session(container)
        try:
            return session.run(script, timeout)
        except FaultExecError as exc:
            raise FaultExecError(f"in {container.name}: {exc}") from exc

    def close(self) -> None:
        _close_all(self._sessions)


def _close_all(sessions: dict[str, ShellSession]) -> None:
    for cid in list(sessions):
        session = sessions.pop(cid, None)
        if session is not None:
            session.close(kill_group=False)


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
    cheap_namespace_key = False
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
            if container.status not in ("running", "paused"):  # no namespace to join
                raise FaultExecError(f"container {container.name} is not running "
                                     f"({container.status})")
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

    def namespace_key(self, container: Any) -> str:
        """Which network namespace the container has now (its last start)."""
        container.reload()
        return f"{container.id}:{container.attrs.get('State', {}).get('StartedAt', '')}"

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
