"""The JSON Schema of QA case files, generated from the case language's own tables.

Editors (VS Code's YAML extension, JetBrains IDEs) validate a YAML file against
a JSON Schema as QA types: an unknown key, a misspelt ``faultType`` or a
selector group that does not exist is underlined before anything runs. The
schema is *generated* from the tables the loader itself checks against
(``scenario.loader``'s key tuples and choices, the fault kinds and their
parameters in ``scenario.build``, the selector groups in
``scenario.selectors``), so a key the language gains appears in the schema by
regenerating it, never by editing JSON by hand:

    python -m pytest_tidb_ha schema > src/pytest_tidb_ha/case.schema.json

The committed ``case.schema.json`` is checked against this generator by the
test suite. The loader stays the judge (it also checks what a schema cannot:
``faultDuration`` longer than ``period``, selectors the topology can never
match); the schema is the editor's early warning.

What each *key* holds is :data:`KEY_SCHEMAS`, by key name (a name means the
same everywhere in the language: ``timeout`` is a duration wherever it
appears). A key the tables have and :data:`KEY_SCHEMAS` lacks is published
as "any value" and listed by :func:`untyped_keys` (a test keeps that empty).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .scenario import build, loader, selectors
from .scenario.model import FAULT_KINDS

SCHEMA_FILE = "case.schema.json"

#: A Go-style duration as ``scenario.durations`` reads it, or a bare number of seconds.
_DURATION_TEXT = r"(?:\d+(?:\.\d+)?|\.\d+)(?:ms|s|m|h)"
DURATION: dict[str, Any] = {
    "description": "a duration: 500ms, 90s, 1m, 1h30m, 1.5m (units ms, s, m, h); "
                   "a bare number is seconds",
    "oneOf": [
        {"type": "string", "pattern": rf"^\s*(?:{_DURATION_TEXT})+\s*$|^\s*\d+(?:\.\d+)?\s*$"},
        {"type": "number", "minimum": 0},
    ],
}
PERIOD: dict[str, Any] = {
    "description": "how often a fault window starts: '@every 5m' or a duration",
    "oneOf": [
        {"type": "string", "pattern": rf"^\s*@every\s+(?:{_DURATION_TEXT})+\s*$"},
        {"$ref": "#/definitions/duration"},
    ],
}
ON_OFF: dict[str, Any] = {
    "description": "on or off (true/false too)",
    "oneOf": [{"type": "boolean"}, {"type": "string", "pattern": "^([Oo][Nn]|[Oo][Ff][Ff])$"}],
}


def _selector_schema() -> dict[str, Any]:
    """The selector grammar of ``scenario.selectors`` as one regular expression."""
    groups = "|".join(re.escape(g) for g in selectors.GROUPS)
    aliases = "|".join(re.escape(a) for a in selectors._ALIASES)  # the loader's own table
    node = selectors._NODE.pattern.strip("^$")  # the loader's own table
    side = rf"(?:{aliases}|{node}|(?:{groups})(?:\((?:random|one|all|\d+%?)\))?)"
    sep = re.escape(selectors.SEPARATOR)
    return {
        "type": "string",
        "description": "which nodes the fault hits: GROUP[(random|one|all|N|N%)], a node "
                       f"name like tikv-1, or SOURCE{selectors.SEPARATOR}TARGET for network "
                       f"faults; groups: {', '.join(selectors.GROUPS)}, tidb(ddl_owner)",
        "pattern": rf"^\s*{side}(?:{sep}{side})?\s*$",
    }


def _enum(values: Iterable[str], description: str) -> dict[str, Any]:
    return {"enum": list(values), "description": description}


def _integer(minimum: int, description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "description": description}


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "description": description}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/definitions/{name}"}


def _list_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


#: What each key of the language holds, by name (the same name means the same thing
#: in every mapping). Nested mappings refer to their definition.
KEY_SCHEMAS: dict[str, dict[str, Any]] = {
    # the file
    "tag": _string("a label for the file's cases"),
    "workloads": _list_of("workload"),
    "cases": {**_list_of("case"), "minItems": 1},
    # a workload
    "type": _enum(loader.WORKLOAD_TYPES, "the workload"),
    "storage": _string("where QA's harness restores the data from (informational)"),
    "db": _string("database name"),
    "tableNum": _integer(1, "number of tables"),
    "tableSize": _integer(1, "rows per table (before --ha-workload-scale)"),
    "threads": _integer(1, "client threads (before --ha-workload-scale)"),
    "subType": _enum(loader.SUBTYPES, "the sysbench test"),
    "ignoreErrors": {
        "description": "'all', or MySQL error codes (a list or a comma list) the workload "
                       "ignores",
        "oneOf": [{"const": "all"}, {"type": "integer"},
                  {"type": "array", "items": {"type": ["integer", "string"]}},
                  {"type": "string", "pattern": r"^\s*\d+(\s*,\s*\d+)*\s*$"}],
    },
    # a case and its faults
    "name": {"type": "string", "minLength": 1, "pattern": r"^(?!.*::)[^/\[\]]+$",
             "description": "the case's test id (no '::', '/', '[' or ']')"},
    "warmUpTime": {**_ref("duration"), "description": "when jobs (and the first fault "
                                                       "window) start, from t0"},
    "faultType": _enum(FAULT_KINDS, "the fault"),
    "selector": _ref("selector"),
    "period": _ref("period"),
    "faultDuration": {**_ref("duration"), "description": "how long each window lasts"},
    "faultTotalRunTime": {**_ref("duration"), "description": "how long windows keep "
                                                             "starting (with period)"},
    "latency": {**_ref("duration"), "description": "network or IO delay"},
    "jitter": {**_ref("duration"), "description": "variation of the delay"},
    "loss": {"description": "packet loss, 30% or 30",
             "oneOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                       {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%?\s*$"}]},
    "direction": _enum(build.DIRECTIONS, "which traffic a network fault affects"),
    "faults": _list_of("fault"),
    "ddl": _ref("ddl"),
    "importInto": _list_of("importInto"),
    "distTask": {**ON_OFF, "description": "tidb_enable_dist_task: on or off"},
    "expect": _ref("expect"),
    "markers": {"type": "array", "description": "pytest markers of the case's test",
                "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}},
    "topology": _ref("topology"),
    "version": _string("TiDB version of the case's cluster (images pingcap/*:VERSION)"),
    # jobs
    "addIndex": _list_of("addIndex"),
    "table": _string("table name"),
    "timeout": {**_ref("duration"), "description": "how long one run of the job may take"},
    "times": _integer(1, "runs, one after another"),
    "index_col_name": _string("the column to index"),
    "job_type": _enum(loader.JOB_TYPES, "ADD INDEX reorganisation"),
    "admin_check": {"type": "boolean", "description": "ADMIN CHECK TABLE after the job"},
    "count_check": {"type": "boolean", "description": "compare the index's row count"},
    "source": _string("IMPORT INTO source: a URL (s3://..., gs://...) or /import/<file or "
                      "glob>"),
    "format": _enum(loader.IMPORT_FORMATS, "the source files' format"),
    "options": _ref("importOptions"),
    "generate": _ref("generate"),
    "createTable": _string("SQL run before the first import (CREATE TABLE ...)"),
    "rows": _integer(1, "CSV rows to write (before --ha-workload-scale)"),
    "files": _integer(1, "files to split them into"),
    # expectations
    "outcome": _enum(loader.OUTCOMES, "what the jobs must end as"),
    "allowErrors": {"type": "array", "items": {"type": "string", "minLength": 1},
                    "description": "regular expressions of errors that count as sensible"},
    "stallWindow": {**_ref("duration"), "description": "fault-free time without progress "
                                                       "that proves a job stuck"},
    "cancelAfter": {**_ref("duration"), "description": "cancel every job after this long"},
    # topology
    "pd": _integer(1, "PD nodes"),
    "tikv": _integer(1, "TiKV nodes"),
    "tidb": _integer(1, "TiDB nodes"),
}

#: IMPORT INTO ... WITH options that are not free scalars.
OPTION_SCHEMAS: dict[str, dict[str, Any]] = {
    "skip_rows": {"type": "integer", "minimum": 0},
    "thread": {"type": "integer", "minimum": 1},
    "detached": {"type": "boolean"},
    "disable_tikv_import_mode": {"type": "boolean"},
    "disable_precheck": {"type": "boolean"},
    "split_file": {"type": "boolean"},
}
_SCALAR: dict[str, Any] = {"type": ["string", "number", "boolean"]}

#: Each mapping of the language: definition name -> (its key table, required keys).
MAPPINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "workload": (loader.WORKLOAD_KEYS, ()),
    "case": (loader.CASE_KEYS, ("name",)),
    "fault": (loader.FAULT_ENTRY_KEYS, ("faultType",)),
    "ddl": (loader.DDL_KEYS, ()),
    "addIndex": (loader.ADD_INDEX_KEYS, ("table", "index_col_name", "timeout")),
    "importInto": (loader.IMPORT_KEYS, ("table", "source", "timeout")),
    "generate": (loader.GENERATE_KEYS, ("rows",)),
    "expect": (loader.EXPECT_KEYS, ()),
    "topology": (loader.TOPOLOGY_KEYS, ()),
}


def untyped_keys() -> list[str]:
    """Keys of the language's tables that :data:`KEY_SCHEMAS` does not describe."""
    keys = {k for table, _ in MAPPINGS.values() for k in table} | set(loader.TOP_KEYS)
    return sorted(keys - set(KEY_SCHEMAS))


