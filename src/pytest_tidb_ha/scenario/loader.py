"""QA case files (YAML) -> :class:`~.model.Case` objects, with line numbers.

The format is the one QA pastes into bug reports (see ``scenarios/seeds``):
top-level ``tag``, ``workloads`` and ``cases``; the whole block may be
indented (the seeds are indented 6 spaces) and loads unchanged. We walk
``yaml.compose`` nodes rather than plain ``safe_load`` output so every
error can say ``file:line``; key names are checked strictly (a typo would
otherwise silently drop a fault) with a close-match suggestion.

Extensions, in the same camelCase style (see docs/case-format.md):
``faults:`` list, one-shot faults, fault parameters, ``importInto:`` jobs
(case level, or under ``ddl:`` beside ``addIndex``), ``distTask``,
``expect:``, ``markers:``, ``topology:``, ``version:``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

from . import build
from .errors import FieldError, ScenarioError
from .model import (
    AddIndexJob,
    Case,
    Duration,
    Expectation,
    FaultSpec,
    GenerateSpec,
    ImportIntoJob,
    JobSpec,
    SourceRef,
    Topology,
    Workload,
    frozen_map,
)

T = TypeVar("T")

TOP_KEYS = ("tag", "workloads", "cases")
WORKLOAD_KEYS = ("type", "storage", "db", "tableNum", "tableSize", "threads", "subType",
                 "ignoreErrors")
FAULT_KEYS = ("faultType", "selector", "period", "faultDuration", "faultTotalRunTime",
              "latency", "jitter", "loss", "direction")
FAULT_ENTRY_KEYS = ("warmUpTime", *FAULT_KEYS)
CASE_KEYS = ("name", "warmUpTime", *FAULT_KEYS, "faults", "ddl", "importInto", "distTask",
             "expect", "markers", "topology", "version")
DDL_KEYS = ("addIndex", "importInto")
ADD_INDEX_KEYS = ("db", "table", "timeout", "times", "index_col_name", "job_type",
                  "admin_check", "count_check", "distTask")
IMPORT_KEYS = ("db", "table", "source", "format", "options", "timeout", "times", "generate",
               "createTable", "distTask")
GENERATE_KEYS = ("rows", "files")
EXPECT_KEYS = ("outcome", "allowErrors", "stallWindow", "cancelAfter", "allowFaultErrors")
TOPOLOGY_KEYS = ("pd", "tikv", "tidb")
#: IMPORT INTO ... WITH options (docs: IMPORT INTO), lower-case as in the seeds.
IMPORT_OPTIONS = ("character_set", "fields_terminated_by", "fields_enclosed_by",
                  "fields_escaped_by", "fields_defined_null_by", "lines_terminated_by",
                  "skip_rows", "split_file", "disk_quota", "disable_tikv_import_mode", "thread",
                  "max_write_speed", "checksum_table", "detached", "cloud_storage_uri",
                  "disable_precheck")
IMPORT_FORMATS = ("csv", "sql", "parquet")
WORKLOAD_TYPES = ("sysbench",)
SUBTYPES = ("oltp_read_write", "oltp_read_only", "oltp_write_only", "oltp_point_select",
            "oltp_insert", "oltp_update_index", "oltp_update_non_index", "oltp_delete")
JOB_TYPES = ("ingest", "txn")
OUTCOMES = ("success", "success_or_sensible_error")
_CASES_LINE = re.compile(r"^\s*cases\s*:", re.MULTILINE)
_MARKER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: libyaml's composer when PyYAML has it: ~9x faster on large case files (bench/collection.py)
#: and its nodes carry the same marks. Its syntax errors point a line later than the pure
#: loader's, so a file that fails to parse is composed again by the pure loader for the message.
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Ctx:
    """The file being loaded: turns nodes into values and errors into ScenarioErrors."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.loader = yaml.SafeLoader(text)

    def ref(self, node: yaml.Node) -> SourceRef:
        return SourceRef(file=self.path, line=node.start_mark.line + 1)

    def error(self, node: yaml.Node, message: str) -> ScenarioError:
        return ScenarioError(self.ref(node), message)

    def value(self, node: yaml.Node) -> object:
        return self.loader.construct_object(node, deep=True)


