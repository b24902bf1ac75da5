"""The grammar TiDB's QA writes (issue 17): roles, parametric fault types, SQL-as-text,
recoveryTime, tidbGlobalVariables, importInto cmd, config lists, bare lists, and
QA-looking files that must never be skipped silently."""

from __future__ import annotations

import textwrap

import pytest

from pytest_tidb_ha.scenario.durations import parse_duration
from pytest_tidb_ha.scenario.errors import FieldError, ScenarioError
from pytest_tidb_ha.scenario.faulttypes import approximation, parse_fault_type
from pytest_tidb_ha.scenario.loader import load_groups, load_text, looks_like_case_file
from pytest_tidb_ha.scenario.markers import fault_from_marker
from pytest_tidb_ha.scenario.model import ImportIntoJob, Quantifier, SourceRef
from pytest_tidb_ha.scenario.plan import render_plan
from pytest_tidb_ha.scenario.selectors import SelectorError, parse_selector
from pytest_tidb_ha.scenario.sqltext import (
    global_assignment,
    global_variable_statement,
    parse_import_cmd,
)


def load(text: str, path: str = "qa.yaml"):  # type: ignore[no-untyped-def]
    cases = load_text(textwrap.dedent(text), path)
    assert cases is not None
    return cases


def error_of(text: str, path: str = "qa.yaml") -> str:
    with pytest.raises(ScenarioError) as info:
        load_text(textwrap.dedent(text), path)
    return str(info.value)


# ---- selectors: component(role) on either side of _to_ ----------------------------------

@pytest.mark.parametrize(("text", "group", "quantifier"), [
    ("pd(leader)", "pdleader", Quantifier("all")),
    ("pd(follower)", "pdfollower", Quantifier("all")),
    ("tidb(ddl-owner)", "ddlowner", Quantifier("one")),
    ("tidb(ddl_owner)", "ddlowner", Quantifier("one")),
    ("tidb(owner)", "ddlowner", Quantifier("one")),
    ("ddl-owner", "ddlowner", Quantifier("one")),
    ("pdleader", "pdleader", Quantifier("all")),
    ("pdfollower(random)", "pdfollower", Quantifier("random")),
    ("tidb(all)", "tidb", Quantifier("all")),
    ("tikv(2)", "tikv", Quantifier("count", 2)),
    ("tidb(50%)", "tidb", Quantifier("percent", 50)),
])
def test_roles_and_quantifiers(text: str, group: str, quantifier: Quantifier) -> None:
    side = parse_selector(text).source
    assert (side.group, side.quantifier, str(side)) == (group, quantifier, text)


def test_roles_on_both_sides_of_to() -> None:
    sel = parse_selector("tidb(ddl-owner)_to_pd(leader)")
    assert sel.source.group == "ddlowner"
    assert sel.target is not None
    assert sel.target.group == "pdleader"
    assert str(sel) == "tidb(ddl-owner)_to_pd(leader)"
    sel = parse_selector("pd(leader)_to_pd(follower)")
    assert (sel.source.group, sel.target and sel.target.group) == ("pdleader", "pdfollower")


