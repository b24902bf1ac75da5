"""``--ha-workload-scale`` never drops a table a job names (issue #14 item 14)."""

from __future__ import annotations

from pytest_tidb_ha.scenario.model import AddIndexJob, Case, Duration, ImportIntoJob, Workload
from pytest_tidb_ha.scenario.plan import render_plan
from pytest_tidb_ha.scenario.sizing import scaled_size, tables_for_jobs


def add_index(table: str, db: str = "sbtest") -> AddIndexJob:
    return AddIndexJob(db=db, table=table, index_col_name="c", timeout=Duration(60))


W8 = Workload(db="sbtest", tables=8, table_size=10_000)


def test_scaling_keeps_the_tables_the_jobs_name() -> None:
    need = tables_for_jobs(W8, [add_index("sbtest2"), add_index("sbtest3")])
    assert need.keep == 3
    assert need.problems == ()
    assert scaled_size(8, 10_000, 0.01, keep=need.keep).tables == 3
    assert scaled_size(8, 10_000, 0.01).tables == 1  # without jobs: one table is enough


def test_keep_never_grows_past_the_tables_as_written() -> None:
    assert scaled_size(2, 10_000, 0.01, keep=5).tables == 2
    assert scaled_size(8, 10_000, 2.0, keep=3).tables == 8


def test_jobs_on_tables_the_workload_never_creates_are_reported() -> None:
    jobs: list[AddIndexJob | ImportIntoJob] = [
            add_index("sbtest9"), add_index("users"), add_index("t", db="other"),
            ImportIntoJob(db="sbtest", table="imp", source_uri="/import/x.csv",
                          timeout=Duration(60))]
    need = tables_for_jobs(W8, jobs)
    assert need.keep == 1
    assert len(need.problems) == 2
    assert "sbtest9" in need.problems[0]
    assert "sbtest1..sbtest8" in need.problems[0]
    assert "users" in need.problems[1]


def test_the_plan_shows_the_kept_tables_and_what_it_cannot_keep() -> None:
    case = Case(name="c", warmup=Duration(0), workloads=(W8,),
                jobs=(add_index("sbtest2"), add_index("sbtest3"), add_index("sbtest12")))
    text = render_plan(case, workload_scale=0.01)
    assert "tables=3" in text
    assert "kept for the jobs' tables sbtest2, sbtest3" in text
    assert "warning: job on sbtest.sbtest12" in text
