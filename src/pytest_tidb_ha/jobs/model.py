"""What the watcher observes about one job, as plain frozen values.

The watcher (I/O) turns system-table rows into :class:`Observation`s; the
verdict (pure) reads only these. State strings are TiDB's own (reference
``tidb-contract.md`` §1.1, §3.3, §4.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# -- DDL job states (reference §1.1) ---------------------------------------
DDL_SUCCESS = frozenset({"synced"})
DDL_FAILED = frozenset({"rollback done", "cancelled"})
DDL_TERMINAL = DDL_SUCCESS | DDL_FAILED
# -- IMPORT job status (reference §3.3; "canceled" tolerated for docs' spelling) --
IMPORT_SUCCESS = frozenset({"finished"})
IMPORT_FAILED = frozenset({"failed", "cancelled", "canceled"})
IMPORT_TERMINAL = IMPORT_SUCCESS | IMPORT_FAILED
# -- DXF task states (reference §4.3) ----------------------------------------
TASK_TERMINAL = frozenset({"succeed", "failed", "reverted", "revert_failed", "canceled",
                           "cancelled"})

ADD_INDEX = "add_index"
IMPORT_INTO = "import_into"


def _frozen(d: Mapping[str, int] | None) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted((d or {}).items())))


@dataclass(frozen=True)
class Observation:
    """One poll of one job. ``t`` is Timeline seconds.

    For ADD INDEX ``state`` is the DDL job STATE; for IMPORT INTO it is the
    import job ``status`` (also in ``import_status``). ``task_state`` is the DXF
    global task's state (None: no task, e.g. DXF off); ``subtasks`` counts
    subtasks by state.
    """

    t: float
    job_id: int | None
    state: str | None
    schema_state: str | None = None
    row_count: int | None = None
    import_step: str | None = None
    import_status: str | None = None
    imported_rows: int | None = None
    task_state: str | None = None
    subtasks: Mapping[str, int] = field(default_factory=lambda: _frozen(None))
    error: str | None = None  # import error_message / DXF task error, if any
    job_type: str | None = None  # e.g. "add index /* ingest */"

    def __post_init__(self) -> None:
        object.__setattr__(self, "subtasks", _frozen(self.subtasks))

    def progress_key(self) -> tuple[Any, ...]:
        """Everything whose change counts as progress (DESIGN.md "Verdicts")."""
        return (self.state, self.schema_state, self.row_count, self.import_step,
                self.import_status, self.imported_rows, self.task_state,
                tuple(self.subtasks.items()))

    def to_event(self) -> dict[str, Any]:
        """The ``job.state`` event payload (docs/contracts.md)."""
        return {
            "job_id": self.job_id, "state": self.state, "schema_state": self.schema_state,
            "row_count": self.row_count, "import_step": self.import_step,
            "import_status": self.import_status, "imported_rows": self.imported_rows,
            "task_state": self.task_state, "subtasks": dict(self.subtasks),
            "job_type": self.job_type, "error": self.error,
        }

    def describe(self) -> str:
        """Short operator-log form: ``state: running, schema: write reorganization, rows: 10``."""
        parts = [f"state: {self.state}"]
        if self.import_step is not None or self.import_status is not None:
            parts = [f"status={self.import_status or self.state}, step={self.import_step or ''}"]
            if self.imported_rows is not None:
                parts.append(f"imported rows: {self.imported_rows}")
        else:
            if self.schema_state:
                parts.append(f"schema state: {self.schema_state}")
            if self.row_count is not None:
                parts.append(f"row count: {self.row_count}")
        if self.task_state:
            sub = ", ".join(f"{k}={v}" for k, v in self.subtasks.items())
            parts.append(f"DXF task: {self.task_state}" + (f" (subtasks {sub})" if sub else ""))
        return ", ".join(parts)


def progress_percent(rows: int | None, total: int | None) -> float | None:
    """ROW_COUNT / imported rows against the table's rows, in percent (None: unknown).
    Published on ``job.state`` events (a fault's ``when: {progress: 30%}`` reads it)."""
    if rows is None or not total:
        return None
    return round(100.0 * rows / total, 2)


def is_terminal(kind: str, state: str | None) -> bool:
    return state in (IMPORT_TERMINAL if kind == IMPORT_INTO else DDL_TERMINAL)


def is_success(kind: str, state: str | None) -> bool:
    return state in (IMPORT_SUCCESS if kind == IMPORT_INTO else DDL_SUCCESS)


@dataclass(frozen=True)
class CheckResult:
    """A post-success check: ``admin_check``, ``count_check`` or ``row_count``."""

    name: str
    ok: bool
    detail: str
    error_code: int | None = None


@dataclass(frozen=True)
class CancelProbe:
    """``ADMIN CANCEL DDL JOBS`` / ``CANCEL IMPORT JOB`` issued by the test.

    ``accepted``: the statement returned ``successful`` / OK. ``window``: seconds
    the job gets to become terminal afterwards.
    """

    issued_at: float
    accepted: bool
    result: str
    window: float
    reason: str = "cancelAfter"  # or "probe after stuck"
    code: int | None = None  # the error code of a rejected cancel (8224: job not found)
