"""The dry-run plan: what a case would do, in words, before anything starts.

Pure text from the model, so a scenario author can check a case file (and
its time scale) without Docker: the topology and why, every fault window
(scaled, with the unscaled time as written), every job submission and its
deadline. Secrets in IMPORT INTO sources are redacted.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..redact import redact
from . import timing
from .durations import format_seconds
from .estimate import estimate_case
from .faulttypes import approximation
from .floors import Timer, fault_warnings, job_windows, table_timers
from .model import AddIndexJob, Case, FaultSpec, ImportIntoJob, JobSpec, Topology
from .needs import plan_topology
from .sizing import scaled_size, scaled_threads, tables_for_jobs
from .sqltext import CRC32_CHECKSUM, global_assignment

MAX_WINDOWS = 20  # longer schedules are elided in the middle


def _t(seconds: float, scale: float) -> str:
    """``scaled [unscaled]`` -- or just one value when the scale is 1."""
    if scale == 1.0:
        return format_seconds(seconds)
    return f"{format_seconds(seconds * scale)} [{format_seconds(seconds)}]"


def _on_off(value: bool | None) -> str:
    return "cluster default" if value is None else ("on" if value else "off")


def _dist_task(case: Case) -> str:
    """The case's tidb_enable_dist_task: ``distTask``, else QA's tidbGlobalVariables."""
    if case.dist_task is not None:
        return _on_off(case.dist_task)
    for statement in case.global_variables.before:
        assignment = global_assignment(statement)
        if assignment is not None and assignment[0] == "tidb_enable_dist_task":
            return f"{assignment[1].lower()} (tidbGlobalVariables beforeCase)"
    return _on_off(None)


def _fault_lines(index: int, fault: FaultSpec, scale: float) -> list[str]:
    s = fault.schedule
    params = ", ".join(f"{k}={_param(k, v)}" for k, v in fault.params.items())
    kinds = " | ".join(fault.kinds) + " (one per window, seeded)" if fault.kinds else fault.kind
    head = f"  fault {index}: {kinds} on {fault.selector}"
    if params:
        head += f" ({params})"
    if s.interval is not None:
        lo, hi = s.interval
        head += (f"; {s.duration} windows, random gaps {lo}..{hi} (seeded by --ha-seed), from "
                 f"{s.warmup} for {s.total}")
    elif s.period is not None:
        head += (f"; {s.duration} every {format_seconds(s.period.seconds)} from {s.warmup} "
                 f"for {s.total}")
    else:
        head += f"; one-shot at {s.warmup} for {s.duration}"
        if s.recovery is not None:
            head += f", then {s.recovery} to recover"
    lines = [head + f"  [{fault.source}]"]
    if fault.trigger is not None:
        lines.append(f"    when: {fault.trigger} is first seen (by the watcher's poll); "
                     f"the times below count from then (trigger+)")
    if fault.written is not None:
        lines.append(f"    as written: faultType {fault.written}")
    lines += [f"    {line}" for line in approximation(fault)]
    unscaled = s.windows(1.0)
    shown = list(enumerate(unscaled, 1))
    if len(shown) > MAX_WINDOWS:
        shown = [*shown[:MAX_WINDOWS // 2], (-1, (0.0, 0.0)), *shown[-MAX_WINDOWS // 2:]]
    at = "trigger+" if fault.trigger is not None else ""
    expected = " (expected: the middle gap)" if s.interval is not None else ""
    for n, (start, end) in shown:
        if n < 0:
            lines.append(f"    ... {len(unscaled) - MAX_WINDOWS} more windows ...")
            continue
        if start == end:
            lines.append(f"    event {n}: at {at}{_t(start, scale)}{expected}")
        else:
            lines.append(f"    window {n}: {at}{_t(start, scale)} -> {at}{_t(end, scale)}"
                         f"{expected}")
    if s.recovery is not None and unscaled:
        end = unscaled[-1][1]
        lines.append(f"    recovery: {at}{_t(end, scale)} -> {at}{_t(end + s.recovery.seconds, scale)} "
                     f"(the default stall window grows by {s.recovery})")
    return lines


def _param(key: str, value: object) -> str:
    """A fault parameter as the plan shows it (sizes and rates in their units)."""
    from .sizes import format_rate, format_size

    if key in ("free", "disk_size") and isinstance(value, int):
        return format_size(value)
    if key == "rate" and isinstance(value, float):
        return format_rate(value)
    if key == "ports" and isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _job_label(job: JobSpec) -> str:
    if isinstance(job, AddIndexJob):
        return (f"ADD INDEX ({job.index_col_name}) ON {job.db}.{job.table} "
                f"job_type={job.job_type} admin_check={str(job.admin_check).lower()} "
                f"count_check={str(job.count_check).lower()}")
    assert isinstance(job, ImportIntoJob)
    if job.cmd is not None:
        return (f"IMPORT INTO {job.db}.{job.table} as written (cmd, run in database {job.db}): "
                f"{redact(job.cmd)}")
    opts = ", ".join(f"{k}={v}" for k, v in job.options.items())
    label = f"IMPORT INTO {job.db}.{job.table} FROM {redact(job.source_uri)!r} FORMAT {job.format}"
    return label + (f" WITH {opts}" if opts else "")


def _window_lines(job: JobSpec, case: Case, scale: float,
                  timers: Mapping[str, Timer]) -> list[str]:
    """The job's verdict windows and what set each (the time model, scenario.floors)."""
    w = job_windows(job.kind, case.faults, timers, stall=timing.stall_window(case, scale),
                    cancel=timing.cancel_window(scale), timeout=job.timeout.scaled(scale))
    return [f"    stall window {w.stall.describe()}",
            f"    cancel window {w.cancel.describe()}"]


