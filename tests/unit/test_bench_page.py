"""bench/page.py: every figure beside its goal and anchor; unmeasured figures carried over."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str, path: Path, **deps: ModuleType) -> ModuleType:
    """A bench module (they run as files, importing ``common``) under a name of its own:
    the stand-in's tests have a ``common`` package too, so ``sys.modules`` is left as found."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it runs
    saved = {k: sys.modules.get(k) for k in deps}
    sys.modules.update(deps)
    try:
        spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return module


common = _load("tidb_ha_bench_common", BENCH / "common.py")
page = _load("tidb_ha_bench_page", BENCH / "page.py", common=common)
Row, Section, ratio, verdict = common.Row, common.Section, common.ratio, common.verdict

MACHINE = {"cpus": 2, "mem_gib": 23.5, "kernel": "6", "docker": "20", "python": "3.11",
           "loadavg_at_start": [1.0, 1.0, 1.0], "loadavg_at_end": [1.0, 1.0, 1.0]}

COLLECT = Row("collect 10,000 case items, warm", "2.10 s CPU", "best of 3 --ha-time-scale 0.1",
              goal="<= 2x pytest", anchor="pytest, 10,000 plain items: 1.40 s CPU",
              ratio=ratio(2.10, 1.40), verdict=verdict(2.10 <= 2 * 1.40))
FAULT = Row("fault kill apply / heal (p95)", "184 ms / 548 ms", "n=2",
            goal="p95 <= 100 ms", anchor="not measured", ratio="-", verdict=verdict(False))


def report(date: str, *sections: Any) -> dict[str, Any]:  # bench's Section, loaded by path
    return {"machine": {**MACHINE, "date": date}, "total_seconds": 300.0,
            "budget_seconds": 600.0, "skipped": [], "image": "tidb-standin:x",
            "sections": {s.name: s.to_json() for s in sections}}


def test_ratio_and_verdict() -> None:
    assert ratio(3.0, 2.0) == "1.50x"
    assert ratio(1.0, 0.0) == "-"
    assert ratio(None, 1.0) == "-"
    assert ratio(float("nan"), 1.0) == "-"
    assert (verdict(True), verdict(False), verdict(None)) == ("met", "NOT met", "-")


def test_the_table_shows_goal_anchor_ratio_and_verdict() -> None:
    text = page.table([Section("collection", rows=[COLLECT]),
                       Section("faults", error="RuntimeError: no docker")])
    line = next(x for x in text.splitlines() if x.startswith("collect 10,000"))
    assert "1.50x" in line
    assert "met" in line
    assert "<= 2x pytest" in line
    assert "pytest, 10,000 plain items: 1.40 s CPU" in line
    assert "faults: FAILED" in text
    assert "no docker" in text


def test_the_page_lists_every_column_and_reads_back() -> None:
    md = page.markdown(report("2026-12-01 10:00 UTC", Section("collection", rows=[COLLECT])))
    assert "| figure | value | goal | anchor | ratio | verdict | detail |" in md
    assert ("| collect 10,000 case items, warm | 2.10 s CPU | <= 2x pytest | pytest, 10,000 "
            "plain items: 1.40 s CPU | 1.50x | met | best of 3 --ha-time-scale 0.1 |") in md
    date, rows = page.page_rows(md)
    assert date == "2026-12-01 10:00 UTC"
    assert rows == [{"section": "collection", "figure": COLLECT.figure, "value": COLLECT.value,
                     "goal": COLLECT.goal, "anchor": COLLECT.anchor, "ratio": "1.50x",
                     "verdict": "met", "detail": COLLECT.detail}]
    assert "-->" not in md.split("<!-- bench-rows ", 1)[1][:-5]  # "--" kept inside the comment


