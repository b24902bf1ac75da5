"""``ha_workload``: run the test's ``@pytest.mark.workload`` against its cluster.

A small overridable chain, as the cluster fixtures do it:

* ``ha_workload_scale`` — the ``size_scale`` for this test; defaults to
  ``--ha-workload-scale``. Override it in a ``conftest.py`` or test module to
  shrink (or grow) the data of some tests only.
* ``ha_workload`` — prepares and starts the workload(s) before the test body,
  yields the (first) :class:`Sysbench`, stops them at teardown. A workload
  that stopped on an error outside its ``ignore_errors`` makes the teardown
  fail with that error.

The cluster is requested lazily: a test without a workload marker that asks
for ``ha_workload`` gets ``None`` and starts no cluster on its account.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ..record import HARecord
from ..recording import CASE_KEY, ha_options
from ..scenario.model import SourceRef, Workload
from .group import WorkloadGroup
from .sysbench import ClientFactory, Connection, Sysbench

log = logging.getLogger("pytest_tidb_ha.workload")

#: Every workload of the item (the fixture yields only the first).
WORKLOADS_KEY = pytest.StashKey[tuple[Sysbench, ...]]()


def workloads_of(item: pytest.Item) -> tuple[Workload, ...]:
    """The item's workloads: its Case (set at collection), else its marker."""
    case = item.stash.get(CASE_KEY, None)
    if case is not None:
        return tuple(case.workloads)
    marker = item.get_closest_marker("workload")
    if marker is None:
        return ()
    from ..scenario.markers import workload_from_marker

    return (workload_from_marker(marker.args, marker.kwargs, SourceRef(nodeid=item.nodeid)),)


def _db_given(item: pytest.Item) -> bool:
    """Did the test name a database? (a YAML case always does; a marker may not)."""
    marker = item.get_closest_marker("workload")
    return marker is None or "db" in marker.kwargs


#: Read timeout of workload connections (seconds). An OLTP statement answers in
#: milliseconds; one that blocks this long is a fault's symptom, and counting it as an
#: error (2013) and reconnecting shows the fault in the metrics while it lasts.
WORKLOAD_READ_TIMEOUT = 5.0


def round_robin_factory(client: Any, read_timeout: float | None = WORKLOAD_READ_TIMEOUT
                        ) -> ClientFactory:
    """New connections spread over the TiDB nodes, failing over when one is down.

    Like ``sysbench --mysql-host=a,b``: each new connection goes to the next
    node; if that node does not answer, ``client.connect()`` picks any that does.
    ``read_timeout`` None keeps the client's own.
    """
    nodes = sorted(getattr(client, "endpoints", {}) or {})
    if len(nodes) < 2:
        return lambda: client.connect(read_timeout=read_timeout)
    counter = itertools.count()
    lock = threading.Lock()

    def connect() -> Connection:
        with lock:
            node = nodes[next(counter) % len(nodes)]
        try:
            return client.connect(node=node, read_timeout=read_timeout)
        except Exception:
            return client.connect(read_timeout=read_timeout)

    return connect


@pytest.fixture
def ha_workload_scale(request: pytest.FixtureRequest) -> float:
    """``size_scale`` of this test's workload (``--ha-workload-scale``); override to change."""
    return ha_options(request.config).workload_scale


@pytest.fixture
def ha_workload(request: pytest.FixtureRequest, ha_record: HARecord,
                ha_workload_scale: float) -> Iterator[Sysbench | None]:
    """The test's workload, prepared and running; stopped at teardown."""
    specs = workloads_of(request.node)
    if not specs:
        log.info("%s: no workload marker, ha_workload is None", request.node.nodeid)
        yield None
        return
    cluster = request.getfixturevalue("tidb_cluster")
    client = request.getfixturevalue("tidb_client")
    database: str | None = getattr(cluster, "database", None)
    own_db = bool(database) and not _db_given(request.node)
    if database and own_db:
        # marker without db=: use the test's own database, where the jobs look
        # (the cluster fixture drops it after the test, tables and all)
        specs = tuple(dataclasses.replace(s, db=database) for s in specs)
    keep = ha_options(request.config).keep_cluster
    group = WorkloadGroup(specs, round_robin_factory(client), ha_record.timeline,
                          size_scale=ha_workload_scale, cleanup=not keep and not own_db)
    request.node.stash[WORKLOADS_KEY] = group.members
    group.start()
    try:
        yield group.members[0]
    finally:
        try:
            group.stop()
        except Exception as exc:
            ha_record.notes.append(f"workload: {exc}")
            raise
