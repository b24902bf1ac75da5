"""The per-test record fixture: one Timeline and one artifacts folder per test.

Every layer writes into ``ha_record.timeline``; the report hooks read the
record from ``item.stash[HA_RECORD_KEY]`` after the test.

The fixture also

* follows the timeline with :class:`~pytest_tidb_ha.report.progress.TimelineProgress`:
  the workload heartbeat (once per case minute) at INFO, an echo of fault and
  job events at DEBUG (the nemesis and the job watcher log those at INFO);
* writes the artifacts (``timeline.json``, ``verdicts.json``, ``timeline.svg``,
  ``report.html``) at the end of its teardown — other fixtures that depend on
  it (cluster, jobs, diagnostics) are torn down first, so everything is in the
  record by then. The keep policy is applied later by the report hooks, once
  the teardown outcome is known.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .record import HARecord
from .report.artifacts import TestOutcome, clear_stale, overall_outcome, write_artifacts
from .report.progress import TimelineProgress
from .stash import ATTEMPT_KEY, CASE_KEY, FAILURES_KEY, HA_RECORD_KEY, OUTCOMES_KEY, ha_options
from .timeline import Timeline

LOG = logging.getLogger("pytest_tidb_ha.report")

def sanitise_nodeid(nodeid: str) -> str:
    """A folder name for a node id: readable, no path separators, bounded length.

    Long ids (parametrized cases) are cut and get a short hash of the full id, so
    two tests never share — and never clear — one folder.
    """
    name = re.sub(r"[^A-Za-z0-9._()=-]+", "_", nodeid).strip("_")
    if len(name) > 150:
        digest = hashlib.sha1(nodeid.encode("utf-8"), usedforsecurity=False).hexdigest()[:10]
        name = f"{name[:139]}-{digest}"
    return name or "test"


def attempt_folder(root: Path, nodeid: str, attempt: int) -> Path:
    """The artifacts folder of one attempt: ``<test>``, then ``<test>-retry1``, ...

    A rerun (pytest-rerunfailures) gets its own folder, so the failed attempt's
    diagnostics survive the retry and the summary can name both.
    """
    name = sanitise_nodeid(nodeid)
    return root / (name if attempt <= 1 else f"{name}-retry{attempt - 1}")


def clear_earlier_runs(root: Path, nodeid: str) -> None:
    """At a test's first attempt: remove what earlier runs left for it (every attempt)."""
    first = attempt_folder(root, nodeid, 1)
    clear_stale(first, root)
    if root.is_dir():
        for folder in root.glob(f"{glob.escape(first.name)}-retry*"):
            if folder.name[len(first.name) + len("-retry"):].isdigit():
                clear_stale(folder, root)


@pytest.fixture
def ha_record(request: pytest.FixtureRequest) -> Iterator[HARecord]:
    """The shared history and artifacts folder of this test."""
    opts = ha_options(request.config)
    node = request.node
    attempt = node.stash[ATTEMPT_KEY] = node.stash.get(ATTEMPT_KEY, 0) + 1
    record = HARecord(
        nodeid=node.nodeid,
        timeline=Timeline(),
        artifacts_dir=attempt_folder(opts.artifacts, node.nodeid, attempt),
    )
    case = node.stash.get(CASE_KEY, None)
    if case is not None:
        record.case_id = case.id
    if attempt == 1:
        clear_earlier_runs(opts.artifacts, node.nodeid)
    # faults and jobs log their own lines at INFO; echo them at DEBUG only
    record.timeline.subscribe(TimelineProgress(time_scale=opts.time_scale,
                                               layer_level=logging.DEBUG))
    node.stash[HA_RECORD_KEY] = record
    yield record

    outcomes = node.stash.get(OUTCOMES_KEY, {})
    failures = node.stash.get(FAILURES_KEY, {})
    outcome = TestOutcome(overall_outcome(outcomes),
                          failures.get("call") or failures.get("setup") or "")
    try:
        write_artifacts(record, outcome, time_scale=opts.time_scale)
    except Exception as exc:  # the test's own result matters more than its report
        LOG.warning("could not write the artifacts of %s: %s", node.nodeid, exc, exc_info=True)
        record.notes.append(f"artifacts not written: {type(exc).__name__}: {exc}")