def test_unmeasured_sections_are_carried_over_with_their_date() -> None:
    first = page.markdown(report("2026-12-01 10:00 UTC", Section("collection", rows=[COLLECT]),
                                 Section("faults", rows=[FAULT])))
    newer = Row("collect 10,000 case items, warm", "1.90 s CPU", goal="<= 2x pytest")
    second = page.markdown(report("2026-12-02 10:00 UTC", Section("collection", rows=[newer])),
                           first)
    assert "1.90 s CPU" in second
    assert "2.10 s CPU" not in second
    _, rows = page.page_rows(second)
    fault = next(r for r in rows if r["section"] == "faults")
    assert fault["value"] == "184 ms / 548 ms"
    assert fault["verdict"] == "NOT met"
    assert fault["detail"].startswith("carried over from the 2026-12-01 10:00 UTC run")
    assert "**Carried over:** figures of faults" in second
    third = page.markdown(report("2026-12-03 10:00 UTC", Section("collection", rows=[newer])),
                          second)
    _, rows = page.page_rows(third)
    fault = next(r for r in rows if r["section"] == "faults")
    assert fault["detail"].count("carried over") == 1
    assert "2026-12-01" in fault["detail"]


def test_a_page_from_before_the_goal_columns_is_carried_over() -> None:
    legacy = "\n".join([
        "# Benchmark figures", "", "- **Date:** 2026-11-25 09:58 UTC", "",
        "| figure | value | detail |", "|---|---:|---|",
        "| collect 10,000 case items (100 files) | 72.1 s | 139 items/s |",
        "| fault pause apply / heal (median) | 41 ms / 55 ms | p95 49 ms / 62 ms |",
        "| workload client: ours, tps per client core | 277 | 261 tps \\| MariaDB |", ""])
    md = page.markdown(report("2026-12-01 10:00 UTC", Section("collection", rows=[COLLECT])),
                       legacy)
    _, rows = page.page_rows(md)
    assert [r["section"] for r in rows] == ["collection", "faults", "workload"]
    assert rows[1]["value"] == "41 ms / 55 ms"
    assert rows[2]["detail"].endswith("261 tps | MariaDB")
    assert all(r["detail"].startswith("carried over from the 2026-11-25 09:58 UTC run")
               for r in rows[1:])
    assert "72.1 s" not in md


# -- bench/reproductions.py: k/N first-run reproductions of the triggered seed variants ----
repro = _load("tidb_ha_bench_reproductions", BENCH / "reproductions.py", common=common)


def _v(key: str, verdict_: str, reason: str = "") -> dict[str, str]:
    return {"job_key": key, "verdict": verdict_, "reason": reason}


EVENTS = [{"t": 10.0, "kind": "job.state"}, {"t": 5.0, "kind": "fault.applied"},
          {"t": 12.0, "kind": "fault.trigger"}, {"t": 12.4, "kind": "fault.applied"}]


def test_a_repetition_counts_only_with_the_seeds_bug_verdict_on_its_first_job_run() -> None:
    stuck = {"verdicts": [_v("add_index#1", "stuck", "made no progress"),
                          _v("add_index#2", "stuck", "queueing")], "outcome": "failed"}
    got = repro.judge_rep("48303", stuck, EVENTS, {"48303": 2})
    assert got["reproduced"] is True
    assert got["fault_applied_after_trigger"] == 0.4  # the window the trigger opened, not t=5
    assert got["bug_triggers_counted"] == 2
    later = {"verdicts": [_v("add_index#1", "converged"), _v("add_index#2", "stuck")]}
    miss = repro.judge_rep("48303", later, [], {})
    assert miss["reproduced"] is False
    assert miss["why_not"].startswith("add_index#1 converged")
    wrong_error = {"verdicts": [_v("add_index#1", "failed-unexpected", "Error 1105: other")]}
    assert repro.judge_rep("48546", wrong_error, [], {})["reproduced"] is False
    right = {"verdicts": [_v("add_index#1", "failed-unexpected", "mutex: session is expired")]}
    assert repro.judge_rep("48546", right, [], {})["reproduced"] is True
    imp = {"verdicts": [_v("import_into#1", "stuck", "status=running, step=validating")]}
    assert repro.judge_rep("46735", imp, [], {})["reproduced"] is False
    assert repro.judge_rep("46735", {"verdicts": []}, [], {})["why_not"] == "no verdict for import_into#1"


