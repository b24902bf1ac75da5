"""JUnit XML properties of one test (pure).

CI dashboards read JUnit, not our terminal, so each testcase carries:

* ``ha_verdict``   — the verdicts of the test's jobs, comma-separated in job order
  (``converged,stuck``), the field CI filters match on;
* ``ha_jobs``      — compact JSON: one object per job (key, kind, id, verdict, ok,
  duration, reason, last observed state);
* ``ha_faults``    — ``applied/planned`` fault windows (from the nemesis' summary: a
  window that was due and not applied fails the test; one the run never reached
  counts as planned only);
* ``ha_artifacts`` — the artifacts folder, when it was kept;
* ``ha_workload_driver`` — which workload client ran (``sysbench 1.0.20`` /
  ``python``, from ``workload.start``), when the test ran a workload.
* ``ha_seed``      — the seed of the run's random fault choices (``--ha-seed`` replays
  them): the nemesis' own when it ran, else the run's.

pytest's ``record_property`` fixture warns under ``junit_family=xunit2``, but
the XML writer itself keeps ``<properties>`` inside ``<testcase>`` for every
family; the hooks therefore append these pairs to the report's
``user_properties`` directly (no fixture, no warning). Values are redacted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..events import FAULT_APPLIED, FAULT_ERROR, FAULT_INJECT, NEMESIS_START, NEMESIS_SUMMARY
from ..redact import redact, redact_obj
from ..timeline import Event
from ..verdicts import Verdict
from .derive import job_tracks

PROPERTY_NAMES = ("ha_verdict", "ha_jobs", "ha_faults", "ha_artifacts", "ha_workload_driver",
                  "ha_seed")

#: Fields of the last ``job.state`` event worth a JUnit reader's attention.
_STATE_FIELDS = ("state", "schema_state", "row_count", "import_step", "import_status",
                 "imported_rows", "task_state")


def _compact(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 3)
    return v


def job_details(verdicts: Sequence[Verdict], events: Sequence[Event]) -> list[dict[str, Any]]:
    """One JSON-ready dict per job, in verdict (= job) order."""
    tracks = {t.job_key: t for t in job_tracks(events)}
    out = []
    for v in verdicts:
        d: dict[str, Any] = {
            "key": v.job_key,
            "kind": v.kind,
            "id": v.job_id,
            "verdict": v.verdict,
            "ok": v.ok,
            "duration_s": _compact(v.duration),
            "reason": v.reason,
        }
        track = tracks.get(v.job_key)
        if track is not None and track.last_state:
            last: Mapping[str, Any] = track.last_state
            d["last"] = {k: last[k] for k in _STATE_FIELDS if last.get(k) not in (None, "")}
        out.append(d)
    redacted: list[dict[str, Any]] = redact_obj(out)
    return redacted


def fault_counts(events: Sequence[Event]) -> tuple[int, int]:
    """``(applied, planned)`` fault windows: the nemesis' summary when it wrote one, else
    the windows the fault events show (a hand-made timeline)."""
    summaries = [e.data for e in events if e.kind == NEMESIS_SUMMARY]
    if summaries:
        return (sum(int(str(s.get("applied", 0))) for s in summaries),
                sum(int(str(s.get("planned", 0))) for s in summaries))
    planned = {e.data.get("fault_id") for e in events if e.kind in (FAULT_INJECT, FAULT_ERROR)}
    applied = {e.data.get("fault_id") for e in events if e.kind == FAULT_APPLIED}
    return len(applied), len(planned | applied)


def fault_text(events: Sequence[Event]) -> str:
    applied, planned = fault_counts(events)
    return f"{applied}/{planned}"


def properties(verdicts: Sequence[Verdict], events: Sequence[Event],
               artifacts: Path | None, seed: int | None = None) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs for one testcase, values already strings."""
    props = [
        ("ha_verdict", ",".join(v.verdict for v in verdicts)),
        ("ha_jobs", json.dumps(job_details(verdicts, events), separators=(",", ":"),
                               ensure_ascii=False, default=str)),
        ("ha_faults", fault_text(events)),
    ]
    if artifacts is not None:
        props.append(("ha_artifacts", str(artifacts)))
    drivers = [str(e.data.get("driver")) for e in events
               if e.kind == "workload.start" and e.data.get("driver")]
    if drivers:
        props.append(("ha_workload_driver", ",".join(dict.fromkeys(drivers))))
    seed = next((e.data["seed"] for e in events if e.kind == NEMESIS_START
                 and e.data.get("seed") is not None), seed)
    if seed is not None:
        props.append(("ha_seed", str(seed)))
    return [(k, redact(val)) for k, val in props]
