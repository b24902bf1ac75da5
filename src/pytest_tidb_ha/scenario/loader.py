"""QA case files (YAML) -> :class:`~.model.Case` objects, with line numbers.

The format is the one QA pastes into bug reports (``scenarios/seeds`` and the
public issues in ``tests/corpus``). Three shapes of file are read:

* a **case file**: top-level ``tag``, ``workloads``, ``tidbGlobalVariables``
  and ``cases``; the whole block may be indented (the seeds are indented 6
  spaces) and loads unchanged;
* QA's **config list** (pingcap/tidb#48064): ``- name: <config>`` /
  ``default: |`` holding a case file as a string; each named config is a case
  file of its own, its cases ``<file>::<config>::<case>``, its lines counted in
  the outer file;
* a **bare list of cases** (``- name: ...`` items, no ``cases:``, no
  workloads), as QA pastes single cases.

Key names are checked strictly against :mod:`.keys` (a typo would otherwise
silently drop a fault) with a close-match suggestion. A file that carries QA
keys (:data:`.keys.QA_SIGNAL_KEYS`) but is none of the three is an error with
its line -- never silently skipped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from . import build, keys
from .errors import FieldError, ScenarioError
from .gcpause import gc_paused
from .keys import (
    IMPORT_FORMATS,
    IMPORT_OPTIONS,
    JOB_TYPES,
    OUTCOMES,
    QA_SIGNAL_KEYS,
    SUBTYPES,
    WORKLOAD_TYPES,
)
from .model import (
    AddIndexJob,
    Case,
    Duration,
    Expectation,
    FaultSpec,
    GenerateSpec,
    GlobalVariables,
    ImportIntoJob,
    JobSpec,
    SourceRef,
    Topology,
    Workload,
    frozen_map,
)
from .sqltext import global_variable_statement, parse_import_cmd, strip_statement
from .yamlnodes import Ctx, Map, compose, kind_of

__all__ = [
    "SUBTYPES",
    "WORKLOAD_TYPES",
    "CaseGroup",
    "load_file",
    "load_groups",
    "load_text",
    "looks_like_case_file",
    "parse_ignore_errors",
]

T = TypeVar("T")

#: The allowed keys of a section, looked up once (:data:`.keys.SECTIONS` is a constant).
names = functools.cache(keys.names)

#: A QA key followed by a colon anywhere outside a comment line: in block or flow YAML,
#: JSON, or a flattened dump of a config (``map[cases:[map[faultType:kill ...]]]``).
_SIGNAL = re.compile(
    r"^(?![ \t]*#).*?(?<![\w.-])[\"']?(" + "|".join(QA_SIGNAL_KEYS) + r")[\"']?[ \t]*:",
    re.MULTILINE)
_MARKER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CASE_KEYS = frozenset(names("case")) - {"name", "version", "markers", "topology", "expect"}
_MAX_CHECKSUM = 2**64
_NO_EXPECT = Expectation()


@dataclass(frozen=True)
class CaseGroup:
    """The cases of one case file -- or of one named config of QA's config list."""

    config: str | None  # the config's name; None for a plain case file or a bare list
    cases: tuple[Case, ...]
    source: SourceRef


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


def _sql(value: object, field: str) -> str:
    return strip_statement(_str(value, field))


def _checksum(value: object, field: str) -> int:
    number = _int(0)(value, field)
    if number >= _MAX_CHECKSUM:
        raise FieldError(field, f"{field} must be below 2**64, got {value!r}")
    return number


#: Converters built once: the loader asks for them for every key of every case.
_INT_1 = _int(1)
_POSITIVE = _duration()
_NON_NEGATIVE = _duration("non-negative")
_JOB_TYPE = _choice(JOB_TYPES)
_IMPORT_FORMAT = _choice(IMPORT_FORMATS)
_OUTCOME = _choice(OUTCOMES)
_WORKLOAD_TYPE = _choice(WORKLOAD_TYPES)
_SUBTYPE = _choice(SUBTYPES)


# ---- structure -------------------------------------------------------------------------

def qa_signal(text: str) -> tuple[str, int] | None:
    """The first QA key written as a mapping key in ``text`` and its line (cheap, no parse)."""
    if not any(key in text for key in QA_SIGNAL_KEYS):  # plain substring search: most YAML
        return None
    match = _SIGNAL.search(text)
    if match is None:
        return None
    return match.group(1), text.count("\n", 0, match.start()) + 1


def looks_like_case_file(text: str) -> bool:
    """True when ``text`` carries QA keys: it is collected, and read as cases or refused."""
    return qa_signal(text) is not None


