"""The supervised kill modes: a POSIX ``sh`` supervisor as each node's PID 1 (pure: no Docker).

Why (issue 13: kill's heal p95 <= 100 ms): a kill that ends the container can only be
healed by ``docker start``, and Docker's own least start on this engine is several hundred
milliseconds. With ``--ha-kill-mode=silent`` (the default) or ``process`` the container
stays: only the server process dies and comes back, so the node's network namespace,
address, volumes and ``docker logs`` survive the kill (silent mode then silences the
address towards the peers for the window: faults/silence.py).

The supervisor is the image's own ``/bin/sh`` running :data:`SCRIPT` (no binary of
ours in the image); the server runs as its child with the argv it has today
(``entrypoint + command``, passed as ``"$@"``):

* SIGTERM / SIGINT to PID 1 (``docker stop``, ``docker restart``, teardown) go to the
  server, and PID 1 exits once the server is gone, with the server's status -- or with
  128 + the signal when the shell reaped the server inside the ``wait`` the signal
  interrupted (the shell has the status then, and asking it again was seen to hang dash
  once in a few hundred stops: the status of a stop is not worth that);
* a server that ends on its own (a start-up failure, a clean exit) ends the container
  with its status, as today; only a server **killed by SIGKILL** (the ``kill`` fault)
  leaves the container up, server-less, until the start signal :data:`START_SIGNAL`
  to PID 1 starts it again (``faults.serverproc``);
* while it waits, PID 1 has one more child: a stopped ``sh`` whose ``$0`` is
  :data:`IDLE_NAME` (a blocking wait needs a child in POSIX sh). The fault side tells
  the server apart from it, and from a forked-but-not-yet-exec'd server (whose command
  line is the supervisor's, and holds that word too), by that word (:func:`is_server`).

A child that ``sh`` starts in the background has SIGINT ignored (POSIX); tidb-server,
pd-server (Go's ``signal.Notify``) and tikv-server (``signal_hook``) install their own
handler, so a forwarded SIGINT reaches them. ``docker stop`` sends SIGTERM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..options import KILL_MODES

SHELL = "/bin/sh"
#: ``$0`` of the supervisor (its name in ``ps``) and of its idle child.
NAME = "pytest-tidb-ha-supervisor"
IDLE_NAME = "pytest-tidb-ha-idle"
#: PID 1 starts the server again on this signal (after the server was SIGKILLed).
START_SIGNAL = "SIGUSR1"
#: Exit status of a server that SIGKILL ended (128 + 9), as ``sh`` reports it.
KILLED_STATUS = 137

#: The supervisor (POSIX sh; dash, bash and busybox ash run it). ``wait`` returns early
#: when a trapped signal arrives: ``kill -0`` then tells a still-running server apart.
SCRIPT = f"""\
srv=0 idle=0 stop= again=
sig() {{ [ "$1" -gt 0 ] && kill -"$2" "$1" 2>/dev/null; return 0; }}
trap 'stop=TERM; sig $srv TERM; sig $idle KILL' TERM
trap 'stop=INT; sig $srv INT; sig $idle KILL' INT
trap 'again=1; sig $idle KILL' USR1
"$@" & srv=$!
while :; do
  wait $srv; rc=$?
  if kill -0 $srv 2>/dev/null; then continue; fi
  [ -n "$stop" ] && exit $rc
  [ $rc -eq {KILLED_STATUS} ] || exit $rc
  srv=0
  while [ -z "$again$stop" ]; do
    {SHELL} -c 'kill -STOP $$' {IDLE_NAME} & idle=$!
    [ -n "$again$stop" ] && sig $idle KILL
    wait $idle
    sig $idle KILL; wait $idle 2>/dev/null; idle=0
  done
  [ -n "$stop" ] && exit 143
  again=
  "$@" & srv=$!
done
"""
#: The entry point of a supervised container (``docker inspect``'s ``Config.Entrypoint``).
ENTRYPOINT = (SHELL, "-c", SCRIPT, NAME)


def check_mode(mode: str) -> str:
    if mode not in KILL_MODES:
        raise ValueError(f"kill mode {mode!r}: must be one of {', '.join(KILL_MODES)}")
    return mode


def wrap(entrypoint: Sequence[str], command: Sequence[str]) -> tuple[tuple[str, ...],
                                                                     tuple[str, ...]]:
    """``(entrypoint, command)`` of a supervised container: the supervisor as the entry
    point, the server's own argv (``entrypoint + command``, unchanged) as its command.

    No quoting happens anywhere: Docker passes each element as one argv word, and the
    script runs them as ``"$@"``, so spaces and quotes reach the server as they are."""
    return ENTRYPOINT, (*entrypoint, *command)


def is_supervised(attrs: Mapping[str, Any]) -> bool:
    """The container (its ``docker inspect`` attributes) runs our supervisor as PID 1."""
    entry = ((attrs.get("Config") or {}).get("Entrypoint")) or ()
    return tuple(entry) == ENTRYPOINT


def is_server(argv: Sequence[str]) -> bool:
    """A child of the supervisor is the server (not the idle child, not a fork that has
    not exec'd the server yet: both carry :data:`IDLE_NAME` in their command line)."""
    return bool(argv) and not any(IDLE_NAME in word for word in argv)


def missing_shell(message: str) -> bool:
    """Docker's answer to a start whose entry point does not exist in the image
    (``exec: "/bin/sh": stat /bin/sh: no such file or directory``)."""
    low = message.lower()
    return SHELL in message and ("no such file" in low or "not found" in low)
