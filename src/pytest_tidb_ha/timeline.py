"""The shared history of one test: every layer appends, the report reads.

Jepsen's *history* is our model: faults, job states, workload metrics and
verdicts are events on one clock, so a checker (the verdict) and a report (the
picture) can ask "was a fault active at t?" without knowing who injected it.

Event kinds and the field names that carry a fault/job kind live in
:mod:`.events` (one vocabulary for writers and readers; payloads in
docs/contracts.md). A fault window is open from ``fault.inject`` to
``fault.healed``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .events import FAULT_HEALED, FAULT_INJECT, FAULT_KIND
from .redact import redact_obj

FAULT_OPEN = FAULT_INJECT
FAULT_CLOSE = FAULT_HEALED


@dataclass(frozen=True)
class Event:
    """One thing that happened. ``t`` is seconds since the timeline started."""

    t: float
    wall: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"t": round(self.t, 3), "wall": round(self.wall, 3), "kind": self.kind, **self.data}


@dataclass(frozen=True)
class FaultWindow:
    fault_id: str
    kind: str
    start: float
    end: float | None  # None while still open
    data: dict[str, Any]

    def contains(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


class Timeline:
    """Thread-safe, append-only event log with a monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._t0 = clock()
        self._wall0 = time.time()
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Event], None]] = []

    # -- writing ---------------------------------------------------------
    def now(self) -> float:
        return self._clock() - self._t0

    def record(self, kind: str, **data: Any) -> Event:
        """Append an event. The fault/job kind travels as ``fault_kind``/``job_kind``:
        a ``kind`` field would shadow the event kind in ``to_json``, so it is refused."""
        t = self.now()
        ev = Event(t=t, wall=self._wall0 + t, kind=kind, data=dict(data))
        with self._lock:
            self._events.append(ev)
            listeners = list(self._listeners)
        for fn in listeners:
            with contextlib.suppress(Exception):  # a listener must never break the recorder
                fn(ev)
        return ev

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        """Call ``fn`` with every event recorded from now on (on the recording thread;
        it must be quick and must not record events itself)."""
        with self._lock:
            self._listeners.append(fn)

    def unsubscribe(self, fn: Callable[[Event], None]) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    # -- reading ---------------------------------------------------------
    def events(self, prefix: str | None = None) -> list[Event]:
        with self._lock:
            evs = list(self._events)
        if prefix is None:
            return evs
        return [e for e in evs if e.kind.startswith(prefix)]

    def fault_windows(self) -> list[FaultWindow]:
        return fault_windows(self.events("fault."))

    def fault_active(self, t: float | None = None) -> bool:
        t = self.now() if t is None else t
        return any(w.contains(t) for w in self.fault_windows())

    def fault_free_seconds(self, start: float, end: float | None = None) -> float:
        """Seconds in [start, end] during which no fault window was open."""
        end = self.now() if end is None else end
        return fault_free_seconds(self.fault_windows(), start, end)

    def to_json(self) -> list[dict[str, Any]]:
        return [redact_obj(e.to_json()) for e in self.events()]

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps({"t0_wall": self._wall0, "events": self.to_json()}, indent=1,
                                   default=str))


def fault_windows(events: Iterable[Event]) -> list[FaultWindow]:
    """Pair ``fault.inject`` with ``fault.healed`` by ``fault_id`` (pure)."""
    open_: dict[str, FaultWindow] = {}
    done: list[FaultWindow] = []
    for e in events:
        fid = str(e.data.get("fault_id", ""))
        if e.kind == FAULT_OPEN:
            open_[fid] = FaultWindow(fid, str(e.data.get(FAULT_KIND) or ""), e.t, None,
                                     dict(e.data))
        elif e.kind == FAULT_CLOSE and fid in open_:
            w = open_.pop(fid)
            done.append(FaultWindow(w.fault_id, w.kind, w.start, e.t, w.data))
    return sorted(done + list(open_.values()), key=lambda w: w.start)


def fault_free_seconds(windows: Iterable[FaultWindow], start: float, end: float) -> float:
    """Length of [start, end] minus the union of the windows (pure)."""
    if end <= start:
        return 0.0
    spans = sorted((max(w.start, start), min(end if w.end is None else w.end, end))
                   for w in windows)
    covered = 0.0
    cur_s: float | None = None
    cur_e = 0.0
    for s, e in spans:
        if e <= s:
            continue
        if cur_s is None or s > cur_e:
            if cur_s is not None:
                covered += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_s is not None:
        covered += cur_e - cur_s
    return (end - start) - covered
