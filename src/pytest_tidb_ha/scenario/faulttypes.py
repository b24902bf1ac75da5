"""QA's fault types, plain and parametric, mapped onto our injectors (pure).

QA's harness drives Chaos Mesh, and its case files write some fault types
with their Chaos Mesh parameters inline, ``name(key:value,...)``::

    faultType: iochaos_io_delay(volumePath:/var/lib/pd,path:/var/lib/pd/data/**/*,delay:1s,percent:100)

(pingcap/tidb#48204, #48065). :func:`parse_fault_type` turns such a value
into one of our kinds plus parameters in our names; our own kinds may be
written the same way (``network_delay(latency:1s,jitter:10ms)``).
:func:`approximation` says, for the dry-run plan, where our mechanism only
approximates QA's meaning (Chaos Mesh's IOChaos delays each IO on the
matching paths; our ``io_delay`` throttles the whole disk behind the node's
data directory -- ``faults/iodelay.py``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import FieldError
from .model import FAULT_KINDS, Duration, FaultSpec


@dataclass(frozen=True)
class QAType:
    """A QA fault type: our kind, and QA's parameter names -> ours."""

    kind: str
    params: Mapping[str, str]
    required: tuple[str, ...]
    meaning: str  # what QA's harness does, for the plan


QA_TYPES: dict[str, QAType] = {
    # Chaos Mesh IOChaos action "latency": every IO on files matching `path` under the
    # mounted volume `volumePath` waits `delay`, for `percent`% of the operations.
    "iochaos_io_delay": QAType(
        "io_delay",
        {"volumePath": "volume_path", "path": "path", "delay": "latency", "percent": "percent"},
        ("delay",),
        "Chaos Mesh IOChaos latency: each IO on {path} under {volume_path} waits {latency}, "
        "for {percent}% of the operations",
    ),
    # QA's short form: an IO delay on a named data volume (a delay of 60m is an IO hang).
    "io_delay": QAType(
        "io_delay", {"volumeName": "volume_name", "delay": "latency"}, ("delay",),
        "each IO on the volume {volume_name} waits {latency}",
    ),
    # Chaos Mesh NetworkChaos action "delay".
    "network_latency": QAType(
        "network_delay",
        {"latency": "latency", "jitter": "jitter", "correlation": "correlation"},
        ("latency",),
        "Chaos Mesh NetworkChaos delay: packets wait {latency}",
    ),
}
#: Plain QA spellings of our kinds (no parameters).
QA_ALIASES: dict[str, str] = {"network_latency": "network_delay"}

_PARAMETRIC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$", re.DOTALL)
#: IO waits above this become "the disk answers one IO per second" (faults/iodelay.py).
IOPS_FLOOR_LATENCY = 1.0


@dataclass(frozen=True)
class FaultType:
    kind: str  # one of model.FAULT_KINDS
    params: dict[str, object]  # raw values, in our parameter names
    written: str | None  # the value as written, when it was not a plain kind


@functools.cache  # constant tables; asked per fault the loader reads
def known_types() -> tuple[str, ...]:
    return (*FAULT_KINDS, *(t for t in QA_TYPES if t not in FAULT_KINDS))


@functools.cache
def plain_types() -> tuple[str, ...]:
    """Names written without parameters: our kinds and QA's plain spellings of them."""
    return (*FAULT_KINDS, *(t for t in QA_ALIASES if t not in FAULT_KINDS))


def kind_of(name: str) -> str:
    """Our kind for a fault type name, plain or parametric (``network_latency`` -> ``network_delay``)."""
    qa = QA_TYPES.get(name)
    return qa.kind if qa is not None else QA_ALIASES.get(name, name)


#: A plain fault type name (``kill``, ``network_latency``) -> its FaultType: a suite names
#: the same few types thousands of times. Parametric forms are parsed every time.
_PLAIN: dict[str, FaultType] = {}


