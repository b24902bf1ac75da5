"""Turn the raw event history into the shapes a report draws (pure).

The picture, the summary and the JUnit properties all need the same derived
views — fault windows per node, state bands per job, workload series — so they
are computed once here from ``Timeline`` events and nothing else. Keeping this
pure (events in, dataclasses out) lets the tests feed hand-written histories
and lets the report survive half-filled timelines (a test that failed during
cluster start-up still gets a picture of what did happen).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..events import kind_of
from ..redact import redact
from ..timeline import Event, FaultWindow, fault_windows

# -- job states -----------------------------------------------------------------

#: Band category of every DDL state / import status (tidb-contract §1, §3).
STATE_CATEGORY: Mapping[str, str] = {
    "none": "queueing",
    "queueing": "queueing",
    "pending": "queueing",
    "running": "running",
    "rollingback": "rollback",
    "cancelling": "rollback",
    "pausing": "rollback",
    "paused": "paused",
    "done": "done",
    "synced": "done",
    "finished": "done",
    "rollback done": "failed",
    "cancelled": "failed",
    "failed": "failed",
}
TERMINAL_CATEGORIES = frozenset({"done", "failed"})
#: Verdicts that end a job: its band closes at the verdict even without a terminal state.
VERDICT_END: Mapping[str, str] = {"converged": "done", "failed-sensible": "failed",
                                  "failed-unexpected": "failed"}

_SHORT_SCHEMA = {
    "write reorganization": "write reorg",
    "delete reorganization": "delete reorg",
    "delete only": "delete only",
    "write only": "write only",
}


@dataclass(frozen=True)
class Band:
    """One stretch of a job in one state, ``[start, end)`` in timeline seconds."""

    start: float
    end: float
    category: str  # queueing | running | rollback | paused | done | failed | other
    label: str  # what the user reads in the band ("write reorg", "importing", ...)


@dataclass(frozen=True)
class JobTrack:
    """Everything the report shows about one job."""

    job_key: str
    kind: str
    job_id: int | None
    submitted: float | None
    bands: tuple[Band, ...]
    rows: tuple[tuple[float, int], ...]  # (t, ROW_COUNT / imported rows)
    verdict: str | None = None
    verdict_t: float | None = None
    reason: str = ""
    last_progress: float | None = None  # t of the last observed change
    last_state: Mapping[str, Any] = field(default_factory=dict)
    changes: tuple[float, ...] = ()  # t of every job.state event (recorded on change)
    cancels: tuple[float, ...] = ()  # t of every job.cancel
    extra_verdicts: tuple[tuple[str, str, float | None], ...] = ()  # (key, verdict, t)

    def progress_before(self, t: float | None) -> float | None:
        """The last observed change at or before *t* (the start of a stall)."""
        times = [x for x in (self.submitted, *self.changes) if x is not None]
        if t is not None:
            times = [x for x in times if x <= t]
        return max(times, default=None)

    @property
    def stuck(self) -> bool:
        return self.verdict == "stuck"

    @property
    def title(self) -> str:
        kind = {"add_index": "ADD INDEX", "import_into": "IMPORT INTO"}.get(self.kind, self.kind)
        jid = f" #{self.job_id}" if self.job_id is not None else ""
        return f"{kind}{jid}"


def data_kind(data: Mapping[str, Any]) -> str:
    """The fault/job kind of an event (stored under ``events.FAULT_KIND``/``JOB_KIND``)."""
    return kind_of(data)


def _category(state: str) -> str:
    return STATE_CATEGORY.get(state.strip().lower(), "other")


def _band_label(kind: str, data: Mapping[str, Any], state: str) -> str:
    """What a band says: the schema state (ADD INDEX) or import step while running."""
    cat = _category(state)
    if cat == "running":
        step = str(data.get("import_step") or "").strip()
        schema = str(data.get("schema_state") or "").strip().lower()
        if kind == "import_into" or (step and not schema):
            return step or "running"
        return _SHORT_SCHEMA.get(schema, schema) or "running"
    return state or cat


def _int_or_none(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def job_tracks(events: Sequence[Event], end: float | None = None) -> list[JobTrack]:
    """One :class:`JobTrack` per ``job_key``, in submission order.

    Bands run from one ``job.state`` change to the next; the last band runs to
    *end* (default: the last event), so a job that never left ``running`` shows
    a band reaching the right edge — the stall is visible at a glance.
    """
    end = max((e.t for e in events), default=0.0) if end is None else end
    order: list[str] = []
    info: dict[str, dict[str, Any]] = {}

    def slot(key: str) -> dict[str, Any]:
        if key not in info:
            order.append(key)
            info[key] = {"kind": "", "job_id": None, "submitted": None, "states": [],
                         "rows": [], "verdict": None, "verdict_t": None, "reason": "",
                         "last_progress": None, "last": {}, "changes": [], "cancels": [],
                         "extra": []}
        return info[key]

    for e in events:
        if not e.kind.startswith("job."):
            continue
        key = str(e.data.get("job_key") or e.data.get("job_id") or "job")
        base, _, probe = key.partition("/")
        if probe and e.kind == "job.verdict":  # e.g. "add_index#1/cancel": the cancel probe
            slot(base)["extra"].append((key, str(e.data.get("verdict") or ""), e.t))
            continue
        s = slot(key)
        if data_kind(e.data):
            s["kind"] = data_kind(e.data)
        if s["kind"] == "" and "import" in key:
            s["kind"] = "import_into"
        elif s["kind"] == "" and "index" in key:
            s["kind"] = "add_index"
        jid = _int_or_none(e.data.get("job_id"))
        if jid is not None:
            s["job_id"] = jid
        if e.kind == "job.submit":
            s["submitted"] = e.t if s["submitted"] is None else s["submitted"]
        elif e.kind == "job.state":
            state = str(e.data.get("state") or e.data.get("import_status") or "").strip()
            label = _band_label(s["kind"], e.data, state)
            cat = _category(state) if state else "other"
            if not s["states"] or s["states"][-1][1:] != (cat, label):
                s["states"].append((e.t, cat, label))
            rows = _int_or_none(e.data.get("row_count"))
            if rows is None:
                rows = _int_or_none(e.data.get("imported_rows"))
            if rows is not None:
                s["rows"].append((e.t, rows))
            if s["submitted"] is None:
                s["submitted"] = e.t
            s["last_progress"] = e.t
            s["changes"].append(e.t)
            s["last"] = {k: v for k, v in e.data.items() if k != "job_key"}
        elif e.kind == "job.cancel":
            s["cancels"].append(e.t)
        elif e.kind == "job.verdict":
            s["verdict"] = str(e.data.get("verdict") or "") or None
            s["verdict_t"] = e.t
            s["reason"] = redact(str(e.data.get("reason") or ""))

    tracks = []
    for key in order:
        s = info[key]
        states = s["states"]
        bands = []
        for i, (t, cat, label) in enumerate(states):
            stop = states[i + 1][0] if i + 1 < len(states) else max(end, t)
            bands.append(Band(t, stop, cat, label))
        if s["submitted"] is not None and (not states or states[0][0] > s["submitted"]):
            first = states[0][0] if states else end
            bands.insert(0, Band(s["submitted"], first, "queueing", "submitted"))
        ended = VERDICT_END.get(s["verdict"] or "")
        vt = s["verdict_t"]
        if (ended and vt is not None and bands and bands[-1].category not in TERMINAL_CATEGORIES
                and bands[-1].start <= vt):
            # judged terminal without a terminal state seen (e.g. the statement failed
            # before the job showed up): the band ends at the verdict
            last = bands.pop()
            if vt > last.start:
                bands.append(Band(last.start, vt, last.category, last.label))
            bands.append(Band(vt, max(end, vt), ended, s["verdict"]))
        tracks.append(JobTrack(
            job_key=key, kind=s["kind"], job_id=s["job_id"], submitted=s["submitted"],
            bands=tuple(bands), rows=tuple(s["rows"]), verdict=s["verdict"],
            verdict_t=s["verdict_t"], reason=s["reason"], last_progress=s["last_progress"],
            last_state=s["last"], changes=tuple(s["changes"]), cancels=tuple(s["cancels"]),
            extra_verdicts=tuple(s["extra"]),
        ))
    return tracks


# -- faults -------------------------------------------------------------------------

_NODE_RE = re.compile(r"^(pd|tikv|tidb|tiflash|helper)-(\d+)$")
_COMPONENT_ORDER = {"pd": 0, "tikv": 1, "tidb": 2, "tiflash": 3}


def node_sort_key(name: str) -> tuple[int, int, str]:
    """pd-0, pd-1, …, tikv-0, …, tidb-0, … then anything else alphabetically."""
    m = _NODE_RE.match(name)
    if not m:
        return (9, 0, name)
    return (_COMPONENT_ORDER.get(m.group(1), 8), int(m.group(2)), name)


def _names(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v] if v else []
    if isinstance(v, Mapping):
        return [str(x) for x in v.values() if x]
    if isinstance(v, Iterable):
        return [str(x) for x in v if x]
    return [str(v)]


def _seconds_text(v: Any) -> str:
    """``1`` → ``1s``, ``0.5`` → ``500ms``, ``"1s"`` stays."""
    if isinstance(v, bool) or v is None:
        return ""
    if isinstance(v, (int, float)):
        return f"{v * 1000:g}ms" if 0 < v < 1 else f"{v:g}s"
    return str(v)


def fault_label(window: FaultWindow) -> str:
    """Short human label: ``kill``, ``partition pd-0 ⟂ pd-1,pd-2``, ``delay 1s``."""
    d = window.data
    params = d.get("params") if isinstance(d.get("params"), Mapping) else {}
    assert isinstance(params, Mapping)
    kind = window.kind or data_kind(d) or "fault"
    sources, targets = _names(d.get("sources")), _names(d.get("targets"))
    if kind == "network_partition":
        if sources and targets:
            return f"partition {','.join(sources)} ⟂ {','.join(targets)}"
        return f"partition {','.join(sources or targets)}"
    if kind in ("network_delay", "io_delay"):
        amount = next((params[k] for k in ("delay", "latency", "duration_ms", "ms")
                       if k in params), None)
        txt = _seconds_text(amount) if amount is not None else ""
        base = "io delay" if kind == "io_delay" else "delay"
        return f"{base} {txt}".strip()
    if kind == "network_loss":
        amount = next((params[k] for k in ("loss", "percent", "rate") if k in params), None)
        if amount is None:
            return "loss"
        s = str(amount)
        return f"loss {s}" if s.endswith("%") else f"loss {s}%"
    return {"pd_leader_resign": "resign pd leader",
            "ddl_owner_resign": "resign ddl owner"}.get(kind, kind.replace("_", " "))


@dataclass(frozen=True)
class NodeFault:
    """A fault window as seen on one node's lane."""

    window: FaultWindow
    node: str
    primary: bool  # the node the fault acts on (False: the far side of a partition)
    label: str
    row: int = 0  # sub-row when windows on this node overlap


