"""The case runner: one YAML (or marker-built) case end to end.

    database -> workload (prepare, start: t0) -> nemesis (starts at t0)
    -> at warmUpTime the jobs, each of ``times`` runs one after another
    -> verdicts (cancel probe after ``stuck``) -> diagnostics
    -> stop nemesis and workload (always) -> record -> pass/fail

Every duration is multiplied by ``--ha-time-scale``, table sizes and
generated import rows by ``--ha-workload-scale``. The other layers are used
only through their contract interfaces (docs/contracts.md).

When a job is ``stuck`` the runner issues ``ADMIN CANCEL DDL JOBS`` /
``CANCEL IMPORT JOB`` as a probe (an ignored cancel is its own
``cancel-ineffective`` verdict). The next run then shows whether the table is
blocked: a job ``queueing`` behind the stuck one is ``stuck`` too (#48303), and
the runner stops iterating on that table -- further runs would only queue.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any

import pytest

from .cluster.protocol import ClusterLike
from .jobs.assertions import operator_log
from .jobs.handle import JobHandle
from .jobs.session import JobSession
from .jobs.submit import (
    SHORT_TIMEOUT,
    configure,
    drop_index,
    execute_retrying,
    prepare_import_table,
    quote,
    submit_add_index,
    submit_import,
)
from .options import HAOptions
from .record import HARecord
from .redact import redact
from .scenario import timing
from .scenario.model import AddIndexJob, Case, ImportIntoJob, JobSpec
from .verdicts import CONVERGED, STUCK, Verdict

if TYPE_CHECKING:
    from .faults.nemesis import Nemesis

log = logging.getLogger("pytest_tidb_ha.jobs")

#: Wall seconds added to a job's own timeout before the runner gives up waiting.
WAIT_SLACK = timing.WAIT_SLACK


def summary(verdicts: list[Verdict]) -> str:
    bad = [v for v in verdicts if not v.ok]
    return "; ".join(f"{v.job_key}: {v.verdict} -- {v.reason}" for v in bad)


class CaseRun:
    """The state of one case run (kept on an object so ``finally`` can clean up)."""

    def __init__(self, case: Case, cluster: ClusterLike, record: HARecord, options: HAOptions,
                 only: frozenset[str] | None = None) -> None:
        self.case = case
        self.only = only  # fault ids to run (--ha-shrink's attempts); None: all
        self.cluster = cluster
        self.record = record
        self.options = options
        self.scale = options.time_scale
        self.timeline = record.timeline
        self.client = cluster.client(connect_timeout=3, read_timeout=30, write_timeout=30)
        self.session = JobSession(cluster, record, options, case)
        self.watcher = self.session.watcher
        self.workloads: Any = None
        self.nemesis: Nemesis | None = None
        self.t0: float | None = None
        self._stop = threading.Event()
        self.blocked: set[tuple[str, str]] = set()
        self.imports: dict[int, tuple[str, int | None, dict[str, object]]] = {}

    # -- phases ------------------------------------------------------------------
    def read_timers(self) -> None:
        """The cluster's recovery timers (the floors of every verdict window), before t0."""
        self.session.timers()

    def databases(self) -> None:
        for db in sorted({j.db for j in self.case.jobs}):
            execute_retrying(self.client, f"CREATE DATABASE IF NOT EXISTS {quote(db)}")

    def start_workload(self) -> None:
        if not self.case.workloads:
            return
        from .scenario.sizing import tables_for_jobs
        from .workload.connections import round_robin_factory
        from .workload.group import WorkloadGroup

        for w in self.case.workloads:  # what no --ha-workload-scale can give (also in the plan)
            self.record.notes.extend(tables_for_jobs(w, self.case.jobs).problems)

        self.workloads = WorkloadGroup(self.case.workloads, round_robin_factory(self.client),
                                       self.timeline, size_scale=self.options.workload_scale,
                                       cleanup=not self.options.keep_cluster,
                                       jobs=self.case.jobs,
                                       driver=self.options.workload_driver)
        self.workloads.start()

    def prepare_nemesis(self) -> None:
        """Before anything starts: a case whose faults this cluster cannot take is skipped."""
        if not self.case.faults:
            return
        from .faults.nemesis import Nemesis

        self.nemesis = Nemesis(self.cluster, self.case.faults, self.timeline, self.scale,
                               seed=self.options.seed,
                               helper_image=self.options.fault_helper_image,
                               allow_errors=self.case.expect.allow_fault_errors,
                               only=self.only)
        if self.nemesis.skipped and not self.nemesis.specs:
            pytest.skip("; ".join(sorted({reason for _, reason in self.nemesis.skipped})))

    def start_nemesis(self) -> None:
        if self.nemesis is not None:
            self.nemesis.start()

    def fault_failures(self) -> list[str]:
        """Windows the case planned that were not applied or not healed (after stop);
        the ones the case allows (allowFaultErrors) go to the notes instead."""
        if self.nemesis is None:
            return []
        # a trigger that never fired is said in the summary too, allowed or not
        self.record.notes.extend(f"trigger never fired: {m}" for m in self.nemesis.missed)
        failing, allowed = self.nemesis.fault_failures()
        self.record.notes.extend(f"fault error allowed by the case: {m}" for m in allowed)
        return failing

    def wait_warmup(self) -> None:
        assert self.t0 is not None
        until = self.t0 + self.case.warmup.scaled(self.scale)
        remaining = until - self.timeline.now()
        if remaining > 0:
            log.info("%s: warming up %.1fs before the jobs", self.case.id, remaining)
            self._stop.wait(remaining)

    def run_jobs(self) -> None:
        for spec in self.case.jobs:
            if isinstance(spec, AddIndexJob):
                self.add_index_runs(spec)
            elif isinstance(spec, ImportIntoJob):
                self.import_runs(spec)

    def _key(self, spec: JobSpec, run: int) -> str:
        """``add_index#2``; prefixed by the table when the case has several job specs."""
        key = f"{spec.kind}#{run}"
        return f"{spec.table}.{key}" if len(self.case.jobs) > 1 else key

    def _wait(self, h: JobHandle) -> Verdict | None:
        v = h.wait(h.policy.timeout + h.policy.stall_window + WAIT_SLACK)
        if v is None:
            self.record.notes.append(f"{h.job_key}: no verdict within its timeout + stall "
                                     "window (watcher failure?)")
        return v

    def _after(self, h: JobHandle, v: Verdict | None, key: tuple[str, str]) -> bool:
        """Handle a run's verdict; False when the table is blocked (stop iterating), or
        with ``--ha-stop-at-first-bad-run`` once a run's verdict is not ok."""
        if v is None:
            return False
        if v.verdict != STUCK:
            return v.ok or not self._stop_at_bad(key)
        if v.evidence.get("rule") == "queued behind stuck job":
            log.warning("%s.%s is blocked by a stuck job: no further runs", *key)
            self.blocked.add(key)
            return False
        if h.job_id is not None and not h.terminal:
            self.watcher.probe_cancel(h, window=h.policy.cancel_window)
            h.cancel_settled.wait(h.policy.cancel_window + WAIT_SLACK)
        return not self._stop_at_bad(key)

    def _stop_at_bad(self, key: tuple[str, str]) -> bool:
        """After a run that is not ok: whether to leave the entry's remaining runs out
        (said in the verdict summary's notes, so a shorter run is never silent)."""
        if not self.options.stop_at_first_bad_run:
            return False
        self.record.notes.append(f"{key[0]}.{key[1]}: no runs after the first verdict that "
                                 "is not ok (--ha-stop-at-first-bad-run)")
        return True

    def add_index_runs(self, spec: AddIndexJob) -> None:
        key = (spec.db, spec.table)
        prev: JobHandle | None = None
        for run in range(1, spec.times + 1):
            if key in self.blocked:
                break
            if prev is not None and prev.verdict is not None and \
                    prev.verdict.verdict == CONVERGED and prev.target.index_name:
                drop_index(self.client, spec.db, spec.table, prev.target.index_name)
            h = submit_add_index(self.client, spec, run, self.timeline,
                                 policy=self.session.policy_of(spec),
                                 job_key=self._key(spec, run))
            self.session.watch(h)
            v = self._wait(h)
            prev = h
            if not self._after(h, v, key):
                break

    def settings(self) -> None:
        """Before t0: QA's ``tidbGlobalVariables.beforeCase``, then the case's ``distTask``.

        (The jobs' own switches are set per run.)
        """
        for sql in self.case.global_variables.before:
            execute_retrying(self.client, sql, timeout=SHORT_TIMEOUT)
            self.timeline.record("jobs.setting", statement=redact(sql), phase="beforeCase")
        if self.case.dist_task is not None:
            configure(self.client, dist_task=self.case.dist_task, timeline=self.timeline)

    def after_settings(self) -> None:
        """After the case, whatever its outcome: QA's ``tidbGlobalVariables.afterCase``."""
        for sql in self.case.global_variables.after:
            try:
                execute_retrying(self.client, sql, timeout=SHORT_TIMEOUT)
                self.timeline.record("jobs.setting", statement=redact(sql), phase="afterCase")
            except Exception as exc:  # noqa: BLE001 - reported; the verdicts decide
                self.record.notes.append(f"afterCase {redact(sql)}: {redact(str(exc))}")

    def prepare_imports(self) -> None:
        """Before t0: write the generated data and create the (empty) target tables.

        So at ``warmUpTime`` only the IMPORT statement itself is sent, and a
        fault scheduled at that moment hits the job, not our table set-up.
        """
        for spec in self.case.jobs:
            if not isinstance(spec, ImportIntoJob):
                continue
            source, expected = spec.source_uri, None
            opts = dict(spec.options)
            if spec.generate is not None:
                source, expected = self.session.import_data(spec)
                opts.setdefault("skip_rows", 1)
            prepare_import_table(self.client, spec, 1, spec.db, spec.table)
            self.imports[id(spec)] = (source, expected, opts)

    def import_runs(self, spec: ImportIntoJob) -> None:
        key = (spec.db, spec.table)
        source, expected, opts = self.imports[id(spec)]
        for run in range(1, spec.times + 1):
            if key in self.blocked:
                break
            h = submit_import(self.client, spec, run, self.timeline,
                              policy=self.session.policy_of(spec), source=source,
                              expected_rows=expected, options=opts,
                              job_key=self._key(spec, run),
                              prepare=run > 1)
            self.session.watch(h)
            if not self._after(h, self._wait(h), key):
                break

    def stop(self) -> None:
        """Stop everything this run started; each step independent of the others."""
        self._stop.set()
        self.session.stop()
        if self.nemesis is not None:
            try:
                self.nemesis.stop()
            except Exception as exc:  # noqa: BLE001
                self.record.notes.append(f"nemesis stop failed: {exc}")
        if self.workloads is not None:
            try:
                self.workloads.stop()
            except Exception as exc:  # noqa: BLE001 - reported, the verdicts decide
                self.record.notes.append(f"workload: {exc}")
        self.after_settings()  # once the faults are healed


