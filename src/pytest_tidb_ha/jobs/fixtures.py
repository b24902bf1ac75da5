"""The ``tidb`` fixture: the jobs facade of one test (see :mod:`.facade`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..cluster.protocol import ClusterLike
from ..record import HARecord
from ..stash import CASE_KEY, ha_options
from .facade import TiDB


@pytest.fixture
def tidb(request: pytest.FixtureRequest, tidb_cluster: ClusterLike, tidb_client: Any,
         ha_record: HARecord) -> Iterator[TiDB]:
    """Watched ADD INDEX / IMPORT INTO jobs, SQL and roles on the test's cluster.

    At teardown the watcher stops, every verdict goes to ``ha_record.verdicts``
    and a diagnostics bundle is written for any verdict but ``converged``.
    """
    facade = TiDB(tidb_cluster, tidb_client, ha_record, ha_options(request.config),
                  request.node.stash.get(CASE_KEY, None))
    try:
        yield facade
    finally:
        facade.close()
