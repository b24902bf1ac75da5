"""How often to poll, and the *scaled* verdict windows (pure).

These are the windows as the case's time scale makes them; :mod:`.floors`
raises each to the recovery floor of the cluster's own timers, which do not
scale (``window = max(scaled, floor)``: the one time model).

The default scaled stall window (overridable with the case's ``stallWindow`` or
the ``stall=`` argument of the assertion helpers) is

    stall = max(60 s, 2 x the longest faultDuration of the case) x time_scale,
    never less than ``MIN_STALL_WALL`` seconds nor 4 poll intervals.

Why: the stall clock counts *fault-free* time only, so the window measures
how long a healthy cluster may take to resume a job after a heal. 60 s of case
time matches the DDL owner session TTL at scale 1 (below 1, the floor keeps the
real timers); a long fault grows client backoffs and leaves more work
(region leader elections, lock resolution, reconnects) to redo, so the window
also grows with the longest fault -- twice its length. A fixed cluster resumes
well inside that, while a deadlocked job (#48303) or an import frozen in
``importing`` (#46735) is proven stuck one window after its last progress,
without waiting for the case's 60-minute timeout. The floor exists because
container restarts and SQL round trips do not shrink with ``--ha-time-scale``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import Case, FaultSpec

#: Unscaled seconds of fault-free silence that prove a job stuck at least.
BASE_STALL = 60.0
#: Wall-clock floor of the stall window (things that do not scale).
MIN_STALL_WALL = 5.0
#: Unscaled poll interval and its wall-clock bounds.
BASE_POLL = 2.0
MIN_POLL = 0.25
#: Unscaled seconds a cancelled job gets to become terminal.
BASE_CANCEL_WINDOW = 60.0
MIN_CANCEL_WALL = 5.0
#: Unscaled seconds a terminal job's DXF task gets to become terminal too.
BASE_TERMINAL_GRACE = 10.0
MIN_TERMINAL_GRACE = 1.5
#: Wall seconds the case runner waits past a job's timeout + stall window (and past a
#: cancel window) before it gives up on a verdict.
WAIT_SLACK = 30.0
#: Unscaled seconds allowed for the jobs of a test whose plan cannot name them (a Python
#: test passes its job timeouts as arguments in its body): QA's usual ``timeout: 60m``.
UNDECLARED_JOBS = 3600.0
#: Wall seconds of an HA test that no case duration covers and no time scale shrinks:
#: cluster start-up (three readiness stages of at most ``startup_timeout`` = 180 s
#: each), preparing the workload, diagnostics, healing and teardown.
STARTUP_MARGIN = 900.0


def poll_interval(time_scale: float) -> float:
    return min(BASE_POLL, max(MIN_POLL, BASE_POLL * time_scale))


def longest_fault(faults: Iterable[FaultSpec]) -> float:
    return max((f.schedule.duration.seconds for f in faults), default=0.0)


def longest_recovery(faults: Iterable[FaultSpec]) -> float:
    """QA's ``recoveryTime`` of one-shot faults: the cluster's time to recover after a heal."""
    return max((f.schedule.recovery.seconds for f in faults if f.schedule.recovery), default=0.0)


def default_stall_window(case: Case | None, time_scale: float) -> float:
    """Scaled seconds of fault-free time without progress that prove ``stuck``.

    A case's ``recoveryTime`` lengthens the window by itself: a job may stay
    silent that long after the heal without being judged.
    """
    faults = case.faults if case else ()
    unscaled = max(BASE_STALL, 2.0 * longest_fault(faults)) + longest_recovery(faults)
    return max(unscaled * time_scale, MIN_STALL_WALL, 4 * poll_interval(time_scale))


def stall_window(case: Case | None, time_scale: float) -> float:
    """The case's ``stallWindow`` (scaled) if it has one, else the default."""
    if case is not None and case.expect.stall_window is not None:
        return max(case.expect.stall_window.scaled(time_scale), 2 * poll_interval(time_scale))
    return default_stall_window(case, time_scale)


def cancel_window(time_scale: float) -> float:
    return max(BASE_CANCEL_WINDOW * time_scale, MIN_CANCEL_WALL)


def terminal_grace(time_scale: float) -> float:
    return max(BASE_TERMINAL_GRACE * time_scale, MIN_TERMINAL_GRACE)


def case_budget(case: Case, time_scale: float, *, jobs_declared: bool = True) -> float:
    """The longest wall time a case's own schedule may take from t0, start-up excluded.

    The case runner's waits bound it: from ``warmUpTime`` each job entry runs its
    ``times`` one after another (entries side by side), each run at most its timeout
    plus a stall window, a cancel window and two ``WAIT_SLACK``; then queued jobs it
    found get one more stall window. A Python test's jobs are not in its plan
    (``jobs_declared=False``): they get ``UNDECLARED_JOBS`` of case time. The fault
    schedule's last window end bounds it from below. Used for the pytest-timeout
    deadline of each HA test (plus ``STARTUP_MARGIN``), so the deadline is never shorter
    than what the runner itself may legitimately wait.
    """
    stall = stall_window(case, time_scale)
    per_run = stall + cancel_window(time_scale) + 2 * WAIT_SLACK
    if jobs_declared:
        entries = [job.times * (job.timeout.scaled(time_scale) + per_run) for job in case.jobs]
    else:
        entries = [UNDECLARED_JOBS * time_scale + per_run]
    jobs_end = case.warmup.scaled(time_scale)
    if entries:
        jobs_end += max(entries) + stall
    # a schedule's windows start later and later and last alike: its last ends last
    faults_end = max((windows[-1][1] for f in case.faults
                      if (windows := f.schedule.windows(time_scale))), default=0.0)
    return max(jobs_end, faults_end)
