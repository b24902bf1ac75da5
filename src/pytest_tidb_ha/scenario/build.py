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
    IMPORT_STEPS,
    JOB_STATES,
    NETWORK_FAULTS,
    SCHEMA_STATES,
    Duration,
    FaultSpec,
    Schedule,
    Selector,
    SourceRef,
    Trigger,
    frozen_map,
)
from .selectors import SelectorError, parse_selector
from .sizes import SizeError, parse_rate, parse_size

#: Faults that are an instant event, not a window: faultDuration is optional.
INSTANT_FAULTS: frozenset[str] = frozenset({"restart", "pd_leader_resign", "ddl_owner_resign"})
#: The only selector these faults make sense with (and their default).
FIXED_SELECTORS: dict[str, str] = {"pd_leader_resign": "pdleader", "ddl_owner_resign": "ddlowner"}
#: Parameters each fault kind accepts; ``REQUIRED_PARAMS`` must be given. The QA-only
#: ones (``QA_PARAMS``) come from QA's parametric fault types (scenario/faulttypes.py).
FAULT_PARAMS: dict[str, frozenset[str]] = {
    "network_partition": frozenset({"direction", "shape", "ports"}),
    "network_delay": frozenset({"latency", "jitter", "direction", "correlation"}),
    "network_loss": frozenset({"loss", "direction"}),
    "io_delay": frozenset({"latency", "volume_path", "path", "percent", "volume_name"}),
    "disk_full": frozenset({"free", "disk_size"}),
    "bandwidth": frozenset({"rate", "direction"}),
}
REQUIRED_PARAMS: dict[str, frozenset[str]] = {
    "network_delay": frozenset({"latency"}),
    "network_loss": frozenset({"loss"}),
    "io_delay": frozenset({"latency"}),
    "bandwidth": frozenset({"rate"}),
}
DIRECTIONS = ("both", "to", "from")
#: Partition shapes (Jepsen's grudges) over the selected nodes (scenario/grudges.py).
SHAPES = ("halves", "bridge", "majorities_ring")
#: Fault parameters, in the model's (and the marker's) names.
ALL_PARAMS = ("latency", "jitter", "loss", "direction", "free", "disk_size", "rate", "ports",
              "shape")
#: A parameter whose YAML key differs from its name.
YAML_PARAM_KEYS: dict[str, str] = {"disk_size": "diskSize"}
QA_PARAMS = ("volume_path", "path", "percent", "volume_name", "correlation")
#: A disk_full node's data volume when the case names no ``diskSize``.
DEFAULT_DISK_SIZE = 256 * 1024**2
#: ``schedule:`` values.
SCHEDULES = ("periodic", "random")

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
    "when": "when",
    "schedule": "schedule",
    "interval": "interval",
    "kinds": "faultTypes",
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
    "when": "when",
    "schedule": "schedule",
    "interval": "interval",
    "kinds": "fault_types",
}


@functools.cache  # asked once or twice per case the loader reads
def param_keys() -> tuple[tuple[str, str], ...]:
    """``(parameter, YAML key)`` of every fault parameter."""
    return tuple((name, YAML_PARAM_KEYS.get(name, name)) for name in ALL_PARAMS)


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


def selector_for(kind: str, value: object, field: str = "selector", *,
                 shaped: bool = False) -> Selector:
    """Parse the selector of a ``kind`` fault, applying defaults and kind rules.

    ``shaped``: a partition with a ``shape`` cuts the selected nodes among themselves,
    so its selector is one-sided and defaults to ``all``.
    """
    if value is None:
        if kind in FIXED_SELECTORS:
            return parse_selector(FIXED_SELECTORS[kind])
        if shaped:
            return parse_selector("all")
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
    if shaped and selector.target is not None:
        raise FieldError(field, f"selector {selector}: a partition shape cuts the selected "
                                f"nodes among themselves: write one side (e.g. all, tikv)")
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
        else:
            out[name] = _new_param(name, value)
    missing = REQUIRED_PARAMS.get(kind, frozenset()) - set(out)
    if missing:
        raise FieldError(None, f"{kind} needs {', '.join(sorted(missing))} (e.g. latency: 1s, "
                               f"loss: 30%, rate: 1mbit)")
    if "shape" in out and out.get("direction", "both") != "both":
        raise FieldError("direction", f"a {out['shape']} partition is a grudge between the "
                                      f"selected nodes: it has no direction")
    if kind in NETWORK_FAULTS:
        out.setdefault("direction", "both")
    if kind == "disk_full":
        out.setdefault("free", 0)
        out.setdefault("disk_size", DEFAULT_DISK_SIZE)
        if int(out["free"]) >= int(out["disk_size"]):  # type: ignore[call-overload]
            raise FieldError("free", f"free {out['free']} bytes is not below the volume's size "
                                     f"{out['disk_size']} bytes (diskSize): nothing to fill")
    return frozen_map(out) if out else _NO_PARAMS


