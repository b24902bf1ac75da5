"""SIGTERM unwinds like Ctrl-C while something that must be torn down is alive.

CI cancels a job with SIGTERM; Python's default for it ends the process at once, so
no ``finally`` runs and every container, network and volume of the run stays until
the next session's reaper. The cluster pool's fixture holds this for its life, and so
does any fixture that owns containers (the stand-in's own test fixture), so that a
cancelled run removes what it started. SIGKILL cannot be caught: the reaper is for it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` (teardown runs).

    Only when nobody else handles SIGTERM and we are in the main thread (a nested
    block, or a handler the user installed, is left alone); the default is restored
    on the way out.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum} (SIGTERM): tearing clusters down")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
