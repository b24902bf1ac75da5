"""The jobs side of one test: one watcher, the cluster's timers, each job's policy.

Both ways a test starts jobs -- the YAML case runner (:mod:`pytest_tidb_ha.runner`)
and the ``tidb`` fixture (:class:`~.facade.TiDB`) -- wire the same pieces: a
watcher with its own short-timeout client, the cluster's recovery timers read
once (the floors of every verdict window, recorded as ``jobs.floors``), the
policy each job is judged by, generated IMPORT INTO data in the cluster's import
folder, and a diagnostics bundle when a verdict is not ``converged``. They wire
them here, once, so the two cannot drift apart; what differs (when diagnostics
are taken, what an undecided job means) stays with each caller.

:func:`job_policy` and :func:`policy_for` are pure; :class:`JobSession` does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..cluster.protocol import ClusterLike
from ..events import JOBS_FLOORS
from ..options import HAOptions
from ..record import HARecord
from ..scenario import timing
from ..scenario.floors import Timer, fault_warnings, job_windows, table_timers
from ..scenario.model import Case, Expectation, ImportIntoJob, JobSpec
from ..verdicts import CONVERGED, Verdict
from .diagnostics import collect
from .handle import JobHandle, JobPolicy
from .submit import write_import_data
from .watch import Watcher, verdicts_of

__all__ = ["JobSession", "job_policy", "policy_for"]


def job_policy(kind: str, case: Case | None, timers: Mapping[str, Timer], scale: float, *,
               timeout: float, stall: float | None = None,
               expectation: Expectation | None = None,
               cancel_after: float | None = None) -> JobPolicy:
    """How one job is judged (pure): its windows scaled by ``scale`` and raised to the
    recovery floor of what *case* does to the cluster.

    ``timeout``, ``stall`` and ``cancel_after`` are case time (unscaled); ``stall``
    None: the case's stall window; ``expectation`` None: the case's (else success).
    """
    exp = expectation or (case.expect if case else Expectation())
    windows = job_windows(
        kind, case.faults if case else (), timers,
        stall=stall * scale if stall is not None else timing.stall_window(case, scale),
        cancel=timing.cancel_window(scale), timeout=timeout * scale)
    return JobPolicy.from_windows(
        windows, expectation=exp,
        cancel_after=cancel_after * scale if cancel_after is not None else None,
        terminal_grace=timing.terminal_grace(scale))


def policy_for(spec: JobSpec, case: Case, scale: float,
               timers: Mapping[str, Timer] | None = None) -> JobPolicy:
    """How one job of a case file is judged (pure): its own timeout, the case's
    ``cancelAfter``; ``timers`` None: the version table's (no cluster to ask)."""
    cancel = case.expect.cancel_after
    return job_policy(spec.kind, case,
                      timers if timers is not None else table_timers(case.version), scale,
                      timeout=spec.timeout.seconds,
                      cancel_after=cancel.seconds if cancel else None)


class JobSession:
    """The watcher, timers and policies of one test's jobs on *cluster*."""

    def __init__(self, cluster: ClusterLike, record: HARecord, options: HAOptions,
                 case: Case | None = None) -> None:
        self.cluster = cluster
        self.record = record
        self.options = options
        self.case = case
        self.scale = options.time_scale
        # its own client with short timeouts: a poll never waits behind a job's statement
        self.watcher = Watcher(cluster.client(connect_timeout=2, read_timeout=5, write_timeout=5),
                               record.timeline, poll_interval=timing.poll_interval(self.scale),
                               call_timeout=5.0, heartbeat=max(5.0, 60.0 * self.scale))
        self._timers: Mapping[str, Timer] | None = None

    @property
    def version(self) -> str | None:
        """The TiDB version whose timer table applies (the case's, else --tidb-version)."""
        return (self.case.version if self.case else None) or self.options.tidb_version

    def timers(self) -> Mapping[str, Timer]:
        """The cluster's recovery timers, read once (the floors of every verdict window);
        recorded as ``jobs.floors``, with the case's fault windows shorter than them noted."""
        if self._timers is None:
            from .cluster_timers import read_timers  # late: plugin import stays light

            self._timers, notes = read_timers(self.cluster, self.version)
            self.record.timeline.record(JOBS_FLOORS, timers={
                k: {"seconds": t.seconds, "origin": t.origin} for k, t in self._timers.items()},
                notes=notes)
            if self.case is not None:
                self.record.notes.extend(fault_warnings(self.case.faults, self._timers,
                                                        self.scale))
        return self._timers

    def policy(self, kind: str, *, timeout: float, stall: float | None = None,
               expectation: Expectation | None = None,
               cancel_after: float | None = None) -> JobPolicy:
        """:func:`job_policy` on this test's case, scale and cluster timers."""
        return job_policy(kind, self.case, self.timers(), self.scale, timeout=timeout,
                          stall=stall, expectation=expectation, cancel_after=cancel_after)

    def policy_of(self, spec: JobSpec) -> JobPolicy:
        """:func:`policy_for` a job of this session's case, on the cluster's timers."""
        if self.case is None:
            raise ValueError("policy_of needs the session's case")
        return policy_for(spec, self.case, self.scale, self.timers())

    def import_data(self, spec: ImportIntoJob) -> tuple[str, int]:
        """Write *spec*'s generated rows into the cluster's import folder (scaled by
        --ha-workload-scale): (the source URI the TiDBs read, the rows written)."""
        folder = self.cluster.import_dir
        if folder is None:
            raise RuntimeError(f"{spec.source}: generated import data needs the cluster's "
                               "import folder (not available in attach mode, --tidb-dsn)")
        return write_import_data(Path(folder), spec, self.options.workload_scale)

    def watch(self, handle: JobHandle) -> JobHandle:
        """Watch *handle* from now on (the watcher thread starts with the first job)."""
        self.watcher.add(handle)
        self.watcher.start()
        return handle

    @property
    def handles(self) -> list[JobHandle]:
        return self.watcher.handles

    def verdicts(self) -> list[Verdict]:
        return verdicts_of(self.watcher.handles)

    def diagnostics(self, verdicts: list[Verdict]) -> None:
        """A diagnostics bundle in the test's artifacts when a verdict is not ``converged``;
        never fails the test (what could not be collected goes to the notes)."""
        if all(v.verdict == CONVERGED for v in verdicts):
            return
        try:
            collect(self.cluster, self.watcher.client, self.record.timeline,
                    self.record.artifacts_dir / "diagnostics", handles=self.watcher.handles,
                    notes=self.record.notes)
        except Exception as exc:  # noqa: BLE001 - diagnostics never fail a test
            self.record.notes.append(f"diagnostics failed: {exc}")

    def stop(self) -> None:
        """Stop watching (idempotent)."""
        self.watcher.stop()
