"""Progress during long waits, through the ``pytest_tidb_ha`` logger (never print).

A 30-minute case must not look hung, and an 18-second one must not flood the
terminal. The policy, for every subject (a job, the workload):

* a line whenever its *state* changes (job state / schema state / import step,
  a fault injected or healed, a verdict);
* otherwise at most one "still …" line per minute of *case* time — every
  ``60 s × --ha-time-scale`` of real time, but never more often than every
  ``min_interval`` real seconds (5 s), so scaled runs stay readable.

Users see these lines live with ``log_cli`` (``-o log_cli=true``). The
``ha_record`` fixture follows its timeline with :class:`TimelineProgress`. The
job watcher and the nemesis already log their own state changes and heartbeat
at INFO, so the fixture echoes fault and job events at DEBUG (``layer_level``)
and adds at INFO only what nobody else says: the workload heartbeat (tps,
errors, p99 once per case minute). Code without its own logging can use
:class:`Heartbeat` directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..redact import redact
from ..timeline import Event, fault_windows
from .derive import data_kind, fault_label
from .summary import format_duration

LOG = logging.getLogger("pytest_tidb_ha.progress")
EVERY_CASE_SECONDS = 60.0
MIN_INTERVAL = 5.0


def heartbeat_interval(time_scale: float, every: float = EVERY_CASE_SECONDS,
                       min_interval: float = MIN_INTERVAL) -> float:
    """Real seconds between two "still …" lines for the same subject."""
    return max(every * max(time_scale, 0.0), min_interval)


class Heartbeat:
    """Rate-limited progress lines for one subject (thread-safe).

    ``update(state, detail)`` logs when *state* differs from the last one, or
    when the heartbeat interval passed since the last line; returns whether it
    logged. *detail* (rows, step, …) never counts as a change: ROW_COUNT moves
    every poll and would flood.
    """

    def __init__(self, subject: str, *, time_scale: float = 1.0,
                 every: float = EVERY_CASE_SECONDS, min_interval: float = MIN_INTERVAL,
                 logger: logging.Logger = LOG,
                 clock: Callable[[], float] = time.monotonic,
                 level: int = logging.INFO) -> None:
        self.subject = subject
        self.level = level
        self.interval = heartbeat_interval(time_scale, every, min_interval)
        self.time_scale = time_scale
        self._log = logger
        self._clock = clock
        self._state: str | None = None
        self._since = 0.0
        self._last_line = 0.0
        self._lock = threading.Lock()

    def update(self, state: str, detail: str = "", *, level: int | None = None) -> bool:
        now = self._clock()
        with self._lock:
            if state != self._state:
                self._state, self._since, self._last_line = state, now, now
                msg = f"{self.subject}: {state}"
            elif now - self._last_line >= self.interval:
                self._last_line = now
                held = (now - self._since) / (self.time_scale or 1.0)
                msg = f"{self.subject}: still {state} ({format_duration(held)} case time)"
            else:
                return False
        if detail:
            msg += f" — {detail}"
        self._log.log(self.level if level is None else level, "%s", redact(msg))
        return True

    def beat(self, detail: str = "") -> bool:
        """The per-minute line for an unchanged state (no-op before the first update)."""
        if self._state is None:
            return False
        return self.update(self._state, detail)


def _job_state(data: Mapping[str, Any]) -> str:
    parts = [str(data.get(k)) for k in ("state", "schema_state", "import_step", "task_state")
             if data.get(k) not in (None, "")]
    if not parts and data.get("import_status"):
        parts = [str(data["import_status"])]
    return " / ".join(parts) or "?"


def _job_detail(data: Mapping[str, Any]) -> str:
    for key, label in (("row_count", "ROW_COUNT"), ("imported_rows", "imported rows")):
        if data.get(key) not in (None, ""):
            try:
                return f"{label} {int(data[key]):,}"
            except (TypeError, ValueError):
                return f"{label} {data[key]}"
    return ""


class TimelineProgress:
    """A timeline listener that turns events into the progress lines above.

    Subscribe it with ``timeline.subscribe(TimelineProgress(time_scale=...))``.
    Job lines are keyed by ``job_key``; every incoming event (workload metrics
    arrive each second) also gives running jobs their per-minute heartbeat.
    """

    def __init__(self, *, time_scale: float = 1.0, logger: logging.Logger = LOG,
                 clock: Callable[[], float] = time.monotonic,
                 min_interval: float = MIN_INTERVAL,
                 layer_level: int = logging.INFO) -> None:
        self.time_scale = time_scale
        self.layer_level = layer_level
        self._log = logger
        self._clock = clock
        self._min = min_interval
        self._jobs: dict[str, Heartbeat] = {}
        self._details: dict[str, str] = {}
        self._done: set[str] = set()
        self._workload = self._heartbeat("workload", logging.INFO)
        self._faults: dict[str, Event] = {}
        self._lock = threading.Lock()

    def _heartbeat(self, subject: str, level: int | None = None) -> Heartbeat:
        return Heartbeat(subject, time_scale=self.time_scale, logger=self._log,
                         clock=self._clock, min_interval=self._min,
                         level=self.layer_level if level is None else level)

    def __call__(self, ev: Event) -> None:
        d = ev.data
        if ev.kind == "fault.inject":
            with self._lock:
                self._faults[str(d.get("fault_id", ""))] = ev
            windows = fault_windows([ev])
            label = fault_label(windows[0]) if windows else data_kind(d)
            self._log.log(self.layer_level, "%s",
                          redact(f"fault {d.get('fault_id', '')}: {label} at {ev.t:.1f}s"))
        elif ev.kind == "fault.healed":
            with self._lock:
                start = self._faults.pop(str(d.get("fault_id", "")), None)
            took = f" after {format_duration(ev.t - start.t)}" if start else ""
            self._log.log(self.layer_level, "fault %s: healed%s", d.get("fault_id", ""), took)
        elif ev.kind == "fault.error":
            self._log.log(max(self.layer_level, logging.DEBUG), "%s",
                          redact(f"fault {d.get('fault_id', '')}: {d.get('phase', '')} "
                                 f"failed: {d.get('error', '')}"))
        elif ev.kind == "job.submit":
            key = str(d.get("job_key", "job"))
            self._log.log(self.layer_level, "%s",
                          redact(f"{key}: submitted {d.get('query', '')}".rstrip()))
        elif ev.kind == "job.state":
            key = str(d.get("job_key", "job"))
            with self._lock:
                hb = self._jobs.setdefault(key, self._heartbeat(key))
                self._details[key] = _job_detail(d)
            hb.update(_job_state(d), self._details[key])
        elif ev.kind == "job.verdict":
            key = str(d.get("job_key", "job"))
            with self._lock:
                self._done.add(key)
            level = self.layer_level
            if level >= logging.INFO and d.get("verdict") != "converged":
                level = logging.WARNING
            self._log.log(level, "%s", redact(f"{key}: verdict {d.get('verdict')} — "
                                              f"{d.get('reason', '')}"))
        elif ev.kind == "workload.metrics":
            errs = d.get("errors")
            n = sum(int(v) for v in errs.values()) if isinstance(errs, Mapping) else 0
            detail = f"tps {d.get('tps')}, errors {n}/s"
            if d.get("p99") is not None:
                detail += f", p99 {d.get('p99')} ms"
            self._workload.update("running", detail)
        # every event is a chance for the per-minute line of waiting jobs
        with self._lock:
            waiting = [(k, hb) for k, hb in self._jobs.items() if k not in self._done]
            details = dict(self._details)
        for key, hb in waiting:
            if not (ev.kind == "job.state" and d.get("job_key") == key):
                hb.beat(details.get(key, ""))