def _shared_params(kind: str, params: Mapping[str, object]) -> Mapping[str, object]:
    """:func:`fault_params`, one read-only result shared by the faults that give the same
    parameters (the same names, values and value types: ``1`` and ``true`` differ).

    Nearly every network fault of a suite says ``direction: both`` or nothing: each
    would otherwise get its own checked copy (a dict and its proxy, kept for the
    session). Unhashable values (a ``ports`` list) are checked anew each time; an
    error is raised again each time, never remembered.
    """
    key = tuple((name, type(value), value) for name, value in params.items())
    try:
        return _params_of(kind, key)
    except TypeError:  # an unhashable value
        return fault_params(kind, params)


@functools.lru_cache(maxsize=1024)
def _params_of(kind: str, key: tuple[tuple[str, type, object], ...]) -> Mapping[str, object]:
    return fault_params(kind, {name: value for name, _, value in key})


def _new_param(name: str, value: object) -> object:
    """``free``/``disk_size`` (bytes), ``rate`` (bits/s), ``ports``, ``shape``."""
    try:
        if name in ("free", "disk_size"):
            size = parse_size(value)
            if name == "disk_size" and size < 1024**2:
                raise FieldError(name, f"{name} must be at least 1MiB, got {value!r}")
            return size
        if name == "rate":
            return parse_rate(value)
    except SizeError as exc:
        raise FieldError(name, f"{name}: {exc}") from None
    if name == "ports":
        items = value if isinstance(value, (list, tuple)) else [value]
        ports: list[int] = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 65536:
                raise FieldError(name, f"ports must be TCP port numbers like [2379, 20160], "
                                       f"got {value!r}")
            ports.append(item)
        if not ports or len(ports) > 15:
            raise FieldError(name, f"ports takes 1 to 15 ports (iptables multiport), got {value!r}")
        return tuple(ports)
    if name == "shape":
        if value not in SHAPES:
            raise FieldError(name, f"shape must be one of {', '.join(SHAPES)}, got {value!r}"
                                   f"{suggest(str(value), SHAPES)}")
        return value
    raise FieldError(name, f"unknown fault parameter {name!r}")


def trigger(value: object, field: str = "when") -> Trigger:
    """``{job: 1, importStep: importing}`` (YAML) or ``{"job": 1, "import_step": ...}``
    (marker) -> :class:`Trigger`."""
    if not isinstance(value, Mapping):
        raise FieldError(field, f"{field} must be a mapping like {{job: 1, state: running}}, "
                                f"got {value!r}")
    names = {"job": "job", "state": "state", "schemaState": "schema_state",
             "schema_state": "schema_state", "importStep": "import_step",
             "import_step": "import_step", "progress": "progress"}
    got: dict[str, object] = {}
    for key, raw in value.items():
        name = names.get(str(key))
        if name is None:
            raise FieldError(field, f"{field}: unknown condition {key!r}"
                                    f"{suggest(str(key), list(names))}; conditions: job, state, "
                                    f"schemaState, importStep, progress")
        if name in got:
            raise FieldError(field, f"{field}: {name} given twice")
        got[name] = raw
    job = got.pop("job", 1)
    if isinstance(job, bool) or not isinstance(job, int) or job < 1:
        raise FieldError(field, f"{field}: job is the n-th job run of the case (1, 2, ...), "
                                f"got {job!r}")
    if not got:
        raise FieldError(field, f"{field}: name what job {job} must be seen in: state, "
                                f"schemaState, importStep or progress")
    choices = {"state": JOB_STATES, "schema_state": SCHEMA_STATES, "import_step": IMPORT_STEPS}
    for name, allowed in choices.items():
        if name in got and got[name] not in allowed:
            raise FieldError(field, f"{field}: {name} {got[name]!r} is not one TiDB shows"
                                    f"{suggest(str(got[name]), allowed)}; known: "
                                    f"{', '.join(allowed)}")
    progress = None
    if "progress" in got:
        try:
            progress = loss_percent(got["progress"], "progress")
        except FieldError as exc:
            raise FieldError(field, f"{field}: {exc.message}") from None
    return Trigger(job=job, state=got.get("state"), schema_state=got.get("schema_state"),  # type: ignore[arg-type]
                   import_step=got.get("import_step"), progress=progress)  # type: ignore[arg-type]


