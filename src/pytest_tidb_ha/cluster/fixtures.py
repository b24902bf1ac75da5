"""Cluster fixtures, an overridable chain (as pytest-django does it).

``tidb_cluster_settings`` (session; override it to change images, env, labels)
→ ``tidb_cluster_pool`` (session; starts/reuses/stops clusters)
→ ``tidb_cluster`` (per test: the cluster the test's case needs, with a fresh database)
→ ``tidb_client`` / ``tidb_dsn``.

With ``--tidb-dsn`` nothing starts (attach mode). With no Docker engine a test that
needs a cluster fails with one line (``--ha-no-docker=skip``: skips). Under xdist each
worker has its own pool, and cluster names carry the worker id (``gw0``...).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import uuid
from collections.abc import Iterator
from types import MappingProxyType
from typing import NoReturn

import pytest

from ..record import HARecord
from ..scenario.model import Case, Topology
from ..stash import CASE_KEY, ha_options
from .attach import AttachError, attach_cluster
from .client import SQLError, TiDBClient
from .engines import lock_dir_for_run
from .handle import Cluster
from .lifecycle import ClusterStartError, DockerUnavailable
from .pool import ClusterPool
from .sigterm import sigterm_as_interrupt
from .specs import ClusterSettings

log = logging.getLogger("pytest_tidb_ha.cluster")

__all__ = ["tidb_client", "tidb_cluster", "tidb_cluster_pool", "tidb_cluster_settings", "tidb_dsn"]

_DB_CHARS = re.compile(r"[^a-z0-9_]+")


def database_name(nodeid: str) -> str:
    """A per-test database: readable prefix + hash of the node id, ≤ 64 chars (MySQL limit)."""
    digest = hashlib.sha256(nodeid.encode()).hexdigest()[:8]
    tail = nodeid.rsplit("::", 1)[-1].lower()
    readable = _DB_CHARS.sub("_", tail).strip("_")[:40] or "test"
    return f"t_{readable}_{digest}"


def requested_topology(item: pytest.Item, requested: Topology | None) -> Topology:
    """What the test needs: ``needs.required_topology`` of its case, else the option."""
    case: Case | None = item.stash.get(CASE_KEY, None)
    if case is None:
        return requested or Topology()
    from ..scenario.needs import required_topology

    return required_topology(case, requested)


@pytest.fixture(scope="session")
def tidb_cluster_settings(request: pytest.FixtureRequest,
                          tmp_path_factory: pytest.TempPathFactory) -> ClusterSettings:
    """The template every cluster of this session starts from (topology set per test).

    Override it (session scope, same name) to set images, per-component ``env``
    (``STANDIN_BUGS``...), labels or timeouts: ``dataclasses.replace(tidb_cluster_settings, ...)``.
    """
    opts = ha_options(request.config)
    return ClusterSettings(
        run_id=uuid.uuid4().hex[:8],
        topology=opts.topology or Topology(),
        version=opts.tidb_version,
        images=opts.images,
        import_dir=tmp_path_factory.mktemp("tidb-ha-import"),
        keep=opts.keep_cluster,
        kill_mode=opts.kill_mode,
        worker=os.environ.get("PYTEST_XDIST_WORKER"),
    )


@pytest.fixture(scope="session")
def tidb_cluster_pool(request: pytest.FixtureRequest, tidb_cluster_settings: ClusterSettings,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterPool]:
    """Clusters of this session (one per topology/images/env), stopped at session end.

    With ``--ha-docker-hosts`` the pool leases one of the engines for this worker.
    """
    engines = ha_options(request.config).docker_hosts
    lock_dir = (lock_dir_for_run(tmp_path_factory.getbasetemp(), tidb_cluster_settings.worker)
                if engines else None)
    pool = ClusterPool(tidb_cluster_settings, engines=engines, lock_dir=lock_dir)
    with sigterm_as_interrupt():
        try:
            yield pool
        finally:
            pool.close()


def _no_docker(request: pytest.FixtureRequest, exc: DockerUnavailable) -> NoReturn:
    message = f"pytest-tidb-ha: {exc}"
    if ha_options(request.config).no_docker == "skip":
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


@pytest.fixture
def tidb_cluster(request: pytest.FixtureRequest, tidb_cluster_settings: ClusterSettings,
                 tidb_cluster_pool: ClusterPool, ha_record: HARecord) -> Iterator[Cluster]:
    """A ready cluster sized for this test, and a fresh database (``cluster.database``)."""
    opts = ha_options(request.config)
    if opts.dry_run:
        pytest.skip("dry run: no cluster is started")
    if opts.dsn is not None:
        try:
            cluster = attach_cluster(opts.dsn, opts.pd_url)
        except AttachError as exc:
            raise pytest.UsageError(f"pytest-tidb-ha: {exc}") from None
        log.info("attached to %s (no containers are controlled)", cluster.dsn(database=""))
    else:
        case: Case | None = request.node.stash.get(CASE_KEY, None)
        topology = requested_topology(request.node, opts.topology)
        settings = dataclasses.replace(tidb_cluster_settings, topology=topology)
        if case is not None and case.version not in (None, settings.version):
            settings = dataclasses.replace(settings, version=case.version,
                                           images=opts.images_for(case.version))
        if case is not None:  # disk_full: size-limited data volumes for the components it fills
            from ..scenario.needs import disk_limits

            limits = disk_limits(case)
            if limits:
                settings = dataclasses.replace(settings, disk_limits=MappingProxyType(limits))
        log.info("%s: needs a cluster %s", request.node.nodeid, topology)
        # skip/fail outside the except blocks: no "during handling..." chain in the report.
        problem: DockerUnavailable | ClusterStartError | None = None
        try:
            cluster = tidb_cluster_pool.get(settings)
        except (DockerUnavailable, ClusterStartError) as exc:
            problem = exc
        if isinstance(problem, DockerUnavailable):
            _no_docker(request, problem)
        if problem is not None:
            pytest.fail(f"pytest-tidb-ha: cluster start-up failed: {problem}", pytrace=False)
    database = database_name(request.node.nodeid)
    admin = cluster.client(connect_timeout=5, read_timeout=30, write_timeout=30, database=None)
    admin.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`", idempotent=True)
    view = cluster.with_database(database)
    ha_record.cluster = view.describe()
    ha_record.timeline.record("cluster.ready", cluster=cluster.name, database=database,
                              topology=view.describe())
    log.info("%s: cluster %s ready, database %s", request.node.nodeid, cluster.name, database)
    try:
        yield view
    finally:
        if not opts.keep_cluster:  # kept clusters keep their data for a look afterwards
            try:
                admin.execute(f"DROP DATABASE IF EXISTS `{database}`", timeout=30, idempotent=True)
            except SQLError as exc:
                log.warning("could not drop database %s: %s", database, exc)


@pytest.fixture
def tidb_client(tidb_cluster: Cluster) -> TiDBClient:
    """A failover SQL client over every TiDB, defaulting to the test's database."""
    return tidb_cluster.client()


@pytest.fixture
def tidb_dsn(tidb_cluster: Cluster) -> str:
    """``mysql://root@127.0.0.1:<port>/<test database>`` of a TiDB node."""
    return tidb_cluster.dsn()
