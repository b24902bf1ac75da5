"""The plugin-owned test functions that YAML cases run as.

Each collected case is an ordinary :class:`pytest.Function` whose callable
is one of these, so a case gets fixtures (cluster, record, ...) exactly like
a hand-written test -- no custom ``pytest.Item`` and no private fixture API.
The item's :class:`~pytest_tidb_ha.scenario.model.Case` is in
``item.stash[CASE_KEY]``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

import pytest

from .cluster.protocol import ClusterLike
from .record import HARecord
from .scenario.plan import render_plan
from .stash import CASE_KEY, PLANS_KEY, ha_options

log = logging.getLogger("pytest_tidb_ha.case")

#: The fixtures a YAML case runs with, beyond ``request``: named on each item
#: (``item.fixturenames``), not in :func:`run_ha_case`'s signature -- see there.
RUN_FIXTURES = ("ha_record", "tidb_cluster")


def run_ha_case(request: pytest.FixtureRequest) -> None:
    """Run one YAML case against the cluster the ``tidb_cluster`` fixture sized for it.

    Why the fixtures are not parameters: pytest resolves a function item's fixture
    closure when it builds the item, and offers no public way to share one resolution
    between items (parametrized items share theirs privately). ``tidb_cluster``'s
    closure is six fixtures deep, so for 10,000 cases that resolution was most of
    collection (``bench/collection.py``). With ``request`` alone the closure is the
    autouse fixtures; the item names :data:`RUN_FIXTURES` in its ``fixturenames``
    (what pytest sets up before the call, through ``request.getfixturevalue``), so
    they are set up before the test runs, as parameters would be, and are read here.
    """
    from .runner import run_case  # the jobs layer; imported late to keep collection light

    ha_record: HARecord = request.getfixturevalue("ha_record")
    tidb_cluster: ClusterLike = request.getfixturevalue("tidb_cluster")
    case = request.node.stash[CASE_KEY]
    ha_record.case_id = case.id
    run_case(case, cluster=tidb_cluster, record=ha_record, options=ha_options(request.config))


def plan_ha_case(request: pytest.FixtureRequest) -> None:
    """``--ha-dry-run``: compute and keep the case's plan; start nothing."""
    case = request.node.stash[CASE_KEY]
    store_plan(request.config, request.node.nodeid, case)


def store_plan(config: pytest.Config, nodeid: str, case: object) -> None:
    """Render the plan of ``case`` with the session's options and keep it for the summary."""
    from .scenario.model import Case

    assert isinstance(case, Case)
    opts = ha_options(config)
    text = render_plan(case, time_scale=opts.time_scale, workload_scale=opts.workload_scale,
                       requested=opts.topology, attach=opts.attach, version=opts.tidb_version)
    log.info("plan of %s:\n%s", nodeid, text)
    config.stash.setdefault(PLANS_KEY, []).append((nodeid, text))


def _signed(func: Callable[..., None]) -> None:
    """Give ``func`` its signature, computed once (``inspect``'s documented ``__signature__``).

    pytest reads a test function's signature for every item it makes (its fixture
    names): every YAML case is an item of one of these two functions, so a suite of
    10,000 cases asked ``inspect`` 10,000 times for the same answer -- a quarter of the
    items' fixture resolution (``bench/collection.py``). pytest copies a function's
    attributes into its items' keywords, so ``__signature__`` shows there too; ``-k``
    ignores names that start with ``_``.
    """
    func.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]


_signed(run_ha_case)
_signed(plan_ha_case)
