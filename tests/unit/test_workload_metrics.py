"""Per-second aggregation and percentiles."""

from __future__ import annotations

import pytest

from pytest_tidb_ha.workload.metrics import Aggregator, percentile


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


@pytest.mark.parametrize("q", [0, -1, 101])
def test_percentile_range(q: float) -> None:
    with pytest.raises(ValueError, match=r"outside \(0, 100\]"):
        percentile([1.0], q)


def test_seconds_are_bucketed_by_completion_time() -> None:
    agg = Aggregator(start=0.0)
    for i in range(10):
        agg.add_transaction(0.1 + i * 0.05, latency=(i + 1) / 1000, queries=20)
    agg.add_transaction(1.5, latency=0.5, queries=20)
    agg.add_error(1.6, 1213)
    agg.add_error(1.7, 1213)
    agg.add_error(1.8, 2013)
    agg.add_queries(1.8, 3)
    assert agg.drain(0.99) == []
    [s0] = agg.drain(1.2)
    assert (s0.second, s0.interval, s0.transactions, s0.queries) == (0.0, 1.0, 10, 200)
    assert (s0.tps, s0.qps, s0.errors) == (10.0, 200.0, {})
    assert (s0.p50, s0.p95, s0.p99) == (5.0, 10.0, 10.0)
    [s1] = agg.drain(2.0)
    assert (s1.transactions, s1.queries, s1.errors) == (1, 23, {1213: 2, 2013: 1})
    assert s1.error_count == 3
    assert s1.p99 == 500.0
    t = agg.totals(2.0)
    assert (t.transactions, t.queries, t.errors, t.error_count) == (11, 223, {1213: 2, 2013: 1}, 3)


def test_idle_seconds_are_reported_as_zero_not_skipped() -> None:
    agg = Aggregator(start=0.0)
    agg.add_transaction(0.5, 0.01, 20)
    agg.add_transaction(3.5, 0.01, 20)
    samples = agg.drain(4.0)
    assert [s.second for s in samples] == [0.0, 1.0, 2.0, 3.0]
    assert [s.transactions for s in samples] == [1, 0, 0, 1]
    assert samples[1].p50 is None
    assert samples[1].tps == 0.0


def test_partial_first_and_last_seconds_carry_their_true_length() -> None:
    agg = Aggregator(start=10.75)
    agg.add_transaction(10.9, 0.01, 20)
    agg.add_transaction(12.1, 0.01, 20)
    first = agg.drain(11.5)
    assert [(s.second, s.interval) for s in first] == [(10.0, 0.25)]
    assert first[0].tps == 4.0
    rest = agg.drain_all(12.25)
    assert [(s.second, s.interval) for s in rest] == [(11.0, 1.0), (12.0, 0.25)]
    assert rest[-1].transactions == 1


def test_late_report_goes_to_the_next_open_second() -> None:
    agg = Aggregator(start=0.0)
    agg.drain(2.0)
    agg.add_transaction(1.5, 0.01, 20)  # finished before the drain, reported after
    [s] = agg.drain(3.0)
    assert (s.second, s.transactions) == (2.0, 1)


def test_event_data_is_the_contract_payload() -> None:
    agg = Aggregator(start=0.0)
    agg.add_transaction(0.2, 0.0123, 20)
    agg.add_error(0.3, 9005)
    data = agg.drain(1.0)[0].event_data()
    assert {"tps", "qps", "errors", "p50", "p95", "p99"} <= data.keys()
    assert data["errors"] == {9005: 1}
    assert data["p50"] == 12.3
    assert data["tps"] == 1.0
