"""One time model: every verdict window is max(scaled window, the cluster's recovery floor).

``--ha-time-scale`` shrinks a case's schedule, but a real cluster's own timers
do not shrink: a killed DDL owner is replaced only after its etcd session
expires (60 s), a schema change waits for every TiDB's acknowledgement up to
2 x the schema lease (90 s). A stall window below such a timer judges a healthy
cluster ``stuck``; a fault window below it never trips what it was meant to
trip. So (pure functions, no I/O here):

* :data:`TIMERS` -- the timers, each with its source in TiDB/PD/TiKV and the
  surface a running cluster reports it on (read by :mod:`pytest_tidb_ha.jobs.cluster_timers`);
  :data:`VERSION_TABLE` gives the values for clusters that do not report them
  (and for the dry-run plan, before any cluster exists);
* :func:`job_floor` -- the recovery floor of what a case does to the cluster,
  for one job kind: the longest timer its faults can leave running into
  fault-free time (the stall clock stops only while a fault window is open);
* :func:`job_windows` -- the stall, cancel and timeout windows of a job, each
  the larger of the scaled window and that floor, with what set it;
* :func:`fault_warnings` -- fault windows shorter than the timer they are meant
  to trip.

Clusters report their own timers, and so does the stand-in (scaled) through
the very same surfaces: nothing here knows which kind of cluster it reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .durations import format_seconds
from .model import FaultSpec, NodeSelector

# -- the timers --------------------------------------------------------------------------
OWNER_TTL = "owner_ttl"
SCHEMA_LEASE = "schema_lease"
STORE_DISCONNECT = "store_disconnect"
RAFT_ELECTION = "raft_election"
PD_LEADER_LEASE = "pd_leader_lease"


@dataclass(frozen=True)
class TimerSpec:
    """A cluster timer: what it is, where TiDB/PD/TiKV define it, where a cluster reports it."""

    key: str
    label: str
    source: str  # the code that defines the default
    surface: str  # where a running cluster reports it ("" = nowhere: the table only)


TIMERS: Mapping[str, TimerSpec] = {
    t.key: t for t in (
        TimerSpec(OWNER_TTL, "DDL owner etcd session TTL",
                  "pingcap/tidb pkg/owner/manager.go ManagerSessionTTL = 60 "
                  "(env tidb_manager_ttl overrides)",
                  "grantedTTL of the lease on /tidb/ddl/fg/owner (PD /v3/lease/timetolive)"),
        TimerSpec(SCHEMA_LEASE, "schema lease",
                  "pingcap/tidb pkg/config/config.go Lease \"45s\"; pkg/ddl waitSchemaChanged "
                  "waits for every TiDB's schema version at most 2 x lease",
                  "TiDB status /info \"lease\""),
        TimerSpec(STORE_DISCONNECT, "PD store Disconnected after",
                  "tikv/pd pkg/core/store.go storeDisconnectDuration = 20 * time.Second", ""),
        TimerSpec(RAFT_ELECTION, "TiKV raft election timeout",
                  "tikv/tikv components/raftstore/src/store/config.rs raft_base_tick_interval "
                  "1s x raft_election_timeout_ticks 10",
                  "TiKV status /config raftstore.raft-base-tick-interval x "
                  "raft-election-timeout-ticks"),
        TimerSpec(PD_LEADER_LEASE, "PD leader lease",
                  "tikv/pd server/config/config.go LeaderLease (lease) default 3 s",
                  "PD /pd/api/v1/config \"lease\""),
    )
}

#: Seconds per timer and release line, for clusters that do not report a timer. The
#: values are the same in every line read (v7.5 .. v8.5); kept per version so a line
#: that changes one changes one row.
VERSION_TABLE: Mapping[str, Mapping[str, float]] = {
    "v7.5": {OWNER_TTL: 60.0, SCHEMA_LEASE: 45.0, STORE_DISCONNECT: 20.0, RAFT_ELECTION: 10.0,
             PD_LEADER_LEASE: 3.0},
    "v8.1": {OWNER_TTL: 60.0, SCHEMA_LEASE: 45.0, STORE_DISCONNECT: 20.0, RAFT_ELECTION: 10.0,
             PD_LEADER_LEASE: 3.0},
    "v8.5": {OWNER_TTL: 60.0, SCHEMA_LEASE: 45.0, STORE_DISCONNECT: 20.0, RAFT_ELECTION: 10.0,
             PD_LEADER_LEASE: 3.0},
}
NEWEST_LINE = "v8.5"


@dataclass(frozen=True)
class Timer:
    """One timer's value for a cluster and where that value came from."""

    key: str
    seconds: float
    origin: str  # "table v8.5" or the surface it was read from

    @property
    def label(self) -> str:
        return TIMERS[self.key].label

    def describe(self) -> str:
        return f"{self.label} {format_seconds(self.seconds)} [{self.origin}]"


