"""The per-test artifacts folder: what happened, in files a colleague can open.

``<--ha-artifacts>/<sanitised node id>/`` holds

* ``timeline.json`` — every event (fault inject/applied/healed with targets and
  resolved roles, job state changes, workload metrics, verdicts), redacted;
* ``verdicts.json`` — the verdicts with their evidence, the test outcome;
* ``timeline.svg`` and ``report.html`` (the picture inline plus the verdict table);
* the diagnostics bundle, written into the same folder by ``jobs.diagnostics``.

Files are written at the end of the ``ha_record`` fixture; the keep policy
(``--ha-artifacts-keep=failed|all``) is applied once the teardown report is
known, so a teardown error keeps the folder too. Removal is confined to the
artifacts root: a bad path never makes us delete anything else.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..record import HARecord
from ..redact import redact, redact_obj
from .html import render_html
from .picture import render

LOG = logging.getLogger("pytest_tidb_ha.report")

TIMELINE_JSON = "timeline.json"
VERDICTS_JSON = "verdicts.json"
TIMELINE_SVG = "timeline.svg"
REPORT_HTML = "report.html"
KEEP_POLICIES = ("failed", "all")


@dataclass(frozen=True)
class TestOutcome:
    """What the report knows of a test's result when it writes the folder."""

    __test__ = False  # not a pytest test class

    outcome: str  # passed | failed | skipped | error
    failure: str = ""  # one line: the exception of the failing phase, redacted


def _dump(data: Any) -> str:
    text = json.dumps(redact_obj(data), indent=1, ensure_ascii=False, default=str)
    return redact(text) + "\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_artifacts(record: HARecord, outcome: TestOutcome, *, time_scale: float = 1.0,
                    title: str | None = None) -> list[Path]:
    """Write the record's files into ``record.artifacts_dir``; returns what was written."""
    folder = record.artifacts_dir
    folder.mkdir(parents=True, exist_ok=True)
    events = record.timeline.events()
    end = record.timeline.now()
    title = title or record.case_id or record.nodeid
    written = [
        _write(folder / TIMELINE_JSON, _dump({
            "nodeid": record.nodeid, "case_id": record.case_id, "cluster": record.cluster,
            "t0_wall": events[0].wall - events[0].t if events else None,
            "t_end": round(end, 3), "time_scale": time_scale,
            "events": record.timeline.to_json(),
        })),
        _write(folder / VERDICTS_JSON, _dump({
            "nodeid": record.nodeid, "case_id": record.case_id, "outcome": outcome.outcome,
            "failure": outcome.failure, "ok": record.ok,
            "verdicts": [v.to_json() for v in record.verdicts], "notes": record.notes,
        })),
    ]
    svg = render(events, verdicts=record.verdicts, title=title, time_scale=time_scale,
                 end=end, cluster=record.cluster or "")
    written.append(_write(folder / TIMELINE_SVG, svg))
    others = sorted(p.name for p in folder.iterdir()
                    if p.name not in (REPORT_HTML,))
    written.append(_write(folder / REPORT_HTML, render_html(
        title=title, nodeid=record.nodeid, case_id=record.case_id, outcome=outcome.outcome,
        verdicts=record.verdicts, events=events, svg=svg, failure=outcome.failure,
        notes=record.notes, files=others)))
    return written


def overall_outcome(outcomes: Mapping[str, str]) -> str:
    """One word for a test from its phase outcomes (``setup``/``call``/``teardown``);
    ``rerun`` for an attempt pytest-rerunfailures retried."""
    if "rerun" in outcomes.values():
        return "rerun"
    if outcomes.get("setup") == "failed" or outcomes.get("teardown") == "failed":
        return "error"
    if outcomes.get("call") == "failed":
        return "failed"
    if "skipped" in outcomes.values():
        return "skipped"
    return "passed"


def clear_stale(folder: Path, root: Path) -> None:
    """Remove a folder left by an earlier run of the same test (inside *root* only),
    so old diagnostics never mix with this run's."""
    if folder.exists() and _inside(folder, root):
        shutil.rmtree(folder, ignore_errors=True)


def should_keep(policy: str, failed: bool) -> bool:
    """``all`` keeps every folder; ``failed`` (default) only those of failed tests."""
    if policy not in KEEP_POLICIES:
        raise ValueError(f"--ha-artifacts-keep must be one of {KEEP_POLICIES}, not {policy!r}")
    return policy == "all" or failed


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return path.resolve() != root.resolve()


def apply_keep_policy(folder: Path, root: Path, policy: str, failed: bool) -> Path | None:
    """Remove *folder* unless the policy keeps it; returns the folder when kept.

    Only a folder strictly inside *root* is ever removed (``rmtree`` of a path
    that escaped the artifacts root would be a disaster, so it is refused).
    """
    if not folder.exists():
        return None
    if should_keep(policy, failed):
        return folder
    if not _inside(folder, root):
        LOG.warning("not removing %s: outside the artifacts root %s", folder, root)
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    return None


def folder_files(folder: Path | None) -> Sequence[Path]:
    if folder is None or not folder.exists():
        return ()
    return sorted(p for p in folder.rglob("*") if p.is_file())
