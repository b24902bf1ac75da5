"""The YAML case format: the seeds unchanged, the extensions, and every bad input."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_tidb_ha.scenario.errors import ScenarioError
from pytest_tidb_ha.scenario.loader import load_file, load_text
from pytest_tidb_ha.scenario.model import AddIndexJob, ImportIntoJob, Topology

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios" / "seeds"

#: The block of pingcap/tidb#48303 exactly as pasted in the bug report (6-space indent).
SEED_48303 = """\
      tag: "ha-test-add-index"
      workloads:
        - type: sysbench
          storage: s3://benchmark/sysbench_64_7000w
          db: sysbench_64_7000w
          tableNum: 64
          tableSize: 70000000
          threads: 64
          subType: oltp_read_write
          ignoreErrors: "all"
      cases:
        - name: "ha_tikv(random)_to_all_network_partition"
          warmUpTime: 1m
          faultType: network_partition
          selector: "tikv(random)_to_all"
          period: "@every 5m"
          faultDuration: 3m
          faultTotalRunTime: 30m
          ddl:
            addIndex:
              - db: "sysbench_64_7000w"
                table: "sbtest1"
                timeout: 60m
                times: 5
                index_col_name: "c"
                job_type: "ingest"
                admin_check: false
                count_check: false
"""

#: The block of pingcap/tidb#48546 exactly as pasted in the bug report.
SEED_48546 = SEED_48303.replace(
    "ha_tikv(random)_to_all_network_partition", "ha_pdleader_to_pdfollower_all_network_partition"
).replace('"tikv(random)_to_all"', '"pdleader_to_pdfollower(all)"').replace(
    "faultDuration: 3m", "faultDuration: 2m"
)


def load(text: str, path: str = "case.yaml"):  # type: ignore[no-untyped-def]
    cases = load_text(textwrap.dedent(text), path)
    assert cases is not None
    return cases


def error_of(text: str, path: str = "case.yaml") -> str:
    with pytest.raises(ScenarioError) as info:
        load_text(textwrap.dedent(text), path)
    return str(info.value)


# ---- the seeds -------------------------------------------------------------------------

def test_seed_files_are_the_bug_report_blocks_verbatim() -> None:
    assert (SCENARIOS / "48303.yaml").read_text() == SEED_48303
    assert (SCENARIOS / "48546.yaml").read_text() == SEED_48546


def test_seed_48303_loads_unchanged() -> None:
    (case,) = load_text(SEED_48303, "48303.yaml") or ()
    assert case.id == "48303::ha_tikv(random)_to_all_network_partition"
    assert case.tag == "ha-test-add-index"
    assert case.warmup.seconds == 60
    (w,) = case.workloads
    assert (w.kind, w.db, w.tables, w.table_size, w.threads, w.subtype, w.ignore_errors) == (
        "sysbench", "sysbench_64_7000w", 64, 70_000_000, 64, "oltp_read_write", "all")
    assert w.storage == "s3://benchmark/sysbench_64_7000w"
    (fault,) = case.faults
    assert fault.kind == "network_partition"
    assert str(fault.selector) == "tikv(random)_to_all"
    assert fault.direction == "both"
    s = fault.schedule
    assert (s.warmup.seconds, s.duration.seconds) == (60, 180)
    assert s.period is not None
    assert s.period.seconds == 300
    assert s.total is not None
    assert s.total.seconds == 1800
    assert s.windows() == [(60 + 300 * i, 240 + 300 * i) for i in range(6)]
    (job,) = case.jobs
    assert isinstance(job, AddIndexJob)
    assert (job.db, job.table, job.index_col_name, job.times, job.job_type) == (
        "sysbench_64_7000w", "sbtest1", "c", 5, "ingest")
    assert job.timeout.seconds == 3600
    assert not job.admin_check
    assert not job.count_check
    assert case.source.line == 12
    assert job.source.line == 21


def test_seed_48546_loads_unchanged() -> None:
    (case,) = load_text(SEED_48546, "48546.yaml") or ()
    sel = case.faults[0].selector
    assert sel is not None
    assert sel.source.group == "pdleader"
    assert case.faults[0].schedule.duration.seconds == 120


def test_seed_46735_import_into_case() -> None:
    (case,) = load_file(SCENARIOS / "46735.yaml") or ()
    assert case.dist_task is True
    (fault,) = case.faults
    assert fault.kind == "kill"
    assert fault.selector is not None
    assert fault.selector.source.group == "ddlowner"
    assert fault.schedule.period is None
    # jobs start at the case's warmUpTime (1m); the owner dies 2 minutes into the import
    assert case.warmup.seconds == 60
    assert fault.schedule.windows() == [(180, 240)]
    (job,) = case.jobs
    assert isinstance(job, ImportIntoJob)
    assert (job.db, job.table, job.source_uri) == ("importtest", "user_data1",
                                                   "/import/user_data1.*.csv")
    assert dict(job.options) == {"skip_rows": 1}
    assert job.generate is not None
    assert (job.generate.rows, job.generate.files) == (1_000_000, 4)
    assert job.generate.scaled_rows(0.01) == 100_000  # the floor
    assert job.generate.scaled_rows(0.5) == 500_000
    assert job.timeout.seconds == 3600


def test_not_a_case_file() -> None:
    assert load_text("foo: 1\n", "x.yaml") is None
    assert load_text("- a\n- b\n", "x.yaml") is None
    assert load_text("key: [unclosed\n", "x.yaml") is None


# ---- extensions --------------------------------------------------------------------------

def test_extensions() -> None:
    (case,) = load("""
        cases:
          - name: all-features
            warmUpTime: 30s
            distTask: off
            markers: [smoke, slow]
            topology: {pd: 3, tidb: 2}
            version: v8.5.1
            faults:
              - faultType: network_delay
                selector: pdleader
                latency: 1s
                jitter: 100ms
                faultDuration: 2m
              - faultType: network_loss
                selector: "tidb(50%)_to_tikv"
                loss: 30%
                direction: to
                warmUpTime: 1m
                period: 5m
                faultDuration: 1m
                faultTotalRunTime: 20m
              - faultType: pd_leader_resign
                warmUpTime: 3m
            ddl:
              addIndex:
                - {db: d, table: t, index_col_name: k, timeout: 10m, distTask: on}
              importInto:
                - {db: d, table: u, source: "s3://b/x.csv?access-key=a&secret-access-key=s",
                   timeout: 5m, format: csv, options: {thread: 8, detached: true}}
            importInto:
              - db: d
                table: v
                source: /import/v.csv
                timeout: 5m
                generate: {rows: 100}
            expect:
              outcome: success
              allowErrors: ["Information schema is changed"]
              stallWindow: 2m
              cancelAfter: 90s
        """)
    assert case.dist_task is False
    assert case.markers == ("smoke", "slow")
    assert case.topology == Topology(pd=3, tikv=1, tidb=2)
    assert case.version == "v8.5.1"
    delay, loss, resign = case.faults
    assert delay.params["latency"].seconds == 1
    assert delay.schedule.warmup.seconds == 30  # inherits the case's warmUpTime
    assert loss.params["loss"] == 30.0
    assert loss.direction == "to"
    assert loss.schedule.warmup.seconds == 60
    assert resign.selector is not None
    assert str(resign.selector) == "pdleader"
    assert resign.schedule.duration.seconds == 0
    add, imp, gen = case.jobs
    assert isinstance(add, AddIndexJob)
    assert add.dist_task is True
    assert isinstance(imp, ImportIntoJob)
    assert dict(imp.options) == {"thread": 8, "detached": True}
    assert isinstance(gen, ImportIntoJob)
    assert gen.generate is not None
    assert gen.generate.files == 1
    assert case.expect.outcome == "success"
    assert case.expect.stall_window is not None
    assert case.expect.stall_window.seconds == 120
    assert case.expect.cancel_after is not None
    assert case.expect.cancel_after.seconds == 90


def test_add_index_db_defaults_to_the_workload_db() -> None:
    (case,) = load("""
        workloads: [{type: sysbench, db: sb}]
        cases:
          - name: a
            ddl: {addIndex: [{table: t, index_col_name: c, timeout: 1m}]}
        """)
    assert case.jobs[0].db == "sb"


def test_bare_numbers_are_seconds() -> None:
    (case,) = load("""
        cases:
          - {name: a, warmUpTime: 30, faultType: kill, selector: tikv(one), faultDuration: 90}
        """)
    assert case.faults[0].schedule.windows() == [(30, 120)]


# ---- bad input: every error names file:line --------------------------------------------

BAD = [
    ("malformed", "cases:\n  - name: [a\n", "case.yaml:3: malformed YAML"),
    ("unknown key", """
        cases:
          - name: a
            warmUpTim: 1m
        """, "case.yaml:4: unknown key 'warmUpTim' in a case (did you mean 'warmUpTime'?)"),
    ("unknown nested key", """
        cases:
          - name: a
            ddl:
              addIndex:
                - {db: d, table: t, index_col: c, timeout: 1m}
        """, "case.yaml:6: unknown key 'index_col' in an addIndex job (did you mean 'index_col_name'?)"),
    ("unknown top key", "tags: x\ncases: [{name: a}]\n",
     "case.yaml:1: unknown key 'tags' in the case file (did you mean 'tag'?)"),
    ("wrong type int", """
        workloads:
          - type: sysbench
            tableNum: many
        cases: [{name: a}]
        """, "case.yaml:4: tableNum must be a whole number, got 'many'"),
    ("wrong type bool", """
        cases:
          - name: a
            ddl: {addIndex: [{db: d, table: t, index_col_name: c, timeout: 1m,
                              admin_check: "no"}]}
        """, "case.yaml:5: admin_check must be true or false, got 'no'"),
    ("wrong type list", """
        cases:
          - name: a
            faults: {faultType: kill}
        """, "case.yaml:4: faults must be a list"),
    ("zero duration", """
        cases:
          - name: a
            faultType: kill
            selector: tikv(one)
            faultDuration: 0s
        """, "case.yaml:6: faultDuration must be longer than zero, got '0s'"),
    ("negative duration", """
        cases:
          - name: a
            warmUpTime: -1m
        """, "case.yaml:4: warmUpTime must not be negative, got '-1m'"),
    ("bad duration", """
        cases:
          - name: a
            ddl: {addIndex: [{db: d, table: t, index_col_name: c, timeout: 1 hour}]}
        """, "case.yaml:4: timeout: '1 hour' is not a duration"),
    ("duration longer than period", """
        cases:
          - name: a
            faultType: kill
            selector: tikv(one)
            period: "@every 5m"
            faultDuration: 6m
            faultTotalRunTime: 30m
        """, "case.yaml:7: faultDuration 6m is longer than its period @every 5m"),
    ("period without total", """
        cases:
          - name: a
            faultType: kill
            selector: tikv(one)
            period: 5m
            faultDuration: 1m
        """, "case.yaml:6: period needs faultTotalRunTime"),
    ("unknown fault type", """
        cases:
          - name: a
            faultType: network_partiton
        """, "case.yaml:4: unknown faultType 'network_partiton' (did you mean 'network_partition'?)"),
    ("unknown selector", """
        cases:
          - name: a
            faultType: kill
            selector: tivk(random)
            faultDuration: 1m
        """, "case.yaml:5: selector 'tivk(random)': unknown selector group 'tivk'"),
    ("partition selector on kill", """
        cases:
          - name: a
            faultType: kill
            selector: tikv_to_pd
            faultDuration: 1m
        """, "case.yaml:5: selector tikv_to_pd: SOURCE_to_TARGET only applies to network faults"),
    ("missing fault param", """
        cases:
          - name: a
            faultType: network_delay
            selector: tikv
            faultDuration: 1m
        """, "case.yaml:4: network_delay needs latency"),
    ("param for another kind", """
        cases:
          - name: a
            faultType: kill
            selector: tikv(one)
            faultDuration: 1m
            loss: 30%
        """, "case.yaml:7: kill takes no 'loss'"),
    ("bad loss", """
        cases:
          - {name: a, faultType: network_loss, selector: tikv, faultDuration: 1m, loss: 130%}
        """, "case.yaml:3: loss must be between 0% (exclusive) and 100%"),
    ("bad direction", """
        cases:
          - {name: a, faultType: network_partition, selector: tikv, faultDuration: 1m,
             direction: sideways}
        """, "case.yaml:4: direction must be one of both, to, from"),
    ("fault keys without faultType", """
        cases:
          - name: a
            selector: tikv
        """, "case.yaml:4: selector without faultType"),
    ("duplicate case", """
        cases:
          - name: a
          - name: a
        """, "case.yaml:4: duplicate case name 'a' (first on line 3)"),
    ("duplicate key", """
        cases:
          - name: a
            name: b
        """, "case.yaml:4: a case: duplicate key 'name' (first on line 3)"),
    ("missing name", """
        cases:
          - warmUpTime: 1m
        """, "case.yaml:3: a case needs 'name'"),
    ("empty cases", "cases: []\n", "case.yaml:1: cases: is empty"),
    ("import option", """
        cases:
          - name: a
            importInto:
              - {db: d, table: t, source: /import/t.csv, timeout: 1m,
                 options: {skiprows: 1}}
        """, "case.yaml:6: unknown key 'skiprows' in importInto options (did you mean 'skip_rows'?)"),
    ("generate outside /import", """
        cases:
          - name: a
            importInto:
              - {db: d, table: t, source: "s3://b/t.csv", timeout: 1m, generate: {rows: 10}}
        """, "case.yaml:5: generate writes into /import"),
    ("generate files without glob", """
        cases:
          - name: a
            importInto:
              - {db: d, table: t, source: /import/t.csv, timeout: 1m,
                 generate: {rows: 10, files: 2}}
        """, "case.yaml:5: generate.files=2 needs a '*' in source"),
    ("distTask", """
        cases:
          - {name: a, distTask: maybe}
        """, "case.yaml:3: distTask must be on or off, got 'maybe'"),
    ("outcome", """
        cases:
          - name: a
            expect: {outcome: succes}
        """, "case.yaml:4: outcome must be one of success, success_or_sensible_error, got 'succes' (did you mean 'success'?)"),
    ("regex", """
        cases:
          - name: a
            expect:
              allowErrors: ["(unclosed"]
        """, "case.yaml:5: allowErrors: '(unclosed' is not a regex"),
    ("marker name", """
        cases:
          - {name: a, markers: ["not a marker"]}
        """, "case.yaml:3: markers: 'not a marker' is not a marker name"),
    ("case name", """
        cases:
          - {name: "a::b"}
        """, "case.yaml:3: case name 'a::b' must not contain"),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BAD],
                         ids=[name for name, _, _ in BAD])
def test_bad_input(text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith(expected), message


def test_error_lines_count_the_indented_seed_block() -> None:
    broken = SEED_48303.replace("faultDuration: 3m", "faultDuration: 6m")
    with pytest.raises(ScenarioError) as info:
        load_text(broken, "scenarios/48303.yaml")
    assert str(info.value).startswith("scenarios/48303.yaml:17: faultDuration 6m is longer")
    assert info.value.source.line == 17
