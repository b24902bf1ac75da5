"""Run a case's workloads together: prepare all, start all, stop all.

Used by the ``ha_workload`` fixture (marker tests) and available to the case
runner (YAML cases), so both front ends drive workloads the same way.
Stopping is the part that matters: every workload is stopped even when
another one failed, and the first :class:`WorkloadError` is raised after all
of them have stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import TracebackType

from ..scenario.model import JobSpec, Workload
from ..scenario.sizing import tables_for_jobs
from ..timeline import Timeline
from .errors import WorkloadError
from .sysbench import ClientFactory, Sysbench

log = logging.getLogger("pytest_tidb_ha.workload")


class WorkloadGroup:
    """Context manager: ``with WorkloadGroup(...) as g:`` runs ``g.members``."""

    def __init__(self, specs: Iterable[Workload], client_factory: ClientFactory,
                 timeline: Timeline, *, size_scale: float = 1.0, cleanup: bool = False,
                 stop_timeout: float = 5.0, jobs: Iterable[JobSpec] = (),
                 driver: str = "auto") -> None:
        jobs = tuple(jobs)  # the case's jobs: scaling keeps the tables they name
        self.members: tuple[Sysbench, ...] = tuple(
            Sysbench(client_factory, spec, timeline, size_scale=size_scale,
                     keep_tables=tables_for_jobs(spec, jobs).keep, stop_timeout=stop_timeout,
                     driver=driver)
            for spec in specs)
        self._cleanup = cleanup
        self._started: list[Sysbench] = []

    def start(self) -> None:
        """Prepare every workload, then start them all (stopping any on failure)."""
        try:
            for sb in self.members:
                sb.prepare()
            for sb in self.members:
                sb.start()
                self._started.append(sb)
        except BaseException:
            self.stop(raise_errors=False)
            raise

    def stop(self, *, raise_errors: bool = True) -> None:
        """Stop all started workloads; drop their tables when asked to."""
        first: WorkloadError | None = None
        for sb in self._started:
            try:
                sb.stop()
            except WorkloadError as exc:
                first = first or exc
        self._started.clear()
        if self._cleanup:
            for sb in self.members:
                try:
                    sb.cleanup()
                except Exception as exc:  # noqa: BLE001 - a broken cluster must not hide the test's result
                    log.warning("workload cleanup of %s failed: %s", sb.db, exc)
        if first is not None and raise_errors:
            raise first

    def __enter__(self) -> WorkloadGroup:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # a failing body keeps its own exception; a workload error is secondary then
        self.stop(raise_errors=exc is None)
