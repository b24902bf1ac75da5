"""The JSON Schema of QA case files, generated from the case language's one key table.

Editors (VS Code's YAML extension, JetBrains IDEs) validate a YAML file against
a JSON Schema as QA types: an unknown key, a misspelt ``faultType`` or a
selector group that does not exist is underlined before anything runs. The
schema is *generated* from the rows the loader itself reads,
:data:`.scenario.keys.SECTIONS`: each key's ``kind`` gives its JSON type
(:func:`kind_schema` is the only kind -> type table), its ``doc`` the
description, its ``choices`` an enum, and its ``minimum``/``maximum``,
``of``, ``required``/``unless``, ``requires`` and ``excludes`` the rest. The
grammars come from their own modules' public names: fault types from
``scenario.faulttypes`` and the per-kind parameters in ``scenario.build``,
selectors from ``scenario.selectors``, durations from ``scenario.durations``.
A key the language gains appears in the schema by regenerating it, never by
editing JSON by hand::

    python -m pytest_tidb_ha schema > src/pytest_tidb_ha/case.schema.json

The committed ``case.schema.json`` is checked against this generator by the
test suite. The loader stays the judge: it also checks what a schema cannot
(``faultDuration`` longer than ``period``, a selector the topology can never
match, case names unique in a file, a parameter given both in a parametric
``faultType`` and as its own key, the contents of QA's ``default: |`` string);
the schema is the editor's early warning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from .scenario import build, durations, faulttypes, selectors, sizes
from .scenario.keys import SECTIONS, Key, Kind
from .scenario.model import FAULT_KINDS, NETWORK_FAULTS

SCHEMA_FILE = "case.schema.json"
JSON = dict[str, Any]

#: The three shapes of file the loader reads (``scenario.loader``): definition names.
CASE_FILE, CONFIG_LIST, CASE_LIST = "file", "configList", "caseList"

# ---- kinds -> JSON types ---------------------------------------------------------------

_NUMBER_TEXT = r"\+?(?:\d+(?:\.\d*)?|\.\d+)"  # a bare number of seconds, as float() reads it
_DURATION_TEXT = rf"(?:{durations.PART.pattern})+|{_NUMBER_TEXT}"
_NONZERO = r"(?=.*[1-9])"  # some digit is not zero: the duration is longer than zero
_TEXT: JSON = {"type": ["string", "number"], "pattern": r"\S"}  # loader: _str (numbers too)


def _escape(text: str) -> str:
    """``re.escape`` for ECMA-262 with the ``u`` flag (editors' dialect): it rejects escapes
    of characters that need none, such as ``\\-``, so only syntax characters are escaped."""
    return re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", text)


def _ref(definition: str, description: str | None = None) -> JSON:
    """A reference; in draft-07 a ``$ref``'s siblings are ignored, so wrap it to keep a doc."""
    ref = {"$ref": f"#/definitions/{definition}"}
    return ref if description is None else {"description": description, "allOf": [ref]}


def _duration(positive: bool) -> JSON:
    lead = _NONZERO if positive else ""
    number: JSON = {"type": "number", "exclusiveMinimum": 0} if positive else \
        {"type": "number", "minimum": 0}
    return {
        "description": "a duration: 500ms, 90s, 1m, 1h30m, 1.5m (units ms, s, m, h); a bare "
                       "number is seconds" + ("; longer than zero" if positive else ""),
        "anyOf": [{"type": "string", "pattern": rf"^{lead}\s*(?:{_DURATION_TEXT})\s*$"}, number],
    }


_PERIOD: JSON = {
    "description": "how often a fault window opens: '@every 5m' or a duration",
    "anyOf": [{"type": "string", "pattern": rf"^{_NONZERO}\s*@every\s+(?:{_DURATION_TEXT})\s*$"},
              _ref("duration")],
}
_PERCENT: JSON = {"anyOf": [
    {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
    {"type": "string",
     "pattern": rf"^{_NONZERO}\s*0*(?:100(?:\.0+)?|\d{{1,2}}(?:\.\d+)?)\s*%?\s*$"},
]}
_ERROR_CODES: JSON = {"anyOf": [
    {"const": "all"},
    {"type": "integer"},
    {"type": "array",
     "items": {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^\s*[+-]?\d+\s*$"}]}},
    {"type": "string", "pattern": r"^[\s,]*(?:[+-]?\d+(?:\s*,[\s,]*[+-]?\d+)*)?[\s,]*$"},
]}
_ON_OFF: JSON = {"anyOf": [{"type": "boolean"},
                           {"type": "string", "pattern": "^([Oo][Nn]|[Oo][Ff][Ff])$"}]}
#: ``name=value`` (``@@global.`` optional) or a whole ``SET ...`` statement (scenario.sqltext).
def _units(units: Iterable[str]) -> str:
    """An alternation of unit names, case-insensitive as the loader reads them (ECMA
    patterns take no inline flags)."""
    spelled = ("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else _escape(c) for c in u)
               for u in sorted(units, key=len, reverse=True) if u)
    return "|".join(spelled)


_SIZE: JSON = {"anyOf": [
    {"type": "integer", "minimum": 0},
    {"type": "string", "pattern": rf"^\s*\d+(?:\.\d+)?\s*(?:{_units(sizes.SIZE_UNITS)})?\s*$"},
]}
_RATE: JSON = {"type": "string",
               "pattern": rf"^{_NONZERO}\s*\d+(?:\.\d+)?\s*(?:{_units(sizes.RATE_UNITS)})\s*$"}
_INTERVAL: JSON = {"anyOf": [
    {"type": "string",
     "pattern": rf"^\s*(?:{_DURATION_TEXT})\s*\.\.\s*(?:{_DURATION_TEXT})\s*$"},
    {"type": "array", "items": _ref("durationOrZero"), "minItems": 2, "maxItems": 2},
]}
_GLOBAL_VARIABLE: JSON = {
    "type": "string",
    "pattern": r"^\s*(?:[Ss][Ee][Tt]\s|(?:@@global\.|@@)?[A-Za-z_][A-Za-z0-9_]*\s*=\s*\S)",
}


def kind_schema(kind: str, key: Key | None = None) -> JSON | None:
    """The JSON type of a value of ``kind`` (with ``key``'s bounds), None when unknown."""
    lowest = key.minimum if key is not None else None
    highest = key.maximum if key is not None else None
    if kind in ("string", "sql"):
        return dict(_TEXT)
    if kind == "name":  # part of a test id
        return {"type": ["string", "number"], "pattern": r"^(?!.*::)(?=.*\S)[^/\[\]]*$"}
    if kind == "regex":
        return {**_TEXT, "format": "regex"}
    if kind == "marker":
        return {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
    if kind == "scalar":
        return {"type": ["string", "number", "boolean"]}
    if kind == "integer":
        out: JSON = {"type": "integer"}
        if lowest is not None:
            out["minimum"] = lowest
        if highest is not None:
            out["maximum"] = highest
        return out
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "port":
        return {"type": "integer", "minimum": 1, "maximum": 65535}
    if kind == "choice":
        return {"enum": list(key.choices) if key is not None else []}
    simple: dict[str, JSON] = {"on_off": _ON_OFF, "percent": _PERCENT, "size": _SIZE,
                               "rate": _RATE, "interval": _INTERVAL,
                               "error_codes": _ERROR_CODES, "global_variable": _GLOBAL_VARIABLE}
    if kind in simple:
        return dict(simple[kind])
    if kind == "duration":
        return _ref("durationOrZero" if lowest == 0 else "duration")
    refs = {"period": "period", "selector": "selector", "fault_type": "faultType"}
    if kind in refs:
        return _ref(refs[kind])
    if kind == "case_file":  # QA's `default: |` string (a case file or a bare list), or
        return {"anyOf": [{"type": "string", "pattern": r"\S"}, _ref(CASE_FILE)]}  # inline
    if key is None:
        return None
    if kind == "mapping" and key.of in SECTIONS:
        return _ref(key.of)
    if kind == "list":
        items = _ref(key.of) if key.of in SECTIONS else kind_schema(key.of)
        if items is None:
            return None
        out = {"type": "array", "items": items}
        if lowest:
            out["minItems"] = lowest
        return out
    return None  # "any", or a mapping/list whose `of` names nothing


def _description(key: Key) -> str:
    if key.origin == "ext":
        return f"{key.doc} [pytest-tidb-ha extension]"
    if key.issues:
        return f"{key.doc} [QA, e.g. pingcap/tidb#{', #'.join(map(str, key.issues))}]"
    return key.doc


def _key_schema(key: Key) -> JSON:
    typed = kind_schema(key.kind, key)
    if typed is None:
        return {"description": f"{_description(key)} (no type published yet)"}
    if "$ref" in typed:
        return _ref(typed["$ref"].rsplit("/", 1)[1], _description(key))
    return {"description": _description(key), **typed}


def untyped_keys() -> list[str]:
    """``section.key`` of every key of :data:`SECTIONS` that has no JSON type."""
    return sorted(f"{section}.{key.name}" for section, keys in SECTIONS.items() for key in keys
                  if kind_schema(key.kind, key) is None)


def unmapped_kinds() -> list[str]:
    """Kinds of :data:`.keys.Kind` that :func:`kind_schema` cannot type (``any`` by design)."""
    return [k for k in get_args(Kind) if k != "any"
            and kind_schema(k, Key("probe", k, "", choices=("x",), of="file")) is None]


# ---- selectors (scenario.selectors) ----------------------------------------------------

_QUANTIFIER = "|".join([*selectors.QUANTIFIERS, r"0*[1-9]\d*", r"0*(?:100|[1-9]\d?)%"])


def _side(groups: Iterable[str] | None = None) -> str:
    """One side of a selector, limited to the sides that resolve to ``groups``."""
    allowed = set(groups) if groups is not None else {*selectors.GROUPS, "node"}
    alts = [_escape(a) for a, g in selectors.ALIASES.items() if g in allowed]
    if "node" in allowed:
        alts.append(rf"(?:{'|'.join(selectors.COMPONENTS)})-\d+")
    for component, roles in selectors.ROLES.items():
        names = [_escape(r) for r, g in roles.items() if g in allowed]
        if names:
            alts.append(rf"{component}\((?:{'|'.join(names)})\)")
    plain = [g for g in selectors.GROUPS if g in allowed]
    if plain:
        alts.append(rf"(?:{'|'.join(plain)})(?:\((?:{_QUANTIFIER})\))?")
    return f"(?:{'|'.join(alts)})"


def _selector_schema() -> JSON:
    sep = _escape(selectors.SEPARATOR)
    roles = ", ".join(f"{c}({r})" for c, rs in selectors.ROLES.items() for r in rs)
    return {
        "type": "string",
        "description": f"which nodes the fault hits: GROUP[(random|one|all|N|N%)], "
                       f"COMPONENT(ROLE), a node name like tikv-1, or "
                       f"SOURCE{selectors.SEPARATOR}TARGET for network faults; groups: "
                       f"{', '.join(selectors.GROUPS)}; roles: {roles}; also "
                       f"{', '.join(selectors.ALIASES)}",
        "pattern": rf"^\s*{_side()}(?:{sep}{_side()})?\s*$",
    }


# ---- fault types (scenario.faulttypes, scenario.build) ---------------------------------

def _params_of(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``name(key:value,...)``: the keys it takes and needs (QA's names for QA's types)."""
    qa = faulttypes.QA_TYPES.get(name)
    if qa is not None:
        return tuple(qa.params), qa.required
    return tuple(sorted(build.FAULT_PARAMS.get(name, ()))), ()


def _alternatives(names: Iterable[str]) -> str:
    return "|".join(_escape(n) for n in names)


def _parametric(name: str) -> str:
    """``name(...)`` whose body is comma-separated ``key:value`` parts of its keys."""
    taken, needed = _params_of(name)
    body = r"\s*"
    if taken:
        part = rf"\s*(?:{_alternatives(taken)})\s*:[^,]*[^,\s][^,]*"
        body = rf"(?:{part}(?:,{part})*|\s*)"
    needs = "".join(rf"(?=(?:[^,]*,)*\s*{_escape(n)}\s*:)" for n in needed)
    return rf"{_escape(name)}\s*\({needs}{body}\)"


def _fault_type_schema() -> JSON:
    plain = faulttypes.plain_types()
    parametric = faulttypes.known_types()
    forms = ", ".join(f"{n}({','.join(f'{k}:...' for k in _params_of(n)[0])})"
                      for n in parametric if _params_of(n)[0])
    return {
        "type": "string",
        "description": f"the fault: {', '.join(plain)}; or QA's parametric form "
                       f"name(key:value,...): {forms}",
        "pattern": rf"^\s*(?:{_alternatives(plain)}|"
                   rf"{'|'.join(_parametric(n) for n in parametric)})\s*$",
    }


def _is_kind(field: str, kind: str, *, plain_only: bool = False) -> JSON:
    """An ``if``: the fault type in ``field`` means ``kind`` (plain or parametric form)."""
    plain = [n for n in faulttypes.plain_types() if faulttypes.kind_of(n) == kind]
    forms = [rf"(?:{_alternatives(plain)})\s*$"]
    if not plain_only:
        forms += [rf"{_escape(n)}\s*\(" for n in faulttypes.known_types()
                  if faulttypes.kind_of(n) == kind]
    return {"properties": {field: {"pattern": rf"^\s*(?:{'|'.join(forms)})"}},
            "required": [field]}


def _fault_rules(keys: tuple[Key, ...]) -> list[JSON]:
    """Per fault kind: its parameters, duration and selector (``scenario.build``)."""
    here = {k.name for k in keys}
    names = build.YAML_NAMES
    field, sel, dur = names["kind"], names["selector"], names["duration"]
    rules: list[JSON] = []
    for kind in FAULT_KINDS:
        allowed = build.FAULT_PARAMS.get(kind, frozenset())
        props: JSON = {p: False for p in build.ALL_PARAMS if p in here and p not in allowed}
        required: list[str] = []
        if kind not in build.INSTANT_FAULTS:
            required.append(dur)
            props[dur] = _ref("duration")
        fixed = build.FIXED_SELECTORS.get(kind)
        if fixed is not None:
            props[sel] = {"pattern": rf"^\s*{_side([fixed])}\s*$"}
        else:
            required.append(sel)
            if kind not in NETWORK_FAULTS:
                props[sel] = {"pattern": f"^(?!.*{_escape(selectors.SEPARATOR)})"}
        then: JSON = {"properties": props}
        if required:
            then["required"] = required
        rules.append({"if": _is_kind(field, kind), "then": then})
        needed = sorted(build.REQUIRED_PARAMS.get(kind, frozenset()))
        if needed:  # the parametric form may carry them inside faultType
            rules.append({"if": _is_kind(field, kind, plain_only=True),
                          "then": {"required": needed}})
    return rules


# ---- sections --------------------------------------------------------------------------

def _section(name: str) -> JSON:
    keys = SECTIONS[name]
    out: JSON = {
        "type": "object",
        "properties": {k.name: _key_schema(k) for k in keys},
        "additionalProperties": False,
    }
    required = [k.name for k in keys if k.required and not k.unless]
    if required:
        out["required"] = required
    rules: list[JSON] = []
    for k in keys:
        if k.required and k.unless:
            rules.append({"if": {"required": [k.unless]}, "else": {"required": [k.name]}})
        if k.excludes:
            rules.append({"if": {"required": [k.name]},
                          "then": {"properties": {x: False for x in k.excludes}}})
    if any(k.kind == "fault_type" for k in keys):
        rules += _fault_rules(keys)
    requires = {k.name: [r for r in k.requires if "|" not in r] for k in keys}
    if any(requires.values()):
        out["dependencies"] = {name: need for name, need in requires.items() if need}
    for k in keys:
        for either in (r.split("|") for r in k.requires if "|" in r):
            rules.append({"if": {"required": [k.name]},
                          "then": {"anyOf": [{"required": [alt]} for alt in either]}})
    if rules:
        out["allOf"] = rules
    return out


def case_schema() -> JSON:
    """The schema of a case file (JSON Schema draft-07, what editors support best)."""
    definitions: JSON = {
        "duration": _duration(positive=True),
        "durationOrZero": _duration(positive=False),
        "period": _PERIOD,
        "selector": _selector_schema(),
        "faultType": _fault_type_schema(),
        CONFIG_LIST: {"description": "QA's config list (pingcap/tidb#48064): `- name: <config>`"
                                     " / `default: |` holding a case file",
                      "type": "array", "minItems": 1, "items": _ref("config")},
        CASE_LIST: {"description": "a bare list of cases (`- name: ...` items), no workloads",
                    "type": "array", "minItems": 1, "items": _ref("case")},
    }
    for name in SECTIONS:
        definitions[name] = _section(name)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "pytest-tidb-ha QA case file",
        "description": "HA cases in TiDB QA's YAML format (docs/case-format.md): a case file, "
                       "QA's config list, or a bare list of cases; generated from "
                       "scenario/keys.py by `python -m pytest_tidb_ha schema`",
        "anyOf": [_ref(CASE_FILE), _ref(CONFIG_LIST), _ref(CASE_LIST)],
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
