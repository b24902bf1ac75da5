"""Job-state triggers: when a ``when:`` fault fires (pure).

The jobs layer publishes every observation of a job as a ``job.state`` event on
the shared Timeline (with the job's place in the case's plan order, ``job_seq``,
and its ``progress`` share when the table's size is known). The nemesis
subscribes to the Timeline and asks :func:`matches` for each event -- it never
polls SQL itself: one direction of data flow, jobs publish, faults read.

A trigger fires on the first observation of job *n* that meets every condition
it names; the fault's schedule then counts from that observation's time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..events import JOB_STATE
from ..scenario.model import Trigger


@dataclass(frozen=True)
class Sighting:
    """One observation of one job, as a trigger reads it (from a ``job.state`` event)."""

    t: float
    job_seq: int | None
    job_key: str
    job_id: int | None = None
    state: str | None = None
    schema_state: str | None = None
    import_step: str | None = None
    progress: float | None = None  # percent of the table's rows processed

    @classmethod
    def from_event(cls, kind: str, t: float, data: Mapping[str, Any]) -> Sighting | None:
        if kind != JOB_STATE:
            return None
        seq = data.get("job_seq")
        progress = data.get("progress")
        return cls(t=t, job_seq=seq if isinstance(seq, int) else None,
                   job_key=str(data.get("job_key") or ""), job_id=data.get("job_id"),
                   state=data.get("state"), schema_state=data.get("schema_state"),
                   import_step=data.get("import_step") or None,
                   progress=float(progress) if isinstance(progress, (int, float)) else None)

    def describe(self) -> str:
        parts = [f"state {self.state}"]
        if self.schema_state:
            parts.append(f"schema state {self.schema_state}")
        if self.import_step:
            parts.append(f"step {self.import_step}")
        if self.progress is not None:
            parts.append(f"progress {self.progress:.0f}%")
        return f"{self.job_key} (job {self.job_id}) at t={self.t:.1f}s: " + ", ".join(parts)

    def as_event(self) -> dict[str, object]:
        return {"job_key": self.job_key, "job_seq": self.job_seq, "job_id": self.job_id,
                "observed_at": round(self.t, 3), "state": self.state,
                "schema_state": self.schema_state, "import_step": self.import_step,
                "progress": self.progress}


def matches(trigger: Trigger, seen: Sighting) -> bool:
    """True when ``seen`` is job ``trigger.job`` meeting every condition of ``trigger``."""
    if seen.job_seq != trigger.job:
        return False
    if trigger.state is not None and seen.state != trigger.state:
        return False
    if trigger.schema_state is not None and seen.schema_state != trigger.schema_state:
        return False
    if trigger.import_step is not None and seen.import_step != trigger.import_step:
        return False
    return trigger.progress is None or (seen.progress is not None
                                        and seen.progress >= trigger.progress)