def load_groups(text: str, path: str, *, stem: str | None = None) -> tuple[CaseGroup, ...] | None:
    """The case groups of a QA file, or ``None`` when ``text`` is no QA file at all.

    ``path`` is what error messages show; ``stem`` names the cases
    (``<stem>::<case name>``, ``<stem>::<config>::<case name>``), default the
    file name without suffix. A file that carries QA keys but cannot be read
    as cases raises :class:`ScenarioError` with its line.
    """
    signal = qa_signal(text)
    file_stem = stem if stem is not None else Path(path).stem
    with gc_paused():
        try:
            root = compose(text, path)
        except ScenarioError:
            if signal is not None:
                raise
            return None
        groups = _read_root(root, Ctx(path), file_stem, signal, configs=True)
        del root  # the nodes go now, before the collector is back and would walk them
    return groups


def load_text(text: str, path: str, *, stem: str | None = None) -> tuple[Case, ...] | None:
    """Every case of a QA file in file order (see :func:`load_groups`)."""
    groups = load_groups(text, path, stem=stem)
    if groups is None:
        return None
    return tuple(case for group in groups for case in group.cases)


def load_file(path: str | Path) -> tuple[Case, ...] | None:
    """Read and load ``path`` (see :func:`load_text`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(SourceRef(str(path)), f"cannot read: {exc}") from None
    return load_text(text, str(path), stem=p.stem)


_SHAPES = ("a case file has a top-level `cases:` list; QA's config list is a list of "
           "`- name: <config>` / `default: |` items; a bare list of cases is a list of "
           "`- name: <case>` items with faultType, ddl, importInto ...")


def _read_root(root: yaml.Node | None, ctx: Ctx, stem: str,
               signal: tuple[str, int] | None, *, configs: bool) -> tuple[CaseGroup, ...] | None:
    if isinstance(root, yaml.MappingNode) and _has_key(root, "cases"):
        return (CaseGroup(None, _case_file(ctx, root, stem), ctx.ref(root)),)
    if isinstance(root, yaml.SequenceNode) and root.value and signal is not None:
        first = root.value[0]
        if configs and isinstance(first, yaml.MappingNode) and _has_key(first, "default"):
            return _config_list(ctx, root, stem)
        return (CaseGroup(None, _bare_cases(ctx, root, stem), ctx.ref(root)),)
    if signal is None:
        return None
    key, line = signal
    at = SourceRef(ctx.path, line + ctx.line_offset)
    if root is None:
        shape = "is empty"
    elif isinstance(root, yaml.ScalarNode):
        shape = ("is a single value, not a mapping or list (a flattened dump of a config or "
                 "prose is not YAML)")
    else:
        shape = f"is {kind_of(root)}"
    if isinstance(root, yaml.MappingNode) and _has_key(root, "name"):
        shape += " that looks like one case: put it in a list (`- name: ...`) or under `cases:`"
    raise ScenarioError(at, f"this file carries QA case keys ({key} on line "
                            f"{line + ctx.line_offset}) but cannot be read as cases: its top "
                            f"level {shape}; {_SHAPES}")


def _has_key(node: yaml.MappingNode, key: str) -> bool:
    return any(isinstance(k, yaml.ScalarNode) and k.value == key for k, _ in node.value)


def _config_list(ctx: Ctx, root: yaml.SequenceNode, stem: str) -> tuple[CaseGroup, ...]:
    """QA's config list: each ``default: |`` string is a case file of its own."""
    groups: list[CaseGroup] = []
    seen: dict[str, int] = {}
    for item in root.value:
        m = Map(ctx, item, "a config of QA's config list", names("config"))
        name = m.need("name", _named("config name"))
        if name in seen:
            raise ctx.error(m.at("name"), f"duplicate config name {name!r} (first on line "
                                          f"{seen[name]})")
        seen[name] = ctx.line(item)
        body = m.required("default")
        root_node: yaml.Node | None = body
        inner = ctx
        if not isinstance(body, yaml.MappingNode):  # the case file as a string (`default: |`)
            text = m.convert(body, "default", _str)
            block = getattr(body, "style", None) in ("|", ">")
            inner = Ctx(ctx.path, ctx.line_offset + body.start_mark.line + (1 if block else 0))
            root_node = compose(text, ctx.path, inner.line_offset)
        group = _read_root(root_node, inner, f"{stem}::{name}", ("default", ctx.line(body)),
                           configs=False)
        assert group is not None
        groups.append(CaseGroup(name, group[0].cases, ctx.ref(item)))
    return tuple(groups)


