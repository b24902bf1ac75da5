"""What one test did, as the report layer reads it.

Fixtures and the case runner fill one :class:`HARecord` per test (kept in
``item.stash``); the report hooks read only this, never the layers' internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .timeline import Timeline
from .verdicts import Verdict


@dataclass
class HARecord:
    """One test's history. Its repr shows only the node id and verdict names: pytest prints
    the repr of fixture values in tracebacks, and notes/evidence may hold unredacted text."""

    nodeid: str
    timeline: Timeline
    artifacts_dir: Path  # created lazily; kept or removed by --ha-artifacts-keep
    case_id: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    cluster: str | None = None  # e.g. "pd=3,tikv=3,tidb=2 images=..." for the header/report
    notes: list[str] = field(default_factory=list)  # e.g. diagnostics that failed to collect

    def __repr__(self) -> str:
        names = ",".join(v.verdict for v in self.verdicts) or "-"
        return f"HARecord(nodeid={self.nodeid!r}, verdicts={names})"

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)
