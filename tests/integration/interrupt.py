"""Start a child that Ctrl-C (SIGINT) really interrupts, whatever this run inherited.

A shell starts a background job (``bash .ci/run > log &``, ``cmd & wait`` in a
script, ``nohup``) with SIGINT *ignored*, its children inherit that, and a Python
started with SIGINT ignored keeps ignoring it (no ``KeyboardInterrupt``, ever). A
test that plays "the user pressed Ctrl-C" with ``send_signal(SIGINT)`` then tests
nothing and waits out its timeout while the victim (its cluster, its sysbench) runs
on. :func:`interruptible` makes the child start with SIGINT at its default, as a
terminal's foreground job has it, so the test means the same in every harness.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: Reset SIGINT to its default (a handler would reset at exec too; an ignore would
#: not), then become ``argv[1:]`` in the same process: the pid the test signals.
_RESTORE_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "os.execvp(sys.argv[1], sys.argv[1:])")


def interruptible(cmd: Sequence[str]) -> list[str]:
    """``cmd`` as an argv whose process has the default SIGINT disposition."""
    return [sys.executable, "-c", _RESTORE_SIGINT, *cmd]