def _job_lines(index: int, job: JobSpec, case: Case, scale: float,
               workload_scale: float, timers: Mapping[str, Timer]) -> list[str]:
    dist = _on_off(job.dist_task) if job.dist_task is not None else _dist_task(case)
    if isinstance(job, AddIndexJob) and job.job_type == "txn":
        dist = "off (txn backfill)"  # DXF needs fast reorg (scenario.switches)
    lines = [f"  job {index}: {_job_label(job)}; times={job.times}, timeout {job.timeout} each, "
             f"dist task {dist}  [{job.source}]"]
    if isinstance(job, ImportIntoJob):
        if job.create_table:
            where = f" (in database {job.db})" if job.cmd is not None else ""
            lines.append(f"    before{where}: {redact(job.create_table)}")
        if job.generate is not None:
            rows = job.generate.scaled_rows(workload_scale)
            written = (f" (as written {job.generate.rows}, workload scale {workload_scale:g})"
                       if workload_scale != 1.0 else "")
            files = ", ".join(job.generated_files())
            lines.append(f"    before: generate {rows} CSV rows{written} with a header line into "
                         f"/import: {files}")
        if job.crc32_checksum is not None:
            lines.append(f"    after each run: crc32Checksum must be {job.crc32_checksum} = "
                         f"{CRC32_CHECKSUM} (TiDB's dbutil.GetCRC32Checksum)")
    start = case.warmup.seconds
    timeout = job.timeout.seconds
    for run in range(1, job.times + 1):
        if run == 1:
            lines.append(f"    run 1: submit at {_t(start, scale)}, "
                         f"deadline {_t(start + timeout, scale)}")
        else:
            latest = start + (run - 1) * timeout
            lines.append(f"    run {run}: submit when run {run - 1} ends (at the latest "
                         f"{_t(latest, scale)}), deadline {_t(timeout, scale)} later "
                         f"(at the latest {_t(latest + timeout, scale)})")
    return lines + _window_lines(job, case, scale, timers)


