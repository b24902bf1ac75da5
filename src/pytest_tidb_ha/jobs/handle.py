"""A submitted job as the test sees it: what was sent, what was seen, the verdict.

The :class:`~.watch.Watcher` thread fills a handle (observations, verdict);
the test thread reads it and waits on it. All mutation goes through the
handle's lock so the two never see half an update.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..scenario.floors import Floor, JobWindows
from ..scenario.model import Expectation
from ..verdicts import Verdict
from .catalog import ErrorInfo
from .model import CancelProbe, CheckResult, Observation, is_success, is_terminal
from .statement import StatementThread


@dataclass
class JobTarget:
    """Where the job runs and how to recognise it in the job tables."""

    kind: str  # "add_index" | "import_into"
    db: str
    table: str
    index_name: str | None = None  # ADD INDEX
    column: str | None = None
    known_ids: frozenset[int] = frozenset()  # job ids on the table before submission


@dataclass
class JobPolicy:
    """How the job is judged (scaled seconds, each window already raised to ``floor``)."""

    timeout: float
    stall_window: float
    expectation: Expectation = field(default_factory=Expectation)
    allow_errors: tuple[str, ...] = ()
    cancel_after: float | None = None  # seconds after submission (case cancelAfter)
    cancel_window: float = 60.0
    terminal_grace: float = 2.0
    floor: Floor | None = None  # the cluster's recovery floor (scenario.floors)

    @classmethod
    def from_windows(cls, windows: JobWindows, **kw: Any) -> JobPolicy:
        return cls(timeout=windows.timeout.seconds, stall_window=windows.stall.seconds,
                   cancel_window=windows.cancel.seconds, floor=windows.stall.floor, **kw)

    def at_floor(self, seconds: float) -> float:
        """*seconds* raised to the recovery floor (a window asked for later, e.g. ``stall=``)."""
        return max(seconds, self.floor.seconds) if self.floor is not None else seconds


class JobHandle:
    """One job the test started (or found queued behind one it started)."""

    def __init__(
        self,
        job_key: str,
        target: JobTarget,
        policy: JobPolicy,
        *,
        query: str,
        submitted_at: float,
        statement: StatementThread | None = None,
        checks: Callable[[JobHandle], Sequence[CheckResult]] | None = None,
        job_id: int | None = None,
        discovered: bool = False,
    ) -> None:
        self.job_key = job_key
        self.target = target
        self.policy = policy
        self.query = query  # redacted text of the statement
        self.submitted_at = submitted_at
        self.statement = statement
        self._checks_fn = checks
        self.discovered = discovered  # found queued behind our job, not submitted by us
        #: the n-th job the test submitted (plan order; set by the watcher, None when found)
        self.seq: int | None = None
        self._lock = threading.Lock()
        self._decided = threading.Event()
        self._job_id = job_id
        self._changes: list[Observation] = []
        self._latest: Observation | None = None
        self._verdict: Verdict | None = None
        self.checks: tuple[CheckResult, ...] = ()
        self.checks_done = checks is None
        self.cancel: CancelProbe | None = None
        self.cancel_verdict: Verdict | None = None
        self.cancel_settled = threading.Event()
        self.blocked_by: str | None = None
        self.extra: dict[str, Any] = {}
        self.watcher: Any = None  # the Watcher polling this handle (set by Watcher.add)
        self.timeline: Any = None  # its Timeline, for operator logs

    def __repr__(self) -> str:
        return (f"JobHandle({self.job_key!r}, job_id={self.job_id}, state={self.state!r}, "
                f"verdict={self._verdict.verdict if self._verdict else None})")

    # -- identity / state ----------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.target.kind

    @property
    def job_id(self) -> int | None:
        with self._lock:
            return self._job_id

    def set_job_id(self, job_id: int) -> None:
        with self._lock:
            self._job_id = job_id

    @property
    def state(self) -> str | None:
        with self._lock:
            return self._latest.state if self._latest else None

    @property
    def latest(self) -> Observation | None:
        with self._lock:
            return self._latest

    @property
    def observations(self) -> list[Observation]:
        """Every distinct observation, plus the latest poll (for the verdict)."""
        with self._lock:
            out = list(self._changes)
            if self._latest is not None and (not out or self._latest is not out[-1]):
                out.append(self._latest)
            return out

    def observe(self, obs: Observation) -> bool:
        """Add a poll result; True when it differs from the previous one (progress)."""
        with self._lock:
            changed = not self._changes or self._changes[-1].progress_key() != obs.progress_key()
            if changed:
                self._changes.append(obs)
            self._latest = obs
            if obs.job_id is not None and self._job_id is None:
                self._job_id = obs.job_id
            return changed

    @property
    def terminal(self) -> bool:
        return is_terminal(self.kind, self.state)

    @property
    def succeeded(self) -> bool:
        return is_success(self.kind, self.state)

    @property
    def total_rows(self) -> int | None:
        """Rows the job must process, when known (import: the generated rows)."""
        for key in ("expected_rows", "table_rows"):
            value = self.extra.get(key)
            if isinstance(value, int):
                return value
        return None

    @property
    def client_error(self) -> ErrorInfo | None:
        return self.statement.error if self.statement is not None else None

    def run_checks(self) -> None:
        if self._checks_fn is not None and not self.checks_done:
            self.checks = tuple(self._checks_fn(self))
        self.checks_done = True

    # -- verdict ---------------------------------------------------------------------
    @property
    def verdict(self) -> Verdict | None:
        with self._lock:
            return self._verdict

    def decide(self, verdict: Verdict) -> None:
        with self._lock:
            if self._verdict is not None:
                return
            self._verdict = verdict
        self._decided.set()

    def wait(self, timeout: float | None = None) -> Verdict | None:
        """The verdict, waiting up to *timeout* seconds (None: until decided)."""
        self._decided.wait(timeout)
        return self.verdict

    @property
    def decided(self) -> bool:
        return self._decided.is_set()

    def label(self) -> str:
        latest = self.latest
        jtype = latest.job_type if latest and latest.job_type else self.kind.replace("_", " ")
        return f"job {self.job_id if self.job_id is not None else '?'} ({jtype})"
