"""The case language's one immutable model.

A QA case file (the seeds' YAML, unchanged) and a marker-decorated test both
become a :class:`Case`. Everything downstream (cluster sizing, the nemesis,
the job runner, the dry-run plan, reports) reads only this model, so the two
front ends cannot drift apart.

All durations are *unscaled* here; ``--ha-time-scale`` is applied by the
consumer through :meth:`Duration.scaled` so the plan can show both.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

FaultKind = Literal[
    "network_partition",
    "network_delay",
    "network_loss",
    "kill",
    "pause",
    "restart",
    "io_delay",
    "pd_leader_resign",
    "ddl_owner_resign",
    "disk_full",
    "bandwidth",
]
FAULT_KINDS: tuple[str, ...] = (
    "network_partition",
    "network_delay",
    "network_loss",
    "kill",
    "pause",
    "restart",
    "io_delay",
    "pd_leader_resign",
    "ddl_owner_resign",
    "disk_full",
    "bandwidth",
)
NETWORK_FAULTS: frozenset[str] = frozenset({"network_partition", "network_delay", "network_loss",
                                            "bandwidth"})

Outcome = Literal["success", "success_or_sensible_error"]
Component = Literal["pd", "tikv", "tidb"]


def frozen_map(d: Mapping[str, object] | None = None) -> Mapping[str, object]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class SourceRef:
    """Where a piece of the model came from, for error messages and reports."""

    file: str | None = None
    line: int | None = None
    nodeid: str | None = None

    def __str__(self) -> str:
        if self.file:
            return f"{self.file}:{self.line}" if self.line else self.file
        return self.nodeid or "<unknown>"


@dataclass(frozen=True, order=True)
class Duration:
    """A length of time as written (``text``) and in seconds."""

    seconds: float
    text: str = field(default="", compare=False)

    def scaled(self, factor: float) -> float:
        return self.seconds * factor

    def __str__(self) -> str:
        return self.text or f"{self.seconds:g}s"


@dataclass(frozen=True)
class Quantifier:
    """``(random)`` / ``(one)`` one node; ``(all)``; ``(N)`` N nodes; ``(N%)`` a share."""

    mode: Literal["all", "one", "random", "count", "percent"] = "all"
    value: int | None = None

    def __str__(self) -> str:
        if self.mode in ("count",):
            return f"({self.value})"
        if self.mode == "percent":
            return f"({self.value}%)"
        return f"({self.mode})"


@dataclass(frozen=True)
class NodeSelector:
    """One side of a selector.

    ``group`` is one of ``pd``, ``pdleader``, ``pdfollower``, ``tikv``, ``tidb``,
    ``ddlowner``, ``all`` or ``node`` (then ``name`` holds e.g. ``tikv-1``).
    """

    group: str
    quantifier: Quantifier = Quantifier()
    name: str | None = None
    text: str = ""

    def __str__(self) -> str:
        return self.text or (self.name or self.group)


@dataclass(frozen=True)
class Selector:
    """``SOURCE`` or ``SOURCE_to_TARGET`` (network faults)."""

    source: NodeSelector
    target: NodeSelector | None = None
    text: str = ""

    def __str__(self) -> str:
        return self.text or (f"{self.source}_to_{self.target}" if self.target else str(self.source))


@dataclass(frozen=True)
class Schedule:
    """Fault windows relative to t0 (workload start) -- or to the trigger (``when:``).

    Periodic: first window at ``warmup``, one every ``period`` lasting
    ``duration``, while the window *starts* before ``warmup + total``.
    One-shot (no period/total): one window at ``warmup`` lasting ``duration``.
    Random (``interval``, Jepsen's stagger): the gap between a window's end and
    the next one's start is drawn uniformly from ``interval`` (seeded by the
    run's ``--ha-seed``), while the window starts before ``warmup + total``.
    """

    warmup: Duration
    duration: Duration
    period: Duration | None = None
    total: Duration | None = None
    #: one-shot faults (QA's ``recoveryTime``): time the cluster gets after the heal; the
    #: default stall window grows by it, so a job resuming within it is not judged stuck
    recovery: Duration | None = None
    #: ``schedule: random``: (shortest, longest) gap between windows
    interval: tuple[Duration, Duration] | None = None

    @property
    def is_random(self) -> bool:
        return self.interval is not None

    def windows(self, scale: float = 1.0,
                rng: random.Random | None = None) -> list[tuple[float, float]]:
        """``(start, end)`` of every window, scaled. A random schedule draws its gaps
        from ``rng``; without one it uses the middle of ``interval`` (the plan's and
        the estimate's expected schedule)."""
        start = self.warmup.scaled(scale)
        dur = self.duration.scaled(scale)
        if self.interval is not None:
            lo, hi = (d.scaled(scale) for d in self.interval)
            end = start + (self.total.scaled(scale) if self.total is not None else dur)
            out: list[tuple[float, float]] = []
            t = start
            while t < end - 1e-9 or not out:
                out.append((t, t + dur))
                t += dur + (rng.uniform(lo, hi) if rng is not None else (lo + hi) / 2)
            return out
        if self.period is None:
            return [(start, start + dur)]
        period = self.period.scaled(scale)
        total = (self.total.scaled(scale) if self.total is not None else period)
        out = []
        t = start
        while t < start + total - 1e-9:
            out.append((t, t + dur))
            t += period
        return out


#: ``when: {schemaState: ...}`` values: TiDB's SchemaState strings (reference §1.2).
SCHEMA_STATES = ("none", "delete only", "write only", "write reorganization",
                 "delete reorganization", "public")
#: ``when: {importStep: ...}`` values: IMPORT INTO phases (reference §3, job.go constants).
IMPORT_STEPS = ("preparing", "global-sorting", "importing", "resolving-conflicts", "validating",
                "add-index")
#: ``when: {state: ...}`` values: DDL job states and IMPORT INTO statuses (reference §1.1, §3.3).
JOB_STATES = ("none", "queueing", "running", "rollingback", "rollback done", "done", "cancelled",
              "synced", "cancelling", "paused", "pausing", "pending", "finished", "failed")


@dataclass(frozen=True)
class Trigger:
    """``when:``: the schedule starts when the case's ``job``-th job run (plan order,
    1-based) is first *seen* in a state -- by the watcher's poll, not by a clock.

    Every condition given must hold on the same observation; ``progress`` is the
    share of the table's rows the job processed (ADD INDEX ROW_COUNT, IMPORT INTO
    imported rows), as a percentage, reached or passed.
    """

    job: int = 1
    state: str | None = None
    schema_state: str | None = None
    import_step: str | None = None
    progress: float | None = None

    def conditions(self) -> dict[str, object]:
        """The conditions given, in YAML's names."""
        out: dict[str, object] = {}
        for name, value in (("state", self.state), ("schemaState", self.schema_state),
                            ("importStep", self.import_step), ("progress", self.progress)):
            if value is not None:
                out[name] = f"{value:g}%" if name == "progress" else value
        return out

    def __str__(self) -> str:
        conds = ", ".join(f"{k}={v}" for k, v in self.conditions().items())
        return f"job {self.job} {conds}"


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    selector: Selector | None
    schedule: Schedule
    params: Mapping[str, object] = field(default_factory=frozen_map)
    source: SourceRef = SourceRef()
    #: the faultType as written when it was QA's parametric form (``iochaos_io_delay(...)``)
    written: str | None = None
    #: windows of this fault may fail to apply without failing the test
    #: (``@pytest.mark.fault(..., allow_fault_errors=True)``)
    allow_errors: bool = False
    #: ``when:``: the schedule counts from this job-state trigger instead of t0
    trigger: Trigger | None = None
    #: ``faultTypes:``: each window is one of these kinds, picked at random (seeded);
    #: ``kind`` is then the first of them
    kinds: tuple[str, ...] = ()

    @property
    def direction(self) -> str:
        return str(self.params.get("direction", "both"))

    @property
    def mixed(self) -> bool:
        return len(self.kinds) > 1

    def variants(self) -> tuple[FaultSpec, ...]:
        """One spec per kind a window of this fault can be (itself unless ``faultTypes``)."""
        if not self.kinds:
            return (self,)
        from dataclasses import replace

        return tuple(replace(self, kind=k, kinds=()) for k in self.kinds)


@dataclass(frozen=True)
class Workload:
    kind: str = "sysbench"
    db: str = "sbtest"
    tables: int = 1
    table_size: int = 10_000
    threads: int = 4
    subtype: str = "oltp_read_write"
    ignore_errors: Literal["all"] | tuple[int, ...] = "all"
    storage: str | None = None
    source: SourceRef = SourceRef()


@dataclass(frozen=True)
class AddIndexJob:
    db: str
    table: str
    index_col_name: str
    timeout: Duration
    times: int = 1
    job_type: Literal["ingest", "txn"] = "ingest"
    admin_check: bool = False
    count_check: bool = False
    dist_task: bool | None = None  # None: leave the cluster's setting alone
    source: SourceRef = SourceRef()

    kind = "add_index"


#: Floor of generated import rows under ``--ha-workload-scale`` (see ``scaled_rows``).
MIN_IMPORT_ROWS = 100_000


@dataclass(frozen=True)
class GenerateSpec:
    """Test data the runner writes before an IMPORT INTO job.

    ``rows`` CSV rows (before ``--ha-workload-scale``) split over ``files``
    files, each with a header line, into the import folder that every TiDB
    container sees at ``/import``.
    """

    rows: int
    files: int = 1

    def scaled_rows(self, workload_scale: float) -> int:
        """Rows to write at ``--ha-workload-scale``; never below ``MIN_IMPORT_ROWS``.

        An import that ends before its first fault window tests nothing: the floor
        (or the rows as written, if fewer) keeps a shrunk import long enough to meet
        a kill or partition a few seconds in.
        """
        return max(min(self.rows, MIN_IMPORT_ROWS), round(self.rows * workload_scale))


@dataclass(frozen=True)
class ImportIntoJob:
    db: str
    table: str
    source_uri: str  # URL or path; may carry secrets -> redact before printing
    timeout: Duration
    format: str = "csv"
    options: Mapping[str, object] = field(default_factory=frozen_map)
    times: int = 1
    dist_task: bool | None = None
    generate: GenerateSpec | None = None  # write CSV test data first
    create_table: str | None = None  # SQL run (in ``db``) before the first import
    source: SourceRef = SourceRef()
    #: QA's ``cmd``: the whole IMPORT INTO statement, run as written in ``db``
    #: (``table``/``source_uri`` are read from it); may carry secrets -> redact
    cmd: str | None = None
    #: QA's ``crc32Checksum``: the table's checksum after the import (see jobs/checksum.py)
    crc32_checksum: int | None = None

    kind = "import_into"

    def generated_files(self) -> list[str]:
        """File names (relative to the import folder) that ``generate`` writes.

        The ``*`` of ``source`` (``/import/user_data1.*.csv``) is replaced by
        1..files, so the names match the glob IMPORT INTO is given; without a
        ``*`` (then files == 1) the file is the source's own name.
        """
        if self.generate is None:
            return []
        rel = self.source_uri.removeprefix("/import/")
        if "*" not in rel:
            return [rel]
        return [rel.replace("*", str(i), 1) for i in range(1, self.generate.files + 1)]


JobSpec = AddIndexJob | ImportIntoJob


@dataclass(frozen=True)
class Expectation:
    outcome: Outcome = "success_or_sensible_error"
    allow_errors: tuple[str, ...] = ()
    stall_window: Duration | None = None
    cancel_after: Duration | None = None
    #: a fault window that was not applied (or not healed) does not fail the test
    allow_fault_errors: bool = False


@dataclass(frozen=True)
class GlobalVariables:
    """QA's ``tidbGlobalVariables``: SET GLOBAL statements around a case (may hold secrets)."""

    before: tuple[str, ...] = ()  # ``beforeCase``: before the workload starts
    after: tuple[str, ...] = ()  # ``afterCase``: after the case, whatever its outcome
    source: SourceRef = SourceRef()

    def __add__(self, other: GlobalVariables) -> GlobalVariables:
        return GlobalVariables(self.before + other.before, self.after + other.after,
                               other.source if other.before or other.after else self.source)


@dataclass(frozen=True)
class Topology:
    pd: int = 1
    tikv: int = 1
    tidb: int = 1

    def merge_max(self, other: Topology) -> Topology:
        return Topology(max(self.pd, other.pd), max(self.tikv, other.tikv),
                        max(self.tidb, other.tidb))

    def __str__(self) -> str:
        return f"pd={self.pd},tikv={self.tikv},tidb={self.tidb}"


@dataclass(frozen=True)
class Case:
    """One HA case: what runs, what breaks when, what must hold."""

    name: str
    warmup: Duration  # jobs start here (t0 = workload start)
    workloads: tuple[Workload, ...] = ()
    faults: tuple[FaultSpec, ...] = ()
    jobs: tuple[JobSpec, ...] = ()
    expect: Expectation = Expectation()
    tag: str | None = None
    file_stem: str | None = None
    version: str | None = None
    topology: Topology | None = None  # explicitly requested (marker), else None
    dist_task: bool | None = None  # tidb_enable_dist_task for the case; None: leave it
    markers: tuple[str, ...] = ()  # pytest markers for the item (YAML ``markers:``)
    source: SourceRef = SourceRef()
    global_variables: GlobalVariables = GlobalVariables()  # QA's ``tidbGlobalVariables``

    @property
    def id(self) -> str:
        return f"{self.file_stem}::{self.name}" if self.file_stem else self.name