def release_line(version: str | None) -> str:
    """``v8.5.7`` -> ``v8.5`` when the table has it, else the newest line."""
    m = re.match(r"v?(\d+)\.(\d+)", version or "")
    line = f"v{m.group(1)}.{m.group(2)}" if m else ""
    return line if line in VERSION_TABLE else NEWEST_LINE


def table_timers(version: str | None) -> dict[str, Timer]:
    """Every timer from the per-version table (the dry-run plan; unreported timers)."""
    line = release_line(version)
    origin = f"table {line}" + ("" if (version or "").startswith(line) else
                                f" (no row for {version or 'an unknown version'})")
    return {k: Timer(k, s, origin) for k, s in VERSION_TABLE[line].items()}


def merge_reported(table: Mapping[str, Timer], reported: Iterable[Timer]) -> dict[str, Timer]:
    """The table with every timer the cluster reported replaced by the reported value."""
    out = dict(table)
    for t in reported:
        out[t.key] = t
    return out


# -- what a case does to the cluster -----------------------------------------------------
#: Faults whose window disrupts the nodes they select.
DISRUPTIVE = frozenset({"kill", "pause", "restart", "network_partition", "network_delay",
                        "network_loss", "io_delay"})
#: Faults whose window can outlast a timer (instant events cannot trip one).
WINDOWED = DISRUPTIVE - {"restart"}
ADD_INDEX = "add_index"


def _component(side: NodeSelector) -> set[str]:
    if side.group in ("pd", "pdleader", "pdfollower"):
        return {"pd"}
    if side.group in ("tidb", "ddlowner"):
        return {"tidb"}
    if side.group == "tikv":
        return {"tikv"}
    if side.group == "all":
        return {"pd", "tikv", "tidb"}
    if side.group == "node" and side.name:
        return {side.name.split("-")[0]}
    return set()


def affected(fault: FaultSpec) -> set[str]:
    """Components a fault disrupts: its source side, and its target side unless that is
    ``all`` (``tikv(random)_to_all`` cuts one TiKV off; the others only lose that one)."""
    if fault.kinds:  # faultTypes: any of them may be the one a window applies
        return set().union(*(affected(v) for v in fault.variants()))
    if fault.kind == "pd_leader_resign":
        return {"pd"}
    if fault.kind == "ddl_owner_resign":
        return {"ddl-owner"}
    if fault.kind not in DISRUPTIVE or fault.selector is None:
        return set()
    comps = _component(fault.selector.source)
    target = fault.selector.target
    if target is not None and target.group != "all":
        comps |= _component(target)
    return comps


@dataclass(frozen=True)
class Floor:
    """The recovery floor of one job: the longest timer the case's faults leave running."""

    seconds: float
    what: str  # "DDL owner etcd session TTL 1m [table v8.5]"
    cause: str  # "fault 1 kill on tidb(ddl_owner)"

    def describe(self) -> str:
        return f"{self.what}, after {self.cause}"


