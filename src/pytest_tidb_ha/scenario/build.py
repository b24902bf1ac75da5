"""Validated constructors shared by the YAML loader and the markers.

Both front ends hand raw values (strings, numbers) to these functions, so a
duration, selector or fault parameter means the same thing whether it was
written in a case file or in ``@pytest.mark.fault``. Problems are raised as
:class:`~.errors.FieldError` naming the field in the caller's vocabulary
(``faultDuration`` in YAML, ``duration`` in a marker); the caller adds the
``file:line`` or the nodeid.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping

from .durations import DurationError, parse_duration, parse_period
from .errors import FieldError
from .faulttypes import parse_fault_type
from .model import (
    NETWORK_FAULTS,
    Duration,
    FaultSpec,
    Schedule,
    Selector,
    SourceRef,
    frozen_map,
)
from .selectors import SelectorError, parse_selector

#: Faults that are an instant event, not a window: faultDuration is optional.
INSTANT_FAULTS: frozenset[str] = frozenset({"restart", "pd_leader_resign", "ddl_owner_resign"})
#: The only selector these faults make sense with (and their default).
FIXED_SELECTORS: dict[str, str] = {"pd_leader_resign": "pdleader", "ddl_owner_resign": "ddlowner"}
#: Parameters each fault kind accepts; ``REQUIRED_PARAMS`` must be given. The QA-only
#: ones (``QA_PARAMS``) come from QA's parametric fault types (scenario/faulttypes.py).
FAULT_PARAMS: dict[str, frozenset[str]] = {
    "network_partition": frozenset({"direction"}),
    "network_delay": frozenset({"latency", "jitter", "direction", "correlation"}),
    "network_loss": frozenset({"loss", "direction"}),
    "io_delay": frozenset({"latency", "volume_path", "path", "percent", "volume_name"}),
}
REQUIRED_PARAMS: dict[str, frozenset[str]] = {
    "network_delay": frozenset({"latency"}),
    "network_loss": frozenset({"loss"}),
    "io_delay": frozenset({"latency"}),
}
DIRECTIONS = ("both", "to", "from")
ALL_PARAMS = ("latency", "jitter", "loss", "direction")
QA_PARAMS = ("volume_path", "path", "percent", "volume_name", "correlation")

#: The parameters of a fault that takes none: one read-only map shared by all of them.
_NO_PARAMS = frozen_map()

#: Field names as the YAML format spells them.
YAML_NAMES: dict[str, str] = {
    "kind": "faultType",
    "selector": "selector",
    "duration": "faultDuration",
    "period": "period",
    "total": "faultTotalRunTime",
    "warmup": "warmUpTime",
    "recovery": "recoveryTime",
}
#: Field names as ``@pytest.mark.fault`` spells them.
MARKER_NAMES: dict[str, str] = {
    "kind": "kind",
    "selector": "selector",
    "duration": "duration",
    "period": "period",
    "total": "total",
    "warmup": "warmup",
    "recovery": "recovery",
}


def suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """`` (did you mean 'x'?)`` or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def duration(value: object, field: str, *, minimum: str = "positive", every: bool = False) -> Duration:
    """Parse a duration field; ``minimum`` is ``positive`` or ``non-negative``."""
    try:
        if isinstance(value, str):  # case files repeat a few texts thousands of times
            parsed = _parse_text(value, every)
        else:
            parsed = parse_period(value) if every else parse_duration(value)
    except DurationError as exc:
        raise FieldError(field, f"{field}: {exc}") from None
    if minimum == "positive" and parsed.seconds <= 0:
        raise FieldError(field, f"{field} must be longer than zero, got {value!r}")
    if parsed.seconds < 0:
        raise FieldError(field, f"{field} must not be negative, got {value!r}")
    return parsed


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str, every: bool) -> Duration:
    """:func:`parse_duration` / :func:`parse_period` of a string, remembered (the result is
    immutable; an error is raised again each time, never remembered)."""
    return parse_period(text) if every else parse_duration(text)


@functools.lru_cache(maxsize=4096)
def _selector_text(text: str) -> Selector:
    """:func:`parse_selector` of a string, remembered like :func:`_parse_text`."""
    return parse_selector(text)


def fault_kind(value: object, field: str = "faultType") -> str:
    return parse_fault_type(value, field).kind


def selector_for(kind: str, value: object, field: str = "selector") -> Selector:
    """Parse the selector of a ``kind`` fault, applying defaults and kind rules."""
    if value is None:
        if kind in FIXED_SELECTORS:
            return parse_selector(FIXED_SELECTORS[kind])
        raise FieldError(field, f"{kind} needs a {field} (e.g. tikv(random), tidb(ddl_owner))")
    try:
        selector = _selector_text(value) if isinstance(value, str) else parse_selector(value)
    except SelectorError as exc:
        raise FieldError(field, str(exc)) from None
    if selector.target is not None and kind not in NETWORK_FAULTS:
        raise FieldError(
            field,
            f"selector {selector}: SOURCE_to_TARGET only applies to network faults "
            f"({', '.join(sorted(NETWORK_FAULTS))}), not {kind}: {kind} acts on nodes, not on "
            f"the links between them -- write selector: {selector.source} to {kind} the "
            f"source, or a network faultType to cut the link",
        )
    fixed = FIXED_SELECTORS.get(kind)
    if fixed and (selector.source.group != fixed or selector.target is not None):
        raise FieldError(field, f"{kind} only acts on {fixed}, not {selector}")
    return selector