def test_the_reproduction_row_is_k_of_n_against_every_run() -> None:
    runs = [{"rep": i, "reproduced": i != 3, "why_not": None if i != 3 else "add_index#1 converged",
             "wall_seconds": 60.0 + i, "fault_applied_after_trigger": 0.3} for i in range(1, 11)]
    result = {"seed": "48303", "runs": runs, "expected": "add_index#1 stuck", "workers": 2,
              "wall_seconds": 400.0, "time_scale": 0.05, "workload_scale": 0.0002}
    row = repro.row_for(result)
    assert row.figure == "#48303 triggered reproduction"
    assert row.value == "9/10"
    assert row.verdict == "NOT met"
    assert "r3: add_index#1 converged" in row.detail
    assert "median 65.5 s" in row.detail
    all_runs = [{**r, "reproduced": True} for r in runs]
    assert repro.row_for({**result, "runs": all_runs}).verdict == "met"


def test_junit_times_by_repetition(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuites><testsuite><testcase classname="48546_r02.yaml" '
                     'name="ha_pdleader_to_pdfollower_all_network_partition" time="71.5"/>'
                     '<testcase classname="x" name="y" time="1"/></testsuite></testsuites>')
    assert repro.junit_times(junit) == {"48546_r02": 71.5}
    assert repro.junit_times(tmp_path / "missing.xml") == {}


def test_a_single_script_page_says_so_and_keeps_the_other_figures() -> None:
    first = page.markdown(report("2026-12-01 10:00 UTC", Section("collection", rows=[COLLECT])))
    only = {**report("2026-12-02 10:00 UTC", Section("reproductions", rows=[
        Row("#48303 triggered reproduction", "10/10", goal="10/10", verdict="met")])),
        "script": "bench/reproductions.py"}
    text = page.markdown(only, first)
    assert "**This run:** `bench/reproductions.py` alone" in text
    assert "Whole bench" not in text
    _, rows = page.page_rows(text)
    assert {r["section"] for r in rows} == {"collection", "reproductions"}


def test_seeds_left_out_keep_their_dated_figures(tmp_path: Path) -> None:
    out = tmp_path / "reproductions.json"
    assert repro.earlier_results(out, {"48303"}) == []
    seeds = [{"seed": "46735", "runs": []}, {"seed": "48303", "runs": [], "date": "old"}]
    out.write_text(json.dumps({"machine": {"date": "2026-12-01 03:10 UTC"}, "sections": {
        "reproductions": {"data": {"seeds": seeds}}}}))
    kept = repro.earlier_results(out, {"48303"})
    assert kept == [{"seed": "46735", "runs": [], "date": "2026-12-01 03:10 UTC"}]
    out.write_text("{not json")
    assert repro.earlier_results(out, set()) == []


def test_a_run_of_some_seeds_keeps_the_other_seeds_rows() -> None:
    """``bench/reproductions.py --seeds 46735`` without the others in its results file (it
    is not committed): the page keeps #48303's and #48546's rows, dated, and replaces
    #46735's; a run of the whole section drops what it no longer measures."""
    def repro_row(seed: str, value: str) -> Any:
        return Row(f"#{seed} triggered reproduction", value, goal="10/10", verdict="met")

    first = page.markdown(report("2026-12-01 10:00 UTC", Section("reproductions", rows=[
        repro_row(s, "10/10") for s in ("46735", "48546", "48303")])))
    some = {**report("2026-12-02 10:00 UTC", Section("reproductions", rows=[
        repro_row("46735", "9/10")])), "partial": ["reproductions"]}
    _, rows = page.page_rows(page.markdown(some, first))
    got = {r["figure"]: r for r in rows}
    assert set(got) == {f"#{s} triggered reproduction" for s in ("46735", "48546", "48303")}
    assert got["#46735 triggered reproduction"]["value"] == "9/10"
    assert not got["#46735 triggered reproduction"]["detail"].startswith("carried over")
    assert got["#48303 triggered reproduction"]["detail"].startswith(
        "carried over from the 2026-12-01 10:00 UTC run")
    whole = report("2026-12-02 10:00 UTC", Section("reproductions", rows=[repro_row("46735", "9/10")]))
    _, rows = page.page_rows(page.markdown(whole, first))
    assert [r["figure"] for r in rows] == ["#46735 triggered reproduction"]