def _candidates(comp: str, kind: str, timers: Mapping[str, Timer]) -> list[tuple[float, str]]:
    """(seconds, description) of the timers a disrupted component leaves running."""
    out: list[tuple[float, str]] = []

    def timer(key: str) -> None:
        t = timers.get(key)
        if t is not None:
            out.append((t.seconds, t.describe()))

    def schema_sync() -> None:
        # every schema state of ADD INDEX waits for all TiDBs' acks, at most 2 x lease
        t = timers.get(SCHEMA_LEASE)
        if t is not None and kind == ADD_INDEX:
            out.append((2 * t.seconds, f"DDL schema sync 2 x {t.describe()}"))

    if comp == "tidb":  # the owner (or any TiDB that may be it) lost: session TTL
        timer(OWNER_TTL)
        schema_sync()
    elif comp == "pd":  # TiDB's etcd sessions live on PD; schema versions are acked there
        timer(OWNER_TTL)
        timer(PD_LEADER_LEASE)
        schema_sync()
    elif comp == "tikv":  # leaders re-elected; the schema is read from TiKV meta regions
        timer(RAFT_ELECTION)
        timer(STORE_DISCONNECT)
        schema_sync()
    elif comp == "ddl-owner":  # a resign: the new owner first waits for the schema to sync
        schema_sync()
    return out


def job_floor(kind: str, faults: Sequence[FaultSpec],
              timers: Mapping[str, Timer]) -> Floor | None:
    """The recovery floor of a ``kind`` job (add_index / import_into) under *faults*."""
    best: Floor | None = None
    for i, fault in enumerate(faults, 1):
        for comp in sorted(affected(fault)):
            for seconds, what in _candidates(comp, kind, timers):
                if best is None or seconds > best.seconds:
                    best = Floor(seconds, what, f"fault {i} {fault.kind} on {fault.selector}")
    return best


# -- the windows -------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """A verdict window: the larger of the scaled window and the floor."""

    scaled: float
    floor: Floor | None

    @property
    def seconds(self) -> float:
        return max(self.scaled, self.floor.seconds if self.floor else 0.0)

    @property
    def set_by_floor(self) -> bool:
        return self.floor is not None and self.floor.seconds > self.scaled

    def describe(self) -> str:
        """``1m30s (floor: ...; scaled 18s)`` / ``18s (scaled; above the floor ...)``."""
        if self.floor is None:
            return f"{format_seconds(self.seconds)} (scaled; the faults trip no cluster timer)"
        if self.set_by_floor:
            return (f"{format_seconds(self.seconds)} (floor: {self.floor.describe()}; scaled "
                    f"{format_seconds(self.scaled)})")
        return (f"{format_seconds(self.seconds)} (scaled; above the floor "
                f"{format_seconds(self.floor.seconds)}: {self.floor.describe()})")


@dataclass(frozen=True)
class JobWindows:
    stall: Window
    cancel: Window
    timeout: Window


def job_windows(kind: str, faults: Sequence[FaultSpec], timers: Mapping[str, Timer], *,
                stall: float, cancel: float, timeout: float) -> JobWindows:
    """Each scaled window raised to the job's floor (see the module doc)."""
    floor = job_floor(kind, faults, timers)
    return JobWindows(Window(stall, floor), Window(cancel, floor), Window(timeout, floor))


# -- fault windows too short to trip what they aim at -------------------------------------
_TRIPS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "tidb": ((OWNER_TTL, "a new DDL owner is elected only after the old owner's etcd "
                         "session expires"),),
    "pd": ((PD_LEADER_LEASE, "a new PD leader is elected only after the leader lease runs out"),
           (OWNER_TTL, "TiDB's etcd sessions (DDL owner, DXF ingest lock: #48546's trigger) "
                       "expire only after their TTL")),
    "tikv": ((RAFT_ELECTION, "region leaders move off the TiKV only after the raft election "
                             "timeout"),
             (STORE_DISCONNECT, "PD marks the store Disconnected only after this long without "
                                "heartbeats")),
}


def fault_warnings(faults: Sequence[FaultSpec], timers: Mapping[str, Timer],
                   scale: float) -> list[str]:
    """One line per fault whose window is shorter than a timer it is meant to trip."""
    out: list[str] = []
    for i, fault in enumerate(faults, 1):
        if fault.kind not in WINDOWED:
            continue
        window = fault.schedule.duration.scaled(scale)
        for comp in sorted(affected(fault)):
            for key, effect in _TRIPS.get(comp, ()):
                t = timers.get(key)
                if t is not None and window < t.seconds:
                    out.append(f"fault {i} {fault.kind} on {fault.selector}: its "
                               f"{format_seconds(window)} window is shorter than "
                               f"{t.describe()}: {effect}")
    return out
