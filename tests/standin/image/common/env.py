"""Process-wide knobs read from the environment: time scale, bug modes (release: versions.py).

Every duration inside the stand-in (lease TTLs, heartbeats, election timeouts, backfill
pacing) goes through `scaled()`, so a test run at `--ha-time-scale 0.01` shrinks the
stand-in's clocks by the same factor as the test's schedule.  Minimums keep a tiny scale
from turning loops into busy spins on a shared 2-core machine.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache

KNOWN_BUGS = frozenset({"48303", "48546", "46735"})
MIN_SCALE = 0.001


@lru_cache(maxsize=1)
def time_scale() -> float:
    """`STANDIN_TIME_SCALE` as a float (default 1.0); garbage or non-positive values mean 1.0."""
    raw = os.environ.get("STANDIN_TIME_SCALE", "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        return 1.0
    if value != value or value <= 0:  # NaN or non-positive
        return 1.0
    return max(value, MIN_SCALE)


def scaled(seconds: float, minimum: float = 0.05) -> float:
    """`seconds` times the time scale, never below `minimum` seconds."""
    return max(seconds * time_scale(), minimum)


@lru_cache(maxsize=1)
def bugs() -> frozenset[str]:
    """The bug modes switched on by `STANDIN_BUGS` (comma list, e.g. `48303,46735`).

    Unknown ids are kept (a role may ignore them) so a typo is visible in the start-up log.
    """
    raw = os.environ.get("STANDIN_BUGS", "")
    return frozenset(part.strip().lstrip("#") for part in raw.split(",") if part.strip())


def bug_enabled(bug_id: str | int) -> bool:
    """True when the bug mode `bug_id` (e.g. 48303) is switched on for this container."""
    return str(bug_id) in bugs()


def store_heartbeat_interval() -> float:
    """How often a TiKV heartbeats PD: 1s times the scale, at least 0.2s (shared by both roles)."""
    return scaled(1.0, 0.2)


#: PD's default ``election-interval`` (the stand-in's PD scales it, floor 1 s: pd/etcdproc.py).
PD_ELECTION_INTERVAL = 3.0


def pd_retry_budget() -> float:
    """How long a TiDB keeps retrying PD across members before it gives up with 9001.

    client-go retries TSO/PD calls with a 15 s backoff budget (``TsoMaxBackoff``,
    ``BoPDRPC`` in tikv/client-go), five times PD's 3 s election interval, so a PD leader
    change never fails a statement. The stand-in keeps that ratio to its own (scaled, floored)
    election interval.
    """
    return 5 * max(1.0, scaled(PD_ELECTION_INTERVAL, 1.0))


class Pace:
    """A polling loop's pace: ``busy`` while it has work, ``idle`` when it has none, and
    at once when something in this process ``poke``\\s it (a job or task submitted here).

    At small time scales the stand-in's loops polled PD twenty times a second each, idle or
    not; a cluster kept for later tests then took CPU from the one under test.
    """

    def __init__(self, busy: float, idle: float) -> None:
        self.busy = busy
        self.idle = max(idle, busy)
        self._poked = threading.Event()

    def wait(self, had_work: bool) -> None:
        self._poked.wait(self.busy if had_work else self.idle)
        self._poked.clear()

    def poke(self) -> None:
        self._poked.set()
