"""Judging a job: recorded states + fault windows + expectation -> a Verdict (pure).

The verdict names and the :class:`~pytest_tidb_ha.verdicts.Verdict` record live in
the kernel module :mod:`pytest_tidb_ha.verdicts` (see DESIGN.md, "Verdicts").
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from ..redact import redact
from ..scenario.durations import format_seconds
from ..scenario.model import Expectation
from ..timeline import FaultWindow, fault_free_seconds
from ..verdicts import (
    CANCEL_INEFFECTIVE,
    CONVERGED,
    FAILED_SENSIBLE,
    FAILED_UNEXPECTED,
    STUCK,
    TIMED_OUT,
    Verdict,
    VerdictName,
)
from .catalog import ErrorInfo, classify, parse_error
from .model import (
    ADD_INDEX,
    TASK_TERMINAL,
    CancelProbe,
    CheckResult,
    Observation,
    is_success,
    is_terminal,
)

#: DDL job states / import statuses of a job that has not started (it waits its turn).
WAITING_STATES = frozenset({"queueing", "none", "pending"})
#: ``ADMIN CANCEL DDL JOBS`` answer for a job no longer in ``tidb_ddl_job``: it finished.
JOB_NOT_FOUND = 8224


# ---------------------------------------------------------------------------
# judge: recorded states + fault windows + expectation -> Verdict (pure)
# ---------------------------------------------------------------------------
#
# The rules (DESIGN.md "Verdicts", issue #6), in the order they are applied:
#
# 1. terminal success (``synced`` / import ``finished``): the DXF invariant
#    first (a terminal job whose DXF task is still unfinished after a stall
#    window of fault-free time -- at least ``terminal_grace`` -- is
#    ``failed-unexpected``), then the post-success checks
#    (ADMIN CHECK, counts, import rows) -> ``converged`` or ``failed-unexpected``;
# 2. terminal failure (``rollback done`` / ``cancelled`` / import ``failed``):
#    the error (the submitting statement's server error, else the job's own
#    error message) is classified by :mod:`.catalog` -> ``failed-sensible`` /
#    ``failed-unexpected``; ``ok`` for a sensible failure only when the case
#    allows failure (outcome ``success_or_sensible_error``) or the test itself
#    cancelled the job;
# 3. a cancel the test issued that the job ignored past its window ->
#    ``cancel-ineffective`` (judged on polls made *after* the cancel);
# 4. never observed in the job tables although its statement returned OK, for a
#    stall window -> ``failed-unexpected`` (an OK is no job state: a detached
#    IMPORT's OK only means "submitted");
# 5. no progress for ``stall_window`` seconds of *fault-free* time -> ``stuck``
#    (for a job ``queueing`` behind a stuck job the reason names the blocker);
# 6. the timeout passed: ``timed-out`` when the job made progress since it was
#    first seen (with its rate and an estimate of the time it needed), else
#    ``stuck``;
# 7. otherwise undecided (``None``): keep watching.

#: ``CancelProbe.reason`` of the probe the runner issues after ``stuck``: its
#: outcome is a separate verdict (:func:`cancel_ineffective`), not the job's.
PROBE_AFTER_STUCK = "probe after stuck"

#: How many recent distinct observations the evidence keeps.
EVIDENCE_STATES = 6


def last_progress(observations: Sequence[Observation], started_at: float) -> float:
    """Timeline time of the last change of anything that counts as progress.

    The first observation counts as progress (the job appeared); with no
    observation at all the clock starts at submission.
    """
    t = started_at
    prev: tuple[object, ...] | None = None
    for obs in observations:
        key = obs.progress_key()
        if key != prev:
            t = max(t, obs.t)
            prev = key
    return t


def distinct_states(observations: Sequence[Observation], limit: int = EVIDENCE_STATES) -> list[str]:
    """The last ``limit`` distinct observations, as ``t=…s <describe>`` lines."""
    out: list[str] = []
    prev: tuple[object, ...] | None = None
    for obs in observations:
        key = obs.progress_key()
        if key != prev:
            out.append(f"t={obs.t:.1f}s {obs.describe()}")
            prev = key
    return out[-limit:]


def cancel_outcome(observations: Sequence[Observation], kind: str, cancel: CancelProbe,
                   now: float) -> str:
    """``effective`` / ``ineffective`` / ``pending`` for a cancel the test issued.

    Judged only on polls made after the cancel was issued: an observation from
    before it says nothing about the cancel. A terminal job after the cancel is
    effective (also when TiDB rejected it because the job had just finished).
    A rejected cancel (``error: ...``) is ineffective once a fresh poll shows the
    job still running -- except 8224 (``DDL Job not found``: the job left
    ``tidb_ddl_job``, i.e. it finished), which waits for the poll that shows it
    terminal. An accepted cancel gets its window.
    """
    if any(o.t >= cancel.issued_at - 1e-9 and is_terminal(kind, o.state) for o in observations):
        return "effective"
    if observations and is_terminal(kind, observations[-1].state):
        return "effective"
    fresh = [o for o in observations if o.t > cancel.issued_at]
    expired = now - cancel.issued_at >= cancel.window
    if not fresh:
        return "ineffective" if expired else "pending"
    if not cancel.accepted and cancel.code != JOB_NOT_FOUND:
        return "ineffective"
    return "ineffective" if expired else "pending"


def cancel_taken_back(observations: Sequence[Observation], kind: str,
                      cancel: CancelProbe) -> str | None:
    """Why a cancel TiDB accepted was lost, when the polls show it; else None.

    TiDB's ``ADMIN CANCEL DDL JOBS`` writes ``cancelling`` into the job row in its own
    transaction, while the DDL owner's worker stores its in-memory copy of the job back
    into that row on every step. A copy read before the cancel and stored after it puts
    the job back to ``running``, and the job goes on to the end as if never cancelled
    (pingcap/tidb#17904, #33933). The real v7.5.0 binaries did this to an ADD INDEX in
    its backfill, with the DDL owner's traffic to the store delayed: ``successful``, then
    ``cancelling``, then ``running`` with more rows, then ``synced``. For an ADD INDEX
    TiDB has no step from ``cancelling`` back to ``running`` or ``queueing`` (other DDL
    kinds do, when they can no longer roll back), so that step, seen after an accepted
    cancel, is the lost cancel's sign. A job that goes from ``cancelling`` straight to
    its end, or is never seen ``cancelling``, shows nothing here.
    """
    if kind != ADD_INDEX or not cancel.accepted:
        return None
    cancelling: Observation | None = None
    for o in observations:
        if o.t < cancel.issued_at - 1e-9:
            continue
        if o.state == "cancelling":
            cancelling = cancelling or o
        elif cancelling is not None and o.state in ("running", "queueing"):
            return (f"TiDB accepted the cancel ({cancel.result}) and showed the job cancelling "
                    f"at t={cancelling.t:.1f}s, then {o.state} again at t={o.t:.1f}s "
                    f"({o.describe()}): the cancel was lost -- a DDL worker stored its own "
                    f"older copy of the job over it (pingcap/tidb#17904, #33933)")
    return None


def progress_rate(observations: Sequence[Observation], since: float
                  ) -> tuple[int, int, float] | None:
    """``(rows then, rows now, seconds)`` of the row metric over the observations after
    *since* (all of them when fewer than two are that recent); None without two counts."""
    counted = [(o.t, o.row_count if o.row_count is not None else o.imported_rows)
               for o in observations]
    points = [(t, r) for t, r in counted if r is not None]
    recent = [p for p in points if p[0] >= since]
    use = recent if len(recent) >= 2 else points
    if len(use) < 2 or use[-1][0] <= use[0][0]:
        return None
    return int(use[0][1]), int(use[-1][1]), use[-1][0] - use[0][0]


def _label(kind: str, job_id: int | None, obs: Observation | None) -> str:
    jtype = (obs.job_type if obs and obs.job_type else
             ("add index" if kind == "add_index" else "import into"))
    return f"job {job_id if job_id is not None else '?'} ({jtype})"


def judge(
    *,
    job_key: str,
    kind: str,
    observations: Sequence[Observation],
    fault_windows: Sequence[FaultWindow],
    now: float,
    started_at: float,
    stall_window: float,
    timeout: float,
    expectation: Expectation | None = None,
    allow_errors: Sequence[str] = (),
    client_error: ErrorInfo | None = None,
    checks: Sequence[CheckResult] = (),
    cancel: CancelProbe | None = None,
    blocked_by: str | None = None,
    terminal_grace: float = 0.0,
    job_id: int | None = None,
    statement_pending: bool = False,
    statement_ok: bool = False,
    total_rows: int | None = None,
) -> Verdict | None:
    """The verdict for one job from what was recorded so far, or ``None`` (undecided).

    Pure: the watcher calls it after every poll, tests call it on recorded
    sequences. ``now``/``started_at`` and the observations' ``t`` are Timeline
    seconds; ``stall_window``/``timeout`` are already scaled seconds.
    ``statement_pending``: the submitting statement has not returned yet; a
    terminal failure then waits up to ``terminal_grace`` for its error (the
    ALTER's ``Error 1105: ...`` names the cause; the job row does not).
    ``statement_ok``: the statement returned without an error (never a verdict
    by itself). ``total_rows``: rows the job must process, when known (the
    estimate of a ``timed-out`` job).
    """
    exp = expectation or Expectation()
    allow = tuple(exp.allow_errors) + tuple(allow_errors)
    last = observations[-1] if observations else None
    jid = job_id if job_id is not None else next(
        (o.job_id for o in reversed(observations) if o.job_id is not None), None)
    label = _label(kind, jid, last)
    # any cancel the test issued (cancelAfter, assert_cancellable, the probe) excuses 8214
    cancelled_by_test = cancel is not None
    lp = last_progress(observations, started_at)
    evidence: dict[str, Any] = {
        "last_states": distinct_states(observations),
        "last_progress_at": round(lp, 3),
        "stall_window": round(stall_window, 3),
        "timeout": round(timeout, 3),
        "fault_free_since_progress": round(fault_free_seconds(fault_windows, lp, now), 3),
    }
    if last is not None:
        evidence["last_state"] = last.describe()
    if client_error is not None:
        evidence["client_error"] = redact(str(client_error))
    if blocked_by:
        evidence["blocked_by"] = blocked_by
    if cancel is not None:
        evidence["cancel"] = {"issued_at": round(cancel.issued_at, 3), "accepted": cancel.accepted,
                              "result": redact(cancel.result), "window": cancel.window,
                              "reason": cancel.reason}

    def verdict(name: VerdictName, reason: str, ok: bool, **more: Any) -> Verdict:
        ev = dict(evidence)
        ev.update(more)
        return Verdict(job_key=job_key, kind=kind, job_id=jid, verdict=name,
                       reason=redact(reason), ok=ok, evidence=MappingProxyType(ev),
                       started_at=started_at, decided_at=now)

    # -- a cancel the test issued, accepted by TiDB, then undone: final at once (the row
    # says running again, so TiDB will not roll the job back), whatever the job does next
    lost = (cancel_taken_back(observations, kind, cancel)
            if cancel is not None and cancel.reason != PROBE_AFTER_STUCK else None)
    if lost is not None:
        return verdict(CANCEL_INEFFECTIVE, f"{label}: {lost}", False, rule="cancel lost")
    # -- no job row yet: the statement may have failed before creating one ---
    if last is None or last.state is None:
        if client_error is not None and not client_error.is_connection_error:
            cls = classify(client_error, allow_errors=allow, cancelled_by_test=cancelled_by_test)
            name = FAILED_SENSIBLE if cls.category == "sensible" else FAILED_UNEXPECTED
            ok = name == FAILED_SENSIBLE and exp.outcome != "success"
            return verdict(name, f"{label} failed before it was seen running: {client_error} "
                                 f"({cls.rule})", ok, error=str(client_error), rule=cls.rule)
    # -- terminal --------------------------------------------------------------
    elif is_terminal(kind, last.state):
        first_term = next(o.t for o in observations if is_terminal(kind, o.state))
        if last.task_state is not None and last.task_state not in TASK_TERMINAL:
            # TiDB's scheduler ends the job (OnDone) and then the task (SucceedTask) in two
            # transactions, on the DDL owner: an owner lost in between leaves the task
            # running until the next owner's scheduler, one owner failover later. So the
            # task gets what a job gets: a stall window of fault-free time.
            window = max(terminal_grace, stall_window)
            waited = fault_free_seconds(fault_windows, first_term, now)
            if waited < window:
                return None
            return verdict(
                FAILED_UNEXPECTED,
                f"{label} is {last.state} but its DXF task is still {last.task_state} "
                f"{now - first_term:.1f}s later ({waited:.1f}s of fault-free time, window "
                f"{window:.1f}s; a terminal job must not leave its task running)",
                False, rule="DXF invariant")
        if is_success(kind, last.state):
            bad = [c for c in checks if not c.ok]
            if bad:
                detail = "; ".join(f"{c.name}: {c.detail}" for c in bad)
                return verdict(FAILED_UNEXPECTED, f"{label} reached {last.state} but {detail}",
                               False, checks=[c.__dict__ for c in checks], rule="check")
            return verdict(CONVERGED, f"{label} reached {last.state}"
                           + (" and " + ", ".join(c.name for c in checks) + " passed"
                              if checks else ""),
                           True, checks=[c.__dict__ for c in checks])
        if statement_pending and client_error is None and now - first_term < terminal_grace:
            return None  # the statement's error is on its way
        err = client_error if client_error is not None and not client_error.is_connection_error \
            else parse_error(last.error)
        if err is None:
            err = ErrorInfo(None, f"job ended {last.state} without an error message")
        cls = classify(err, allow_errors=allow, cancelled_by_test=cancelled_by_test)
        name = FAILED_SENSIBLE if cls.category == "sensible" else FAILED_UNEXPECTED
        ok = name == FAILED_SENSIBLE and (exp.outcome != "success" or cancelled_by_test)
        return verdict(name, f"{label} ended {last.state}: {err} ({cls.rule})", ok,
                       error=str(err), rule=cls.rule)
    # -- not terminal ------------------------------------------------------------
    if (cancel is not None and cancel.reason != PROBE_AFTER_STUCK
            and cancel_outcome(observations, kind, cancel, now) == "ineffective"):
        return verdict(CANCEL_INEFFECTIVE,
                       f"{label} still {last.state if last else 'unseen'} "
                       f"{now - cancel.issued_at:.1f}s after the test cancelled it "
                       f"(result: {cancel.result}; cancel window {cancel.window:.1f}s)",
                       False)
    free = fault_free_seconds(fault_windows, lp, now)
    if last is None and statement_ok and free >= stall_window:
        return verdict(FAILED_UNEXPECTED,
                       f"{label} was never observed in the job tables although its statement "
                       f"returned OK ({free:.1f}s of fault-free time since submission, stall "
                       f"window {stall_window:.1f}s); an OK is no job state", False,
                       rule="never observed")
    state = last.describe() if last is not None else "never seen in the job tables"
    queued = blocked_by and last is not None and last.state in WAITING_STATES
    if queued and (free >= stall_window or now - started_at >= timeout):
        assert last is not None
        return verdict(STUCK, f"{label} is {last.state} behind {blocked_by}, which is stuck; "
                              f"no progress for {free:.1f}s of fault-free time (stall window "
                              f"{stall_window:.1f}s, timeout {timeout:.1f}s)", False,
                       rule="queued behind stuck job")
    if free >= stall_window:
        return verdict(STUCK, f"{label} made no progress for {free:.1f}s of fault-free time "
                              f"since t={lp:.1f}s (stall window {stall_window:.1f}s); "
                              f"{state}", False, rule="stall window")
    if now - started_at >= timeout:
        first_seen = observations[0].t if observations else None
        if first_seen is not None and lp > first_seen:
            pace, more = timed_out_story(observations, now, stall_window, total_rows)
            return verdict(TIMED_OUT, f"{label} was still progressing at its deadline "
                                      f"(timeout {timeout:.1f}s): {pace}; {state}", False, **more)
        return verdict(STUCK, f"{label} is not finished after the timeout "
                              f"({timeout:.1f}s) and made no progress since it was first seen; "
                              f"{state}", False, rule="timeout")
    return None


def timed_out_story(observations: Sequence[Observation], now: float, stall_window: float,
                    total_rows: int | None) -> tuple[str, dict[str, Any]]:
    """How a job that missed its deadline was moving: the recent rate of its row count
    (over the last stall window) and, when the total is known, the time it needed."""
    rate = progress_rate(observations, now - stall_window)
    more: dict[str, Any] = {"rule": "timeout while progressing"}
    if rate is None:
        lp = last_progress(observations, 0.0)
        return f"it last changed at t={lp:.1f}s (no row counts to measure a rate)", more
    r0, r1, dt = rate
    per_s = (r1 - r0) / dt
    more["rate_per_s"] = round(per_s, 3)
    pace = f"rows {r0} -> {r1} in the last {dt:.1f}s ({per_s:.1f} rows/s)"
    if total_rows is not None and per_s > 0:
        needed = max(0, total_rows - r1) / per_s
        more.update(needed_s=round(needed, 3), total_rows=total_rows)
        return (pace + f"; at that rate it needed about {format_seconds(needed)} more for "
                       f"{total_rows} rows"), more
    return pace + "; total unknown, so no estimate of the time it needed", more


def cancel_ineffective(
    *, job_key: str, kind: str, job_id: int | None, observations: Sequence[Observation],
    cancel: CancelProbe, now: float, started_at: float | None = None,
) -> Verdict | None:
    """The verdict of a cancel probe issued after ``stuck``: ``cancel-ineffective``
    when the job ignored it, ``None`` when it worked or its window is still open."""
    lost = cancel_taken_back(observations, kind, cancel)
    if lost is None and cancel_outcome(observations, kind, cancel, now) != "ineffective":
        return None
    last = observations[-1] if observations else None
    label = _label(kind, job_id, last)
    return Verdict(
        job_key=f"{job_key}/cancel", kind=kind, job_id=job_id, verdict=CANCEL_INEFFECTIVE,
        reason=redact(f"{label}: {lost}" if lost is not None else
                      f"{label} still {last.state if last else 'unseen'} "
                      f"{now - cancel.issued_at:.1f}s after cancel "
                      f"(result: {cancel.result}; cancel window {cancel.window:.1f}s)"),
        ok=False,
        evidence=MappingProxyType({"cancel": {"issued_at": round(cancel.issued_at, 3),
                                              "accepted": cancel.accepted,
                                              "result": redact(cancel.result),
                                              "window": cancel.window,
                                              "reason": cancel.reason},
                                   "last_states": distinct_states(observations)}),
        started_at=cancel.issued_at if started_at is None else started_at, decided_at=now)
