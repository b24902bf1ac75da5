"""Is a process still there? One answer for every owner check.

The reapers (containers, networks, fault rules, sysbench processes) decide what a dead
run left behind by whether the pid in its label still runs on this host; they must all
answer alike, or one reaper removes what another keeps.
"""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True when ``pid`` runs on this host (signal 0; EPERM still means alive).

    ``pid <= 0`` is no process: ``kill(0, 0)`` would signal our own process group.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
