"""A pytest plugin (``-p slow_backfill``): TiDB's backfill knobs at their slowest per test.

What a user's gate adds to run a suite's ADD INDEX cells slowly enough for a fault that
starts when the job is first seen running to land inside the backfill with time to spare
(``tests/realbin/test_matrix_realbin.py`` runs the scenario matrix with it). Batch size 32
(TiDB's minimum) and one worker, as ``test_ha_realbin``'s ``slow_reorg``; the defaults are
set again after each test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

#: variable -> (slow value, TiDB's default)
KNOBS = {"tidb_ddl_reorg_batch_size": (32, 256), "tidb_ddl_reorg_worker_cnt": (1, 4)}


@pytest.fixture(autouse=True)
def slow_backfill(request: pytest.FixtureRequest) -> Iterator[None]:
    if "tidb" not in request.fixturenames:
        yield
        return
    tidb = request.getfixturevalue("tidb")
    for name, (slow, _default) in KNOBS.items():
        tidb.execute(f"SET GLOBAL {name} = {slow}", timeout=30)
    try:
        yield
    finally:
        for name, (_slow, default) in KNOBS.items():
            tidb.execute(f"SET GLOBAL {name} = {default}", timeout=30)