def loss_percent(value: object, field: str = "loss") -> float:
    """``30%`` or ``30`` (percent) -> 30.0."""
    if isinstance(value, bool):
        raise FieldError(field, f"{field} must be a percentage like 30%, got {value!r}")
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%?", text)
    if not match:
        raise FieldError(field, f"{field} must be a percentage like 30%, got {value!r}")
    pct = float(match.group(1))
    if not 0 < pct <= 100:
        raise FieldError(field, f"{field} must be between 0% (exclusive) and 100%, got {value!r}")
    return pct


def fault_params(kind: str, params: Mapping[str, object]) -> Mapping[str, object]:
    """Validate and normalise a fault's parameters.

    ``latency``/``jitter`` become :class:`Duration` (never time-scaled: they
    are network properties, not schedule), ``loss`` a float percentage,
    ``direction`` one of ``both|to|from`` (default ``both`` for network faults).
    """
    allowed = FAULT_PARAMS.get(kind, frozenset())
    out: dict[str, object] = {}
    for name, value in params.items():
        if name not in allowed:
            if name not in ALL_PARAMS and name not in QA_PARAMS:
                raise FieldError(
                    name, f"unknown fault parameter {name!r}{suggest(name, ALL_PARAMS)}"
                )
            accepted = ", ".join(sorted(allowed)) or "none"
            raise FieldError(name, f"{kind} takes no {name!r} (accepts: {accepted})")
        if name == "latency":
            out[name] = duration(value, name)
        elif name == "jitter":
            out[name] = duration(value, name, minimum="non-negative")
        elif name in ("loss", "percent", "correlation"):
            out[name] = loss_percent(value, name)
        elif name in ("volume_path", "path", "volume_name"):
            if not isinstance(value, str) or not value.strip():
                raise FieldError(name, f"{name} must be a path or name, got {value!r}")
            out[name] = value.strip()
        elif name == "direction":
            if value not in DIRECTIONS:
                raise FieldError(
                    name, f"direction must be one of {', '.join(DIRECTIONS)}, got {value!r}"
                )
            out[name] = value
    missing = REQUIRED_PARAMS.get(kind, frozenset()) - set(out)
    if missing:
        raise FieldError(None, f"{kind} needs {', '.join(sorted(missing))} (e.g. latency: 1s, loss: 30%)")
    if kind in NETWORK_FAULTS:
        out.setdefault("direction", "both")
    return frozen_map(out) if out else _NO_PARAMS


def make_fault(
    kind: object,
    *,
    selector: object,
    duration_value: object,
    period: object = None,
    total: object = None,
    warmup: object = None,
    recovery: object = None,
    default_warmup: Duration | None = None,
    params: Mapping[str, object] | None = None,
    source: SourceRef | None = None,
    names: Mapping[str, str] = YAML_NAMES,
) -> FaultSpec:
    """One validated :class:`FaultSpec` from raw values.

    Periodic when ``period`` is given (``total`` is then required); one-shot
    otherwise (one window at ``warmup`` lasting ``duration``, then ``recovery``).
    ``kind`` may be QA's parametric form (``iochaos_io_delay(delay:1s,...)``);
    its parameters join ``params`` (one value per parameter).
    """
    ftype = parse_fault_type(kind, names["kind"])
    name = ftype.kind
    all_params = dict(params or {})
    for key, value in ftype.params.items():
        if key in all_params:
            raise FieldError(names["kind"], f"{key} is given twice: in {names['kind']} "
                                            f"{ftype.written!r} and as its own key")
        all_params[key] = value
    sel = selector_for(name, selector, names["selector"])
    if duration_value is None:
        if name not in INSTANT_FAULTS:
            raise FieldError(names["duration"], f"{name} needs {names['duration']} (e.g. 3m)")
        dur = Duration(0.0, "0s")
    else:
        dur = duration(duration_value, names["duration"],
                       minimum="non-negative" if name in INSTANT_FAULTS else "positive")
    if warmup is None:
        warm = default_warmup if default_warmup is not None else Duration(0.0, "0s")
    else:
        warm = duration(warmup, names["warmup"], minimum="non-negative")
    per = tot = None
    if period is not None:
        per = duration(period, names["period"], every=True)
        if total is None:
            raise FieldError(
                names["period"],
                f"{names['period']} needs {names['total']} (how long to keep repeating); "
                f"leave both out for a one-shot fault",
            )
        tot = duration(total, names["total"])
        if dur.seconds > per.seconds:
            raise FieldError(
                names["duration"],
                f"{names['duration']} {dur} is longer than its {names['period']} {per}: "
                f"windows would overlap",
            )
        if tot.seconds < per.seconds and tot.seconds < dur.seconds:
            raise FieldError(
                names["total"], f"{names['total']} {tot} is shorter than {names['duration']} {dur}"
            )
    elif total is not None:
        raise FieldError(
            names["total"],
            f"{names['total']} needs {names['period']} (a one-shot fault has neither)",
        )
    rec = None
    if recovery is not None:
        if per is not None:
            raise FieldError(
                names["recovery"],
                f"{names['recovery']} applies to one-shot faults (no {names['period']}); "
                f"a periodic fault recovers between its windows",
            )
        rec = duration(recovery, names["recovery"], minimum="non-negative")
    schedule = Schedule(warmup=warm, duration=dur, period=per, total=tot, recovery=rec)
    return FaultSpec(kind=name, selector=sel, schedule=schedule,
                     params=fault_params(name, all_params), source=source or SourceRef(),
                     written=ftype.written)
