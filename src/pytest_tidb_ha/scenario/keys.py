"""Every key of the case language, in one table (one home for each key).

The YAML loader takes each mapping's allowed keys from :data:`SECTIONS`, the
never-silent collection check takes its QA signal keys from :data:`QA_SIGNAL_KEYS`,
and the JSON Schema of case files (``pytest_tidb_ha.schema``) is generated from the
same rows -- each key's ``kind`` (its JSON type), ``doc`` (the editor's hover text),
``choices`` (an enum) and the facts below -- so the three cannot drift apart. A new
key is one row here plus ``python -m pytest_tidb_ha schema > .../case.schema.json``.

``origin`` says who writes the key: ``qa`` -- TiDB's QA harness (seen in public
pingcap/tidb issues, listed in ``issues``), ``ext`` -- this plugin's extension.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Literal

from .model import IMPORT_STEPS, JOB_STATES, SCHEMA_STATES

#: What a key holds. The scalar kinds are checked by the loader's converters and
#: described by the schema's kind table; ``mapping`` and ``list`` name what they hold
#: in :attr:`Key.of`.
Kind = Literal[
    "string",  # non-empty text (a number is read as its text)
    "name",  # a case or config name: part of test ids, so no '::', '/', '[' or ']'
    "sql",  # an SQL statement as text
    "global_variable",  # `name=value` or a whole `SET GLOBAL ...` statement
    "integer", "boolean",
    "on_off",  # on/off (YAML 1.1 reads them as booleans), true/false
    "duration", "period",
    "percent",  # 30% or 30: above 0, at most 100
    "size",  # bytes: 10MB, 512MiB, a bare number (scenario/sizes.py)
    "rate",  # bits per second as tc writes them: 1mbit, 500kbit, 10MB/s
    "port",  # a TCP port number, 1..65535
    "interval",  # SHORTEST..LONGEST, two durations (10s..60s) or a two-item list
    "choice",  # one of Key.choices
    "selector", "fault_type",
    "error_codes",  # "all", MySQL error codes (a list or "1062,8028")
    "marker",  # a pytest marker name
    "regex",
    "scalar",  # any single value (string, number, true/false)
    "case_file",  # a case file (or bare list of cases) as a string, or written inline
    "mapping",  # the keys of the section named by Key.of
    "list",  # items of the kind, or mappings of the section, named by Key.of
    "any",  # not described yet: the schema publishes "any value" (keep unused)
]


@dataclass(frozen=True)
class Key:
    name: str
    kind: Kind
    doc: str
    origin: Literal["qa", "ext"] = "qa"
    choices: tuple[str, ...] = ()
    issues: tuple[int, ...] = ()  # public pingcap/tidb issues whose QA files use the key
    #: ``list``: what each item is, ``mapping``: whose keys it holds -- a section of
    #: :data:`SECTIONS` or a :data:`Kind`.
    of: str = ""
    #: ``integer``: the least value; ``list``: the least number of items;
    #: ``duration``: 0 lets zero through (otherwise a duration must be longer than zero).
    minimum: int | None = None
    maximum: int | None = None  # ``integer``: the greatest value
    required: bool = False  # the mapping must have this key ...
    unless: str = ""  # ... unless it has this one instead
    #: keys that must be given with this one; ``a|b``: one of them at least
    requires: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()  # keys that must not be given with this one


WORKLOAD_TYPES = ("sysbench",)
SUBTYPES = ("oltp_read_write", "oltp_read_only", "oltp_write_only", "oltp_point_select",
            "oltp_insert", "oltp_update_index", "oltp_update_non_index", "oltp_delete")
JOB_TYPES = ("ingest", "txn")
OUTCOMES = ("success", "success_or_sensible_error")
IMPORT_FORMATS = ("csv", "sql", "parquet")

_SEEDS = (48303, 48546)
_GLOBAL_VARIABLES = Key(
    "tidbGlobalVariables", "mapping",
    "SET GLOBAL statements: beforeCase (before the workload starts), afterCase (after the case); "
    "each item `name=value` or a whole SET statement", issues=(47125,), of="tidbGlobalVariables")
#: A fault key needs a kind: ``faultType`` or a ``faultTypes`` mix (either one).
_NEEDS_FAULT = ("faultType|faultTypes",)

#: Fault keys shared by a case's inline fault and a ``faults:`` entry. Which parameters
#: each fault kind takes is ``build.FAULT_PARAMS`` (a fact of the kinds, not of the keys).
_FAULT = (
    Key("faultType", "fault_type", "what breaks: a plain kind (kill, network_partition, ...) or "
        "QA's parametric form name(key:value,...)", issues=(*_SEEDS, 48204, 48206)),
    Key("selector", "selector", "which nodes: group[(role|quantifier)][_to_group[(...)]]",
        issues=(*_SEEDS, 47954, 48206), requires=_NEEDS_FAULT),
    Key("period", "period", "a window opens every period (`@every 5m`)", issues=_SEEDS,
        requires=(*_NEEDS_FAULT, "faultTotalRunTime")),
    Key("faultDuration", "duration", "how long each window lasts", issues=_SEEDS, minimum=0,
        requires=_NEEDS_FAULT),
    Key("faultTotalRunTime", "duration", "keep opening windows while they start before "
        "warmUpTime + this", issues=_SEEDS, requires=(*_NEEDS_FAULT, "period|schedule")),
    Key("recoveryTime", "duration", "one-shot faults: time the cluster gets to recover after "
        "the window closes (the default stall window grows by it)", minimum=0,
        requires=_NEEDS_FAULT, excludes=("period",)),
    Key("latency", "duration", "network_delay / io_delay: added latency", "ext",
        requires=_NEEDS_FAULT),
    Key("jitter", "duration", "network_delay: latency jitter", "ext", minimum=0,
        requires=_NEEDS_FAULT),
    Key("loss", "percent", "network_loss: share of packets dropped (30%)", "ext",
        requires=_NEEDS_FAULT),
    Key("direction", "choice", "network faults: both | to | from", "ext",
        choices=("both", "to", "from"), requires=_NEEDS_FAULT),
    Key("when", "mapping", "start the schedule when a job is first seen in a state: "
        "{job: 1, state|schemaState|importStep|progress: ...}; every time of the fault then "
        "counts from that observation", "ext", of="when", requires=_NEEDS_FAULT),
    Key("schedule", "choice", "periodic (default: period / one-shot) or random (gaps drawn "
        "from interval, seeded by --ha-seed)", "ext", choices=("periodic", "random"),
        requires=_NEEDS_FAULT),
    Key("interval", "interval", "schedule: random: SHORTEST..LONGEST gap between windows "
        "(10s..60s)", "ext", requires=("schedule",)),
    Key("faultTypes", "list", "instead of faultType: several kinds, one picked at random "
        "(seeded) for each window", "ext", of="fault_type", minimum=1, excludes=("faultType",)),
    Key("free", "size", "disk_full: bytes left free on the node's data volume (10MB; "
        "default 0)", "ext", requires=_NEEDS_FAULT),
    Key("diskSize", "size", "disk_full: size of the node's data volume, created with "
        "that limit for the case (default 256MiB)", "ext", requires=_NEEDS_FAULT),
    Key("rate", "rate", "bandwidth: egress rate towards the peers (1mbit, 500kbit, 10MB/s)",
        "ext", requires=_NEEDS_FAULT),
    Key("ports", "list", "network_partition: cut only connections using these TCP ports "
        "([2379])", "ext", of="port", minimum=1, requires=_NEEDS_FAULT),
    Key("shape", "choice", "network_partition: cut the selected nodes into halves, a "
        "bridge or a majorities ring (Jepsen's grudges)", "ext",
        choices=("halves", "bridge", "majorities_ring"), requires=_NEEDS_FAULT),
)

#: IMPORT INTO ... WITH options (TiDB docs: IMPORT INTO), lower-case as in the seeds.
_IMPORT_OPTIONS = (
    Key("character_set", "scalar", "the source files' character set", "ext"),
    Key("fields_terminated_by", "scalar", "CSV field separator", "ext"),
    Key("fields_enclosed_by", "scalar", "CSV field quote", "ext"),
    Key("fields_escaped_by", "scalar", "CSV escape character", "ext"),
    Key("fields_defined_null_by", "scalar", "CSV text of NULL", "ext"),
    Key("lines_terminated_by", "scalar", "CSV line terminator", "ext"),
    Key("skip_rows", "integer", "header rows to skip", "ext", minimum=0),
    Key("split_file", "boolean", "split large CSV files into chunks", "ext"),
    Key("disk_quota", "scalar", "local sort disk quota (10GiB)", "ext"),
    Key("disable_tikv_import_mode", "boolean", "keep TiKV out of import mode", "ext"),
    Key("thread", "integer", "import concurrency", "ext", minimum=1),
    Key("max_write_speed", "scalar", "write speed limit per TiKV (100MiB)", "ext"),
    Key("checksum_table", "scalar", "required | optional | off", "ext"),
    Key("detached", "boolean", "return at once; the job runs in the background", "ext"),
    Key("cloud_storage_uri", "scalar", "global sort storage URI", "ext"),
    Key("disable_precheck", "boolean", "skip the pre-checks", "ext"),
)
IMPORT_OPTIONS = tuple(k.name for k in _IMPORT_OPTIONS)

SECTIONS: dict[str, tuple[Key, ...]] = {
    "file": (
        Key("tag", "string", "free text shown in reports", issues=_SEEDS),
        Key("workloads", "list", "background workloads shared by every case", issues=_SEEDS,
            of="workload"),
        _GLOBAL_VARIABLES,
        Key("cases", "list", "the cases; one test each", issues=_SEEDS, of="case", minimum=1,
            required=True),
    ),
    "config": (  # an item of QA's config list: `- name: x` / `default: |` (a case file)
        Key("name", "name", "the config's name; items are <file>::<name>::<case>",
            issues=(48064,), required=True),
        Key("default", "case_file", "the case file, as a string (`default: |`) or inline",
            issues=(48064,), required=True),
    ),
    "workload": (
        Key("type", "choice", "workload kind", choices=WORKLOAD_TYPES, issues=_SEEDS),
        Key("storage", "string", "where QA keeps prepared data (informative)", issues=_SEEDS),
        Key("db", "string", "database (default sbtest)", issues=_SEEDS),
        Key("tableNum", "integer", "tables (default 1)", issues=_SEEDS, minimum=1),
        Key("tableSize", "integer", "rows per table, x --ha-workload-scale", issues=_SEEDS,
            minimum=1),
        Key("threads", "integer", "client threads", issues=_SEEDS, minimum=1),
        Key("subType", "choice", "sysbench test", choices=SUBTYPES, issues=_SEEDS),
        Key("ignoreErrors", "error_codes", '"all", a list of MySQL error codes, or "1062,8028"',
            issues=_SEEDS),
    ),
    "case": (
        Key("name", "name", "unique in the file", issues=_SEEDS, required=True),
        Key("warmUpTime", "duration", "jobs (and faults) start here", issues=_SEEDS, minimum=0),
        *_FAULT,
        Key("faults", "list", "several faults, each with its own warmUpTime", "ext", of="fault"),
        Key("ddl", "mapping", "addIndex (and importInto) jobs", issues=_SEEDS, of="ddl"),
        Key("importInto", "list", "IMPORT INTO jobs", issues=(46735, 47684), of="importInto"),
        _GLOBAL_VARIABLES,
        Key("distTask", "on_off", "tidb_enable_dist_task for the case", "ext"),
        Key("expect", "mapping", "what must hold", "ext", of="expect"),
        Key("markers", "list", "pytest markers for the case's test", "ext", of="marker"),
        Key("topology", "mapping", "minimum pd/tikv/tidb counts", "ext", of="topology"),
        Key("version", "string", "TiDB version for the case", "ext"),
    ),
    "fault": (Key("warmUpTime", "duration", "this fault's first window", "ext", minimum=0),
              replace(_FAULT[0], required=True, unless="faultTypes"), *_FAULT[1:]),
    "ddl": (
        Key("addIndex", "list", "ADD INDEX jobs", issues=_SEEDS, of="addIndex"),
        Key("importInto", "list", "IMPORT INTO jobs (also accepted at case level)", "ext",
            of="importInto"),
    ),
    "addIndex": (
        Key("db", "string", "database (default: the first workload's)", issues=_SEEDS),
        Key("table", "string", "table", issues=_SEEDS, required=True),
        Key("timeout", "duration", "per run", issues=_SEEDS, required=True),
        Key("times", "integer", "runs one after another (default 1)", issues=_SEEDS,
            minimum=1),
        Key("index_col_name", "string", "the indexed column", issues=_SEEDS, required=True),
        Key("job_type", "choice", "ingest | txn (default ingest)", choices=JOB_TYPES,
            issues=_SEEDS),
        Key("admin_check", "boolean", "ADMIN CHECK TABLE after success", issues=_SEEDS),
        Key("count_check", "boolean", "index count == row count after success", issues=_SEEDS),
        Key("distTask", "on_off", "tidb_enable_dist_task for this job", "ext"),
    ),
    "importInto": (
        Key("db", "string", "database; QA's cmd runs in it", issues=(47684,)),
        Key("table", "string", "target table (with cmd: taken from the statement)", "ext",
            required=True, unless="cmd"),
        Key("schema", "sql", "CREATE TABLE run in db before the first import", issues=(47684,)),
        Key("cmd", "sql", "the IMPORT INTO statement, run as written in db", issues=(47684,),
            excludes=("source", "format", "options")),
        Key("crc32Checksum", "integer", "expected table checksum after the import: "
            "BIT_XOR(CRC32(CONCAT_WS(',', cols..., CONCAT(ISNULL(col)...))))",
            issues=(47684,), minimum=0, maximum=2**64 - 1),
        Key("source", "string", "file path or s3:// / gs:// URL (without cmd)", "ext",
            required=True, unless="cmd"),
        Key("format", "choice", "csv | sql | parquet (without cmd)", "ext",
            choices=IMPORT_FORMATS),
        Key("options", "mapping", "IMPORT INTO ... WITH options (without cmd)", "ext",
            of="importInto.options"),
        Key("timeout", "duration", "per run", issues=(47684,), required=True),
        Key("times", "integer", "runs one after another (default 1)", "ext", minimum=1),
        Key("generate", "mapping", "write CSV test data into /import first", "ext",
            of="generate"),
        Key("createTable", "sql", "same as schema", "ext", excludes=("schema",)),
        Key("distTask", "on_off", "tidb_enable_dist_task for this job", "ext"),
    ),
    "importInto.options": _IMPORT_OPTIONS,
    "generate": (
        Key("rows", "integer", "CSV rows, x --ha-workload-scale", "ext", minimum=1,
            required=True),
        Key("files", "integer", "files; '*' in the source is replaced by 1..files", "ext",
            minimum=1),
    ),
    "expect": (
        Key("outcome", "choice", "what a job may end in", "ext", choices=OUTCOMES),
        Key("allowErrors", "list", "regexes added to the sensible-error allow-list", "ext",
            of="regex"),
        Key("stallWindow", "duration", "fault-free time without progress that means stuck",
            "ext"),
        Key("cancelAfter", "duration", "cancel each job after this; it must then stop", "ext"),
        Key("allowFaultErrors", "boolean", "a fault window that was not applied (or not "
            "healed) does not fail the test", "ext"),
    ),
    "when": (
        Key("job", "integer", "the n-th job run of the case, in plan order (default 1)", "ext",
            minimum=1),
        Key("state", "choice", "the job's state (DDL STATE or IMPORT INTO status)", "ext",
            choices=JOB_STATES),
        Key("schemaState", "choice", "ADD INDEX schema state", "ext", choices=SCHEMA_STATES),
        Key("importStep", "choice", "IMPORT INTO step (Phase)", "ext", choices=IMPORT_STEPS),
        Key("progress", "percent", "share of the table's rows processed, reached (30%)", "ext"),
    ),
    "topology": (
        Key("pd", "integer", "PD nodes at least", "ext", minimum=1),
        Key("tikv", "integer", "TiKV nodes at least", "ext", minimum=1),
        Key("tidb", "integer", "TiDB nodes at least", "ext", minimum=1),
    ),
    "tidbGlobalVariables": (
        Key("beforeCase", "list", "run before the case's workload starts", issues=(47125,),
            of="global_variable"),
        Key("afterCase", "list", "run after the case, whatever its outcome (not seen in "
            "public QA files; accepted for symmetry)", of="global_variable"),
    ),
}

#: Keys whose presence marks a YAML file as QA's: such a file is collected and, if it
#: cannot be read as cases, fails collection instead of being skipped. ``selector`` and
#: ``name`` alone are not signals: Kubernetes manifests are full of them.
QA_SIGNAL_KEYS: tuple[str, ...] = (
    "faultType", "warmUpTime", "faultDuration", "faultTotalRunTime", "recoveryTime",
    "tidbGlobalVariables", "importInto", "addIndex", "crc32Checksum", "cases",
)


@functools.cache  # the loader asks for every mapping it reads: 10,000 cases, 40,000 asks
def names(section: str) -> tuple[str, ...]:
    """The allowed keys of one kind of mapping, in table order."""
    return tuple(k.name for k in SECTIONS[section])


def key(section: str, name: str) -> Key:
    for k in SECTIONS[section]:
        if k.name == name:
            return k
    raise KeyError(f"{section}.{name}")
