"""``--ha-stop-at-first-bad-run``: a job entry's runs end at its first verdict that is not ok.

A bug reproduction (tests/integration/test_seeds_standin.py's #48546) needs only the run
that shows the bug; without the option every ``times:`` run is submitted, as QA's harness
does. Against fakes: the submit and the wait are scripted, the runner's loop is real.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_tidb_ha import runner
from pytest_tidb_ha.options import HAOptions, resolve_options
from pytest_tidb_ha.record import HARecord
from pytest_tidb_ha.runner import CaseRun
from pytest_tidb_ha.scenario.loader import load_text
from pytest_tidb_ha.scenario.model import AddIndexJob
from pytest_tidb_ha.timeline import Timeline
from pytest_tidb_ha.verdicts import CONVERGED, FAILED_UNEXPECTED, Verdict, VerdictName

CASE = """\
cases:
  - name: c
    ddl:
      addIndex:
        - db: "d"
          table: "t"
          times: 4
          timeout: 10m
          index_col_name: "c"
"""


class Cluster:
    def client(self, **kw: Any) -> Any:
        return SimpleNamespace()


def run_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verdicts: list[VerdictName],
             options: HAOptions) -> tuple[list[int], HARecord]:
    """The runs the runner submits when run *n* gets ``verdicts[n-1]``."""
    (case,) = load_text(CASE, "c.yaml") or ()
    (spec,) = case.jobs
    assert isinstance(spec, AddIndexJob)
    record = HARecord(nodeid="t", timeline=Timeline(), artifacts_dir=tmp_path)
    run = CaseRun(case, Cluster(), record, options)
    submitted: list[int] = []

    def submit(client: Any, spec: Any, n: int, timeline: Any, **kw: Any) -> Any:
        submitted.append(n)
        return SimpleNamespace(n=n, verdict=None, target=SimpleNamespace(index_name=""))

    def wait(h: Any) -> Verdict:
        name = verdicts[h.n - 1]
        v = Verdict(f"add_index#{h.n}", "add_index", h.n, name, "scripted", ok=name == CONVERGED)
        h.verdict = v
        return v

    monkeypatch.setattr(runner, "submit_add_index", submit)
    monkeypatch.setattr(run.session, "watch", lambda h: None)
    monkeypatch.setattr(run.session, "policy_of", lambda spec: None)
    monkeypatch.setattr(run, "_wait", wait)
    run.add_index_runs(spec)
    return submitted, record


def test_every_run_is_submitted_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad: list[VerdictName] = [FAILED_UNEXPECTED, CONVERGED, FAILED_UNEXPECTED, CONVERGED]
    submitted, record = run_with(tmp_path, monkeypatch, bad, HAOptions())
    assert submitted == [1, 2, 3, 4]
    assert record.notes == []


def test_runs_end_at_the_first_bad_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    verdicts: list[VerdictName] = [CONVERGED, FAILED_UNEXPECTED, CONVERGED, CONVERGED]
    opts = resolve_options({}, {"PYTEST_TIDB_HA_STOP_AT_FIRST_BAD_RUN": "on"}, {})
    assert opts.stop_at_first_bad_run
    submitted, record = run_with(tmp_path, monkeypatch, verdicts, opts)
    assert submitted == [1, 2]
    assert len(record.notes) == 1
    assert "d.t: no runs after the first verdict that is not ok" in record.notes[0]


def test_good_runs_all_run_with_the_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opts = HAOptions(stop_at_first_bad_run=True)
    submitted, record = run_with(tmp_path, monkeypatch, [CONVERGED] * 4, opts)
    assert submitted == [1, 2, 3, 4]
    assert record.notes == []
