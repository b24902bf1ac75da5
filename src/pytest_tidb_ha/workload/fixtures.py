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
from typing import Any, Protocol

import pytest

from ..record import HARecord
from ..recording import CASE_KEY, ha_options
from ..scenario.model import SourceRef, Workload
from .driver import DriverUnavailable, precheck
from .group import WorkloadGroup
from .sysbench import Connection, Sysbench
from .target import WORKLOAD_READ_TIMEOUT, Target

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


def target_of(client: Any, read_timeout: float | None = WORKLOAD_READ_TIMEOUT
              ) -> Target | None:
    """Every TiDB of ``client`` (a ``TiDBClient``) as a :class:`Target`; None without
    endpoints. The run's read timeout is the workload's, not the client's."""
    endpoints = getattr(client, "endpoints", None)
    if not endpoints:
        return None
    return Target.of(endpoints, user=str(getattr(client, "user", "root")),
                     password=str(getattr(client, "password", "") or ""),
                     connect_timeout=float(getattr(client, "connect_timeout", 3.0)),
                     read_timeout=read_timeout or WORKLOAD_READ_TIMEOUT)


class _Connects(Protocol):
    """What :class:`RoundRobin` needs of the cluster client (``TiDBClient.connect``)."""

    def connect(self, node: str | None = None, database: str | None = None,
                read_timeout: float | None = None) -> Connection: ...


class RoundRobin:
    """New connections spread over the TiDB nodes, failing over when one is down.

    Like ``sysbench --mysql-host=a,b``: each new connection goes to the next
    node; if that node does not answer, ``client.connect()`` picks any that does.
    ``target`` carries the endpoints themselves, for the run (either driver).
    """

    def __init__(self, client: Any, read_timeout: float | None) -> None:
        self.client: _Connects = client
        self.read_timeout = read_timeout
        self.nodes = sorted(getattr(client, "endpoints", {}) or {})
        self.target = target_of(client, read_timeout)
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def __call__(self) -> Connection:
        if len(self.nodes) < 2:
            return self.client.connect(read_timeout=self.read_timeout)
        with self._lock:
            node = self.nodes[next(self._counter) % len(self.nodes)]
        try:
            return self.client.connect(node=node, read_timeout=self.read_timeout)
        except Exception:  # noqa: BLE001 - any failure on the chosen node: any node will do
            return self.client.connect(read_timeout=self.read_timeout)


def round_robin_factory(client: Any, read_timeout: float | None = WORKLOAD_READ_TIMEOUT
                        ) -> RoundRobin:
    """A :class:`RoundRobin` over ``client``'s TiDBs (``read_timeout`` None: the client's)."""
    return RoundRobin(client, read_timeout)


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
    opts = ha_options(request.config)
    try:
        for s in specs:  # a forced driver that cannot run fails before any container starts
            precheck(opts.workload_driver, s.subtype)
    except DriverUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    cluster = request.getfixturevalue("tidb_cluster")
    client = request.getfixturevalue("tidb_client")
    database: str | None = getattr(cluster, "database", None)
    own_db = bool(database) and not _db_given(request.node)
    if database and own_db:
        # marker without db=: use the test's own database, where the jobs look
        # (the cluster fixture drops it after the test, tables and all)
        specs = tuple(dataclasses.replace(s, db=database) for s in specs)
    group = WorkloadGroup(specs, round_robin_factory(client), ha_record.timeline,
                          size_scale=ha_workload_scale, cleanup=not opts.keep_cluster and not own_db,
                          driver=opts.workload_driver)
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
