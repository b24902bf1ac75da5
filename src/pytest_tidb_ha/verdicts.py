"""A verdict: the product's answer for one job, as every layer reads it (the kernel).

The names are a public contract: reports, JUnit properties and users' CI filters
match on them, so they never change spelling. The judging itself lives in
:mod:`pytest_tidb_ha.jobs.verdict`; this module holds only the words and the
record of one judgement, so the record, the report and the assertion helpers
read verdicts without importing the jobs layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "CANCEL_INEFFECTIVE",
    "CONVERGED",
    "FAILED_SENSIBLE",
    "FAILED_UNEXPECTED",
    "STUCK",
    "TIMED_OUT",
    "VERDICTS",
    "Verdict",
    "VerdictName",
]

VerdictName = Literal[
    "converged", "failed-sensible", "failed-unexpected", "stuck", "timed-out",
    "cancel-ineffective",
]
CONVERGED: VerdictName = "converged"
FAILED_SENSIBLE: VerdictName = "failed-sensible"
FAILED_UNEXPECTED: VerdictName = "failed-unexpected"
STUCK: VerdictName = "stuck"
#: Still progressing when its deadline passed: not stuck, but not done in time either.
TIMED_OUT: VerdictName = "timed-out"
CANCEL_INEFFECTIVE: VerdictName = "cancel-ineffective"
VERDICTS: tuple[VerdictName, ...] = (
    CONVERGED, FAILED_SENSIBLE, FAILED_UNEXPECTED, STUCK, TIMED_OUT, CANCEL_INEFFECTIVE
)

@dataclass(frozen=True)
class Verdict:
    """The judgement of one job, with the one-sentence reason and its evidence.

    ``ok`` already folds in the case's expectation (``failed-sensible`` is ok only
    when the case allows failure), so reports and assertions need no policy.
    """

    job_key: str  # stable within a test, e.g. "add_index#1" / "import_into#2"
    kind: str  # "add_index" | "import_into"
    job_id: int | None
    verdict: VerdictName
    reason: str  # one sentence, already redacted
    ok: bool
    evidence: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    started_at: float | None = None  # Timeline seconds
    decided_at: float | None = None  # Timeline seconds

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.decided_at is None:
            return None
        return self.decided_at - self.started_at

    def to_json(self) -> dict[str, Any]:
        return {
            "job_key": self.job_key,
            "kind": self.kind,
            "job_id": self.job_id,
            "verdict": self.verdict,
            "ok": self.ok,
            "reason": self.reason,
            "started_at": self.started_at,
            "decided_at": self.decided_at,
            "evidence": dict(self.evidence),
        }
