"""The Ctrl-C tests' victims get SIGINT even when this run was started ignoring it."""

from __future__ import annotations

import signal
import subprocess
import sys

from interrupt import interruptible

PROBE = [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT))"]


def run_ignoring_sigint(cmd: list[str]) -> str:
    """``cmd``'s output when its parent ignores SIGINT, as a shell's background job does."""
    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    done = subprocess.run(cmd, preexec_fn=ignore, capture_output=True, text=True, timeout=30,
                          check=True)
    return done.stdout.strip()


def test_a_child_started_ignoring_sigint_keeps_ignoring_it() -> None:
    """Why the helper exists: Python leaves an inherited ignore alone (no KeyboardInterrupt)."""
    assert run_ignoring_sigint(PROBE) == str(signal.SIG_IGN)


def test_interruptible_restores_ctrl_c() -> None:
    assert run_ignoring_sigint(interruptible(PROBE)) == str(signal.default_int_handler)


def test_interruptible_keeps_the_pid_the_test_signals() -> None:
    """The wrapper execs: the Popen's pid is the victim's own, so SIGINT reaches it."""
    proc = subprocess.Popen(interruptible([sys.executable, "-c",
                                           "import os, time; print(os.getpid(), flush=True); "
                                           "time.sleep(60)"]),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert int(proc.stdout.readline()) == proc.pid
        proc.send_signal(signal.SIGINT)
        # an uncaught KeyboardInterrupt ends Python by SIGINT itself (its exit status -2)
        assert proc.wait(timeout=30) == -signal.SIGINT
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