def _bare_cases(ctx: Ctx, root: yaml.SequenceNode, stem: str) -> tuple[Case, ...]:
    for item in root.value:
        if isinstance(item, yaml.MappingNode) and _has_key(item, "default"):
            raise ctx.error(item, "a list mixes QA configs (name + default) with other items; "
                                  + _SHAPES)
        if not (isinstance(item, yaml.MappingNode)
                and any(isinstance(k, yaml.ScalarNode) and k.value in _CASE_KEYS
                        for k, _ in item.value)):
            raise ctx.error(item, f"this list item is not a case ({kind_of(item)}); " + _SHAPES)
    return _cases(ctx, root, root.value, (), None, GlobalVariables(), stem)


def _case_file(ctx: Ctx, root: yaml.MappingNode, stem: str) -> tuple[Case, ...]:
    top = Map(ctx, root, "the case file", names("file"), hint=_flattened_hint)
    tag = top.get("tag", _str, None)
    workloads = tuple(_workload(ctx, n) for n in top.seq("workloads"))
    gv = _global_variables(ctx, top)
    case_nodes = top.seq("cases")
    if not case_nodes:
        raise ctx.error(top.at("cases"), "cases: is empty (list at least one case)")
    return _cases(ctx, top.at("cases"), case_nodes, workloads, tag, gv, stem)


def _flattened_hint(key: str) -> str:
    if key in names("case") or key in names("importInto") or key in names("addIndex"):
        return (f" -- {key} belongs to a case: this file's indentation looks lost (a "
                f"flattened paste?); each case is a `- name: ...` item under `cases:` with "
                f"its keys indented below it")
    return ""


def _cases(ctx: Ctx, where: yaml.Node, case_nodes: list[yaml.Node],
           workloads: tuple[Workload, ...], tag: str | None, gv: GlobalVariables,
           stem: str) -> tuple[Case, ...]:
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for node in case_nodes:
        case = _case(ctx, node, workloads, tag, gv, stem)
        if case.name in seen:
            raise ctx.error(node, f"duplicate case name {case.name!r} (first on line "
                                  f"{seen[case.name]})")
        seen[case.name] = ctx.line(node)
        cases.append(case)
    if not cases:
        raise ctx.error(where, "no cases (list at least one case)")
    return tuple(cases)


def _global_variables(ctx: Ctx, m: Map) -> GlobalVariables:
    node = m.node_of("tidbGlobalVariables")
    if node is None:
        return GlobalVariables()
    g = Map(ctx, node, "tidbGlobalVariables", names("tidbGlobalVariables"))
    phases: dict[str, tuple[str, ...]] = {}
    for phase in ("beforeCase", "afterCase"):
        phases[phase] = tuple(g.convert(n, phase, global_variable_statement)
                              for n in g.seq(phase))
    return GlobalVariables(phases["beforeCase"], phases["afterCase"], ctx.ref(node))


def _workload(ctx: Ctx, node: yaml.Node) -> Workload:
    m = Map(ctx, node, "a workload", names("workload"))
    default = Workload()
    ignore = default.ignore_errors
    ignore_node = m.node_of("ignoreErrors")
    if ignore_node is not None:
        try:
            ignore = parse_ignore_errors(ctx.value(ignore_node))  # type: ignore[assignment]
        except FieldError as exc:
            raise ctx.error(ignore_node, exc.message) from None
    return Workload(
        kind=m.get("type", _WORKLOAD_TYPE, default.kind),
        storage=m.get("storage", _str, None),
        db=m.get("db", _str, default.db),
        tables=m.get("tableNum", _INT_1, default.tables),
        table_size=m.get("tableSize", _INT_1, default.table_size),
        threads=m.get("threads", _INT_1, default.threads),
        subtype=m.get("subType", _SUBTYPE, default.subtype),
        ignore_errors=ignore,
        source=ctx.ref(node),
    )


#: A fault's own keys (beyond its parameters), in the order their values are read.
_FAULT_FIELDS = ("faultType", "selector", "faultDuration", "period", "faultTotalRunTime",
                 "warmUpTime", "recoveryTime", "when", "schedule", "interval", "faultTypes")


