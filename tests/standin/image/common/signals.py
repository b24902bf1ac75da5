"""Turn SIGTERM/SIGINT into an event a server's main thread waits on.

PD and TiKV stand-ins shut down the same way (``docker stop`` sends SIGTERM): say which
signal arrived, then let the main thread stop its servers in order.  The handler only
sets an event because signal handlers run on the main thread between bytecodes and must
not block.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def exit_on_signals(announce: Callable[[str], None]) -> threading.Event:
    """Install SIGTERM/SIGINT handlers that call ``announce(signal name)`` and set the event.

    The caller logs in ``announce`` so that the line keeps the component's own upstream
    wording and its own ``[file:line]`` caller field.
    """
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        announce(signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return done