def interval(value: object, field: str = "interval") -> tuple[Duration, Duration]:
    """``10s..60s`` (or a two-item list) -> (shortest, longest) gap."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        lo_raw, hi_raw = value
    elif isinstance(value, str) and ".." in value:
        lo_raw, hi_raw = (p.strip() for p in value.split("..", 1))
    else:
        raise FieldError(field, f"{field} must be SHORTEST..LONGEST like 10s..60s, got {value!r}")
    lo = duration(lo_raw, field, minimum="non-negative")
    hi = duration(hi_raw, field, minimum="non-negative")
    if hi.seconds < lo.seconds or hi.seconds <= 0:
        raise FieldError(field, f"{field} {value!r}: the longest gap must be above zero and "
                                f"not below the shortest")
    return lo, hi


def fault_kinds(value: object, field: str = "faultTypes") -> tuple[str, ...]:
    """``[kill, pause, network_partition]`` -> the kinds (plain kinds only, no repeats)."""
    if not isinstance(value, (list, tuple)) or len(value) < 1:
        raise FieldError(field, f"{field} must be a list of fault types, got {value!r}")
    kinds: list[str] = []
    for item in value:
        ftype = parse_fault_type(item, field)
        if ftype.params:
            raise FieldError(field, f"{field}: {item!r}: write the parameters as keys of the "
                                    f"fault, not inside one of several types")
        if ftype.kind in kinds:
            raise FieldError(field, f"{field}: {ftype.kind} listed twice")
        kinds.append(ftype.kind)
    return tuple(kinds)


#: No time, as written when a fault gives none (one object: see :func:`_schedule`).
_ZERO = Duration(0.0, "0s")


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
    when: object = None,
    schedule: object = None,
    interval_value: object = None,
    kinds: object = None,
) -> FaultSpec:
    """One validated :class:`FaultSpec` from raw values.

    Periodic when ``period`` is given (``total`` is then required); random with
    ``schedule: random`` (``interval`` and ``total`` required); one-shot otherwise
    (one window at ``warmup`` lasting ``duration``, then ``recovery``). ``when``
    makes every time count from a job-state trigger instead of t0 (the case's
    warm-up then does not apply; an explicit ``warmup`` is a delay after the
    trigger). ``kind`` may be QA's parametric form (``iochaos_io_delay(delay:1s,...)``);
    its parameters join ``params`` (one value per parameter). ``kinds``
    (``faultTypes``) mixes several kinds, one picked per window (``kind`` is then None).
    """
    mix: tuple[str, ...] = ()
    if kinds is not None:
        if kind is not None:
            raise FieldError(names["kinds"], f"{names['kind']} and {names['kinds']} exclude "
                                             f"each other: one kind, or several to mix")
        mix = fault_kinds(kinds, names["kinds"])
        ftype = parse_fault_type(mix[0], names["kinds"])
    else:
        ftype = parse_fault_type(kind, names["kind"])
    name = ftype.kind
    all_params = dict(params or {})
    for key, value in ftype.params.items():
        if key in all_params:
            raise FieldError(names["kind"], f"{key} is given twice: in {names['kind']} "
                                            f"{ftype.written!r} and as its own key")
        all_params[key] = value
    shaped = "shape" in all_params
    sel = None
    for k in mix or (name,):
        sel = selector_for(k, selector, names["selector"], shaped=shaped and k == "network_partition")
    assert sel is not None
    windowed = [k for k in (mix or (name,)) if k not in INSTANT_FAULTS]
    if duration_value is None:
        if windowed:
            raise FieldError(names["duration"], f"{windowed[0]} needs {names['duration']} "
                                                f"(e.g. 3m)")
        dur = _ZERO
    else:
        dur = duration(duration_value, names["duration"],
                       minimum="positive" if windowed else "non-negative")
    trig = trigger(when, names["when"]) if when is not None else None
    if warmup is None:
        warm = (default_warmup if default_warmup is not None and trig is None
                else _ZERO)
    else:
        warm = duration(warmup, names["warmup"], minimum="non-negative")
    if schedule is not None and schedule not in SCHEDULES:
        raise FieldError(names["schedule"], f"{names['schedule']} must be one of "
                                            f"{', '.join(SCHEDULES)}, got {schedule!r}")
    gaps = None
    if schedule == "random":
        if period is not None:
            raise FieldError(names["period"], f"a random schedule has no {names['period']}: "
                                              f"its gaps come from {names['interval']}")
        if interval_value is None:
            raise FieldError(names["schedule"], f"{names['schedule']}: random needs "
                                                f"{names['interval']} (the gaps, e.g. 10s..60s)")
        if total is None:
            raise FieldError(names["schedule"], f"{names['schedule']}: random needs "
                                                f"{names['total']} (how long to keep drawing)")
        gaps = interval(interval_value, names["interval"])
    elif interval_value is not None:
        raise FieldError(names["interval"], f"{names['interval']} belongs to "
                                            f"{names['schedule']}: random")
    per = tot = None
    if gaps is not None:
        tot = duration(total, names["total"])
    elif period is not None:
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
        if per is not None or gaps is not None:
            raise FieldError(
                names["recovery"],
                f"{names['recovery']} applies to one-shot faults (no {names['period']}); "
                f"a periodic fault recovers between its windows",
            )
        rec = duration(recovery, names["recovery"], minimum="non-negative")
    sched = _schedule(warm, dur, per, tot, rec, gaps)
    checked = _mixed_params(mix, all_params) if mix else _shared_params(name, all_params)
    return FaultSpec(kind=name, selector=sel, schedule=sched, params=checked,
                     source=source or SourceRef(), written=ftype.written, trigger=trig,
                     kinds=mix if len(mix) > 1 else ())


#: :func:`_schedule`'s schedules, by the identity of their parts.
_SCHEDULES: dict[tuple[int, ...], Schedule] = {}
_SCHEDULES_MAX = 4096


def _schedule(warm: Duration, dur: Duration, per: Duration | None, tot: Duration | None,
              rec: Duration | None, gaps: tuple[Duration, Duration] | None) -> Schedule:
    """The fault's :class:`Schedule`, one object for the faults built from the same parts.

    Why: every object a case keeps is one more for each later garbage collection to
    walk and for the case cache to pickle; a suite's faults repeat a few schedules
    (``warmUpTime: 1m`` / ``period: "@every 4m"`` / ``faultDuration: 1m``), and the
    durations read from text are shared already (:func:`_parse_text`). The key is the
    parts' *identity*, not their equality: a Duration's ``text`` is not compared
    (``60s == 1m``), and a schedule must show what its fault wrote. An entry holds its
    parts, so no id in a live key is reused. A random schedule's gaps are a new tuple
    each time: such schedules are not shared.
    """
    if gaps is not None:
        return Schedule(warmup=warm, duration=dur, period=per, total=tot, recovery=rec,
                        interval=gaps)
    key = (id(warm), id(dur), id(per), id(tot), id(rec))
    found = _SCHEDULES.get(key)
    if found is None:
        if len(_SCHEDULES) >= _SCHEDULES_MAX:
            _SCHEDULES.clear()
        found = _SCHEDULES[key] = Schedule(warmup=warm, duration=dur, period=per, total=tot,
                                           recovery=rec)
    return found


def _mixed_params(kinds: tuple[str, ...], params: Mapping[str, object]) -> Mapping[str, object]:
    """Parameters of a ``faultTypes`` mix: each is taken by one of the kinds at least,
    and each kind gets what it needs; every kind reads only its own."""
    accepted = frozenset().union(*(FAULT_PARAMS.get(k, frozenset()) for k in kinds))
    for key in params:
        if key not in accepted:
            raise FieldError(key, f"none of {', '.join(kinds)} takes {key!r}")
    out: dict[str, object] = {}
    for k in kinds:
        mine = {key: v for key, v in params.items() if key in FAULT_PARAMS.get(k, frozenset())}
        out.update(fault_params(k, mine))
    return frozen_map(out)