class _Map:
    """A YAML mapping with strict keys: unknown and duplicate keys are errors."""

    def __init__(self, ctx: _Ctx, node: yaml.Node, what: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(node, yaml.MappingNode):
            raise ctx.error(node, f"{what} must be a mapping (key: value), got {_kind(node)}")
        self.ctx, self.node, self.what = ctx, node, what
        self.items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = ctx.value(key_node)
            if not isinstance(key, str):
                raise ctx.error(key_node, f"{what}: keys must be strings, got {key!r}")
            if key in self.items:
                first = self.items[key][0].start_mark.line + 1
                raise ctx.error(key_node, f"{what}: duplicate key {key!r} (first on line {first})")
            if key not in allowed:
                raise ctx.error(
                    key_node,
                    f"unknown key {key!r} in {what}{build.suggest(key, allowed)}; "
                    f"allowed: {', '.join(allowed)}",
                )
            self.items[key] = (key_node, value_node)

    def __contains__(self, key: str) -> bool:
        return key in self.items

    def node_of(self, key: str) -> yaml.Node | None:
        item = self.items.get(key)
        return item[1] if item else None

    def at(self, key: str | None) -> yaml.Node:
        """The node to blame for ``key`` (its value, else the mapping itself)."""
        node = self.node_of(key) if key else None
        return node if node is not None else self.node

    def raw(self, key: str) -> object:
        node = self.node_of(key)
        if node is None:
            return None
        return self.ctx.value(node)

    def required(self, key: str) -> yaml.Node:
        node = self.node_of(key)
        if node is None:
            raise self.ctx.error(self.node, f"{self.what} needs {key!r}")
        return node

    def get(self, key: str, conv: Callable[[object, str], T], default: T) -> T:
        node = self.node_of(key)
        if node is None:
            return default
        return self.convert(node, key, conv)

    def need(self, key: str, conv: Callable[[object, str], T]) -> T:
        return self.convert(self.required(key), key, conv)

    def convert(self, node: yaml.Node, key: str, conv: Callable[[object, str], T]) -> T:
        if not isinstance(node, yaml.ScalarNode):
            raise self.ctx.error(node, f"{key} must be a single value, got {_kind(node)}")
        try:
            return conv(self.ctx.value(node), key)
        except FieldError as exc:
            raise self.ctx.error(node, exc.message) from None

    def seq(self, key: str) -> list[yaml.Node]:
        node = self.node_of(key)
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.ctx.error(node, f"{key} must be a list (- item), got {_kind(node)}")
        return list(node.value)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"{node.value!r}"


# ---- scalar converters: (value, field) -> T, raising FieldError -------------------------

def _str(value: object, field: str) -> str:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise FieldError(field, f"{field} must be a non-empty string, got {value!r}")


def _int(minimum: int) -> Callable[[object, str], int]:
    def conv(value: object, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(field, f"{field} must be a whole number, got {value!r}")
        if value < minimum:
            raise FieldError(field, f"{field} must be at least {minimum}, got {value}")
        return value
    return conv


def _bool(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    raise FieldError(field, f"{field} must be true or false, got {value!r}")


def _on_off(value: object, field: str) -> bool:
    """``on``/``off`` (YAML 1.1 reads them as booleans), ``true``/``false``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("on", "off"):
        return value.lower() == "on"
    raise FieldError(field, f"{field} must be on or off, got {value!r}")


def _choice(choices: tuple[str, ...]) -> Callable[[object, str], str]:
    def conv(value: object, field: str) -> str:
        if isinstance(value, str) and value in choices:
            return value
        hint = build.suggest(value, choices) if isinstance(value, str) else ""
        raise FieldError(field, f"{field} must be one of {', '.join(choices)}, got {value!r}{hint}")
    return conv


def _duration(minimum: str = "positive") -> Callable[[object, str], Duration]:
    def conv(value: object, field: str) -> Duration:
        return build.duration(value, field, minimum=minimum)
    return conv


def parse_ignore_errors(value: object, field: str = "ignoreErrors") -> str | tuple[int, ...]:
    """``"all"``, a list of MySQL error codes, or a comma list ``"1062,8028"``."""
    if value == "all":
        return "all"
    items: list[object]
    if isinstance(value, list):
        items = value
    elif isinstance(value, str):
        items = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    else:
        raise FieldError(field, f"{field} must be \"all\" or a list of error codes, got {value!r}")
    codes: list[int] = []
    for item in items:
        try:
            codes.append(int(str(item)))
        except ValueError:
            raise FieldError(
                field, f"{field}: {item!r} is not an error code (use \"all\" or numbers)"
            ) from None
    return tuple(codes)


# ---- structure -------------------------------------------------------------------------

def looks_like_case_file(text: str) -> bool:
    """Cheap pre-check used when the YAML does not even parse."""
    return bool(_CASES_LINE.search(text))


def compose(text: str, path: str) -> yaml.Node | None:
    """The document's root node; malformed YAML becomes a ScenarioError with its line."""
    try:
        return yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError:
        pass
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        context = exc.context or ""
        if context and exc.context_mark is not None and mark is not exc.context_mark:
            context += f" (line {exc.context_mark.line + 1})"
        problem = ", ".join(p for p in (context, exc.problem) if p) or str(exc)
        raise ScenarioError(SourceRef(path, line), f"malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(SourceRef(path), f"malformed YAML: {exc}") from None


def is_case_document(root: yaml.Node | None) -> bool:
    """True when the top level is a mapping with a ``cases:`` key (a case file)."""
    if not isinstance(root, yaml.MappingNode):
        return False
    return any(isinstance(k, yaml.ScalarNode) and k.value == "cases" for k, _ in root.value)


def load_text(text: str, path: str, *, stem: str | None = None) -> tuple[Case, ...] | None:
    """Cases of a case file, or ``None`` when ``text`` is not a case file.

    ``path`` is what error messages show; ``stem`` names the cases
    (``<stem>::<case name>``), default the file name without suffix.
    """
    try:
        root = compose(text, path)
    except ScenarioError:
        if looks_like_case_file(text):
            raise
        return None
    if not is_case_document(root):
        return None
    assert root is not None
    ctx = _Ctx(text, path)
    top = _Map(ctx, root, "the case file", TOP_KEYS)
    tag = top.get("tag", _str, None)
    workloads = tuple(_workload(ctx, n) for n in top.seq("workloads"))
    case_nodes = top.seq("cases")
    if not case_nodes:
        raise ctx.error(top.at("cases"), "cases: is empty (list at least one case)")
    file_stem = stem if stem is not None else Path(path).stem
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for node in case_nodes:
        case = _case(ctx, node, workloads, tag, file_stem)
        if case.name in seen:
            raise ctx.error(node, f"duplicate case name {case.name!r} (first on line {seen[case.name]})")
        seen[case.name] = node.start_mark.line + 1
        cases.append(case)
    return tuple(cases)


def load_file(path: str | Path) -> tuple[Case, ...] | None:
    """Read and load ``path`` (see :func:`load_text`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(SourceRef(str(path)), f"cannot read: {exc}") from None
    return load_text(text, str(path), stem=p.stem)


def _workload(ctx: _Ctx, node: yaml.Node) -> Workload:
    m = _Map(ctx, node, "a workload", WORKLOAD_KEYS)
    default = Workload()
    ignore = default.ignore_errors
    ignore_node = m.node_of("ignoreErrors")
    if ignore_node is not None:
        try:
            ignore = parse_ignore_errors(ctx.value(ignore_node))  # type: ignore[assignment]
        except FieldError as exc:
            raise ctx.error(ignore_node, exc.message) from None
    return Workload(
        kind=m.get("type", _choice(WORKLOAD_TYPES), default.kind),
        storage=m.get("storage", _str, None),
        db=m.get("db", _str, default.db),
        tables=m.get("tableNum", _int(1), default.tables),
        table_size=m.get("tableSize", _int(1), default.table_size),
        threads=m.get("threads", _int(1), default.threads),
        subtype=m.get("subType", _choice(SUBTYPES), default.subtype),
        ignore_errors=ignore,
        source=ctx.ref(node),
    )


def _fault(ctx: _Ctx, m: _Map, default_warmup: Duration, *, entry: bool) -> FaultSpec:
    """A fault from case-level keys (``entry=False``) or a ``faults:`` item."""
    kind_node = m.required("faultType")
    params = {k: m.raw(k) for k in build.ALL_PARAMS if k in m}
    blame = m.node_of("selector") or kind_node
    try:
        return build.make_fault(
            m.raw("faultType"),
            selector=m.raw("selector"),
            duration_value=m.raw("faultDuration"),
            period=m.raw("period"),
            total=m.raw("faultTotalRunTime"),
            warmup=m.raw("warmUpTime") if entry else None,
            default_warmup=default_warmup,
            params=params,
            source=ctx.ref(blame),
        )
    except FieldError as exc:
        raise ctx.error(m.at(exc.field or "faultType"), exc.message) from None


def _case(ctx: _Ctx, node: yaml.Node, workloads: tuple[Workload, ...], tag: str | None,
          file_stem: str) -> Case:
    m = _Map(ctx, node, "a case", CASE_KEYS)
    name = m.need("name", _case_name)
    warmup = m.get("warmUpTime", _duration("non-negative"), Duration(0.0, "0s"))
    faults: list[FaultSpec] = []
    if "faultType" in m:
        faults.append(_fault(ctx, m, warmup, entry=False))
    else:
        stray = [k for k in build.YAML_NAMES.values() if k in m and k not in ("warmUpTime",)]
        stray += [k for k in build.ALL_PARAMS if k in m]
        if stray:
            raise ctx.error(m.at(stray[0]), f"{stray[0]} without faultType (add faultType: ...)")
    for fnode in m.seq("faults"):
        faults.append(_fault(ctx, _Map(ctx, fnode, "a fault", FAULT_ENTRY_KEYS), warmup,
                             entry=True))
    default_db = workloads[0].db if workloads else None
    jobs: list[JobSpec] = []
    ddl_node = m.node_of("ddl")
    if ddl_node is not None:
        ddl = _Map(ctx, ddl_node, "ddl", DDL_KEYS)
        jobs += [_add_index(ctx, n, default_db) for n in ddl.seq("addIndex")]
        jobs += [_import_into(ctx, n, default_db) for n in ddl.seq("importInto")]
    jobs += [_import_into(ctx, n, default_db) for n in m.seq("importInto")]
    expect = Expectation()
    expect_node = m.node_of("expect")
    if expect_node is not None:
        expect = _expect(ctx, expect_node)
    markers: list[str] = []
    for mnode in m.seq("markers"):
        marker = m.convert(mnode, "markers", _str)
        if not _MARKER_NAME.match(marker):
            raise ctx.error(mnode, f"markers: {marker!r} is not a marker name")
        markers.append(marker)
    topology = None
    topo_node = m.node_of("topology")
    if topo_node is not None:
        t = _Map(ctx, topo_node, "topology", TOPOLOGY_KEYS)
        topology = Topology(pd=t.get("pd", _int(1), 1), tikv=t.get("tikv", _int(1), 1),
                            tidb=t.get("tidb", _int(1), 1))
    return Case(
        name=name,
        warmup=warmup,
        workloads=workloads,
        faults=tuple(faults),
        jobs=tuple(jobs),
        expect=expect,
        tag=tag,
        file_stem=file_stem,
        version=m.get("version", _str, None),
        topology=topology,
        dist_task=m.get("distTask", _on_off, None),
        markers=tuple(markers),
        source=ctx.ref(node),
    )


def _case_name(value: object, field: str) -> str:
    name = _str(value, field)
    if "::" in name or "[" in name or "]" in name or "/" in name:
        raise FieldError(field, f"case name {name!r} must not contain '::', '/', '[' or ']'")
    return name


def _db(m: _Map, default_db: str | None) -> str:
    if "db" in m or default_db is None:
        return m.need("db", _str)
    return default_db


def _add_index(ctx: _Ctx, node: yaml.Node, default_db: str | None) -> AddIndexJob:
    m = _Map(ctx, node, "an addIndex job", ADD_INDEX_KEYS)
    return AddIndexJob(
        db=_db(m, default_db),
        table=m.need("table", _str),
        index_col_name=m.need("index_col_name", _str),
        timeout=m.need("timeout", _duration()),
        times=m.get("times", _int(1), 1),
        job_type=m.get("job_type", _choice(JOB_TYPES), "ingest"),  # type: ignore[arg-type]
        admin_check=m.get("admin_check", _bool, False),
        count_check=m.get("count_check", _bool, False),
        dist_task=m.get("distTask", _on_off, None),
        source=ctx.ref(node),
    )


def _import_into(ctx: _Ctx, node: yaml.Node, default_db: str | None) -> ImportIntoJob:
    m = _Map(ctx, node, "an importInto job", IMPORT_KEYS)
    source_uri = m.need("source", _str)
    options: dict[str, object] = {}
    opt_node = m.node_of("options")
    if opt_node is not None:
        o = _Map(ctx, opt_node, "importInto options", IMPORT_OPTIONS)
        for key in o.items:
            options[key] = o.convert(o.required(key), key, _option_value)
    generate = None
    gen_node = m.node_of("generate")
    if gen_node is not None:
        g = _Map(ctx, gen_node, "generate", GENERATE_KEYS)
        generate = GenerateSpec(rows=g.need("rows", _int(1)), files=g.get("files", _int(1), 1))
        if not source_uri.startswith("/import/"):
            raise ctx.error(m.at("source"),
                            f"generate writes into /import: source must be /import/<file or "
                            f"glob>, got {source_uri!r}")
        if generate.files > 1 and "*" not in source_uri:
            raise ctx.error(m.at("source"),
                            f"generate.files={generate.files} needs a '*' in source to name the "
                            f"files (e.g. /import/t.*.csv)")
    return ImportIntoJob(
        db=_db(m, default_db),
        table=m.need("table", _str),
        source_uri=source_uri,
        timeout=m.need("timeout", _duration()),
        format=m.get("format", _choice(IMPORT_FORMATS), "csv"),
        options=frozen_map(options),
        times=m.get("times", _int(1), 1),
        dist_task=m.get("distTask", _on_off, None),
        generate=generate,
        create_table=m.get("createTable", _str, None),
        source=ctx.ref(node),
    )


def _option_value(value: object, field: str) -> object:
    if value is None or isinstance(value, (list, dict)):
        raise FieldError(field, f"option {field} must be a single value, got {value!r}")
    if field in ("skip_rows", "thread") and (isinstance(value, bool) or not isinstance(value, int)
                                            or value < (0 if field == "skip_rows" else 1)):
        raise FieldError(field, f"option {field} must be a whole number, got {value!r}")
    if field in ("detached", "disable_tikv_import_mode", "disable_precheck", "split_file") \
            and not isinstance(value, bool):
        raise FieldError(field, f"option {field} is a flag: true or false, got {value!r}")
    return value


def _expect(ctx: _Ctx, node: yaml.Node) -> Expectation:
    m = _Map(ctx, node, "expect", EXPECT_KEYS)
    allow: list[str] = []
    for anode in m.seq("allowErrors"):
        pattern = m.convert(anode, "allowErrors", _str)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ctx.error(anode, f"allowErrors: {pattern!r} is not a regex: {exc}") from None
        allow.append(pattern)
    return Expectation(
        outcome=m.get("outcome", _choice(OUTCOMES), "success_or_sensible_error"),  # type: ignore[arg-type]
        allow_errors=tuple(allow),
        stall_window=m.get("stallWindow", _duration(), None),
        cancel_after=m.get("cancelAfter", _duration(), None),
        allow_fault_errors=m.get("allowFaultErrors", _bool, False),
    )
