"""The two switches an ADD INDEX runs under, always as a pair TiDB accepts (pure).

``job_type`` picks the backfill: ``ingest`` sets ``tidb_ddl_enable_fast_reorg=ON``,
``txn`` sets it OFF. DXF (``tidb_enable_dist_task``) distributes only the fast-reorg
backfill: with DXF ON and fast reorg OFF, TiDB refuses the ADD INDEX with 8200
``ErrUnsupportedDistTask`` ("...To utilize distributed task execution, please
enable tidb_ddl_enable_fast_reorg first"; ``pingcap/tidb pkg/ddl/reorg_util.go
initJobReorgMetaFromVariables``, reference §9). DXF is ON by default from v8.1.

So a ``txn`` job that leaves DXF to the cluster is submitted with DXF OFF (the
consistent pair), and a case that asks for ``txn`` *and* DXF explicitly is an
error at collection, at the job's line.
"""

from __future__ import annotations

from .errors import ScenarioError
from .model import AddIndexJob, Case

#: TiDB's answer to ADD INDEX with DXF on and fast reorg off.
UNSUPPORTED_DIST_TASK = 8200


class SwitchError(ValueError):
    """A pair of switches TiDB refuses."""


def add_index_switches(job_type: str, dist_task: bool | None) -> tuple[bool, bool | None]:
    """``(fast_reorg, dist_task)`` to set for an ADD INDEX (``None``: leave it alone)."""
    if job_type == "txn":
        if dist_task:
            raise SwitchError(
                "job_type: txn (fast reorg off) with distTask: on can never run: TiDB refuses "
                f"ADD INDEX with {UNSUPPORTED_DIST_TASK} (ErrUnsupportedDistTask) when DXF is "
                "on and fast reorg is off; use job_type: ingest, or distTask: off")
        return False, False
    return True, dist_task


def effective_dist_task(job: AddIndexJob, case: Case | None) -> bool | None:
    """The job's own ``distTask``, else the case's."""
    if job.dist_task is not None:
        return job.dist_task
    return case.dist_task if case is not None else None


def check_switches(case: Case) -> None:
    """Raise :class:`ScenarioError` at the job's line for a pair TiDB refuses."""
    for job in case.jobs:
        if not isinstance(job, AddIndexJob):
            continue
        try:
            add_index_switches(job.job_type, effective_dist_task(job, case))
        except SwitchError as exc:
            where = job.source if (job.source.file or job.source.nodeid) else case.source
            raise ScenarioError(where, str(exc)) from None