def _key_schema(key: str) -> dict[str, Any]:
    return KEY_SCHEMAS.get(key, {"description": f"{key} (no type published yet)"})


def _object(keys: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "properties": {k: _key_schema(k) for k in keys},
        "additionalProperties": False,
    }
    if required:
        out["required"] = list(required)
    return out


def _fault_rules() -> list[dict[str, Any]]:
    """Per fault kind: the parameters it takes and needs (``build.FAULT_PARAMS``)."""
    rules = []
    for kind in FAULT_KINDS:
        allowed = build.FAULT_PARAMS.get(kind, frozenset())
        then: dict[str, Any] = {
            "properties": {p: False for p in build.ALL_PARAMS if p not in allowed}}
        needed = sorted(build.REQUIRED_PARAMS.get(kind, frozenset()))
        if needed:
            then["required"] = needed
        if kind not in build.INSTANT_FAULTS:
            then["required"] = [*then.get("required", []), build.YAML_NAMES["duration"]]
        rules.append({"if": {"properties": {"faultType": {"const": kind}},
                             "required": ["faultType"]},
                      "then": then})
    return rules


def case_schema() -> dict[str, Any]:
    """The schema of a case file (JSON Schema draft-07, what editors support best)."""
    definitions: dict[str, Any] = {
        "duration": DURATION,
        "period": PERIOD,
        "selector": _selector_schema(),
    }
    for name, (keys, required) in MAPPINGS.items():
        definitions[name] = _object(keys, required)
    names = build.YAML_NAMES  # a periodic fault needs both, a one-shot neither
    for name in ("case", "fault"):
        definitions[name]["allOf"] = _fault_rules()
        definitions[name]["dependencies"] = {names["period"]: [names["total"]],
                                             names["total"]: [names["period"]]}
    definitions["importOptions"] = {
        "type": "object",
        "description": "IMPORT INTO ... WITH options",
        "properties": {k: OPTION_SCHEMAS.get(k, _SCALAR) for k in loader.IMPORT_OPTIONS},
        "additionalProperties": False,
    }
    top = _object(loader.TOP_KEYS, ("cases",))
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "pytest-tidb-ha QA case file",
        "description": "HA cases in TiDB QA's YAML format (docs/case-format.md); generated by "
                       "`python -m pytest_tidb_ha schema`",
        **top,
        "definitions": definitions,
    }


def schema_text(schema: Mapping[str, Any] | None = None) -> str:
    """The schema as committed: two-space JSON, keys in the language's order, newline."""
    return json.dumps(case_schema() if schema is None else schema, indent=2,
                      ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """``python -m pytest_tidb_ha schema``: print the schema (no arguments)."""
    if argv:
        print("usage: python -m pytest_tidb_ha schema   (prints the case-file JSON Schema)")
        return 2
    print(schema_text(), end="")
    return 0