def fault_nodes(window: FaultWindow) -> tuple[list[str], list[str]]:
    """(primary nodes, peer nodes) of a window.

    For a partition ``sources ⟂ targets`` the sources are primary (the isolated
    side); for kill/pause/delay the targets are.
    """
    sources, targets = _names(window.data.get("sources")), _names(window.data.get("targets"))
    if sources:
        return sources, [t for t in targets if t not in sources]
    return targets, []


def node_faults(windows: Sequence[FaultWindow]) -> dict[str, list[NodeFault]]:
    """Fault windows per node, overlapping windows placed on separate sub-rows."""
    per: dict[str, list[NodeFault]] = {}
    for w in windows:
        primary, peers = fault_nodes(w)
        label = fault_label(w)
        for n in primary:
            per.setdefault(n, []).append(NodeFault(w, n, True, label))
        for n in peers:
            per.setdefault(n, []).append(NodeFault(w, n, False, label))
    out: dict[str, list[NodeFault]] = {}
    for node, items in per.items():
        rows_end: list[float] = []
        placed = []
        for nf in sorted(items, key=lambda x: (x.window.start, x.window.fault_id)):
            end = nf.window.end if nf.window.end is not None else float("inf")
            row = next((i for i, e in enumerate(rows_end) if e <= nf.window.start), None)
            if row is None:
                row = len(rows_end)
                rows_end.append(end)
            else:
                rows_end[row] = end
            placed.append(NodeFault(nf.window, nf.node, nf.primary, nf.label, row))
        out[node] = placed
    return out


