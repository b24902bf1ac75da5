"""How ``--ha-workload-scale`` shrinks (or grows) a workload's data (pure).

The seeds ask for 64 tables of 70 million rows: right for a soak run, hours of
loading on a CI box. ``size_scale`` multiplies the rows per table; below 1 it
also multiplies the table count, because the jobs under test touch one table
(``ADD INDEX`` on ``sbtest1``) and the other tables only spread the load —
CI wants the *total* data small. Floors keep a scaled workload meaningful:

* rows per table never drop below :data:`MIN_TABLE_SIZE` (1000, or the
  unscaled size if that is smaller): range selects read 100 consecutive ids,
  and with fewer rows concurrent writers mostly collide on the same rows;
* at least one table, and never fewer than the jobs of the case name: a case
  whose ADD INDEX targets ``sbtest3`` keeps ``sbtest1..sbtest3`` at any scale
  (:func:`tables_for_jobs`; the dry-run plan says what it kept and what no
  scale can give).

Scales above 1 grow the rows per table only; the table count stays as given.

Below 1 the worker threads shrink too (:func:`scaled_threads`), never below
:data:`MIN_THREADS` (or the unscaled count if smaller): the seeds' 64 threads are
sized for a production cluster, and on a CI box they only measure the box's
overload — a scaled-down cluster gets a scaled-down client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .model import AddIndexJob, JobSpec, Workload

MIN_TABLE_SIZE = 1000
MIN_THREADS = 4


@dataclass(frozen=True)
class Size:
    tables: int
    table_size: int

    @property
    def rows(self) -> int:
        return self.tables * self.table_size


_SBTEST = re.compile(r"^sbtest(\d+)$")


@dataclass(frozen=True)
class TableNeeds:
    """How many tables a workload must keep for the case's jobs, and what it cannot give."""

    keep: int
    named: tuple[str, ...] = ()  # the workload tables the jobs name, in order
    problems: tuple[str, ...] = ()


def tables_for_jobs(workload: Workload, jobs: Iterable[JobSpec]) -> TableNeeds:
    """The tables of *workload* that ADD INDEX jobs in its database name (pure).

    sysbench creates ``sbtest1..sbtest<tables>``; a job on ``sbtest<n>`` needs the
    first ``n`` to survive scaling. A job in the workload's database on a table the
    workload never creates (``sbtest12`` of 8, ``users``) is a problem no scale can
    fix: it is reported, not guessed at. Other jobs (other databases, IMPORT INTO
    into its own table) are not the workload's business.
    """
    keep = 1
    named: list[str] = []
    problems: list[str] = []
    for job in jobs:
        if not isinstance(job, AddIndexJob) or job.db != workload.db:
            continue
        m = _SBTEST.match(job.table)
        n = int(m.group(1)) if m else 0
        if 1 <= n <= workload.tables:
            keep = max(keep, n)
            if job.table not in named:
                named.append(job.table)
        else:
            problems.append(
                f"job on {job.db}.{job.table} [{job.source}]: the workload creates only "
                f"sbtest1..sbtest{workload.tables} in {workload.db} (tableNum "
                f"{workload.tables}); the table must exist before the job")
    return TableNeeds(keep, tuple(named), tuple(problems))


def scaled_size(tables: int, table_size: int, scale: float, *, keep: int = 1) -> Size:
    """The table count and rows per table for ``scale`` (see module doc); never fewer than
    ``keep`` tables (the ones the jobs name), never more than ``tables``."""
    if tables < 1 or table_size < 1:
        raise ValueError(f"workload needs tables >= 1 and table_size >= 1, got "
                         f"tables={tables}, table_size={table_size}")
    if not scale > 0 or math.isinf(scale):
        raise ValueError(f"workload scale must be a positive number, got {scale!r}")
    if scale == 1:
        return Size(tables, table_size)  # keep <= tables by construction
    rows = max(min(table_size, MIN_TABLE_SIZE), round(table_size * scale))
    n = tables if scale > 1 else max(1, min(tables, keep), math.ceil(tables * scale))
    return Size(n, rows)


def scaled_threads(threads: int, scale: float) -> int:
    """Worker threads for ``scale``: fewer below 1, never below ``MIN_THREADS``."""
    if threads < 1:
        raise ValueError(f"workload needs threads >= 1, got threads={threads}")
    if scale >= 1:
        return threads
    return max(min(threads, MIN_THREADS), math.ceil(threads * scale))
