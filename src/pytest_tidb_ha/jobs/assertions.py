"""Assertion helpers for hand-written tests: ``assert_job_converges`` and friends.

Failure messages read like the QA harness's operator logs in the seed
reports (job id, job type, state, since when, what was tried), so a failing
test tells the same story a QA engineer would file:

    add_index#1: stuck -- job 475 (add index /* ingest */) made no progress ...
      now: 2023-11-04 09:14:24, jobId: 475, job type: add index /* ingest */, state: running
    operatorLogs:
    [2023-11-04 08:14:10] ###### start adding index
    ALTER TABLE `sysbench`.`sbtest1` ADD INDEX `index_test_1699056850827` (`c`)
    [2023-11-04 08:14:10] ###### wait for ddl job finish
    ...
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime

from ..redact import redact
from ..timeline import Timeline
from ..verdicts import CONVERGED, FAILED_SENSIBLE, Verdict
from .catalog import classify, parse_error
from .handle import JobHandle
from .model import ADD_INDEX

#: Extra wall seconds an assertion waits beyond the job's own timeout and stall window.
WAIT_SLACK = 15.0


def _wall(timeline: Timeline | None, t: float) -> str:
    if timeline is None:
        return f"t={t:.1f}s"
    wall = timeline.events()[0].wall - timeline.events()[0].t + t if timeline.events() else None
    if wall is None:
        return f"t={t:.1f}s"
    return datetime.fromtimestamp(wall).strftime("%Y-%m-%d %H:%M:%S")


def operator_log(handle: JobHandle, verdict: Verdict | None = None) -> str:
    """The job's story from the Timeline, in the seeds' operator-log style."""
    tl: Timeline | None = handle.timeline
    v = verdict or handle.verdict
    latest = handle.latest
    head = f"{handle.job_key}: {v.verdict} -- {v.reason}" if v else \
        f"{handle.job_key}: no verdict yet"
    now_t = v.decided_at if v and v.decided_at is not None else (tl.now() if tl else 0.0)
    since = ""
    if latest is not None:
        first = latest.t
        for o in reversed(handle.observations):
            if o.state != latest.state:
                break
            first = o.t
        since = f" (since {_wall(tl, first)})"
    lines = [head,
             f"  now: {_wall(tl, now_t)}, jobId: {handle.job_id}, job type: "
             f"{latest.job_type if latest and latest.job_type else handle.kind}, "
             f"state: {latest.state if latest else 'never seen'}{since}"]
    lines.append("operatorLogs:")
    what = "adding index" if handle.kind == ADD_INDEX else "importing"
    wait = "ddl job" if handle.kind == ADD_INDEX else "import job"
    lines.append(f"[{_wall(tl, handle.submitted_at)}] ###### start {what}")
    lines.append(handle.query)
    lines.append(f"[{_wall(tl, handle.submitted_at)}] ###### wait for {wait} finish")
    if tl is not None:
        for e in tl.events("job."):
            if e.data.get("job_key") != handle.job_key:
                continue
            if e.kind == "job.cancel":
                lines.append(f"[{_wall(tl, e.t)}] ###### cancel ({e.data.get('reason')}): "
                             f"{e.data.get('result')}")
            elif e.kind == "job.verdict":
                lines.append(f"[{_wall(tl, e.t)}] ###### verdict {e.data.get('verdict')}")
        for w in tl.fault_windows():
            end = _wall(tl, w.end) if w.end is not None else "still open"
            lines.append(f"[{_wall(tl, w.start)}] ###### fault {w.kind} "
                         f"{w.data.get('targets') or ''} until {end}")
    if handle.client_error is not None:
        lines.append(f"client error: {handle.client_error}")
    if v is not None and v.evidence.get("last_states"):
        lines.append("last states:")
        lines += [f"  {s}" for s in v.evidence["last_states"]]
    if handle.cancel_verdict is not None:
        lines.append(f"cancel probe: {handle.cancel_verdict.verdict} -- "
                     f"{handle.cancel_verdict.reason}")
    return redact("\n".join(lines))


def _passes(v: Verdict, allow_errors: Sequence[str]) -> bool:
    if v.verdict == CONVERGED:
        return True
    if v.verdict == FAILED_SENSIBLE and allow_errors:
        err = parse_error(str(v.evidence.get("error", "")))
        return err is not None and classify(err, allow_errors=allow_errors).rule.startswith(
            "allowErrors")
    return False


def _await(job: JobHandle, timeout: float, allow_errors: Sequence[str],
           stall: float | None) -> Verdict:
    __tracebackhide__ = True
    if job.watcher is None and not job.decided:
        raise AssertionError(f"{job.job_key}: this job is not watched (use the `tidb` fixture "
                             "or add it to a Watcher)")
    p = job.policy
    scale = float(job.extra.get("time_scale", 1.0))  # case time -> wall time (facade jobs)
    timeout = p.at_floor(timeout * scale)  # windows never go below the recovery floor
    stall = stall * scale if stall is not None else None
    if allow_errors:
        p.allow_errors = tuple(p.allow_errors) + tuple(allow_errors)
    if stall is not None:
        p.stall_window = p.at_floor(stall)  # never below the cluster's recovery floor
    tl: Timeline | None = job.timeline
    if tl is not None and not job.decided:
        p.timeout = min(p.timeout, tl.now() - job.submitted_at + timeout)
    deadline = time.monotonic() + timeout + p.stall_window + WAIT_SLACK
    v = job.wait(max(0.0, deadline - time.monotonic()))
    if v is None:
        raise AssertionError(
            f"{job.job_key}: no verdict within {timeout + p.stall_window + WAIT_SLACK:.0f}s "
            "(the watcher did not decide; is it running?)\n" + operator_log(job))
    return v


def assert_job_converges(job: JobHandle, *, timeout: float, allow_errors: Sequence[str] = (),
                         stall: float | None = None) -> Verdict:
    """Wait for *job*'s verdict and fail unless it is ``converged``.

    ``timeout``: seconds from now the job may still take (then ``stuck``);
    ``allow_errors``: regexes of errors that may end the job instead
    (``failed-sensible`` by one of them passes); ``stall``: the stall window in
    seconds of fault-free time (default: derived from the test's faults).
    For jobs from the ``tidb`` fixture both are case time, multiplied by
    ``--ha-time-scale`` like every duration of the test's markers.
    """
    __tracebackhide__ = True
    v = _await(job, timeout, allow_errors, stall)
    if not _passes(v, allow_errors):
        raise AssertionError(operator_log(job, v))
    return v


def assert_jobs_converge(jobs: Iterable[JobHandle], *, timeout: float,
                         allow_errors: Sequence[str] = (), stall: float | None = None,
                         ) -> list[Verdict]:
    """Like :func:`assert_job_converges` for several jobs; one message for all failures."""
    __tracebackhide__ = True
    jobs = list(jobs)
    end = time.monotonic() + timeout
    verdicts: list[Verdict] = []
    failures: list[str] = []
    for job in jobs:
        v = _await(job, max(0.0, end - time.monotonic()), allow_errors, stall)
        verdicts.append(v)
        if not _passes(v, allow_errors):
            failures.append(operator_log(job, v))
    if failures:
        raise AssertionError(f"{len(failures)} of {len(jobs)} jobs did not converge:\n\n"
                             + "\n\n".join(failures))
    return verdicts


def assert_cancellable(job: JobHandle, *, window: float | None = None) -> Verdict:
    """Cancel *job* now and fail unless it becomes terminal within *window* seconds.

    Returns the job's verdict (``failed-sensible``: cancelled by the test).
    A job that already finished cannot be cancelled: that fails too. So does a cancel
    TiDB accepted and then lost (seen ``cancelling``, then ``running`` again:
    ``cancel-ineffective``, :func:`~.verdict.cancel_taken_back`): the job may still
    converge, but the test asked for a cancel and TiDB's ``successful`` promised one.
    """
    __tracebackhide__ = True
    from .watch import issue_cancel

    w = job.watcher
    if w is None:
        raise AssertionError(f"{job.job_key}: this job is not watched")
    scale = float(job.extra.get("time_scale", 1.0))
    win = job.policy.at_floor(window * scale) if window is not None else job.policy.cancel_window
    if job.terminal:
        raise AssertionError(f"{job.job_key}: {job.label()} is already {job.state}; "
                             "nothing to cancel\n" + operator_log(job))
    if not job.decided:
        deadline = time.monotonic() + win
        while job.job_id is None and time.monotonic() < deadline:
            job.wait(w.poll_interval)
        job.policy.cancel_window = win
        issue_cancel(w.client, job, w.timeline, reason="assert_cancellable", window=win)
        v = job.wait(win + job.policy.stall_window + WAIT_SLACK)
        if v is None or v.verdict not in (CONVERGED, FAILED_SENSIBLE) or not job.terminal:
            raise AssertionError(operator_log(job, v))
        return v
    w.probe_cancel(job, window=win)
    job.cancel_settled.wait(win + WAIT_SLACK)
    if job.cancel_verdict is not None or not job.terminal:
        raise AssertionError(operator_log(job, job.cancel_verdict or job.verdict))
    assert job.verdict is not None
    return job.verdict
