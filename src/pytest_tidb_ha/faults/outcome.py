"""Planned vs applied vs healed: one typed record per fault window (pure, thread-safe).

The nemesis fills a :class:`FaultBook` as it works; at the end the book says,
for every window the case planned, whether it was applied and healed -- and if
not, why. A window that was due but never applied (no root, no helper image, a
selector that matched nothing, a role nobody held), a window whose heal failed,
a fault kind the cluster cannot take (attach mode), or a schedule that never
reached its first window: each is a *problem* that fails the test, unless the
case allows fault errors (``expect: {allowFaultErrors: true}`` /
``@pytest.mark.fault(..., allow_fault_errors=True)``). A green run with no
partition at all is the defect this module exists to prevent.

``WindowRecord.verified`` (None = not checked or inconclusive): the measured
effect of the fault from inside the cluster (faults.verify); ``False`` makes an
applied window count as not applied.

A window of a ``when:`` fault has its planned times relative to the trigger
(``trigger`` says which) until the trigger fires (:meth:`FaultBook.fired`); a
trigger that never fired leaves its windows unopened, which the nemesis reports
as a problem naming the job's last observation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["planned", "applied", "healed", "failed", "unhealed", "skipped", "not reached"]


@dataclass(frozen=True)
class FaultProblem:
    phase: str  # resolve | apply | heal | reapply | unsupported | not applied | verify
    error: str


@dataclass
class WindowRecord:
    """One planned window of one fault spec (timeline seconds)."""

    fault_id: str  # f<spec>.<window>
    kind: str
    selector: str
    spec_index: int  # 0-based, as in the fault id
    window: int  # 0-based within its spec
    planned_start: float
    planned_end: float
    allow_errors: bool = False
    skipped: str | None = None  # why this cluster cannot take the fault at all
    nodes: tuple[str, ...] = ()
    opened: bool = False  # the nemesis tried it (resolve ran)
    applied_at: float | None = None
    healed_at: float | None = None
    verified: bool | None = None
    problems: list[FaultProblem] = field(default_factory=list)
    trigger: str | None = None  # ``when:`` text; planned times count from its firing
    fired_at: float | None = None  # when the trigger fired (timeline seconds)

    @property
    def waiting(self) -> bool:
        """A triggered window whose trigger has not fired (planned times are offsets)."""
        return self.trigger is not None and self.fired_at is None

    @property
    def applied(self) -> bool:
        return self.applied_at is not None and self.verified is not False

    @property
    def healed(self) -> bool:
        return self.healed_at is not None

    def status(self) -> Status:
        if self.skipped is not None:
            return "skipped"
        if self.applied and self.healed:
            return "healed"
        if self.applied:
            return "applied" if not any(p.phase == "heal" for p in self.problems) else "unhealed"
        if self.problems:
            return "failed"
        return "not reached" if not self.opened else "planned"

    def label(self) -> str:
        """``fault f0.1 network_partition window 2 on tikv(random)_to_all (t=6.0s..12.0s)``."""
        if self.waiting:
            when = (f"when {self.trigger}: trigger+{self.planned_start:.1f}s.."
                    f"+{self.planned_end:.1f}s")
        else:
            when = f"t={self.planned_start:.1f}s..{self.planned_end:.1f}s"
        return (f"fault {self.fault_id} {self.kind} window {self.window + 1} on "
                f"{self.selector or 'the cluster'} (planned {when})")


def _cause(problems: Sequence[FaultProblem]) -> str:
    return "; ".join(f"{p.phase}: {p.error}" for p in problems)


class FaultBook:
    """Every window's record, filled by the nemesis thread and read by the test's thread."""

    def __init__(self, records: Iterable[WindowRecord] = ()) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, WindowRecord] = {r.fault_id: r for r in records}

    # -- writing (the nemesis) ------------------------------------------------------
    def add(self, record: WindowRecord) -> None:
        with self._lock:
            self._records[record.fault_id] = record

    def opened(self, fault_id: str, nodes: Sequence[str] = ()) -> None:
        with self._lock:
            r = self._records[fault_id]
            r.opened = True
            r.nodes = tuple(nodes)

    def fired(self, fault_ids: Sequence[str], t: float) -> None:
        """The trigger of these windows fired at ``t``: their planned times become absolute."""
        with self._lock:
            for fid in fault_ids:
                r = self._records[fid]
                r.fired_at = t
                r.planned_start = round(r.planned_start + t, 3)
                r.planned_end = round(r.planned_end + t, 3)

    def applied(self, fault_id: str, t: float) -> None:
        with self._lock:
            self._records[fault_id].applied_at = t

    def healed(self, fault_id: str, t: float) -> None:
        with self._lock:
            r = self._records[fault_id]
            r.healed_at = t
            # a heal that failed once and then worked leaves the fault healed
            r.problems = [p for p in r.problems if p.phase != "heal"]

    def problem(self, fault_id: str, phase: str, error: str) -> None:
        with self._lock:
            r = self._records[fault_id]
            r.opened = True
            r.problems.append(FaultProblem(phase, error))

    def verify(self, fault_id: str, ok: bool, detail: str = "") -> None:
        """Record a verification from inside the cluster (``False``: not applied after all)."""
        with self._lock:
            r = self._records[fault_id]
            r.verified = ok
            if not ok:
                r.problems.append(FaultProblem("verify", detail or "not observed in the cluster"))

    # -- reading ------------------------------------------------------------------------
    @property
    def records(self) -> list[WindowRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: (r.planned_start, r.fault_id))

    def counts(self) -> tuple[int, int, int]:
        """``(applied, planned, healed)`` over every window of the case's schedule."""
        records = self.records
        return (sum(r.applied for r in records), len(records),
                sum(r.applied and r.healed for r in records))

    def problems(self, *, stopped_at: float | None = None) -> list[tuple[WindowRecord, str]]:
        """``(record, message)`` for every window that was not applied and healed as planned.

        ``stopped_at``: when the schedule stopped; windows due by then but never
        opened count as not applied, later ones as not reached -- unless no window
        was applied at all (then the case tested nothing, and says so).
        """
        records = self.records
        out: list[tuple[WindowRecord, str]] = []
        for r in records:
            if r.skipped is not None:
                out.append((r, f"{r.label()} was not applied: {r.skipped}"))
            elif r.problems and not r.applied:
                out.append((r, f"{r.label()} was not applied: {_cause(r.problems)}"))
            elif r.applied and not r.healed:
                out.append((r, f"{r.label()} was applied but not healed"
                               + (f": {_cause(r.problems)}" if r.problems else "")))
            elif r.problems:  # applied and healed, but e.g. not re-applied after a restart
                out.append((r, f"{r.label()} was only partly applied: {_cause(r.problems)}"))
            elif (not r.opened and not r.waiting and stopped_at is not None
                  and r.planned_start <= stopped_at):
                out.append((r, f"{r.label()} was due at t={r.planned_start:.1f}s but the "
                               f"nemesis stopped at t={stopped_at:.1f}s without applying it"))
        runnable = [r for r in records if r.skipped is None]
        if runnable and not any(r.applied for r in runnable) and not out:
            first = runnable[0]
            end = f"t={stopped_at:.1f}s" if stopped_at is not None else "its end"
            out.append((first, f"no fault window was applied: the run ended at {end}, before "
                               f"the first window ({first.label()}); the case tested nothing "
                               f"under faults"))
        return out

    def summary(self, *, stopped_at: float | None = None) -> dict[str, object]:
        applied, planned, healed = self.counts()
        return {"applied": applied, "planned": planned, "healed": healed,
                "problems": [m for _, m in self.problems(stopped_at=stopped_at)],
                "windows": {r.fault_id: r.status() for r in self.records}}


def failures(book: FaultBook, *, allow_all: bool = False,
             stopped_at: float | None = None) -> tuple[list[str], list[str]]:
    """``(failures, allowed)``: problems that fail the test, and those the case allows."""
    failing: list[str] = []
    allowed: list[str] = []
    for record, message in book.problems(stopped_at=stopped_at):
        (allowed if allow_all or record.allow_errors else failing).append(message)
    return failing, allowed
