"""``judge`` on recorded state sequences: one test per verdict rule (no Docker)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_tidb_ha.jobs.catalog import ErrorInfo
from pytest_tidb_ha.jobs.model import CancelProbe, CheckResult, Observation
from pytest_tidb_ha.jobs.verdict import cancel_ineffective, cancel_taken_back, judge, last_progress
from pytest_tidb_ha.scenario.model import (
    Case,
    Duration,
    Expectation,
    FaultSpec,
    Schedule,
)
from pytest_tidb_ha.scenario.timing import default_stall_window, poll_interval, stall_window
from pytest_tidb_ha.timeline import FaultWindow
from pytest_tidb_ha.verdicts import (
    CANCEL_INEFFECTIVE,
    CONVERGED,
    FAILED_SENSIBLE,
    FAILED_UNEXPECTED,
    STUCK,
    TIMED_OUT,
    Verdict,
)


def obs(t: float, state: str, **kw: Any) -> Observation:
    kw.setdefault("job_id", 475)
    kw.setdefault("job_type", "add index /* ingest */")
    return Observation(t=t, state=state, **kw)


def window(start: float, end: float | None) -> FaultWindow:
    return FaultWindow(f"f{start}", "network_partition", start, end, {})


def run(observations: list[Observation], now: float, *, kind: str = "add_index",
        windows: tuple[FaultWindow, ...] = (), **kw: Any) -> Verdict | None:
    kw.setdefault("stall_window", 10.0)
    kw.setdefault("timeout", 1000.0)
    return judge(job_key="add_index#1", kind=kind, observations=observations,
                 fault_windows=list(windows), now=now, started_at=0.0, **kw)


def running(t0: float, t1: float, step: float = 1.0, rows: bool = True) -> list[Observation]:
    out = []
    t = t0
    while t <= t1 + 1e-9:
        out.append(obs(t, "running", schema_state="write reorganization",
                       row_count=int(t) if rows else 100))
        t += step
    return out


# -- converged -----------------------------------------------------------------
def test_synced_converges_with_checks() -> None:
    seq = [*running(0, 5), obs(6, "synced", schema_state="public", row_count=6)]
    v = run(seq, 6.0, checks=[CheckResult("admin_check", True, "ADMIN CHECK TABLE ok")])
    assert v is not None
    assert v.verdict == CONVERGED
    assert v.ok
    assert "admin_check" in v.reason
    assert v.job_id == 475


def test_done_is_not_terminal_yet() -> None:
    seq = [*running(0, 5), obs(6, "done", schema_state="public")]
    assert run(seq, 6.5) is None


def test_import_finished_converges() -> None:
    seq = [obs(0, "running", import_status="running", import_step="importing", imported_rows=0,
               job_type="import into"),
           obs(2, "finished", import_status="finished", import_step="", imported_rows=100,
               job_type="import into")]
    v = run(seq, 2.0, kind="import_into", checks=[CheckResult("row_count", True, "100 == 100")])
    assert v is not None
    assert v.verdict == CONVERGED


def test_failed_check_is_unexpected() -> None:
    seq = [obs(0, "running"), obs(3, "synced", schema_state="public")]
    v = run(seq, 3.0, checks=[CheckResult("count_check", False,
                                          "index count 9 != table count 10", 8133)])
    assert v is not None
    assert v.verdict == FAILED_UNEXPECTED
    assert not v.ok
    assert "index count 9 != table count 10" in v.reason


def test_import_row_mismatch_is_unexpected() -> None:
    seq = [obs(3, "finished", import_status="finished", imported_rows=0, job_type="import into")]
    v = run(seq, 3.0, kind="import_into",
            checks=[CheckResult("row_count", False, "table has 0 rows, source has 100")])
    assert v is not None
    assert v.verdict == FAILED_UNEXPECTED


# -- DXF invariant -------------------------------------------------------------------
def test_terminal_job_with_running_task_waits_a_stall_window_then_fails() -> None:
    seq = [obs(0, "running", task_state="running"),
           obs(5, "synced", schema_state="public", task_state="running")]
    assert run(seq, 14.9, terminal_grace=2.0) is None
    v = run([*seq, obs(15, "synced", schema_state="public", task_state="running")], 15.0,
            terminal_grace=2.0)
    assert v is not None
    assert v.verdict == FAILED_UNEXPECTED
    assert "DXF task is still running" in v.reason
    assert "window 10.0s" in v.reason


def test_a_task_behind_a_terminal_job_is_not_judged_while_a_fault_is_open() -> None:
    """The window counts fault-free time, as the stall rule does: a fault on the owner
    delays the scheduler that ends the task."""
    seq = [obs(0, "running", task_state="running"),
           obs(5, "synced", schema_state="public", task_state="running")]
    faults = (window(6.0, 20.0),)
    assert run(seq, 28.9, windows=faults, terminal_grace=2.0) is None
    v = run(seq, 29.0, windows=faults, terminal_grace=2.0)
    assert v is not None
    assert v.verdict == FAILED_UNEXPECTED
    assert "10.0s of fault-free time" in v.reason


def test_an_owner_failover_between_ending_the_job_and_its_task_converges() -> None:
    """TiDB ends an import job (OnDone: finishJob) and then its task (SucceedTask) in two
    transactions on the DDL owner; an owner lost in between leaves the task running until
    the next owner's scheduler, one session TTL later. The PR gate's smoke cell met this on
    the stand-in (TTL 2 s at scale 0.1): the task ended 1.7 s after the job, past the
    1.5 s grace, and the cell was judged failed-unexpected."""
    imp = {"kind": "import_into"}
    seq = [obs(30, "running", import_status="running", import_step="validating",
               task_state="running", job_type="import into"),
           obs(35, "finished", import_status="finished", task_state="running",
               job_type="import into")]
    assert run(seq, 36.7, stall_window=5.0, terminal_grace=1.5, **imp) is None
    seq.append(obs(37.5, "finished", import_status="finished", task_state="succeed",
                   job_type="import into"))
    v = run(seq, 37.5, stall_window=5.0, terminal_grace=1.5, **imp)
    assert v is not None
    assert v.verdict == CONVERGED


def test_a_grace_longer_than_the_stall_window_still_holds() -> None:
    seq = [obs(5, "synced", schema_state="public", task_state="running")]
    assert run(seq, 7.5, stall_window=1.0, terminal_grace=3.0) is None
    v = run(seq, 8.0, stall_window=1.0, terminal_grace=3.0)
    assert v is not None
    assert v.verdict == FAILED_UNEXPECTED


def test_terminal_job_with_finished_task_converges() -> None:
    seq = [obs(0, "running", task_state="running"),
           obs(5, "synced", schema_state="public", task_state="succeed")]
    v = run(seq, 5.0, terminal_grace=2.0)
    assert v is not None
    assert v.verdict == CONVERGED


# -- failures ----------------------------------------------------------------------
def test_48546_mutex_session_expired_is_unexpected() -> None:
    seq = [*running(0, 3), obs(4, "rollingback"), obs(5, "rollback done", schema_state="none")]
    v = run(seq, 5.0, client_error=ErrorInfo(1105, "mutex: session is expired"),
            windows=(window(1, 4),))
    assert v is not None
    assert v.verdict == FAILED_UNEXPECTED
    assert not v.ok
    assert "mutex: session is expired" in v.reason
    assert v.evidence["error"] == "Error 1105: mutex: session is expired"


def test_sensible_failure_ok_only_when_allowed() -> None:
    seq = [obs(0, "running"), obs(5, "rollback done")]
    err = ErrorInfo(9005, "Region is unavailable")
    v = run(seq, 5.0, client_error=err)
    assert v is not None
    assert v.verdict == FAILED_SENSIBLE
    assert v.ok
    v = run(seq, 5.0, client_error=err, expectation=Expectation(outcome="success"))
    assert v is not None
    assert v.verdict == FAILED_SENSIBLE
    assert not v.ok


def test_case_allow_errors_apply() -> None:
    seq = [obs(0, "running"), obs(5, "rollback done")]
    err = ErrorInfo(1105, "mutex: session is expired")
    v = run(seq, 5.0, client_error=err,
            expectation=Expectation(allow_errors=("session is expired",)))
    assert v is not None
    assert v.verdict == FAILED_SENSIBLE


def test_job_error_used_when_client_only_lost_its_connection() -> None:
    seq = [obs(0, "running", job_type="import into"),
           obs(5, "failed", import_status="failed", import_step="importing",
               error="Error 9005: Region is unavailable", job_type="import into")]
    v = run(seq, 5.0, kind="import_into", client_error=ErrorInfo(2013, "Lost connection"))
    assert v is not None
    assert v.verdict == FAILED_SENSIBLE
    assert "Region is unavailable" in v.reason


def test_failure_without_any_error_is_unexpected() -> None:
    v = run([obs(0, "running"), obs(3, "rollback done")], 3.0)
    assert v is not None
    assert v.verdict == FAILED_UNEXPECTED


def test_statement_error_before_job_exists() -> None:
    v = run([], 1.0, client_error=ErrorInfo(8200, "Unsupported dist task"))
    assert v is not None
    assert v.verdict == FAILED_UNEXPECTED
    assert v.job_id is None


def test_connection_error_before_job_exists_keeps_watching() -> None:
    assert run([], 1.0, client_error=ErrorInfo(2013, "Lost connection")) is None


def test_cancelled_by_test_is_sensible_and_ok_even_when_success_expected() -> None:
    seq = [obs(0, "running"), obs(4, "cancelling"), obs(5, "rollback done")]
    probe = CancelProbe(issued_at=3.5, accepted=True, result="successful", window=5.0)
    v = run(seq, 5.0, client_error=ErrorInfo(8214, "Cancelled DDL job"), cancel=probe,
            expectation=Expectation(outcome="success"))
    assert v is not None
    assert v.verdict == FAILED_SENSIBLE
    assert v.ok


def test_cancelled_not_by_test_is_unexpected() -> None:
    v = run([obs(0, "running"), obs(5, "cancelled")], 5.0,
            client_error=ErrorInfo(8214, "Cancelled DDL job"))
    assert v is not None
    assert v.verdict == FAILED_UNEXPECTED


# -- stuck ----------------------------------------------------------------------------
def test_progressing_job_is_not_stuck() -> None:
    assert run(running(0, 50), 50.0) is None


def test_stuck_after_stall_window_of_fault_free_time() -> None:
    seq = running(0, 5) + running(6, 20, rows=False)  # row_count frozen from t=6
    assert last_progress(seq, 0.0) == 6.0
    assert run(seq[:-5], 15.0) is None  # 9 s < 10 s
    v = run(seq, 16.0)
    assert v is not None
    assert v.verdict == STUCK
    assert not v.ok
    assert "no progress for 10.0s of fault-free time since t=6.0s" in v.reason
    assert "jobId" not in v.reason
    assert "job 475 (add index /* ingest */)" in v.reason


def test_fault_time_does_not_count_towards_the_stall() -> None:
    seq = running(0, 5) + running(6, 30, rows=False)
    # a partition 8..20 covers 12 s of the 24 s silence: only 12 s fault-free
    assert run(seq, 30.0, windows=(window(8, 20),), stall_window=15.0) is None
    v = run(seq, 33.0, windows=(window(8, 20),), stall_window=15.0)
    assert v is not None
    assert v.verdict == STUCK
    assert v.evidence["fault_free_since_progress"] == pytest.approx(15.0)


def test_open_fault_window_stops_the_clock() -> None:
    seq = running(0, 5) + running(6, 100, rows=False)
    assert run(seq, 100.0, windows=(window(10, None),)) is None


def test_healthy_gaps_between_windows_add_up() -> None:
    # periodic fault 10..14, 18..22, 26..30; silence from 6; gaps 6-10,14-18,22-26 = 12 s
    seq = running(0, 5) + running(6, 26, rows=False)
    wins = (window(10, 14), window(18, 22), window(26, 30))
    v = run(seq, 26.0, windows=wins)
    assert v is not None
    assert v.verdict == STUCK


def test_any_observed_field_is_progress() -> None:
    base = running(0, 5)
    later = [obs(6 + i, "running", schema_state="write reorganization", row_count=5,
                 task_state="running", subtasks={"running": 1, "succeed": i})
             for i in range(20)]
    assert run(base + later, 26.0) is None  # subtask counts keep changing


def test_progressing_at_the_deadline_is_timed_out_with_rate_and_estimate() -> None:
    v = run(running(0, 50), 50.0, timeout=50.0, total_rows=150)
    assert v is not None
    assert v.verdict == TIMED_OUT
    assert not v.ok
    assert v.evidence["rule"] == "timeout while progressing"
    assert v.evidence["rate_per_s"] == pytest.approx(1.0)
    assert v.evidence["needed_s"] == pytest.approx(100.0)
    assert "still progressing" in v.reason
    assert "1.0 rows/s" in v.reason
    assert "about 1m40s more" in v.reason


def test_progressing_at_the_deadline_without_a_known_total_says_so() -> None:
    v = run(running(0, 50), 50.0, timeout=50.0)
    assert v is not None
    assert v.verdict == TIMED_OUT
    assert "total unknown" in v.reason
    assert "needed_s" not in v.evidence


def test_no_progress_at_the_deadline_is_stuck() -> None:
    # the stall window is longer than the timeout: only the deadline can end it
    v = run(running(0, 50, rows=False), 50.0, timeout=50.0, stall_window=100.0)
    assert v is not None
    assert v.verdict == STUCK
    assert v.evidence["rule"] == "timeout"


def test_46735_import_stuck_running_importing() -> None:
    seq = [obs(t, "running", import_status="running", import_step="importing",
               imported_rows=None, job_type="import into", task_state="running",
               subtasks={"running": 1}) for t in range(0, 30)]
    v = run(seq, 29.0, kind="import_into", windows=(window(2, 3),))
    assert v is not None
    assert v.verdict == STUCK
    assert "status=running, step=importing" in v.reason


def test_queueing_behind_stuck_job_is_judged_after_its_own_window() -> None:
    seq = [obs(0, "queueing", job_id=476, job_type="add index")]
    blocker = "job 475 (add index /* ingest */)"
    assert run(seq, 0.5, blocked_by=blocker) is None
    v = run(seq, 10.5, blocked_by=blocker)
    assert v is not None
    assert v.verdict == STUCK
    assert v.job_id == 476
    assert "queueing behind job 475" in v.reason
    assert "which is stuck" in v.reason
    assert v.evidence["rule"] == "queued behind stuck job"


def test_queueing_behind_stuck_job_at_its_timeout_names_the_blocker() -> None:
    seq = [obs(1.0, "queueing", job_id=476, job_type="add index")]
    v = run(seq, 6.0, blocked_by="job 475", timeout=5.0, stall_window=100.0)
    assert v is not None
    assert v.verdict == STUCK
    assert "behind job 475" in v.reason
    assert v.evidence["rule"] == "queued behind stuck job"


def test_never_seen_job_is_stuck_after_stall_while_its_statement_runs() -> None:
    v = run([], 11.0, statement_pending=True)
    assert v is not None
    assert v.verdict == STUCK
    assert "never seen" in v.reason


def test_ok_statement_without_any_job_row_is_not_success() -> None:
    """An OK from ALTER/IMPORT is no job state: a detached IMPORT's OK only means submitted."""
    assert run([], 5.0, statement_ok=True) is None
    v = run([], 11.0, statement_ok=True)
    assert v is not None
    assert v.verdict == FAILED_UNEXPECTED
    assert not v.ok
    assert "never observed" in v.reason
    assert v.evidence["rule"] == "never observed"