def render_plan(case: Case, *, time_scale: float = 1.0, workload_scale: float = 1.0,
                requested: Topology | None = None, attach: bool = False,
                version: str | None = None) -> str:
    """The plan of ``case`` as text (one block; lines start with two spaces).

    ``version``: the TiDB version the case runs against (its own ``version:``
    wins); its row of the recovery-timer table bounds the verdict windows here,
    a running cluster's own reported timers bound them when it runs.
    """
    timers = table_timers(case.version or version)
    lines = [f"{case.id}  [{case.source}]"]
    if time_scale != 1.0:
        lines.append(f"  times: scaled by --ha-time-scale {time_scale:g} [as written]; "
                     f"t0 = workload started")
    else:
        lines.append("  times relative to t0 = workload started")
    if attach:
        lines.append("  topology: existing cluster (--tidb-dsn); selectors checked when it runs")
    else:
        tplan = plan_topology(case, requested)
        lines.append(f"  topology: {tplan.topology}"
                     + (f" version {case.version}" if case.version else ""))
        lines += [f"    {reason}" for reason in tplan.reasons] or ["    (default)"]
    lines.append(f"  dist task: {_dist_task(case)}")
    gv = case.global_variables
    lines += [f"  before the case: {redact(sql)}  [{gv.source}]" for sql in gv.before]
    lines += [f"  after the case: {redact(sql)}  [{gv.source}]" for sql in gv.after]
    if not case.workloads:
        lines.append("  workload: none")
    for w in case.workloads:
        needs = tables_for_jobs(w, case.jobs)
        size = scaled_size(w.tables, w.table_size, workload_scale, keep=needs.keep)
        threads = scaled_threads(w.threads, workload_scale)
        scaled = (f" (as written {w.tables} x {w.table_size}, {w.threads} threads)"
                  if workload_scale != 1.0 else "")
        ignore = w.ignore_errors if w.ignore_errors == "all" else ",".join(map(str, w.ignore_errors))
        lines.append(f"  workload: {w.kind} {w.subtype} db={w.db} tables={size.tables} "
                     f"table_size={size.table_size} threads={threads}{scaled} "
                     f"ignore_errors={ignore}")
        if size.tables < w.tables and needs.named and needs.keep > 1:
            lines.append(f"    {needs.keep} tables kept for the jobs' tables "
                         f"{', '.join(needs.named)}")
        lines += [f"    warning: {p}" for p in needs.problems]
    if not case.faults:
        lines.append("  faults: none")
    for i, fault in enumerate(case.faults, 1):
        lines += _fault_lines(i, fault, time_scale)
    lines += [f"  warning: {w}" for w in fault_warnings(case.faults, timers, time_scale)]
    if not case.jobs:
        lines.append("  jobs: none")
    else:
        lines.append(f"  jobs start at warmUpTime {_t(case.warmup.seconds, time_scale)}; each "
                     f"entry runs its times one after another, entries run side by side")
    if case.jobs:
        origin = next(iter(timers.values())).origin
        lines.append(f"  recovery timers: {origin} (a running cluster's own reported timers "
                     f"replace these when it runs)")
    for i, job in enumerate(case.jobs, 1):
        lines += _job_lines(i, job, case, time_scale, workload_scale, timers)
    e = case.expect
    expect = f"  expect: {e.outcome}"
    if e.allow_errors:
        expect += f"; also allowed: {', '.join(e.allow_errors)}"
    if e.stall_window is not None:
        expect += f"; stuck after {_t(e.stall_window.seconds, time_scale)} fault-free without progress"
    if e.cancel_after is not None:
        expect += f"; cancel after {_t(e.cancel_after.seconds, time_scale)}"
    lines.append(expect)
    est = estimate_case(case, time_scale=time_scale, workload_scale=workload_scale)
    lines.append(f"  estimate: ~{format_seconds(round(est.seconds))} wall (setup "
                 f"{format_seconds(round(est.setup))}, faults end {format_seconds(round(est.faults))}"
                 f", jobs end {format_seconds(round(est.jobs))}); --ha-shard balances by it")
    return "\n".join(lines)