def _fault(ctx: Ctx, m: Map, default_warmup: Duration, *, entry: bool) -> FaultSpec:
    """A fault from case-level keys (``entry=False``) or a ``faults:`` item."""
    items = m.items
    kind_key = "faultType" if "faultType" in items or "faultTypes" not in items else "faultTypes"
    kind_node = m.required(kind_key)
    value = ctx.value
    # the values read in this order (parameters, then _FAULT_FIELDS): the first that
    # cannot be read is the error
    params = {name: value(items[key]) for name, key in build.param_keys() if key in items}
    raw = {key: value(items[key]) for key in _FAULT_FIELDS if key in items
           and (entry or key != "warmUpTime")}.get
    blame = items.get("selector") or kind_node
    try:
        return build.make_fault(
            raw("faultType"),
            selector=raw("selector"),
            duration_value=raw("faultDuration"),
            period=raw("period"),
            total=raw("faultTotalRunTime"),
            warmup=raw("warmUpTime"),
            recovery=raw("recoveryTime"),
            default_warmup=default_warmup,
            params=params,
            source=ctx.ref(blame),
            when=raw("when"),
            schedule=raw("schedule"),
            interval_value=raw("interval"),
            kinds=raw("faultTypes"),
        )
    except FieldError as exc:
        field = build.YAML_PARAM_KEYS.get(exc.field or "", exc.field)
        raise ctx.error(m.at(field or kind_key), exc.message) from None


def _case(ctx: Ctx, node: yaml.Node, workloads: tuple[Workload, ...], tag: str | None,
          file_gv: GlobalVariables, file_stem: str) -> Case:
    m = Map(ctx, node, "a case", names("case"))
    items = m.items
    name = m.need("name", _CASE_NAME)
    warmup = m.get("warmUpTime", _NON_NEGATIVE, _NO_WARMUP)
    faults: list[FaultSpec] = []
    if "faultType" in items or "faultTypes" in items:
        faults.append(_fault(ctx, m, warmup, entry=False))
    else:
        stray = [k for k in build.YAML_NAMES.values() if k in m and k not in ("warmUpTime",)]
        stray += [key for _, key in build.param_keys() if key in m]
        if stray:
            raise ctx.error(m.at(stray[0]), f"{stray[0]} without faultType (add faultType: ...)")
    for fnode in m.seq("faults"):
        faults.append(_fault(ctx, Map(ctx, fnode, "a fault", names("fault")), warmup,
                             entry=True))
    default_db = workloads[0].db if workloads else None
    jobs: list[JobSpec] = []
    ddl_node = items.get("ddl")
    if ddl_node is not None:
        ddl = Map(ctx, ddl_node, "ddl", names("ddl"))
        jobs += [_add_index(ctx, n, default_db) for n in ddl.seq("addIndex")]
        jobs += [_import_into(ctx, n, default_db) for n in ddl.seq("importInto")]
    jobs += [_import_into(ctx, n, default_db) for n in m.seq("importInto")]
    expect = _NO_EXPECT  # one shared default: thousands of cases keep it for the session
    expect_node = items.get("expect")
    if expect_node is not None:
        expect = _expect(ctx, expect_node)
    markers: list[str] = []
    for mnode in m.seq("markers"):
        marker = m.convert(mnode, "markers", _str)
        if not _MARKER_NAME.match(marker):
            raise ctx.error(mnode, f"markers: {marker!r} is not a marker name")
        markers.append(marker)
    topology = None
    topo_node = items.get("topology")
    if topo_node is not None:
        t = Map(ctx, topo_node, "topology", names("topology"))
        topology = Topology(pd=t.get("pd", _INT_1, 1), tikv=t.get("tikv", _INT_1, 1),
                            tidb=t.get("tidb", _INT_1, 1))
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
        global_variables=(file_gv + _global_variables(ctx, m) if "tidbGlobalVariables" in items
                          else file_gv),
    )


def _named(what: str) -> Callable[[object, str], str]:
    """A case or config name: part of test ids, so no '::', '/', '[' or ']'."""
    def conv(value: object, field: str) -> str:
        name = _str(value, field)
        if "::" in name or "[" in name or "]" in name or "/" in name:
            raise FieldError(field, f"{what} {name!r} must not contain '::', '/', '[' or ']'")
        return name
    return conv


_CASE_NAME = _named("case name")
_NO_WARMUP = Duration(0.0, "0s")


def _db(m: Map, default_db: str | None) -> str:
    if "db" in m.items or default_db is None:
        return m.need("db", _str)
    return default_db


def _add_index(ctx: Ctx, node: yaml.Node, default_db: str | None) -> AddIndexJob:
    m = Map(ctx, node, "an addIndex job", names("addIndex"))
    return AddIndexJob(
        db=_db(m, default_db),
        table=m.need("table", _str),
        index_col_name=m.need("index_col_name", _str),
        timeout=m.need("timeout", _POSITIVE),
        times=m.get("times", _INT_1, 1),
        job_type=m.get("job_type", _JOB_TYPE, "ingest"),  # type: ignore[arg-type]
        admin_check=m.get("admin_check", _bool, False),
        count_check=m.get("count_check", _bool, False),
        dist_task=m.get("distTask", _on_off, None),
        source=ctx.ref(node),
    )