# -- cancel ------------------------------------------------------------------------------
def test_rejected_cancel_is_judged_on_a_fresh_poll_not_on_older_observations() -> None:
    probe = CancelProbe(issued_at=5.0, accepted=False, result="error: [ddl:8226]almost finished",
                        window=3.0, code=8226)
    before = running(0, 5)
    assert run(before, 5.0, cancel=probe) is None  # nothing seen since the cancel yet
    v = run([*before, obs(6.0, "running", schema_state="write reorganization", row_count=6)],
            6.0, cancel=probe)
    assert v is not None
    assert v.verdict == CANCEL_INEFFECTIVE


def test_cancel_answered_8224_for_a_job_that_just_finished_is_not_ineffective() -> None:
    probe = CancelProbe(issued_at=5.0, accepted=False,
                        result="error: [ddl:8224]DDL Job:475 not found", window=3.0, code=8224)
    seq = running(0, 5)
    assert run(seq, 5.5, cancel=probe) is None
    v = run([*seq, obs(6.0, "synced", schema_state="public")], 6.0, cancel=probe)
    assert v is not None
    assert v.verdict == CONVERGED
    assert cancel_ineffective(job_key="k", kind="add_index", job_id=475,
                              observations=[*seq, obs(6.0, "synced")], cancel=probe,
                              now=9.0) is None