_TOPOLOGY_RE = re.compile(r"\b(pd|tikv|tidb)=(\d+)\b")


def nodes_from_topology(text: str) -> list[str]:
    """``pd=3,tikv=3,tidb=2 images=…`` (``Cluster.describe()``) → ``pd-0 … tidb-1``."""
    out = []
    for comp, count in _TOPOLOGY_RE.findall(text or ""):
        out += [f"{comp}-{i}" for i in range(min(int(count), 64))]
    return out


def known_nodes(events: Sequence[Event]) -> list[str]:
    """Every node named anywhere in the history (or in a ``topology`` text, as
    ``cluster.ready`` carries it), in topology order — so a lane exists for every
    node even when no fault touched it."""
    seen: set[str] = set()
    for e in events:
        for key in ("targets", "sources", "nodes", "node", "roles"):
            if key in e.data:
                seen.update(n for n in _names(e.data[key]) if _NODE_RE.match(n))
        topo = e.data.get("topology")
        if isinstance(topo, str):
            seen.update(nodes_from_topology(topo))
    return sorted(seen, key=node_sort_key)


def role_notes(events: Sequence[Event]) -> dict[str, str]:
    """node → roles it held when a fault was injected (``pd leader``, ``ddl owner``)."""
    out: dict[str, list[str]] = {}
    for e in events:
        if e.kind != "fault.inject":
            continue
        roles = e.data.get("roles")
        if not isinstance(roles, Mapping):
            continue
        for role, node in roles.items():
            for n in _names(node):
                label = str(role).replace("_", " ")
                if label not in out.setdefault(n, []):
                    out[n].append(label)
    return {n: ", ".join(v) for n, v in out.items()}


