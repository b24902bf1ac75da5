"""Markers -> :class:`~.model.Case` (pytest-free: the plugin passes args/kwargs).

Arguments are bound to the Python signatures below (as pytest-django does
for its ``django_db`` marker), so a misspelt keyword or a missing argument
gets Python's own clear message; values then go through the same builders
as the YAML loader. Every error names the test's nodeid and the marker.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import build
from .errors import FieldError, ScenarioError
from .faulttypes import known_types
from .model import Case, Duration, FaultSpec, SourceRef, Topology, Workload

MarkArgs = tuple[Sequence[Any], Mapping[str, Any]]


def fault(kind: str | None = None, *, selector: str | None = None, duration: object = None,
          period: object = None, total: object = None, warmup: object = None,
          recovery: object = None, allow_fault_errors: bool = False, when: object = None,
          schedule: object = None, interval: object = None, fault_types: object = None,
          **params: object) -> None:
    """Signature of ``@pytest.mark.fault`` (repeatable)."""


def workload(kind: str = "sysbench", *, db: str = "sbtest", tables: int = 1,
             table_size: int = 10_000, threads: int = 4, subtype: str = "oltp_read_write",
             ignore_errors: object = "all") -> None:
    """Signature of ``@pytest.mark.workload``."""


def tidb_cluster(*, pd: int | None = None, tikv: int | None = None, tidb: int | None = None,
                 version: str | None = None) -> None:
    """Signature of ``@pytest.mark.tidb_cluster``."""


#: The lines the plugin registers, shown by ``pytest --markers``.
MARKER_HELP: dict[str, str] = {
    "fault": (
        "fault(kind, *, selector, duration, period=None, total=None, warmup=None, "
        "recovery=None, **params): inject a fault (repeatable). kinds: "
        + ", ".join(known_types()) + " (QA's parametric form too: 'network_latency(latency:1s)'"
        "). params: "
        "latency='1s', jitter='100ms', loss='30%', direction='both|to|from', rate='1mbit', "
        "free='10MB', disk_size='256MiB', ports=[2379], shape='halves|bridge|majorities_ring'. "
        "Durations like '90s', '5m', '1h30m', '500ms' or seconds; a period needs total; none = "
        "one-shot; schedule='random' with interval='10s..60s' and total; "
        "fault_types=[...] mixes kinds; when={'job': 1, 'schema_state': 'write reorganization'} "
        "starts the schedule when the job is first seen so. "
        "A window that was not applied (or not healed) fails the test unless "
        "allow_fault_errors=True"
    ),
    "workload": (
        "workload(kind='sysbench', *, db='sbtest', tables=1, table_size=10000, threads=4, "
        "subtype='oltp_read_write', ignore_errors='all'): run a background workload from t0"
    ),
    "tidb_cluster": (
        "tidb_cluster(*, pd=None, tikv=None, tidb=None, version=None): minimum topology and "
        "TiDB version for this test (marker > CLI > env > ini)"
    ),
}


def _bind(fn: Callable[..., None], name: str, args: Sequence[Any], kwargs: Mapping[str, Any],
          ref: SourceRef) -> inspect.BoundArguments:
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise ScenarioError(ref, f"@pytest.mark.{name}: {exc}") from None
    bound.apply_defaults()
    return bound


def _positive_int(value: object, field: str, marker: str, ref: SourceRef) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ScenarioError(ref, f"@pytest.mark.{marker}: {field} must be a whole number >= 1, "
                                 f"got {value!r}")
    return value


def fault_from_marker(args: Sequence[Any], kwargs: Mapping[str, Any], ref: SourceRef) -> FaultSpec:
    """One ``@pytest.mark.fault(...)`` -> :class:`FaultSpec`."""
    b = _bind(fault, "fault", args, kwargs, ref).arguments
    for key in b.get("params", {}):
        if key not in build.ALL_PARAMS:
            known = (*dict.fromkeys(build.MARKER_NAMES.values()), *build.ALL_PARAMS,
                     "allow_fault_errors")
            raise ScenarioError(ref, f"@pytest.mark.fault: unexpected keyword {key!r}"
                                     f"{build.suggest(key, known)}; accepted: "
                                     f"{', '.join(known[1:])}")
    if b["kind"] is None and b["fault_types"] is None:
        raise ScenarioError(ref, "@pytest.mark.fault: give the fault kind (first argument) or "
                                 "fault_types=[...]")
    allow = b["allow_fault_errors"]
    if not isinstance(allow, bool):
        raise ScenarioError(ref, f"@pytest.mark.fault: allow_fault_errors must be True or False, "
                                 f"got {allow!r}")
    try:
        spec = build.make_fault(
            b["kind"], selector=b["selector"], duration_value=b["duration"], period=b["period"],
            total=b["total"], warmup=b["warmup"], recovery=b["recovery"],
            params=b.get("params", {}), source=ref,
            names=build.MARKER_NAMES, when=b["when"], schedule=b["schedule"],
            interval_value=b["interval"], kinds=b["fault_types"],
        )
    except FieldError as exc:
        raise ScenarioError(ref, f"@pytest.mark.fault: {exc.message}") from None
    return dataclasses.replace(spec, allow_errors=allow)


def workload_from_marker(args: Sequence[Any], kwargs: Mapping[str, Any],
                         ref: SourceRef) -> Workload:
    """``@pytest.mark.workload(...)`` -> :class:`Workload`."""
    # the YAML loader (and PyYAML) only once a test declares a workload: the plugin loads
    # this module at start-up, and a suite without HA tests should not pay for the loader
    from .loader import SUBTYPES, WORKLOAD_TYPES, parse_ignore_errors

    b = _bind(workload, "workload", args, kwargs, ref).arguments
    if b["kind"] not in WORKLOAD_TYPES:
        raise ScenarioError(ref, f"@pytest.mark.workload: unknown kind {b['kind']!r}"
                                 f"{build.suggest(str(b['kind']), WORKLOAD_TYPES)}; "
                                 f"known: {', '.join(WORKLOAD_TYPES)}")
    if b["subtype"] not in SUBTYPES:
        raise ScenarioError(ref, f"@pytest.mark.workload: unknown subtype {b['subtype']!r}"
                                 f"{build.suggest(str(b['subtype']), SUBTYPES)}")
    if not isinstance(b["db"], str) or not b["db"]:
        raise ScenarioError(ref, f"@pytest.mark.workload: db must be a name, got {b['db']!r}")
    try:
        ignore = parse_ignore_errors(b["ignore_errors"], "ignore_errors")
    except FieldError as exc:
        raise ScenarioError(ref, f"@pytest.mark.workload: {exc.message}") from None
    return Workload(
        kind=b["kind"], db=b["db"],
        tables=_positive_int(b["tables"], "tables", "workload", ref),
        table_size=_positive_int(b["table_size"], "table_size", "workload", ref),
        threads=_positive_int(b["threads"], "threads", "workload", ref),
        subtype=b["subtype"], ignore_errors=ignore, source=ref,  # type: ignore[arg-type]
    )


def cluster_from_marker(args: Sequence[Any], kwargs: Mapping[str, Any],
                        ref: SourceRef) -> tuple[Topology | None, str | None]:
    """``@pytest.mark.tidb_cluster(...)`` -> (topology or None, version or None)."""
    b = _bind(tidb_cluster, "tidb_cluster", args, kwargs, ref).arguments
    counts = {c: _positive_int(b[c], c, "tidb_cluster", ref)
              for c in ("pd", "tikv", "tidb") if b[c] is not None}
    version = b["version"]
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise ScenarioError(ref, f"@pytest.mark.tidb_cluster: version must be a string like "
                                 f"'v8.5.7', got {version!r}")
    return (Topology(**counts) if counts else None), version


def case_from_markers(
    nodeid: str,
    name: str,
    *,
    faults: Sequence[MarkArgs] = (),
    workload: MarkArgs | None = None,
    cluster: MarkArgs | None = None,
) -> Case:
    """The :class:`Case` of a marker-decorated test.

    Jobs are the test body's business (``tidb.add_index()``), so the case
    has none; t0 is when the ``ha_workload`` fixture starts the workload.
    """
    ref = SourceRef(nodeid=nodeid)
    specs = tuple(fault_from_marker(a, k, ref) for a, k in faults)
    workloads = (workload_from_marker(*workload, ref),) if workload is not None else ()
    topology, version = cluster_from_marker(*cluster, ref) if cluster is not None else (None, None)
    return Case(name=name, warmup=Duration(0.0, "0s"), workloads=workloads, faults=specs,
                topology=topology, version=version, source=ref)
