"""Differential contract: the plugin's calls against real TiDB/PD and against the stand-in.

One driver (:mod:`realbin_drive`) runs the plugin's own code -- watcher, role discovery,
cancel probe, diagnostics bundle, resigns -- on the real-binary cluster and on a
stand-in cluster playing v7.5.0, recording every SQL statement and HTTP call
(:mod:`realbin_transcript`). Then:

* every statement and HTTP path written in those modules (read from the source, so a
  new one cannot be skipped) was exercised on both sides, and answered alike: column
  names, error codes, HTTP status and JSON shape;
* the facts that decide verdicts agree: job states, JOB_TYPE, cancel answers, the
  statement's error, what real TiDB does with DXF on and fast reorg off.

``test_real_*`` tests pin real TiDB v7.5.0's behaviour (the reference's claims, checked);
``test_standin_*`` tests hold the stand-in to it. A divergence is fixed in the stand-in or
listed in :data:`KNOWN` (and docs/standin.md) with the reason it stays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from realbin_drive import drive
from realbin_transcript import Template, Transcript, inventory, summary

pytestmark = [pytest.mark.realbin, pytest.mark.docker]

#: Rows of the cancel/queue tables: long enough that a cancel lands mid-backfill on
#: each side (checked by the tests, never assumed), and that the queue's first job still
#: runs 2 s after the cancel of the one behind it. 100,000 real rows were too few on a
#: quick machine (2026-12-01: the first job had ended by then); 400,000 left the real
#: cluster's unistore store so loaded that the HA tests after this module, on the same
#: cluster, found no TiDB answering in time.
ROWS = {"real": 150_000, "standin": 4_000}
#: Rows of the watched (and the DXF-on txn) ADD INDEX, which run to the end: real TiDB
#: backfills 2000 in a second; the stand-in at time scale 1 (its schema lease must be
#: TiDB's) takes ~7 s per 1000 at batch size 32, twice.
WATCH_ROWS = {"real": 2_000, "standin": 1_000}
TEMPLATES = inventory()
#: Divergences that stay, by template id: the reason (mirrored in docs/standin.md).
KNOWN: dict[str, str] = {
    "http:/config": "the real cluster's store is unistore, not TiKV: its /config is not TiKV's "
                    "(no raftstore), so there is no real TiKV answer to hold the stand-in's to",
    "http:/pd/api/v1/config": "the stand-in's PD config holds the keys it honours (lease among "
                              "them, read alike); real PD's holds about a hundred more",
}
#: Templates whose stand-in answer another helper is fixing right now (xfail, strict).
FIXING: dict[str, str] = {}


@pytest.fixture(scope="module")
def transcripts(twins: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, Transcript]:
    mp = pytest.MonkeyPatch()
    out: dict[str, Transcript] = {}
    art = Path(tmp_path_factory.mktemp("differential"))
    try:
        for side in ("real", "standin"):
            out[side] = drive(twins[side], side, big_rows=ROWS[side],
                              watch_rows=WATCH_ROWS[side], monkeypatch=mp, artifacts=art)
    finally:
        mp.undo()
    return out


def _param(t: Template) -> Any:
    marks = []
    if t.id in FIXING:
        marks.append(pytest.mark.xfail(strict=True, reason=FIXING[t.id]))
    return pytest.param(t, id=t.id, marks=marks)


def _own_calls(transcript: Transcript, template: Template) -> list[Any]:
    """The calls of *template*; a template with holes leaves out the calls a literal
    template names (``/pd/api/v1/{}`` does not answer for ``/pd/api/v1/config``)."""
    calls = transcript.matching(template)
    if "{}" not in template.text:
        return calls
    literal = [t.pattern for t in TEMPLATES if t.kind == template.kind and "{}" not in t.text]
    return [c for c in calls if not any(p.search(c.key) for p in literal)]


@pytest.mark.parametrize("template", [_param(t) for t in TEMPLATES])
def test_every_call_answers_alike(transcripts: dict[str, Transcript], template: Template) -> None:
    real = _own_calls(transcripts["real"], template)
    stand = _own_calls(transcripts["standin"], template)
    assert real, (
        f"{template.text} ({template.where}) was not exercised (real: {len(real)} calls, "
        f"stand-in: {len(stand)}): extend tests/realbin/realbin_drive.py")
    assert stand, (
        f"{template.text} ({template.where}) was not exercised (real: {len(real)} calls, "
        f"stand-in: {len(stand)}): extend tests/realbin/realbin_drive.py")
    if template.id in KNOWN:
        pytest.skip(f"known divergence: {KNOWN[template.id]}")
    r, s = summary(real), summary(stand)
    if template.kind == "sql":
        assert s["columns"] == r["columns"], f"columns differ: real {r['columns']} / stand-in {s['columns']}"
        assert s["errors"] == r["errors"], f"error codes differ: real {r['errors']} / stand-in {s['errors']}"
        assert s["ok"] == r["ok"]
    else:
        assert s["status"] == r["status"], f"HTTP status differs: real {r['status']} / stand-in {s['status']}"
        missing, extra = r["shape"] - s["shape"], s["shape"] - r["shape"]
        assert not missing, f"JSON shape differs: real only {sorted(missing)}; stand-in only {sorted(extra)}"
        assert not extra, f"JSON shape differs: real only {sorted(missing)}; stand-in only {sorted(extra)}"


def test_inventory_found_the_plugin_calls() -> None:
    """The source reader sees what the issue names (a renamed module must not empty it)."""
    ids = {t.id for t in TEMPLATES}
    # the job lookups are scoped by DB_NAME/TABLE_NAME/JOB_ID (TiDB pushes only those down)
    for expected in ("sql:ADMIN-CANCEL-DDL-JOBS-N", "sql:ADMIN-SHOW-DDL", "http:/info/all",
                     "http:/pd/api/v1/leader",
                     "sql:SELECT-N-FROM-information_schema.ddl_jobs-WHERE-DB_NAME-s-AND-TABLE_NA",
                     "sql:SELECT-FROM-information_schema.ddl_jobs-WHERE-DB_NAME-s-AND-TABLE_NAME",
                     "http:/debug/pprof/goroutine-debug-2", "http:/v3/kv/range",
                     "http:/v3/lease/timetolive", "http:/pd/api/v1/config"):
        assert expected in ids, sorted(ids)


# -- real TiDB v7.5.0: what the reference says, checked --------------------------------------
def facts(transcripts: dict[str, Transcript], side: str) -> dict[str, Any]:
    return transcripts[side].facts


def test_real_txn_add_index_goes_through_the_schema_states(transcripts: dict[str, Transcript]) -> None:
    w = facts(transcripts, "real")["watch"]
    assert w["verdict"] == "converged", w
    assert w["states"][-1] == ("synced", "public"), w
    assert w["job_type"] == "add index /* txn */", w
    assert w["task_state"] is None, w  # txn backfill: no DXF task


def test_real_cancel_mid_backfill_rolls_back(transcripts: dict[str, Transcript]) -> None:
    f = facts(transcripts, "real")
    assert f["cancel_precondition"][-1] == ("running", "write reorganization"), f
    c = f["cancel"]
    assert c["result"] == "successful", c
    assert c["accepted"], c
    assert c["states"][-1][0] in ("rollback done", "cancelled"), c
    assert c["statement_error"] == 8214, c  # Cancelled DDL job


def test_real_cancel_of_a_finished_job_answers_8224(transcripts: dict[str, Transcript]) -> None:
    c = facts(transcripts, "real")["cancel_finished"]
    assert "8224" in c["result"], c
    assert not c["accepted"], c


def test_real_cancel_writes_cancelling_at_once(transcripts: dict[str, Transcript]) -> None:
    """A queued job (behind a job on its table) shows ``cancelling`` until it can run.

    The job ahead is held at ``delete only`` by an open transaction's metadata lock
    (`realbin_drive.hold_table`) for as long as the script wants, so "still blocked two
    seconds later" is a fact of TiDB, not of how long a backfill happened to last.
    """
    q = facts(transcripts, "real")["cancel_queued"]
    assert q["result"] == "successful", q
    assert q["first_still_running"], q
    assert q["first_running_two_s_later"], q
    # TiDB's MDL held it at its first schema change, however long the script took
    assert q["first_while_held"][-1] == ("running", "delete only"), q
    assert not {s for _, s in q["first_while_held"]} & {"write only", "write reorganization",
                                                         "public"}, q
    assert q["right_after"] == ["cancelling"], q
    assert q["two_s_later"] == ["cancelling"], q
    assert q["final"][0] in ("rollback done", "cancelled"), q
    assert q["final"][1] == "cancelled", q  # it never started: nothing to roll back


def test_real_mdl_view_names_the_holding_session(transcripts: dict[str, Transcript]) -> None:
    """v7.5's ``mysql.tidb_mdl_view``: every unfinished job on the held table, each with
    the session whose open transaction holds it (what the plugin's diagnostics read)."""
    view = facts(transcripts, "real")["cancel_queued"]["mdl_view"]
    assert view["columns"] == ["job_id", "db_name", "table_name", "query", "session_id",
                               "txnstart", "SQL_DIGESTS"], view
    assert view["rows"] == [("first", "t_queue", True), ("queued", "t_queue", True)], view


def test_real_dxf_on_with_fast_reorg_off_runs_txn(transcripts: dict[str, Transcript]) -> None:
    """v7.5 picks the txn backfill (``pickBackfillType``); 8200 is v8.x's answer."""
    d = facts(transcripts, "real")["dxf_txn"]
    assert "error_code" not in d, d
    assert d["jobs"] == [("add index /* txn */", "synced")], d


def test_real_ddl_commits_the_open_transaction(transcripts: dict[str, Transcript]) -> None:
    assert facts(transcripts, "real")["implicit_commit"] == {
        "visible_to_others_after_ddl": 1, "kept_after_rollback": 1}


def test_real_cluster_reports_its_recovery_timers(transcripts: dict[str, Transcript]) -> None:
    """The timers every verdict window is floored by, read where v7.5.0 / PD report them:
    TiDB's ManagerSessionTTL (60 s) as the DDL owner key's etcd lease, the 45 s schema
    lease in ``/info``, PD's 3 s leader lease in its config (the store is not TiKV: its
    raft timer stays the table's)."""
    t = facts(transcripts, "real")["timers"]
    assert t["owner_ttl"] == (60.0, "PD etcd lease of the DDL owner key"), t
    assert t["schema_lease"] == (45.0, "TiDB /info lease"), t
    assert t["pd_leader_lease"] == (3.0, "PD /pd/api/v1/config lease"), t


# -- the stand-in against it ------------------------------------------------------------------
def test_standin_txn_add_index_matches(transcripts: dict[str, Transcript]) -> None:
    r, s = facts(transcripts, "real")["watch"], facts(transcripts, "standin")["watch"]
    order = [pair for pair in r["states"]]
    assert s["verdict"] == r["verdict"], (r, s)
    assert s["states"][-1] == r["states"][-1], (r, s)
    assert s["job_type"] == r["job_type"], (r, s)
    assert s["task_state"] == r["task_state"], (r, s)
    schema_order = ["none", "delete only", "write only", "write reorganization", "public"]
    seen = [st for _, st in s["states"] if st in schema_order]
    assert seen == sorted(seen, key=schema_order.index), (order, s["states"])


def test_standin_cancel_mid_backfill_matches(transcripts: dict[str, Transcript]) -> None:
    r, s = facts(transcripts, "real"), facts(transcripts, "standin")
    assert s["cancel_precondition"][-1] == ("running", "write reorganization"), s
    for key in ("result", "accepted", "statement_error"):
        assert s["cancel"][key] == r["cancel"][key], (key, r["cancel"], s["cancel"])
    assert s["cancel"]["states"][-1] == r["cancel"]["states"][-1], (r["cancel"], s["cancel"])


def test_standin_cancel_of_a_finished_job_matches(transcripts: dict[str, Transcript]) -> None:
    r, s = facts(transcripts, "real")["cancel_finished"], facts(transcripts, "standin")["cancel_finished"]
    assert ("8224" in s["result"]) == ("8224" in r["result"]), (r, s)
    assert s["accepted"] == r["accepted"], (r, s)


def test_standin_cancel_writes_cancelling_at_once(transcripts: dict[str, Transcript]) -> None:
    r, s = facts(transcripts, "real")["cancel_queued"], facts(transcripts, "standin")["cancel_queued"]
    for key in ("result", "first_still_running", "first_running_two_s_later", "right_after",
                "two_s_later", "final"):
        assert s[key] == r[key], (key, r, s)
    assert s["first_while_held"][-1] == r["first_while_held"][-1], (r, s)  # the MDL hold
    assert s["mdl_view"] == r["mdl_view"], (r, s)


def test_standin_dxf_on_with_fast_reorg_off_matches_v75(transcripts: dict[str, Transcript]) -> None:
    r, s = facts(transcripts, "real")["dxf_txn"], facts(transcripts, "standin")["dxf_txn"]
    assert s == r, (r, s)


def test_standin_ddl_commits_the_open_transaction(transcripts: dict[str, Transcript]) -> None:
    r, s = facts(transcripts, "real")["implicit_commit"], facts(transcripts, "standin")["implicit_commit"]
    assert s == r, (r, s)


def test_standin_import_probes_match(transcripts: dict[str, Transcript]) -> None:
    r, s = facts(transcripts, "real"), facts(transcripts, "standin")
    assert s["import_show"].get("error_code") == r["import_show"].get("error_code"), (
        r["import_show"], s["import_show"])
    assert s["import_cancel"]["accepted"] == r["import_cancel"]["accepted"], (
        r["import_cancel"], s["import_cancel"])
    assert s["import_ids"] == r["import_ids"] == []


def test_standin_reports_its_timers_where_tidb_and_pd_do(transcripts: dict[str, Transcript]) -> None:
    """Same surfaces, read by the same code; the values are the stand-in's own (its DDL
    owner session is 10 s scaled, not TiDB's 60 s: docs/standin.md), which is why the
    plugin reads them from the cluster instead of assuming them."""
    r, s = facts(transcripts, "real")["timers"], facts(transcripts, "standin")["timers"]
    notes = facts(transcripts, "standin")["timer_notes"]
    for key in ("owner_ttl", "schema_lease", "pd_leader_lease"):
        assert s[key][1] == r[key][1], (key, r, s, notes)
    assert s["schema_lease"] == r["schema_lease"], (r, s)  # STANDIN_TIME_SCALE=1.0


def test_roles_resolve_alike(transcripts: dict[str, Transcript]) -> None:
    for side in ("real", "standin"):
        f = facts(transcripts, side)
        roles = f["roles"]
        assert roles["pd_leader"], (side, roles)
        assert len(roles["pd_followers"]) == 2, (side, roles)
        assert roles["ddl_owner"] in ("tidb-0", "tidb-1"), (side, roles)
        assert [s["state_name"] for s in roles["tikv_stores"]] == ["Up"], (side, roles)
        assert roles["tikv_stores"][0]["node"] == "tikv-0", (side, roles)
        assert f["owner_by_sql"] == roles["ddl_owner"], (side, f["owner_by_sql"], roles)


def test_diagnostics_bundle_complete_on_both(transcripts: dict[str, Transcript]) -> None:
    for side in ("real", "standin"):
        notes = facts(transcripts, side)["diagnostics_notes"]
        missing = [n for n in notes if "import-job" not in n]
        assert not missing, (side, notes)
    r, s = facts(transcripts, "real"), facts(transcripts, "standin")
    assert sorted(r["diagnostics_notes"]) == sorted(s["diagnostics_notes"]), (r, s)


def test_resigns_answer_alike(transcripts: dict[str, Transcript]) -> None:
    for side in ("real", "standin"):
        res = facts(transcripts, side)["resign"]
        assert res["old_leader"], (side, res)
        assert res["old_owner"], (side, res)