def run_case(case: Case, *, cluster: ClusterLike, record: HARecord,
             options: HAOptions | None = None,
             only: frozenset[str] | None = None) -> list[Verdict]:
    """Run *case* on *cluster*; verdicts go to ``record``; fails the test unless all ok.

    ``only``: run just these fault windows (``f<spec>.<window>``; --ha-shrink).
    """
    __tracebackhide__ = True
    options = options or HAOptions()
    record.case_id = case.id
    run = CaseRun(case, cluster, record, options, only)
    verdicts: list[Verdict] = []
    try:
        run.prepare_nemesis()
        run.read_timers()
        run.databases()
        run.settings()
        run.prepare_imports()
        run.start_workload()
        run.t0 = run.timeline.now()
        run.start_nemesis()
        run.wait_warmup()
        run.run_jobs()
        # let jobs found queued behind ours settle briefly before judging the run
        for h in run.watcher.handles:
            if not h.decided and h.discovered:
                h.wait(h.policy.stall_window)
        verdicts = run.session.verdicts()
        run.session.diagnostics(verdicts)
    finally:
        with contextlib.suppress(Exception):
            verdicts = verdicts or run.session.verdicts()
        run.stop()
        record.verdicts.extend(verdicts)
    faults = run.fault_failures()
    fault_text = ("\n\nfaults not applied as planned (a case may allow this with expect: "
                  "{allowFaultErrors: true}):\n" + "\n".join(f"  {m}" for m in faults)
                  if faults else "")
    if not verdicts and case.jobs:
        pytest.fail(f"{case.id}: no job verdict was reached{fault_text}", pytrace=False)
    bad = [v for v in verdicts if not v.ok]
    if bad:
        stories = [operator_log(h, h.verdict) for h in run.watcher.handles
                   if h.verdict is not None and not h.verdict.ok]
        pytest.fail(f"{case.id}: {len(bad)} of {len(verdicts)} verdicts not ok: "
                    f"{summary(verdicts)}\n\n" + "\n\n".join(stories) + fault_text,
                    pytrace=False)
    if faults:
        pytest.fail(f"{case.id}: {len(faults)} fault window(s) not applied as planned"
                    f"{fault_text}", pytrace=False)
    return verdicts
