"""Per-second workload metrics (pure: no I/O, no clock of its own).

Workers report what finished and when (``t`` on the timeline's clock); the
:class:`Aggregator` files it into one-second buckets by *completion* time and
hands back closed seconds as :class:`Sample` s. A second in which nothing
finished still yields a sample with zero throughput: a stalled cluster must
show as a dip to 0 in the report, not as a gap that a plot would bridge.

Latency percentiles use the nearest-rank method over the transactions that
committed in that second (sysbench uses a histogram; nearest-rank is exact and
cheap at our per-second sizes).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when empty."""
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} outside (0, 100]")
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Sample:
    """What happened in ``[second, second + interval)`` on the timeline clock."""

    second: float
    interval: float
    transactions: int
    queries: int
    errors: Mapping[int, int]
    p50: float | None  # ms
    p95: float | None
    p99: float | None

    @property
    def tps(self) -> float:
        return self.transactions / self.interval if self.interval > 0 else 0.0

    @property
    def qps(self) -> float:
        return self.queries / self.interval if self.interval > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def event_data(self) -> dict[str, Any]:
        """The ``workload.metrics`` event payload (docs/contracts.md)."""
        return {
            "second": self.second,
            "interval": round(self.interval, 3),
            "tps": round(self.tps, 2),
            "qps": round(self.qps, 2),
            "transactions": self.transactions,
            "queries": self.queries,
            "errors": dict(sorted(self.errors.items())),
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
        }


@dataclass
class _Bucket:
    transactions: int = 0
    queries: int = 0
    errors: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds


@dataclass(frozen=True)
class Totals:
    transactions: int
    queries: int
    errors: Mapping[int, int]
    seconds: float

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def tps(self) -> float:
        return self.transactions / self.seconds if self.seconds > 0 else 0.0


class Aggregator:
    """Thread-safe per-second buckets, drained in order without gaps."""

    def __init__(self, start: float) -> None:
        self._lock = threading.Lock()
        self._start = start
        self._next = math.floor(start)  # first second not yet drained
        self._buckets: dict[int, _Bucket] = {}
        self._transactions = 0
        self._queries = 0
        self._errors: Counter[int] = Counter()
        self._last_t = start

    def _bucket(self, t: float) -> _Bucket:
        # late reports for an already drained second go to the next open one
        s = max(math.floor(t), self._next)
        b = self._buckets.get(s)
        if b is None:
            b = self._buckets[s] = _Bucket()
        self._last_t = max(self._last_t, t)
        return b

    def add_transaction(self, t: float, latency: float, queries: int) -> None:
        """A transaction that committed at ``t`` after ``latency`` seconds."""
        with self._lock:
            b = self._bucket(t)
            b.transactions += 1
            b.queries += queries
            b.latencies.append(latency)
            self._transactions += 1
            self._queries += queries

    def add_queries(self, t: float, queries: int) -> None:
        """Statements that succeeded inside a transaction that later failed."""
        if queries <= 0:
            return
        with self._lock:
            self._bucket(t).queries += queries
            self._queries += queries

    def add_error(self, t: float, code: int) -> None:
        with self._lock:
            self._bucket(t).errors[code] += 1
            self._errors[code] += 1

    def drain(self, now: float) -> list[Sample]:
        """Samples of every whole second before ``now`` not drained yet."""
        with self._lock:
            out = []
            while self._next + 1 <= now:
                out.append(self._close(self._next, 1.0))
                self._next += 1
            return out

    def drain_all(self, end: float) -> list[Sample]:
        """Everything left, the last (partial) second with its true length."""
        with self._lock:
            out = []
            end = max(end, self._last_t)
            while self._next < end:
                interval = min(1.0, end - self._next)
                out.append(self._close(self._next, interval))
                self._next += 1
            for s in sorted(self._buckets):  # reports later than ``end``: keep them
                out.append(self._close(s, 1.0))
            return out

    def _close(self, second: int, interval: float) -> Sample:
        # the first second may have started part-way through (at ``start``)
        interval = second + interval - max(float(second), self._start)
        b = self._buckets.pop(second, None) or _Bucket()
        lat = sorted(b.latencies)

        def ms(q: float) -> float | None:
            v = percentile(lat, q)
            return None if v is None else round(v * 1000, 3)

        return Sample(second=float(second), interval=interval, transactions=b.transactions,
                      queries=b.queries, errors=dict(b.errors), p50=ms(50), p95=ms(95),
                      p99=ms(99))

    def totals(self, now: float) -> Totals:
        with self._lock:
            return Totals(self._transactions, self._queries, dict(self._errors),
                          max(0.0, now - self._start))
