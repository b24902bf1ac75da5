"""How ``--ha-workload-scale`` shrinks (or grows) a workload's data (pure).

The seeds ask for 64 tables of 70 million rows: right for a soak run, hours of
loading on a CI box. ``size_scale`` multiplies the rows per table; below 1 it
also multiplies the table count, because the jobs under test touch one table
(``ADD INDEX`` on ``sbtest1``) and the other tables only spread the load —
CI wants the *total* data small. Floors keep a scaled workload meaningful:

* rows per table never drop below :data:`MIN_TABLE_SIZE` (1000, or the
  unscaled size if that is smaller): range selects read 100 consecutive ids,
  and with fewer rows concurrent writers mostly collide on the same rows;
* at least one table.

Scales above 1 grow the rows per table only; the table count stays as given.

Below 1 the worker threads shrink too (:func:`scaled_threads`), never below
:data:`MIN_THREADS` (or the unscaled count if smaller): the seeds' 64 threads are
sized for a production cluster, and on a CI box they only measure the box's
overload — a scaled-down cluster gets a scaled-down client.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_TABLE_SIZE = 1000
MIN_THREADS = 4


@dataclass(frozen=True)
class Size:
    tables: int
    table_size: int

    @property
    def rows(self) -> int:
        return self.tables * self.table_size


def scaled_size(tables: int, table_size: int, scale: float) -> Size:
    """The table count and rows per table for ``scale`` (see module doc)."""
    if tables < 1 or table_size < 1:
        raise ValueError(f"workload needs tables >= 1 and table_size >= 1, got "
                         f"tables={tables}, table_size={table_size}")
    if not scale > 0 or math.isinf(scale):
        raise ValueError(f"workload scale must be a positive number, got {scale!r}")
    if scale == 1:
        return Size(tables, table_size)
    rows = max(min(table_size, MIN_TABLE_SIZE), round(table_size * scale))
    n = tables if scale > 1 else max(1, math.ceil(tables * scale))
    return Size(n, rows)


def scaled_threads(threads: int, scale: float) -> int:
    """Worker threads for ``scale``: fewer below 1, never below ``MIN_THREADS``."""
    if threads < 1:
        raise ValueError(f"workload needs threads >= 1, got threads={threads}")
    if scale >= 1:
        return threads
    return max(min(threads, MIN_THREADS), math.ceil(threads * scale))