@dataclass(frozen=True)
class FaultError:
    t: float
    fault_id: str
    phase: str
    error: str


def fault_errors(events: Sequence[Event]) -> list[FaultError]:
    return [FaultError(e.t, str(e.data.get("fault_id", "")), str(e.data.get("phase", "")),
                       redact(str(e.data.get("error", ""))))
            for e in events if e.kind == "fault.error"]


# -- workload -------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkloadPoint:
    t: float
    tps: float
    qps: float
    errors: int  # errors during this sample, all codes
    p99: float | None


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def workload_series(events: Sequence[Event]) -> list[WorkloadPoint]:
    out = []
    for e in events:
        if e.kind != "workload.metrics":
            continue
        errs = e.data.get("errors")
        if isinstance(errs, Mapping):
            n = int(sum(_num(v) for v in errs.values()))
        else:
            n = int(_num(errs))
        p99 = e.data.get("p99")
        out.append(WorkloadPoint(e.t, _num(e.data.get("tps")), _num(e.data.get("qps")), n,
                                 None if p99 is None else _num(p99)))
    return out


#: Events that mark the case under way (before them: cluster set-up, data loading).
ACTIVITY_KINDS = ("nemesis.start", "workload.start", "workload.metrics", "fault.inject",
                  "job.submit")


def case_t0(events: Sequence[Event]) -> float | None:
    """t0 of the case's schedule: the nemesis start (fault windows are planned from
    it), else the workload start, else the first fault or job; ``None`` if none."""
    for kinds in (("nemesis.start",), ("workload.start",), ("fault.inject", "job.submit")):
        ts = [e.t for e in events if e.kind in kinds]
        if ts:
            return min(ts)
    return None


def first_activity(events: Sequence[Event]) -> float | None:
    return min((e.t for e in events if e.kind in ACTIVITY_KINDS), default=None)


@dataclass(frozen=True)
class History:
    """All derived views of one timeline, computed once.

    ``start`` is where the picture begins: the first sign of the case (workload,
    nemesis, fault, job) — the cluster start-up before it is not drawn, so a
    60-second set-up does not squeeze an 18-second case into a corner.
    """

    start: float
    end: float
    windows: tuple[FaultWindow, ...]
    nodes: tuple[str, ...]
    per_node: Mapping[str, list[NodeFault]]
    roles: Mapping[str, str]
    jobs: tuple[JobTrack, ...]
    workload: tuple[WorkloadPoint, ...]
    errors: tuple[FaultError, ...]
    t0: float | None = None  # case time zero (see case_t0)


def history(events: Sequence[Event], end: float | None = None) -> History:
    events = sorted(events, key=lambda e: e.t)
    last = max((e.t for e in events), default=0.0)
    end = max(last, end or 0.0)
    windows = fault_windows(events)
    per_node = node_faults(windows)
    nodes = sorted(set(known_nodes(events)) | set(per_node), key=node_sort_key)
    first = first_activity(events)
    start = 0.0
    if first is not None and first > 0:
        start = max(0.0, first - 0.02 * max(end - first, 1.0))
    return History(
        start=start, end=end, t0=case_t0(events), windows=tuple(windows), nodes=tuple(nodes), per_node=per_node,
        roles=role_notes(events), jobs=tuple(job_tracks(events, end)),
        workload=tuple(workload_series(events)), errors=tuple(fault_errors(events)),
    )