def test_cancel_after_ignored_is_cancel_ineffective() -> None:
    probe = CancelProbe(issued_at=5.0, accepted=True, result="successful", window=3.0)
    seq = running(0, 8, rows=True)
    assert run(seq[:7], 7.0, cancel=probe) is None
    v = run(seq, 8.0, cancel=probe)
    assert v is not None
    assert v.verdict == CANCEL_INEFFECTIVE
    assert "after the test cancelled" \
        in v.reason


def test_probe_after_stuck() -> None:
    probe = CancelProbe(issued_at=20.0, accepted=True, result="successful", window=5.0,
                        reason="probe after stuck")
    seq = running(0, 5) + running(6, 26, rows=False)
    assert cancel_ineffective(job_key="k", kind="add_index", job_id=475, observations=seq,
                              cancel=probe, now=24.0) is None
    v = cancel_ineffective(job_key="k", kind="add_index", job_id=475, observations=seq,
                           cancel=probe, now=26.0)
    assert v is not None
    assert v.verdict == CANCEL_INEFFECTIVE
    assert v.job_key == "k/cancel"
    # effective probe: no verdict
    done = [*seq, obs(27, "cancelling"), obs(28, "rollback done")]
    assert cancel_ineffective(job_key="k", kind="add_index", job_id=475, observations=done,
                              cancel=probe, now=40.0) is None