@pytest.mark.parametrize(("text", "words"), [
    ("tikv(leader)", "tikv has no single leader"),
    ("pd(owner)", "pd has no role 'owner'"),
    ("tidb(leader)", "tidb has no role 'leader'"),
    ("tidb(ddl-onwer)", "did you mean 'ddl-owner'"),
    ("pdleader(owner)", "pdleader takes a quantifier"),
])
def test_bad_roles_say_which_roles_exist(text: str, words: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    assert words in str(info.value)
    assert "pd(leader)" in str(info.value) or "quantifier" in str(info.value)


# ---- fault types ----------------------------------------------------------------------

def test_iochaos_io_delay_maps_onto_io_delay() -> None:
    ft = parse_fault_type(
        "iochaos_io_delay(volumePath:/var/lib/pd,path:/var/lib/pd/data/**/*,delay:1s,percent:100)")
    assert ft.kind == "io_delay"
    assert ft.params == {"volume_path": "/var/lib/pd", "path": "/var/lib/pd/data/**/*",
                         "latency": "1s", "percent": "100"}
    assert ft.written is not None
    assert ft.written.startswith("iochaos_io_delay(")


@pytest.mark.parametrize(("value", "kind", "params"), [
    ("io_delay(volumeName:tikv,delay:60m)", "io_delay", {"volume_name": "tikv",
                                                         "latency": "60m"}),
    ("network_latency(latency:500ms)", "network_delay", {"latency": "500ms"}),
    ("network_latency(latency:1s,jitter:10ms,correlation:25)", "network_delay",
     {"latency": "1s", "jitter": "10ms", "correlation": "25"}),
    ("network_delay(latency:1s, direction:to)", "network_delay",
     {"latency": "1s", "direction": "to"}),
    ("network_latency", "network_delay", {}),
    ("kill", "kill", {}),
])
def test_parametric_and_plain_fault_types(value: str, kind: str, params: dict[str, str]) -> None:
    ft = parse_fault_type(value)
    assert (ft.kind, ft.params) == (kind, params)


@pytest.mark.parametrize(("value", "words"), [
    ("iochaos_io_delay(volumePath:/x,percent:100)", "needs delay"),
    ("iochaos_io_delay(delay:1s,methods:read)", "takes no 'methods'"),
    ("iochaos_io_delay(delay)", "key:value"),
    ("iochaos_io_delay(delay:1s,delay:2s)", "given twice"),
    ("iochaos_io_dela(delay:1s)", "did you mean 'iochaos_io_delay'"),
    ("network_partion", "did you mean 'network_partition'"),
    # QA's Chaos Mesh type without its parameters: no injector has that kind
    ("iochaos_io_delay", "takes its parameters: iochaos_io_delay(volumePath:...,path:...,"
                         "delay:...,percent:...) (needs delay)"),
])
def test_bad_fault_types(value: str, words: str) -> None:
    with pytest.raises(FieldError) as info:
        parse_fault_type(value)
    assert words in info.value.message


def fault_of(text: str):  # type: ignore[no-untyped-def]
    (case,) = load(text)
    return case.faults[0]


def test_io_delay_plan_says_how_it_is_approximated() -> None:
    fault = fault_of("""\
        cases:
          - name: io
            faultType: iochaos_io_delay(volumePath:/var/lib/tikv,path:/var/lib/tikv/**/*,delay:300ms,percent:50)
            selector: tikv(random)
            faultDuration: 2m
        """)
    assert fault.params["latency"] == parse_duration("300ms")
    lines = approximation(fault)
    assert lines[0] == ("QA means: Chaos Mesh IOChaos latency: each IO on /var/lib/tikv/**/* "
                        "under /var/lib/tikv waits 300ms, for 50% of the operations")
    assert "a cgroup IO limit of 3 IOPS" in lines[1]
    assert "percent 50% cannot be honoured" in lines[1]
    assert "IO hang" not in lines[1]


def test_an_io_delay_longer_than_the_window_is_an_io_hang() -> None:
    fault = fault_of("""\
        cases:
          - name: hang
            faultType: io_delay(volumeName:tikv,delay:60m)
            selector: tikv(random)
            faultDuration: 5m
        """)
    (meaning, here) = approximation(fault)
    assert meaning == "QA means: each IO on the volume tikv waits 60m"
    assert "1 IOPS" in here
    assert "is an IO hang in QA's harness" in here


def test_network_latency_correlation_is_noted() -> None:
    fault = fault_of("""\
        cases:
          - name: lat
            faultType: network_latency(latency:1s,correlation:25)
            selector: pd(leader)_to_all
            faultDuration: 1m
        """)
    assert fault.kind == "network_delay"
    assert fault.direction == "both"
    assert approximation(fault) == [
        "QA means: Chaos Mesh NetworkChaos delay: packets wait 1s",
        "here: tc netem delay without correlation (QA's correlation 25.0% is not applied)"]


def test_a_parameter_given_in_the_type_and_as_a_key_is_an_error() -> None:
    message = error_of("""\
        cases:
          - name: twice
            faultType: network_latency(latency:1s)
            latency: 2s
            selector: tikv
            faultDuration: 1m
        """)
    assert message.startswith("qa.yaml:3: latency is given twice")


def test_markers_take_the_parametric_form_and_recovery() -> None:
    fault = fault_from_marker(("network_latency(latency:1s)",),
                              {"selector": "pd(leader)", "duration": "1m", "recovery": "2m"},
                              SourceRef(nodeid="t"))
    assert fault.kind == "network_delay"
    assert fault.schedule.recovery == parse_duration("2m")


# ---- recoveryTime ---------------------------------------------------------------------

def test_recovery_time_on_a_one_shot_case() -> None:
    (case,) = load("""\
        cases:
          - name: once
            warmUpTime: 1m
            faultType: kill
            selector: pd(leader)
            faultDuration: 1m
            recoveryTime: 5m
        """)
    assert case.faults[0].schedule.recovery == parse_duration("5m")
    plan = render_plan(case)
    assert "one-shot at 1m for 1m, then 5m to recover" in plan
    assert "    recovery: 2m -> 7m (the default stall window grows by 5m)" in plan


def test_recovery_time_on_a_periodic_case_is_an_error() -> None:
    message = error_of("""\
        cases:
          - name: periodic
            faultType: kill
            selector: pd(leader)
            period: "@every 5m"
            faultDuration: 1m
            faultTotalRunTime: 10m
            recoveryTime: 5m
        """)
    assert message.startswith("qa.yaml:8: recoveryTime applies to one-shot faults")


# ---- tidbGlobalVariables -----------------------------------------------------------------

def test_global_variable_items() -> None:
    assert global_variable_statement("tidb_enable_dist_task='on'") == \
        "SET GLOBAL tidb_enable_dist_task='on'"
    assert global_variable_statement("set global tidb_ddl_reorg_worker_cnt = 16;") == \
        "set global tidb_ddl_reorg_worker_cnt = 16"
    assert global_assignment("SET GLOBAL tidb_enable_dist_task='on'") == \
        ("tidb_enable_dist_task", "on")
    for bad in ("enable dist task", "", 3):
        with pytest.raises(FieldError):
            global_variable_statement(bad)


def test_global_variables_flow_mapping_space_before_colon_and_case_level() -> None:
    text = """\
        tidbGlobalVariables : {
            "beforeCase": [ tidb_enable_dist_task='on' ],
            afterCase: [ "SET GLOBAL tidb_enable_dist_task = 'off'" ]
        }
        cases:
          - name : "first"
            tidbGlobalVariables: {beforeCase: [tidb_ddl_reorg_worker_cnt=8]}
          - name: second
        """
    first, second = load(text)
    assert first.global_variables.before == ("SET GLOBAL tidb_enable_dist_task='on'",
                                             "SET GLOBAL tidb_ddl_reorg_worker_cnt=8")
    assert first.global_variables.after == ("SET GLOBAL tidb_enable_dist_task = 'off'",)
    assert second.global_variables.before == ("SET GLOBAL tidb_enable_dist_task='on'",)
    assert first.global_variables.source.line == 7


def test_global_variables_secrets_are_redacted_in_the_plan() -> None:
    (case,) = load("""\
        tidbGlobalVariables:
          beforeCase: ["tidb_cloud_storage_uri='s3://tmp?access-key=AKIA123&secret-access-key=s3cr3t'"]
        cases:
          - name: c
        """)
    plan = render_plan(case)
    assert "s3cr3t" not in plan
    assert "AKIA123" not in plan
    assert "before the case: SET GLOBAL tidb_cloud_storage_uri='s3://tmp?access-key=xxxxxx" in plan


@pytest.mark.parametrize(("text", "words"), [
    ("tidbGlobalVariables: {beforCase: [a=1]}\ncases: [{name: c}]\n",
     "qa.yaml:1: unknown key 'beforCase' in tidbGlobalVariables (did you mean 'beforeCase'?)"),
    ("tidbGlobalVariables: {beforeCase: [enable it]}\ncases: [{name: c}]\n",
     "qa.yaml:1: beforeCase: 'enable it' is neither name=value"),
    ("tidbGlobalVariables: {beforeCase: tidb_x=1}\ncases: [{name: c}]\n",
     "qa.yaml:1: beforeCase must be a list"),
])
def test_bad_global_variables(text: str, words: str) -> None:
    assert error_of(text).startswith(words)


# ---- importInto with QA's cmd -----------------------------------------------------------

@pytest.mark.parametrize(("cmd", "db", "table", "source"), [
    ("import into user_data1 from 's3://b/x.*.csv?access-key=a' WITH DETACHED,skip_rows=1",
     None, "user_data1", "s3://b/x.*.csv?access-key=a"),
    ("IMPORT INTO `imp`.`t 1` (a, @b) SET c = @b FROM \"/import/t.csv\"", "imp", "t 1",
     "/import/t.csv"),
    ("import into d.t from select * from s.t", "d", "t", None),
])
def test_import_cmd_targets(cmd: str, db: str | None, table: str, source: str | None) -> None:
    target = parse_import_cmd(cmd)
    assert (target.db, target.table, target.source) == (db, table, source)


def test_import_cmd_is_not_an_import() -> None:
    with pytest.raises(FieldError, match="must be an IMPORT INTO"):
        parse_import_cmd("load data infile 'x' into table t")


def test_import_into_cmd_job() -> None:
    (case,) = load("""\
        cases:
          - name: imp
            importInto:
              - db: "importtest"
                schema: "CREATE TABLE `user_data1` (
                  `uid` bigint(20) NOT NULL
                  );"
                cmd: "import into user_data1 from 's3://brie/x.csv?access-key=ak\\u0026secret-access-key=sk' WITH DETACHED,skip_rows=1"
                timeout: 120m
                crc32Checksum: 3582177512
        """)
    (job,) = case.jobs
    assert isinstance(job, ImportIntoJob)
    assert (job.db, job.table, job.crc32_checksum) == ("importtest", "user_data1", 3582177512)
    assert job.cmd == ("import into user_data1 from 's3://brie/x.csv?access-key=ak&"
                       "secret-access-key=sk' WITH DETACHED,skip_rows=1")
    assert job.create_table == "CREATE TABLE `user_data1` ( `uid` bigint(20) NOT NULL )"
    assert job.source_uri == "s3://brie/x.csv?access-key=ak&secret-access-key=sk"
    plan = render_plan(case)
    assert "sk'" not in plan
    assert "=ak" not in plan
    assert "secret-access-key=xxxxxx' WITH DETACHED,skip_rows=1" in plan


@pytest.mark.parametrize(("entry", "words"), [
    ("{db: d, cmd: \"import into t from '/import/t.csv'\", source: /import/t.csv, timeout: 1m}",
     "source and cmd exclude each other"),
    ("{db: d, cmd: \"import into t from '/import/t.csv'\", table: u, timeout: 1m}",
     "table 'u' differs from the table of cmd ('t')"),
    ("{db: d, cmd: \"insert into t values (1)\", timeout: 1m}", "cmd must be an IMPORT INTO"),
    ("{db: d, cmd: \"import into t from '/import/t.csv'\", timeout: 1m, schema: x, "
     "createTable: y}", "schema and createTable are the same thing"),
    ("{db: d, cmd: \"import into t from '/import/t.csv'\", timeout: 1m, "
     "crc32Checksum: 18446744073709551616}", "crc32Checksum must be below 2**64"),
    ("{db: d, cmd: \"import into t from '/import/t.csv'\", timeout: 1m, crc32Checksum: -1}",
     "crc32Checksum must be at least 0"),
    ("{db: d, cmd: \"import into t from 's3://b/t.csv'\", timeout: 1m, generate: {rows: 9}}",
     "generate writes into /import"),
])
def test_bad_import_into_cmd_jobs(entry: str, words: str) -> None:
    message = error_of(f"cases:\n  - name: c\n    importInto:\n      - {entry}\n")
    assert message.startswith("qa.yaml:4: "), message
    assert words in message


def test_a_qualified_cmd_table_names_its_own_database() -> None:
    (case,) = load("""\
        cases:
          - name: c
            importInto:
              - {db: d, cmd: "import into other.t from '/import/t.*.csv' with skip_rows=1",
                 timeout: 1m, generate: {rows: 10, files: 2}}
        """)
    (job,) = case.jobs
    assert (job.db, job.table) == ("other", "t")
    assert isinstance(job, ImportIntoJob)
    assert job.generated_files() == ["t.1.csv", "t.2.csv"]


# ---- QA's config list, bare lists, never silent ----------------------------------------------

CONFIG_LIST = """\
- name: config_a
  default: |
    cases:
      - name: "one"
        faultType: kill
        selector: "tikv(random)"
        faultDuration: 1m
      - name: "two"
        faultType: kill
        selector: "tidb(random)"
        faultDuration: 1m
- name: config_b
  default: |
    tag: b
    cases:
      - name: "one"
        faultType: network_partition
        selector: "pd(leader)_to_all"
        faultDuration: 1m
"""


def test_config_list_gives_one_group_per_config() -> None:
    groups = load_groups(CONFIG_LIST, "list.yaml")
    assert groups is not None
    assert [(g.config, [c.id for c in g.cases]) for g in groups] == [
        ("config_a", ["list::config_a::one", "list::config_a::two"]),
        ("config_b", ["list::config_b::one"]),
    ]
    # lines are the outer file's
    assert [c.source.line for g in groups for c in g.cases] == [4, 8, 16]
    assert groups[1].cases[0].tag == "b"


def test_an_error_inside_a_config_names_the_outer_line() -> None:
    message = error_of(CONFIG_LIST.replace('selector: "pd(leader)_to_all"',
                                           'selector: "pd(lader)_to_all"'))
    assert message.startswith("qa.yaml:18: selector 'pd(lader)_to_all'")
    message = error_of(CONFIG_LIST.replace("      - name: \"two\"", "      - name: [two"))
    assert message.startswith("qa.yaml:"), message
    assert "malformed YAML" in message


@pytest.mark.parametrize(("text", "words"), [
    (CONFIG_LIST.replace("config_b", "config_a"),
     "qa.yaml:12: duplicate config name 'config_a' (first on line 1)"),
    (CONFIG_LIST.replace("  default: |\n    tag: b", "  defualt: |\n    tag: b"),
     "qa.yaml:13: unknown key 'defualt' in a config of QA's config list (did you mean "
     "'default'?)"),
    (CONFIG_LIST + "- name: stray\n  faultType: kill\n",
     "qa.yaml:21: unknown key 'faultType' in a config of QA's config list"),
])
def test_bad_config_lists(text: str, words: str) -> None:
    assert error_of(text).startswith(words)


def test_a_bare_list_of_cases_has_no_workload() -> None:
    (case,) = load("""\
            - name: "ha_pdleader_kill"
              warmUpTime: 5m
              faultType: kill
              selector: "pd(leader)"
              faultDuration: 1m
        """, "bare.yaml")
    assert case.id == "bare::ha_pdleader_kill"
    assert case.workloads == ()
    assert case.jobs == ()


@pytest.mark.parametrize(("text", "words"), [
    # a mapping with QA keys but no cases:
    ("name: lonely\nfaultType: kill\nselector: tidb\nfaultDuration: 1m\n",
     "qa.yaml:2: this file carries QA case keys (faultType on line 2) but cannot be read as "
     "cases: its top level is a mapping that looks like one case"),
    # a list whose second item is not a case
    ("- name: a\n  faultType: kill\n  selector: tidb\n  faultDuration: 1m\n- 3\n",
     "qa.yaml:5: this list item is not a case ('3')"),
    # QA keys, malformed YAML
    ("cases:\n  - name: a\n    faultType: [kill\n", "qa.yaml:4: malformed YAML"),
    # a flattened dump of a config (Go's %v of a map) is not YAML
    ("map[cases:[map[faultDuration:3m faultType:kill name:c selector:tikv(random)]]]\n",
     "qa.yaml:1: this file carries QA case keys (cases on line 1) but cannot be read as cases: "
     "its top level is a single value, not a mapping or list (a flattened dump"),
])
def test_qa_looking_files_that_are_not_cases_are_errors(text: str, words: str) -> None:
    assert error_of(text).startswith(words), error_of(text)


@pytest.mark.parametrize("text", [
    "apiVersion: apps/v1\nkind: Deployment\nspec:\n  selector:\n    matchLabels: {app: x}\n",
    "database: {host: x}\n",
    "- name: a\n  value: 1\n",
    "# faultType: kill\nkey: value\n",
    "  # a note on warmUpTime: 1m\nkey: value\n",
    "myfaultType: x\n",
    "key: [oops\n",
])
def test_yaml_without_qa_keys_is_not_a_case_file(text: str) -> None:
    assert not looks_like_case_file(text)
    assert load_text(text, "other.yaml") is None


@pytest.mark.parametrize("text", [
    "cases:\n", "  faultType: kill\n", "- warmUpTime: 1m\n", '"faultType" : kill\n',
    "tidbGlobalVariables : {}\n", "- {name: c, faultType: kill}\n",
    '{"cases": [{"name": "c"}]}\n', "x: map[cases:[map[name:c]]]\n",
])
def test_qa_signal_keys(text: str) -> None:
    assert looks_like_case_file(text)


def test_a_flow_style_bare_list_is_read() -> None:
    (case,) = load('- {name: c, faultType: kill, selector: "tidb(random)", faultDuration: 1m}\n')
    assert case.faults[0].kind == "kill"


def test_a_config_may_hold_its_case_file_as_a_mapping() -> None:
    groups = load_groups(textwrap.dedent("""\
        - name: inline
          default:
            cases:
              - {name: c, faultType: kill, selector: "tidb(random)", faultDuration: 1m}
        """), "inline.yaml")
    assert groups is not None
    assert [c.id for g in groups for c in g.cases] == ["inline::inline::c"]
    assert groups[0].cases[0].source.line == 4
