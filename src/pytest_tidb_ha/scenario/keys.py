"""Every key of the case language, in one table (one home for each key).

The YAML loader takes each mapping's allowed keys from :data:`SECTIONS`, the
never-silent collection check takes its QA signal keys from :data:`QA_SIGNAL_KEYS`,
and a JSON Schema of case files can be derived from the same rows (each key's
``kind``, ``choices`` and ``doc``), so the three cannot drift apart.

``origin`` says who writes the key: ``qa`` -- TiDB's QA harness (seen in public
pingcap/tidb issues, listed in ``issues``), ``ext`` -- this plugin's extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .model import IMPORT_STEPS, JOB_STATES, SCHEMA_STATES

Kind = Literal["string", "integer", "boolean", "on_off", "duration", "period", "mapping",
               "list", "choice", "sql", "selector", "fault_type", "any"]


@dataclass(frozen=True)
class Key:
    name: str
    kind: Kind
    doc: str
    origin: Literal["qa", "ext"] = "qa"
    choices: tuple[str, ...] = ()
    issues: tuple[int, ...] = ()  # public pingcap/tidb issues whose QA files use the key


WORKLOAD_TYPES = ("sysbench",)
SUBTYPES = ("oltp_read_write", "oltp_read_only", "oltp_write_only", "oltp_point_select",
            "oltp_insert", "oltp_update_index", "oltp_update_non_index", "oltp_delete")
JOB_TYPES = ("ingest", "txn")
OUTCOMES = ("success", "success_or_sensible_error")
IMPORT_FORMATS = ("csv", "sql", "parquet")
#: IMPORT INTO ... WITH options (TiDB docs: IMPORT INTO), lower-case as in the seeds.
IMPORT_OPTIONS = ("character_set", "fields_terminated_by", "fields_enclosed_by",
                  "fields_escaped_by", "fields_defined_null_by", "lines_terminated_by",
                  "skip_rows", "split_file", "disk_quota", "disable_tikv_import_mode", "thread",
                  "max_write_speed", "checksum_table", "detached", "cloud_storage_uri",
                  "disable_precheck")

_SEEDS = (48303, 48546)
_GLOBAL_VARIABLES = Key(
    "tidbGlobalVariables", "mapping",
    "SET GLOBAL statements: beforeCase (before the workload starts), afterCase (after the case); "
    "each item `name=value` or a whole SET statement", issues=(47125,))

#: Fault keys shared by a case's inline fault and a ``faults:`` entry.
_FAULT = (
    Key("faultType", "fault_type", "what breaks: a plain kind (kill, network_partition, ...) or "
        "QA's parametric form name(key:value,...)", issues=(*_SEEDS, 48204, 48206)),
    Key("selector", "selector", "which nodes: group[(role|quantifier)][_to_group[(...)]]",
        issues=(*_SEEDS, 47954, 48206)),
    Key("period", "period", "a window opens every period (`@every 5m`)", issues=_SEEDS),
    Key("faultDuration", "duration", "how long each window lasts", issues=_SEEDS),
    Key("faultTotalRunTime", "duration", "keep opening windows while they start before "
        "warmUpTime + this", issues=_SEEDS),
    Key("recoveryTime", "duration", "one-shot faults: time the cluster gets to recover after "
        "the window closes (the default stall window grows by it)"),
    Key("latency", "duration", "network_delay / io_delay: added latency", "ext"),
    Key("jitter", "duration", "network_delay: latency jitter", "ext"),
    Key("loss", "string", "network_loss: share of packets dropped (30%)", "ext"),
    Key("direction", "choice", "network faults: both | to | from", "ext",
        choices=("both", "to", "from")),
    Key("when", "mapping", "start the schedule when a job is first seen in a state: "
        "{job: 1, state|schemaState|importStep|progress: ...}; every time of the fault then "
        "counts from that observation", "ext"),
    Key("schedule", "choice", "periodic (default: period / one-shot) or random (gaps drawn "
        "from interval, seeded by --ha-seed)", "ext", choices=("periodic", "random")),
    Key("interval", "string", "schedule: random: SHORTEST..LONGEST gap between windows "
        "(10s..60s)", "ext"),
    Key("faultTypes", "list", "instead of faultType: several kinds, one picked at random "
        "(seeded) for each window", "ext"),
    Key("free", "string", "disk_full: bytes left free on the node's data volume (10MB; "
        "default 0)", "ext"),
    Key("diskSize", "string", "disk_full: size of the node's data volume, created with "
        "that limit for the case (default 256MiB)", "ext"),
    Key("rate", "string", "bandwidth: egress rate towards the peers (1mbit, 500kbit, 10MB/s)",
        "ext"),
    Key("ports", "list", "network_partition: cut only connections using these TCP ports "
        "([2379])", "ext"),
    Key("shape", "choice", "network_partition: cut the selected nodes into halves, a "
        "bridge or a majorities ring (Jepsen's grudges)", "ext",
        choices=("halves", "bridge", "majorities_ring")),
)

SECTIONS: dict[str, tuple[Key, ...]] = {
    "file": (
        Key("tag", "string", "free text shown in reports", issues=_SEEDS),
        Key("workloads", "list", "background workloads shared by every case", issues=_SEEDS),
        _GLOBAL_VARIABLES,
        Key("cases", "list", "the cases; one test each", issues=_SEEDS),
    ),
    "config": (  # an item of QA's config list: `- name: x` / `default: |` (a case file)
        Key("name", "string", "the config's name; items are <file>::<name>::<case>",
            issues=(48064,)),
        Key("default", "string", "the case file, as a string (`default: |`)", issues=(48064,)),
    ),
    "workload": (
        Key("type", "choice", "workload kind", choices=WORKLOAD_TYPES, issues=_SEEDS),
        Key("storage", "string", "where QA keeps prepared data (informative)", issues=_SEEDS),
        Key("db", "string", "database (default sbtest)", issues=_SEEDS),
        Key("tableNum", "integer", "tables (default 1)", issues=_SEEDS),
        Key("tableSize", "integer", "rows per table, x --ha-workload-scale", issues=_SEEDS),
        Key("threads", "integer", "client threads", issues=_SEEDS),
        Key("subType", "choice", "sysbench test", choices=SUBTYPES, issues=_SEEDS),
        Key("ignoreErrors", "any", '"all", a list of MySQL error codes, or "1062,8028"',
            issues=_SEEDS),
    ),
    "case": (
        Key("name", "string", "unique in the file", issues=_SEEDS),
        Key("warmUpTime", "duration", "jobs (and faults) start here", issues=_SEEDS),
        *_FAULT,
        Key("faults", "list", "several faults, each with its own warmUpTime", "ext"),
        Key("ddl", "mapping", "addIndex (and importInto) jobs", issues=_SEEDS),
        Key("importInto", "list", "IMPORT INTO jobs", issues=(46735, 47684)),
        _GLOBAL_VARIABLES,
        Key("distTask", "on_off", "tidb_enable_dist_task for the case", "ext"),
        Key("expect", "mapping", "what must hold", "ext"),
        Key("markers", "list", "pytest markers for the case's test", "ext"),
        Key("topology", "mapping", "minimum pd/tikv/tidb counts", "ext"),
        Key("version", "string", "TiDB version for the case", "ext"),
    ),
    "fault": (Key("warmUpTime", "duration", "this fault's first window", "ext"), *_FAULT),
    "ddl": (
        Key("addIndex", "list", "ADD INDEX jobs", issues=_SEEDS),
        Key("importInto", "list", "IMPORT INTO jobs (also accepted at case level)", "ext"),
    ),
    "addIndex": (
        Key("db", "string", "database (default: the first workload's)", issues=_SEEDS),
        Key("table", "string", "table", issues=_SEEDS),
        Key("timeout", "duration", "per run", issues=_SEEDS),
        Key("times", "integer", "runs one after another (default 1)", issues=_SEEDS),
        Key("index_col_name", "string", "the indexed column", issues=_SEEDS),
        Key("job_type", "choice", "ingest | txn (default ingest)", choices=JOB_TYPES,
            issues=_SEEDS),
        Key("admin_check", "boolean", "ADMIN CHECK TABLE after success", issues=_SEEDS),
        Key("count_check", "boolean", "index count == row count after success", issues=_SEEDS),
        Key("distTask", "on_off", "tidb_enable_dist_task for this job", "ext"),
    ),
    "importInto": (
        Key("db", "string", "database; QA's cmd runs in it", issues=(47684,)),
        Key("table", "string", "target table (with cmd: taken from the statement)", "ext"),
        Key("schema", "sql", "CREATE TABLE run in db before the first import", issues=(47684,)),
        Key("cmd", "sql", "the IMPORT INTO statement, run as written in db", issues=(47684,)),
        Key("crc32Checksum", "integer", "expected table checksum after the import: "
            "BIT_XOR(CRC32(CONCAT_WS(',', cols..., CONCAT(ISNULL(col)...))))",
            issues=(47684,)),
        Key("source", "string", "file path or s3:// / gs:// URL (without cmd)", "ext"),
        Key("format", "choice", "csv | sql | parquet (without cmd)", "ext",
            choices=IMPORT_FORMATS),
        Key("options", "mapping", "IMPORT INTO ... WITH options (without cmd)", "ext"),
        Key("timeout", "duration", "per run", issues=(47684,)),
        Key("times", "integer", "runs one after another (default 1)", "ext"),
        Key("generate", "mapping", "write CSV test data into /import first", "ext"),
        Key("createTable", "sql", "same as schema", "ext"),
        Key("distTask", "on_off", "tidb_enable_dist_task for this job", "ext"),
    ),
    "importInto.options": tuple(Key(o, "any", "IMPORT INTO option", "ext")
                                for o in IMPORT_OPTIONS),
    "generate": (
        Key("rows", "integer", "CSV rows, x --ha-workload-scale", "ext"),
        Key("files", "integer", "files; '*' in the source is replaced by 1..files", "ext"),
    ),
    "expect": (
        Key("outcome", "choice", "what a job may end in", "ext", choices=OUTCOMES),
        Key("allowErrors", "list", "regexes added to the sensible-error allow-list", "ext"),
        Key("stallWindow", "duration", "fault-free time without progress that means stuck",
            "ext"),
        Key("cancelAfter", "duration", "cancel each job after this; it must then stop", "ext"),
        Key("allowFaultErrors", "boolean", "a fault window that was not applied (or not "
            "healed) does not fail the test", "ext"),
    ),
    "when": (
        Key("job", "integer", "the n-th job run of the case, in plan order (default 1)", "ext"),
        Key("state", "choice", "the job's state (DDL STATE or IMPORT INTO status)", "ext",
            choices=JOB_STATES),
        Key("schemaState", "choice", "ADD INDEX schema state", "ext", choices=SCHEMA_STATES),
        Key("importStep", "choice", "IMPORT INTO step (Phase)", "ext", choices=IMPORT_STEPS),
        Key("progress", "string", "share of the table's rows processed, reached (30%)", "ext"),
    ),
    "topology": (
        Key("pd", "integer", "PD nodes at least", "ext"),
        Key("tikv", "integer", "TiKV nodes at least", "ext"),
        Key("tidb", "integer", "TiDB nodes at least", "ext"),
    ),
    "tidbGlobalVariables": (
        Key("beforeCase", "list", "run before the case's workload starts", issues=(47125,)),
        Key("afterCase", "list", "run after the case, whatever its outcome (not seen in "
            "public QA files; accepted for symmetry)"),
    ),
}

#: Keys whose presence marks a YAML file as QA's: such a file is collected and, if it
#: cannot be read as cases, fails collection instead of being skipped. ``selector`` and
#: ``name`` alone are not signals: Kubernetes manifests are full of them.
QA_SIGNAL_KEYS: tuple[str, ...] = (
    "faultType", "warmUpTime", "faultDuration", "faultTotalRunTime", "recoveryTime",
    "tidbGlobalVariables", "importInto", "addIndex", "crc32Checksum", "cases",
)


def names(section: str) -> tuple[str, ...]:
    """The allowed keys of one kind of mapping, in table order."""
    return tuple(k.name for k in SECTIONS[section])


def key(section: str, name: str) -> Key:
    for k in SECTIONS[section]:
        if k.name == name:
            return k
    raise KeyError(f"{section}.{name}")