def _import_into(ctx: Ctx, node: yaml.Node, default_db: str | None) -> ImportIntoJob:
    m = Map(ctx, node, "an importInto job", names("importInto"))
    cmd = m.get("cmd", _sql, None)
    if cmd is not None:
        for key in ("source", "format", "options"):
            if key in m:
                raise ctx.error(m.at(key), f"{key} and cmd exclude each other: with cmd, the "
                                           f"statement says where from and how (WITH ...)")
        try:
            target = parse_import_cmd(cmd)
        except FieldError as exc:
            raise ctx.error(m.at("cmd"), exc.message) from None
        table = m.get("table", _str, target.table)
        if table != target.table:
            raise ctx.error(m.at("table"), f"table {table!r} differs from the table of cmd "
                                           f"({target.table!r})")
        db = target.db or _db(m, default_db)
        source_uri = target.source or ""
    else:
        db = _db(m, default_db)
        table = m.need("table", _str)
        source_uri = m.need("source", _str)
    if "schema" in m and "createTable" in m:
        raise ctx.error(m.at("createTable"), "schema and createTable are the same thing: "
                                             "write one of them")
    create_table = m.get("schema", _sql, None) or m.get("createTable", _sql, None)
    options: dict[str, object] = {}
    opt_node = m.node_of("options")
    if opt_node is not None:
        o = Map(ctx, opt_node, "importInto options", IMPORT_OPTIONS)
        for key in o.items:
            options[key] = o.convert(o.required(key), key, _option_value)
    generate = None
    gen_node = m.node_of("generate")
    if gen_node is not None:
        g = Map(ctx, gen_node, "generate", names("generate"))
        generate = _generate_spec(g.need("rows", _INT_1), g.get("files", _INT_1, 1))
        blame = m.at("cmd" if cmd is not None else "source")
        if not source_uri.startswith("/import/"):
            raise ctx.error(blame, f"generate writes into /import: the source must be "
                                   f"/import/<file or glob>, got {source_uri!r}")
        if generate.files > 1 and "*" not in source_uri:
            raise ctx.error(blame, f"generate.files={generate.files} needs a '*' in source to "
                                   f"name the files (e.g. /import/t.*.csv)")
    return ImportIntoJob(
        db=db,
        table=table,
        source_uri=source_uri,
        timeout=m.need("timeout", _POSITIVE),
        format=m.get("format", _IMPORT_FORMAT, "csv"),
        options=frozen_map(options),
        times=m.get("times", _INT_1, 1),
        dist_task=m.get("distTask", _on_off, None),
        generate=generate,
        create_table=create_table,
        source=ctx.ref(node),
        cmd=cmd,
        crc32_checksum=m.get("crc32Checksum", _checksum, None),
    )


#: One :class:`GenerateSpec` per (rows, files) (whole numbers, checked): a case keeps
#: fewer objects for every later garbage collection to walk and the case cache to pickle.
_generate_spec = functools.lru_cache(maxsize=1024)(GenerateSpec)


def _option_value(value: object, field: str) -> object:
    """An IMPORT INTO option's value, checked by its row in :mod:`.keys`."""
    if value is None or isinstance(value, (list, dict)):
        raise FieldError(field, f"option {field} must be a single value, got {value!r}")
    option = keys.key("importInto.options", field)
    if option.kind == "integer":
        return _int(option.minimum or 0)(value, f"option {field}")
    if option.kind == "boolean" and not isinstance(value, bool):
        raise FieldError(field, f"option {field} is a flag: true or false, got {value!r}")
    return value


def _expect(ctx: Ctx, node: yaml.Node) -> Expectation:
    m = Map(ctx, node, "expect", names("expect"))
    allow: list[str] = []
    for anode in m.seq("allowErrors"):
        pattern = m.convert(anode, "allowErrors", _str)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ctx.error(anode, f"allowErrors: {pattern!r} is not a regex: {exc}") from None
        allow.append(pattern)
    return Expectation(
        outcome=m.get("outcome", _OUTCOME, "success_or_sensible_error"),  # type: ignore[arg-type]
        allow_errors=tuple(allow),
        stall_window=m.get("stallWindow", _POSITIVE, None),
        cancel_after=m.get("cancelAfter", _POSITIVE, None),
        allow_fault_errors=m.get("allowFaultErrors", _bool, False),
    )
