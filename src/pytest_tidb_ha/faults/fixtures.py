"""The ``nemesis`` fixture: runs the test's fault schedule for the test's duration.

The faults come from the item's :class:`~..scenario.model.Case` (built at collection
from ``@pytest.mark.fault`` markers or a YAML case). When the test has a
``workload`` marker the workload is started first, so the nemesis' t0 is the
workload start, as the schedules mean it. Teardown stops the nemesis, which heals
every fault still applied -- also after failures, timeouts and Ctrl-C. Before the
first fault on a cluster the nemesis heals what dead runs left on its containers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from ..cluster.protocol import ClusterLike
from ..events import NEMESIS_REAPED
from ..record import HARecord
from ..stash import CASE_KEY, ha_options
from .nemesis import Nemesis

log = logging.getLogger("pytest_tidb_ha.faults")


@pytest.fixture
def nemesis(request: pytest.FixtureRequest, ha_record: HARecord) -> Iterator[Nemesis]:
    """The test's fault schedule, running; every fault healed at teardown."""
    case = request.node.stash.get(CASE_KEY, None)
    specs = case.faults if case is not None else ()
    if request.node.get_closest_marker("workload") is not None:
        request.getfixturevalue("ha_workload")  # t0 = workload start
    cluster: ClusterLike = request.getfixturevalue("tidb_cluster")
    opts = ha_options(request.config)
    allow = case.expect.allow_fault_errors if case is not None else False
    nem = Nemesis(cluster, specs, ha_record.timeline, opts.time_scale, seed=opts.seed,
                  helper_image=opts.fault_helper_image, allow_errors=allow)
    if nem.skipped and not nem.specs:
        pytest.skip("; ".join(sorted({reason for _, reason in nem.skipped})))
    nem.start()
    try:
        yield nem
    finally:
        nem.stop()
        for ev in ha_record.timeline.events(NEMESIS_REAPED):
            ha_record.notes.append(f"fault reaper healed leftovers of dead runs: {ev.data['healed']}")
        ha_record.notes.extend(f"trigger never fired: {m}" for m in nem.missed)
        failing, allowed = nem.fault_failures()
        ha_record.notes.extend(f"fault error allowed by the test: {m}" for m in allowed)
        if failing:  # a fault planned but not applied (or not healed) fails the test, loudly
            pytest.fail("faults not applied as planned (a fault marker may allow this with "
                        "allow_fault_errors=True):\n" + "\n".join(f"  {m}" for m in failing),
                        pytrace=False)