def parse_fault_type(value: object, field: str = "faultType") -> FaultType:
    """``kill`` / ``network_latency`` / ``iochaos_io_delay(delay:1s,...)`` -> a FaultType.

    The FaultType of a plain name is shared between calls: read its ``params``, never
    change them (:func:`.build.make_fault` copies them).
    """
    if isinstance(value, str):
        known = _PLAIN.get(value)
        if known is not None:
            return known
    from .build import suggest

    if not isinstance(value, str) or not value.strip():
        raise FieldError(field, f"{field} must be a fault type (e.g. kill, network_partition), "
                                f"got {value!r}")
    text = value.strip()
    match = _PARAMETRIC.match(text)
    name = match.group(1) if match else text
    if name not in FAULT_KINDS and name not in QA_TYPES:
        raise FieldError(field, f"unknown {field} {text!r}{suggest(name, known_types())}; "
                                f"known: {', '.join(known_types())}")
    if match is None:
        if name not in plain_types():  # QA's parametric-only types (iochaos_io_delay)
            qa_type = QA_TYPES[name]
            form = ",".join(f"{k}:..." for k in qa_type.params)
            raise FieldError(field, f"{field} {name} takes its parameters: {name}({form}) "
                                    f"(needs {', '.join(qa_type.required)})")
        kind = kind_of(name)
        plain = _PLAIN[value] = FaultType(kind, {}, None if kind == name else text)
        return plain
    raw = _split_params(match.group(2), text, field)
    qa = QA_TYPES.get(name)
    if qa is None:  # our own kind, parameters in our names
        return FaultType(name, dict(raw), text)
    params: dict[str, object] = {}
    for key, val in raw.items():
        if key not in qa.params:
            raise FieldError(field, f"{name}(...) takes no {key!r}{suggest(key, list(qa.params))}"
                                    f"; it takes {', '.join(qa.params)} (in {text!r})")
        params[qa.params[key]] = val
    missing = [k for k in qa.required if qa.params[k] not in params]
    if missing:
        raise FieldError(field, f"{name}(...) needs {', '.join(missing)} (in {text!r})")
    return FaultType(qa.kind, params, text)


def _split_params(body: str, text: str, field: str) -> dict[str, str]:
    """``a:1,b:/x/**/*`` -> {a: '1', b: '/x/**/*'}; a value runs to the next comma."""
    out: dict[str, str] = {}
    if not body.strip():
        return out
    for part in body.split(","):
        key, sep, val = part.partition(":")
        key, val = key.strip(), val.strip()
        if not sep or not key or not val:
            raise FieldError(field, f"{field} {text!r}: parameters are key:value separated by "
                                    f"commas, got {part.strip()!r}")
        if key in out:
            raise FieldError(field, f"{field} {text!r}: {key!r} given twice")
        out[key] = val
    return out


def _seconds(value: object) -> float:
    return value.seconds if isinstance(value, Duration) else 0.0


def approximation(fault: FaultSpec) -> list[str]:
    """Plan lines: QA's meaning of the fault, and how our mechanism approximates it."""
    lines: list[str] = []
    name = _PARAMETRIC.match(fault.written or "")
    qa = QA_TYPES.get(name.group(1)) if name else None
    if qa is not None:
        values = {k: fault.params.get(k, "-") for k in
                  ("path", "volume_path", "volume_name", "latency")}
        values["percent"] = f"{fault.params.get('percent', 100):g}"
        lines.append("QA means: " + qa.meaning.format(**values))
    if fault.kind == "io_delay":
        latency = _seconds(fault.params.get("latency"))
        iops = max(1, math.floor(1.0 / latency)) if latency > 0 else 1
        line = (f"here: a cgroup IO limit of {iops} IOPS on the disk behind the node's data "
                f"directory (/data), so every read and write of the node to that disk waits "
                f"about {1.0 / iops:g}s -- all files, every operation")
        if "path" in fault.params or "volume_path" in fault.params or \
                "volume_name" in fault.params:
            line += "; the volume and path are mapped to /data"
        percent = fault.params.get("percent")
        if isinstance(percent, (int, float)) and percent < 100:
            line += f"; percent {percent:g}% cannot be honoured (all operations are slowed)"
        if latency >= max(fault.schedule.duration.seconds, IOPS_FLOOR_LATENCY * 2):
            # no IO completes before the heal: QA's IO hang (a delay of 60m)
            line += (f"; a delay of {fault.params['latency']} (no IO completes within the "
                     f"window) is an IO hang in QA's harness, here the disk still serves "
                     f"1 IO per second")
        elif latency > IOPS_FLOOR_LATENCY:
            line += f"; delays above {IOPS_FLOOR_LATENCY:g}s are capped at 1 IO per second"
        lines.append(line + " (needs root on a local Docker engine)")
    if fault.kind == "network_delay" and "correlation" in fault.params:
        lines.append(f"here: tc netem delay without correlation (QA's correlation "
                     f"{fault.params['correlation']}% is not applied)")
    return lines
