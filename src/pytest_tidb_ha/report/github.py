"""Markdown summary for GitHub Actions (``$GITHUB_STEP_SUMMARY``).

A PR author looks at the job summary page, not the raw log; one table there
(case, job, verdict, duration, reason) answers "what broke" without downloading
artifacts. Rendering is pure; only :func:`append_step_summary` touches a file,
and only when the variable is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..redact import redact
from .summary import CaseSummary, format_duration, job_label

_ICON = {"converged": "✅", "failed-sensible": "🟡", "failed-unexpected": "❌",
         "stuck": "⏳", "timed-out": "⌛", "cancel-ineffective": "⛔"}


def _cell(text: str) -> str:
    """Table-safe: one line, no pipe breaking the columns."""
    return " ".join(text.split()).replace("|", "\\|")


def markdown_summary(tests: Sequence[CaseSummary], header: str = "") -> str:
    """A Markdown section; empty string when there is nothing to say."""
    if not tests:
        return ""
    lines = ["## tidb-ha verdicts", ""]
    if header:
        lines += [f"`{_cell(header)}`", ""]
    lines += ["| case | job | verdict | duration | reason | artifacts |",
              "|---|---|---|---|---|---|"]
    for t in tests:
        art = f"`{t.artifacts}`" if t.artifacts is not None else ""
        if not t.verdicts:
            lines.append(f"| {_cell(t.name)} | (no jobs) | {t.outcome} | - |  | {art} |")
        for v in t.verdicts:
            icon = _ICON.get(v.verdict, "")
            lines.append(
                f"| {_cell(t.name)} | {_cell(job_label(v))} | {icon} {v.verdict} | "
                f"{format_duration(v.duration)} | {_cell(v.reason)} | {art} |")
    return redact("\n".join(lines) + "\n")


def append_step_summary(text: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append *text* to ``$GITHUB_STEP_SUMMARY`` when set; returns the file written."""
    env = os.environ if env is None else env
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target or not text:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(redact(text))
    return path