def test_rejected_cancel_is_ineffective_at_once() -> None:
    probe = CancelProbe(issued_at=5.0, accepted=False, result="error: can't cancel",
                        window=30.0, reason="probe after stuck")
    v = cancel_ineffective(job_key="k", kind="add_index", job_id=1,
                           observations=running(0, 6), cancel=probe, now=6.0)
    assert v is not None
    assert v.verdict == CANCEL_INEFFECTIVE


# -- redaction ------------------------------------------------------------------------
def test_reason_is_redacted() -> None:
    seq = [obs(0, "running", job_type="import into"),
           obs(1, "failed", import_status="failed",
               error="open s3://b/x.csv?access-key=AK&secret-access-key=SK failed",
               job_type="import into")]
    v = run(seq, 1.0, kind="import_into")
    assert v is not None
    assert "SK" not in v.reason
    assert "AK" not in v.reason


# -- stall window defaults --------------------------------------------------------
def _case(fault_seconds: float | None, stall: float | None = None) -> Case:
    faults: tuple[FaultSpec, ...] = ()
    if fault_seconds is not None:
        faults = (FaultSpec("network_partition", None,
                            Schedule(Duration(60), Duration(fault_seconds))),)
    exp = Expectation(stall_window=Duration(stall) if stall else None)
    return Case(name="c", warmup=Duration(60), faults=faults, expect=exp)


