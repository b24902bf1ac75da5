"""The report's pytest hooks, as one plugin object ``plugin.py`` registers.

``plugin.py`` (pytest glue) does, in ``pytest_configure``::

    config.pluginmanager.register(ReportHooks(config), "tidb-ha-report")

Per test, in order:

1. ``pytest_runtest_makereport`` (wrapper) keeps each phase's outcome in
   ``item.stash[OUTCOMES_KEY]`` — the ``ha_record`` fixture reads the call
   outcome there when it writes the artifacts at the end of its teardown;
2. at the teardown report (all fixtures torn down, diagnostics written) it
   applies ``--ha-artifacts-keep`` knowing the *whole* outcome, adds the JUnit
   properties to the report's ``user_properties`` (what ``junitxml`` writes,
   for every ``junit_family``; ``record_property`` would warn under xunit2),
   and the pytest-html extras when that plugin is active;
3. ``pytest_runtest_logreport`` collects the per-test summary where the terminal
   is (under pytest-xdist it is rebuilt from the properties the workers sent);
4. ``pytest_terminal_summary`` prints the ``tidb-ha verdicts`` section and
   appends the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when set — in the
   process that owns the terminal only (never in an xdist worker), so the run
   has one complete table.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from ..parallel import is_xdist_worker
from ..record import HARecord
from ..redact import redact
from ..stash import FAILURES_KEY, HA_RECORD_KEY, OUTCOMES_KEY, ha_options
from . import github, junit
from .artifacts import REPORT_HTML, TIMELINE_SVG, apply_keep_policy, overall_outcome
from .summary import (
    SECTION_TITLE,
    CaseSummary,
    header_lines,
    summary_from_properties,
    summary_lines,
)

LOG = logging.getLogger("pytest_tidb_ha.report")


def _failure_line(report: pytest.TestReport) -> str:
    """The first ``E`` line of a failure (the exception), redacted, for report.html."""
    text = report.longreprtext or ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("E ")]
    line = lines[0][1:].strip() if lines else (text.strip().splitlines() or [""])[-1]
    return redact(line)[:500]


class ReportHooks:
    """Plugin object: header, per-test properties/artifacts policy, terminal summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.tests: list[CaseSummary] = []  # in report order, for the terminal summary
        self._local: dict[str, CaseSummary] = {}  # built in this process (full detail)
        self._phases: dict[str, dict[str, str]] = {}

    # -- header ----------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return header_lines(ha_options(config), list(config.invocation_params.args))

    # -- per test ----------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "setup":  # a new attempt (pytest-rerunfailures) starts afresh
            item.stash[OUTCOMES_KEY] = {}
            item.stash[FAILURES_KEY] = {}
        outcomes = item.stash.setdefault(OUTCOMES_KEY, {})
        outcomes[report.when] = report.outcome
        if report.failed:
            item.stash.setdefault(FAILURES_KEY, {})[report.when] = _failure_line(report)
        if report.when == "teardown":
            record = item.stash.get(HA_RECORD_KEY, None)
            if record is not None:
                try:
                    self._finish(item, report, record, outcomes)
                except Exception:  # a report problem must not hide the test's result
                    LOG.exception("tidb-ha report for %s failed", item.nodeid)
        return report

    def _finish(self, item: pytest.Item, report: pytest.TestReport, record: HARecord,
                outcomes: dict[str, str]) -> None:
        opts = ha_options(item.config)
        outcome = overall_outcome(outcomes)
        failed = outcome in ("failed", "error") or not record.ok
        kept = apply_keep_policy(record.artifacts_dir, opts.artifacts, opts.artifacts_keep,
                                 failed)
        props = junit.properties(record.verdicts, record.timeline.events(), kept, opts.seed)
        # junitxml reads the teardown report's copy; the item's list serves
        # other reporters that look there.
        report.user_properties.extend(props)
        item.user_properties.extend(props)
        self._local[report.nodeid] = CaseSummary(
            nodeid=record.nodeid, case_id=record.case_id, verdicts=tuple(record.verdicts),
            outcome=outcome, artifacts=kept, notes=tuple(record.notes),
            faults=dict(props).get("ha_faults"))
        if item.config.pluginmanager.getplugin("html") is not None:
            self._html_extras(report, record, kept)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect the summary where the terminal is: locally the record's own data,
        under pytest-xdist (reports from workers) the JUnit properties they carry."""
        self._phases.setdefault(report.nodeid, {})[report.when] = report.outcome
        if report.when != "teardown":
            return
        outcome = overall_outcome(self._phases.pop(report.nodeid, {}))
        summary = self._local.pop(report.nodeid, None) or summary_from_properties(
            report.nodeid, report.user_properties, outcome)
        if summary is None:
            return
        if outcome == "rerun":  # known only now: rerunfailures relabels after makereport
            summary = dataclasses.replace(summary, outcome=outcome, notes=(
                *summary.notes, "rerun: this attempt failed and was run again"))
        self.tests.append(summary)

    @staticmethod
    def _html_extras(report: pytest.TestReport, record: HARecord, kept: Path | None) -> None:
        """pytest-html (v4 reads ``report.extras``): the picture and the reasons."""
        try:
            from pytest_html import extras
        except ImportError:
            return
        items: list[Any] = list(getattr(report, "extras", []) or [])
        reasons = "; ".join(f"{v.job_key}: {v.verdict} — {v.reason}" for v in record.verdicts)
        if reasons:
            items.append(extras.text(redact(reasons), name="tidb-ha verdicts"))
        if kept is not None and (kept / TIMELINE_SVG).exists():
            svg = (kept / TIMELINE_SVG).read_text(encoding="utf-8")
            items.append(extras.html(f'<div style="overflow-x:auto">{redact(svg)}</div>'))
            items.append(extras.url(str(kept / REPORT_HTML), name="tidb-ha report"))
        report.extras = items  # type: ignore[attr-defined]

    # -- end of session ---------------------------------------------------------------
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int,
                                config: pytest.Config) -> None:
        if not self.tests or is_xdist_worker(config):
            return  # an xdist worker's output is the controller's to write, once
        opts = ha_options(config)
        terminalreporter.write_sep("=", SECTION_TITLE)
        for line in summary_lines(self.tests, opts.artifacts, opts.artifacts_keep):
            terminalreporter.write_line(line)
        header = header_lines(opts, list(config.invocation_params.args))[0]
        try:
            github.append_step_summary(github.markdown_summary(self.tests, header))
        except OSError as exc:
            terminalreporter.write_line(f"tidb-ha: could not write $GITHUB_STEP_SUMMARY: {exc}")
