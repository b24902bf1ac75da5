"""Locks that remember who waits on them, for a goroutine-style stack dump.

``/debug/pprof/goroutine?debug=2`` on real TiDB shows blocked goroutines as
``goroutine N [sync.Mutex.Lock, 5 minutes]:``; these real ``threading.Lock``s
record when each thread started waiting so the stand-in's dump says the same.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback

_waiting: dict[int, tuple[str, float]] = {}  # thread ident -> (lock name, since)
_wlock = threading.Lock()


class TrackedLock:
    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()

    def acquire(self, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        ident = threading.get_ident()
        with _wlock:
            _waiting[ident] = (self.name, time.time())
        try:
            return self._lock.acquire(timeout=timeout)
        finally:
            with _wlock:
                _waiting.pop(ident, None)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> TrackedLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def goroutine_dump() -> str:
    """All threads of this process, Go ``debug=2`` style."""
    frames = sys._current_frames()  # the point of the dump
    names = {t.ident: t.name for t in threading.enumerate()}
    with _wlock:
        waiting = dict(_waiting)
    out = []
    for n, (ident, frame) in enumerate(sorted(frames.items()), start=1):
        if ident in waiting:
            lock, since = waiting[ident]
            minutes = int((time.time() - since) // 60)
            state = f"semacquire, {minutes} minutes" if minutes else "semacquire"
            head = f"goroutine {n} [{state}]:\n// waiting on lock {lock!r} (thread {names.get(ident, ident)})"
        else:
            head = f"goroutine {n} [running]:\n// thread {names.get(ident, ident)}"
        lines = []
        for fs in reversed(traceback.extract_stack(frame)):
            lines.append(f"{fs.name}(...)\n\t{fs.filename}:{fs.lineno}")
        out.append(head + "\n" + "\n".join(lines))
    return "\n\n".join(out) + "\n"