def test_default_stall_window_rule() -> None:
    assert default_stall_window(_case(None), 1.0) == 60.0
    assert default_stall_window(_case(180), 1.0) == 360.0  # #48303: 3m faults
    assert default_stall_window(_case(180), 0.02) == pytest.approx(7.2)
    assert default_stall_window(_case(10), 0.001) == 5.0  # wall floor
    assert stall_window(_case(180, stall=100), 1.0) == 100.0
    assert poll_interval(1.0) == 2.0
    assert poll_interval(0.001) == 0.25


def test_terminal_failure_waits_for_the_statement_error() -> None:
    seq = [obs(0, "running"), obs(5, "rollback done")]
    assert run(seq, 5.5, statement_pending=True, terminal_grace=2.0) is None
    v = run(seq, 7.5, statement_pending=True, terminal_grace=2.0)
    assert v is not None
    assert v.verdict == FAILED_UNEXPECTED
    v = run(seq, 5.5, statement_pending=False, terminal_grace=2.0,
            client_error=ErrorInfo(1105, "mutex: session is expired"))
    assert v is not None
    assert "mutex: session is expired" in v.reason


# -- a cancel TiDB accepted and then lost (cancel_taken_back) ---------------------------------
ACCEPTED = CancelProbe(issued_at=13.57, accepted=True, result="successful", window=60.0)
#: What real v7.5.0 showed (2026-12-02, realbin, the DDL owner's traffic to the store delayed).
LOST = [obs(6.26, "running", schema_state="write reorganization", row_count=0),
        obs(13.51, "running", schema_state="write reorganization", row_count=960),
        obs(13.76, "cancelling", schema_state="write reorganization", row_count=960),
        obs(19.76, "running", schema_state="write reorganization", row_count=2112),
        obs(89.98, "synced", schema_state="public", row_count=16000)]


