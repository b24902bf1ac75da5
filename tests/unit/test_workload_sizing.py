"""--ha-workload-scale: rows and tables shrink with floors; growth keeps tables."""

from __future__ import annotations

import pytest

from pytest_tidb_ha.scenario.sizing import MIN_TABLE_SIZE, Size, scaled_size, scaled_threads


@pytest.mark.parametrize(("tables", "size", "scale", "expect"), [
    (64, 70_000_000, 1.0, Size(64, 70_000_000)),
    (64, 70_000_000, 0.001, Size(1, 70_000)),
    (64, 70_000_000, 0.1, Size(7, 7_000_000)),
    (64, 70_000_000, 1e-9, Size(1, MIN_TABLE_SIZE)),
    (4, 500, 0.01, Size(1, 500)),  # a small table is never scaled below itself
    (4, 10_000, 2.0, Size(4, 20_000)),
])
def test_scaled_size(tables: int, size: int, scale: float, expect: Size) -> None:
    assert scaled_size(tables, size, scale) == expect


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf")])
def test_bad_scale_is_refused(scale: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        scaled_size(1, 10, scale)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="tables >= 1"):
        scaled_size(0, 10, 1.0)


@pytest.mark.parametrize(("threads", "scale", "expect"), [
    (64, 1.0, 64), (64, 2.0, 64), (64, 0.5, 32), (64, 0.00002, 4), (2, 0.001, 2), (8, 0.1, 4),
])
def test_threads_shrink_below_scale_one_with_a_floor(threads: int, scale: float,
                                                    expect: int) -> None:
    assert scaled_threads(threads, scale) == expect
