"""``tidb``: the object a hand-written HA test talks to.

    def test_add_index_survives(tidb, nemesis):
        job = tidb.add_index("sbtest1", "c", db="sbtest")
        assert_job_converges(job, timeout=600)

Every job started here is watched in the background (one watcher per test)
and its verdict lands in ``ha_record.verdicts`` for the report; diagnostics
are collected for every verdict but ``converged`` when the test ends.

Durations given here are *case time*, like the markers': they are multiplied
by ``--ha-time-scale`` (timeouts, stall windows), so a test written for a
one-hour run also runs in a minute at ``--ha-time-scale 0.02``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..cluster.protocol import ClusterLike
from ..options import HAOptions
from ..record import HARecord
from ..scenario.floors import Timer
from ..scenario.model import (
    AddIndexJob,
    Case,
    Duration,
    Expectation,
    GenerateSpec,
    ImportIntoJob,
)
from ..scenario.switches import add_index_switches
from ..verdicts import Verdict
from .handle import JobHandle, JobPolicy
from .model import ADD_INDEX, IMPORT_INTO
from .session import JobSession
from .submit import drop_index, submit_add_index, submit_import

log = logging.getLogger("pytest_tidb_ha.jobs")

#: Unscaled default job timeout of the facade (the seeds use 60m).
DEFAULT_TIMEOUT = 3600.0


class TiDB:
    """SQL, roles and watched jobs on the test's cluster."""

    def __init__(self, cluster: ClusterLike, client: Any, record: HARecord,
                 options: HAOptions | None = None, case: Case | None = None) -> None:
        self.cluster = cluster
        self.client = client
        self.record = record
        self.options = options or HAOptions()
        self.case = case
        self.session = JobSession(cluster, record, self.options, case)
        self.watcher = self.session.watcher
        self._runs = 0
        self._closed = False

    # -- SQL / roles ------------------------------------------------------------------
    @property
    def database(self) -> str | None:
        return self.cluster.database

    def query(self, sql: str, args: Any = None, **kw: Any) -> list[dict[str, Any]]:
        return list(self.client.query(sql, args, **kw))

    def execute(self, sql: str, args: Any = None, **kw: Any) -> int:
        return int(self.client.execute(sql, args, **kw))

    def ddl_owner(self) -> str | None:
        from ..cluster.roles import ddl_owner  # late: plugin import stays light

        return ddl_owner(self.cluster)

    def pd_leader(self) -> str | None:
        from ..cluster.roles import pd_leader

        return pd_leader(self.cluster)

    # -- jobs ------------------------------------------------------------------------------
    def timers(self) -> Mapping[str, Timer]:
        """The cluster's recovery timers, read once (the floors of every verdict window)."""
        return self.session.timers()

    def _policy(self, kind: str, timeout: float | None, stall: float | None,
                expectation: Expectation | None = None,
                cancel_after: float | None = None) -> JobPolicy:
        """Scaled windows raised to the recovery floor of the test's faults."""
        return self.session.policy(
            kind, timeout=timeout if timeout is not None else DEFAULT_TIMEOUT, stall=stall,
            expectation=expectation, cancel_after=cancel_after or None)

    def _start(self, handle: JobHandle) -> JobHandle:
        handle.extra["time_scale"] = self.options.time_scale
        return self.session.watch(handle)

    def add_index(self, table: str, column: str, *, db: str | None = None,
                  job_type: str = "ingest", dist_task: bool | None = None,
                  timeout: float | None = None, stall: float | None = None,
                  admin_check: bool = False, count_check: bool = False,
                  index: str | None = None, cancel_after: float | None = None) -> JobHandle:
        """Start ``ALTER TABLE db.table ADD INDEX index_test_<ms> (column)``; watched."""
        db = db or self.database
        if not db:
            raise ValueError("add_index needs db= (the cluster has no test database)")
        if job_type not in ("ingest", "txn"):
            raise ValueError(f"job_type must be 'ingest' or 'txn', not {job_type!r}")
        add_index_switches(job_type, dist_task if dist_task is not None else
                           self.case.dist_task if self.case else None)  # SwitchError: 8200
        secs = timeout if timeout is not None else DEFAULT_TIMEOUT
        spec = AddIndexJob(db=db, table=table, index_col_name=column, timeout=Duration(secs),
                           job_type=job_type,  # type: ignore[arg-type]
                           admin_check=admin_check, count_check=count_check,
                           dist_task=dist_task)
        self._runs += 1
        handle = submit_add_index(self.client, spec, self._runs, self.record.timeline,
                                  policy=self._policy(ADD_INDEX, timeout, stall,
                                                      cancel_after=cancel_after),
                                  index=index, dist_task=self.case.dist_task if self.case
                                  else None)
        return self._start(handle)

    def drop_index(self, job: JobHandle) -> None:
        """Drop the index a converged ADD INDEX created (before the next run)."""
        if job.target.index_name:
            drop_index(self.client, job.target.db, job.target.table, job.target.index_name)

    def import_into(self, table: str, source: str | None = None, *, db: str | None = None,
                    format: str = "csv", options: Mapping[str, object] | None = None,
                    detached: bool = False, dist_task: bool | None = None,
                    timeout: float | None = None, stall: float | None = None,
                    create_table: str | None = None, generate_rows: int | None = None,
                    files: int = 1, expected_rows: int | None = None,
                    cancel_after: float | None = None) -> JobHandle:
        """Start ``IMPORT INTO db.table FROM source``; watched.

        ``generate_rows``: write that many CSV rows (``--ha-workload-scale``
        applies) into the cluster's import folder first; then *source*
        defaults to them and ``expected_rows`` to their count.
        """
        db = db or self.database
        if not db:
            raise ValueError("import_into needs db= (the cluster has no test database)")
        secs = timeout if timeout is not None else DEFAULT_TIMEOUT
        opts = dict(options or {})
        gen = GenerateSpec(generate_rows, files) if generate_rows else None
        spec = ImportIntoJob(db=db, table=table, source_uri=source or "",
                             timeout=Duration(secs), format=format, options=opts,
                             dist_task=dist_task, generate=gen, create_table=create_table)
        src = source
        if gen is not None:
            src, rows = self.session.import_data(spec)
            expected_rows = rows if expected_rows is None else expected_rows
            opts.setdefault("skip_rows", 1)
        if not src:
            raise ValueError("import_into needs a source (or generate_rows=)")
        self._runs += 1
        handle = submit_import(self.client, spec, self._runs, self.record.timeline,
                               policy=self._policy(IMPORT_INTO, timeout, stall,
                                                   cancel_after=cancel_after),
                               source=src, expected_rows=expected_rows, options=opts,
                               detached=detached,
                               dist_task=self.case.dist_task if self.case else None)
        return self._start(handle)

    @property
    def jobs(self) -> list[JobHandle]:
        return self.watcher.handles

    def verdicts(self) -> list[Verdict]:
        return self.session.verdicts()

    # -- end of test ---------------------------------------------------------------------
    def close(self) -> list[Verdict]:
        """Stop watching, record verdicts, collect diagnostics when one is not converged.

        Jobs still undecided are recorded as they are: the test ended first
        (its own assertions decide), so no verdict is invented for them.
        """
        if self._closed:
            return []
        self._closed = True
        self.session.stop()
        verdicts = self.verdicts()
        self.record.verdicts.extend(verdicts)
        for h in self.watcher.handles:
            if not h.decided:
                last = h.latest.describe() if h.latest else "never seen"
                self.record.notes.append(f"{h.job_key}: {h.label()} had no verdict when the "
                                         f"test ended (last: {last})")
        self.session.diagnostics(verdicts)
        return verdicts