def test_a_cancel_seen_then_undone_is_lost() -> None:
    why = cancel_taken_back(LOST, "add_index", ACCEPTED)
    assert why is not None
    assert "cancelling at t=13.8s, then running again at t=19.8s" in why
    assert "row count: 2112" in why


@pytest.mark.parametrize("observed", [
    [*LOST[:3], obs(25.0, "rollingback", schema_state="delete only"),
     obs(30.0, "rollback done", schema_state="none")],  # the cancel took
    [*LOST[:3], obs(20.0, "synced", schema_state="public")],  # the reorg had just finished
    [*LOST[:2], *LOST[3:]],  # never seen cancelling: nothing to say it was lost
])
def test_a_cancel_that_took_or_was_never_seen_is_not_lost(observed: list[Observation]) -> None:
    assert cancel_taken_back(observed, "add_index", ACCEPTED) is None


def test_only_an_accepted_cancel_of_an_add_index_can_be_lost() -> None:
    rejected = CancelProbe(issued_at=13.57, accepted=False, result="error: 8224", window=60.0)
    assert cancel_taken_back(LOST, "add_index", rejected) is None
    assert cancel_taken_back(LOST, "import_into", ACCEPTED) is None


def test_states_before_the_cancel_say_nothing() -> None:
    early = [obs(1.0, "cancelling"), obs(2.0, "running"), *LOST[3:]]
    assert cancel_taken_back(early, "add_index", ACCEPTED) is None


@pytest.mark.parametrize("upto", [4, 5], ids=["still-running", "then-synced"])
def test_a_lost_cancel_is_cancel_ineffective_as_soon_as_it_shows(upto: int) -> None:
    """Decided on the poll that shows ``running`` again: the row no longer says
    cancelling, so TiDB will not roll the job back, whatever it does next."""
    v = run(LOST[:upto], LOST[upto - 1].t, cancel=ACCEPTED, stall_window=60.0)
    assert v is not None
    assert v.verdict == CANCEL_INEFFECTIVE
    assert not v.ok
    assert "the cancel was lost" in v.reason
    assert v.evidence["rule"] == "cancel lost"


def test_the_probe_after_stuck_reports_a_lost_cancel_too() -> None:
    probe = CancelProbe(issued_at=13.57, accepted=True, result="successful", window=60.0,
                        reason="probe after stuck")
    assert run(LOST[:4], 19.76, cancel=probe, stall_window=60.0) is None  # not the job's verdict
    v = cancel_ineffective(job_key="add_index#1", kind="add_index", job_id=121,
                           observations=LOST[:4], cancel=probe, now=19.76)
    assert v is not None
    assert v.verdict == CANCEL_INEFFECTIVE
    assert "the cancel was lost" in v.reason
