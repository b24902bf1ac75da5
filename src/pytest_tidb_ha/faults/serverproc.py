"""``kill`` in the supervised modes: end a node's server process, keep its container.

Why (issue 13: kill's heal p95 <= 100 ms): a container's ``docker start`` costs Docker
several hundred milliseconds; a process start inside a running container costs a fork.
With ``--ha-kill-mode=silent`` (the default; :mod:`.silence` adds the silenced address)
or ``process`` each node's PID 1 is the sh supervisor of
:mod:`..cluster.supervisor`, and the server its child: the kill SIGKILLs that child and
waits until it is gone; the heal sends the supervisor its start signal and waits until a
*new* server child exists (readiness stays the watcher's business, as after a
``docker start``). The container, its network namespace and address stay.

Two paths, as for the container kill (:mod:`.initproc`):

* **pidfd** (root next to a local engine): the supervisor's pidfd, held since warm-up,
  gives the init pid; its children are read from ``/proc/<pid>/task/*/children``; the
  server is signalled through a pidfd of its own, opened and then checked to still be
  the supervisor's child (a number reused meanwhile would have another parent);
* **api** (otherwise): ``docker exec`` of :data:`EXEC_SCRIPT` (the image's ``/bin/sh``,
  which the supervisor needs anyway) kills or lists the server inside the container,
  and the start signal is ``docker kill --signal``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..cluster.supervisor import IDLE_NAME, SHELL, START_SIGNAL, is_server
from .initproc import PROC, InitHandle, pidfd_exited, pidfd_open

#: Seconds between looks for the new server after the start signal.
POLL = 0.002
#: Seconds between looks through ``docker exec`` (a round trip each).
API_POLL = 0.05

#: ``sh -c EXEC_SCRIPT sh kill|list [PID]`` inside the container: the server children of
#: the supervisor (PID 1 there; not the idle child: its command line holds IDLE_NAME),
#: killed (with every process under them) or listed; prints the servers' pids. ``kill``
#: waits until each is gone (a zombie counts as gone: it runs no more).
EXEC_SCRIPT = f"""\
init=${{2:-1}}
servers() {{
  for f in /proc/$init/task/*/children; do
    for p in $(cat "$f" 2>/dev/null); do
      case "$(cat /proc/$p/cmdline 2>/dev/null)" in *{IDLE_NAME}*|'') ;; *) echo $p ;; esac
    done
  done
}}
alive() {{
  {{ read -r st < /proc/$1/stat; }} 2>/dev/null || return 1
  case "$st" in *") Z "*|*") X "*) return 1 ;; esac
}}
tree() {{
  for q; do echo $q; tree $(cat /proc/$q/task/*/children 2>/dev/null); done
}}
pids=$(servers 2>/dev/null)  # bash warns of the NULs in a command line
[ "$1" = kill ] || {{ echo $pids; exit 0; }}
all=$(tree $pids)  # the servers' own children too: a container kill ends them all
for p in $all; do kill -KILL $p 2>/dev/null; done
for p in $all; do
  n=0
  while alive $p; do
    n=$((n + 1)); [ $n -gt 2000 ] && {{ echo "pid $p still there" >&2; exit 1; }}
    sleep 0.005 2>/dev/null || sleep 1
  done
done
echo $pids
"""


# -- /proc (the pidfd path) ----------------------------------------------------------
def children(pid: int, proc: Path = PROC) -> list[int]:
    """Child pids of ``pid`` (every thread's ``children`` file; [] when it is gone)."""
    out: list[int] = []
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            out += [int(w) for w in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


def argv(pid: int, proc: Path = PROC) -> tuple[str, ...]:
    """``pid``'s command line (() for a zombie or a process that is gone)."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ()
    words = raw.split(b"\0")
    if words and not words[-1]:
        words.pop()  # the NUL that ends the last word
    return tuple(w.decode(errors="replace") for w in words)


def parent(pid: int, proc: Path = PROC) -> int:
    """``pid``'s parent from ``/proc/<pid>/stat`` (0 when gone); the comm field may hold
    spaces and parentheses, so the fields are read after its last ``)``."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return 0
    fields = text.rsplit(")", 1)[-1].split()
    return int(fields[1]) if len(fields) > 1 and fields[0] not in ("Z", "X") else 0


def descendants(pid: int, proc: Path = PROC) -> list[int]:
    """Every process under ``pid`` (children first, then theirs)."""
    out: list[int] = []
    level = children(pid, proc)
    while level:
        out += level
        level = [c for p in level for c in children(p, proc)]
    return out


def server_pids(init: int, children_of: Callable[[int], list[int]] = children,
                argv_of: Callable[[int], tuple[str, ...]] = argv) -> list[int]:
    """The supervisor's server children (pure given the two readers)."""
    return [p for p in children_of(init) if is_server(argv_of(p))]


def parse_pids(output: str) -> list[int]:
    """The pids :data:`EXEC_SCRIPT` printed (its last line)."""
    lines = output.strip().splitlines()
    return [int(w) for w in (lines[-1].split() if lines else []) if w.isdigit()]


# -- the two paths ---------------------------------------------------------------------
class DirectServer:
    """The pidfd path for one supervised container (its init held by ``init``)."""

    def __init__(self, init: InitHandle, opener: Callable[[int], int] = pidfd_open,
                 proc: Path = PROC) -> None:
        self.init = init
        self._open = opener
        self._proc = proc

    def alive(self) -> bool:
        """The supervisor still runs (its pidfd is not readable)."""
        return not pidfd_exited(self.init.fd, 0)

    def servers(self) -> list[int]:
        return server_pids(self.init.pid, lambda p: children(p, self._proc),
                           lambda p: argv(p, self._proc))

    def kill(self, timeout: float) -> list[int]:
        """SIGKILL every server child and every process under it, then return the
        servers' pids once all are gone.

        Why the whole tree: a container kill ends every process of the container; a
        server's own children (the stand-in PD's etcd) would otherwise outlive it,
        reparented to the supervisor, and count as a server. Each process is held by a
        pidfd opened before any signal, then checked to still hang under the tree (a
        number reused meanwhile would have another parent)."""
        held: list[tuple[int, int]] = []
        tops: list[int] = []
        try:
            for top in self.servers():
                tree = [top, *descendants(top, self._proc)]
                parents = {self.init.pid, *tree}
                for pid in tree:
                    try:
                        fd = self._open(pid)
                    except OSError:
                        continue  # exited meanwhile
                    if parent(pid, self._proc) not in (parents if pid != top
                                                       else {self.init.pid}):
                        os.close(fd)  # not (or no more) under the tree: not ours
                        if pid == top:
                            break
                        continue
                    held.append((pid, fd))
                    if pid == top:
                        tops.append(top)
            for _, fd in held:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
            deadline = time.monotonic() + timeout
            for pid, fd in held:
                if not pidfd_exited(fd, max(0.0, deadline - time.monotonic())):
                    raise RuntimeError(f"pid {pid} still there {timeout:g}s after SIGKILL")
        finally:
            for _, fd in held:
                with contextlib.suppress(OSError):
                    os.close(fd)
        return tops

    def start(self, old: Sequence[int], timeout: float) -> int:
        """The start signal to the supervisor, then the new server's pid."""
        signal.pidfd_send_signal(self.init.fd, signal.Signals[START_SIGNAL])
        return wait_new(self.servers, old, timeout, POLL)


class ExecServer:
    """The API path: ``docker exec`` in the container, ``docker kill --signal``."""

    def __init__(self, container: Any) -> None:
        self.container = container

    def _run(self, what: str) -> list[int]:
        code, out = self.container.exec_run([SHELL, "-c", EXEC_SCRIPT, "sh", what])
        text = out.decode(errors="replace") if isinstance(out, bytes) else str(out)
        if code != 0:
            raise RuntimeError(f"{self.container.name}: server {what} in the container failed "
                               f"(exit {code}): {text.strip()[-300:]}")
        return parse_pids(text)

    def servers(self) -> list[int]:
        return self._run("list")

    def kill(self, timeout: float) -> list[int]:
        return self._run("kill")

    def start(self, old: Sequence[int], timeout: float) -> int:
        self.container.kill(signal=START_SIGNAL)
        return wait_new(self.servers, old, timeout, API_POLL)


def wait_new(servers: Callable[[], list[int]], old: Sequence[int], timeout: float,
             poll: float) -> int:
    """The first server pid that is not one of ``old``, within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        new = [p for p in servers() if p not in old]
        if new:
            return new[0]
        if time.monotonic() > deadline:
            raise RuntimeError(f"no new server process {timeout:g}s after {START_SIGNAL} "
                               "to the supervisor")
        time.sleep(poll)
