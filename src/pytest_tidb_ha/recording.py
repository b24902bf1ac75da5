"""The per-test record fixture: one Timeline and one artifacts folder per test.

Every layer writes into ``ha_record.timeline``; the report hooks read the
record from ``item.stash[HA_RECORD_KEY]`` after the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from .options import HAOptions
from .record import HARecord
from .scenario.model import Case
from .timeline import Timeline

HA_RECORD_KEY = pytest.StashKey[HARecord]()
HA_OPTIONS_KEY = pytest.StashKey[HAOptions]()
#: The Case of an item (YAML case or built from its markers), set at collection.
CASE_KEY = pytest.StashKey[Case]()


def ha_options(config: pytest.Config) -> HAOptions:
    """The resolved options (defaults when the plugin was configured without them)."""
    return config.stash.get(HA_OPTIONS_KEY, HAOptions())


def sanitise_nodeid(nodeid: str) -> str:
    """A folder name for a node id: readable, no path separators, bounded length."""
    name = re.sub(r"[^A-Za-z0-9._()=-]+", "_", nodeid).strip("_")
    return name[:150] or "test"


@pytest.fixture
def ha_record(request: pytest.FixtureRequest) -> Iterator[HARecord]:
    """The shared history and artifacts folder of this test."""
    opts = ha_options(request.config)
    record = HARecord(
        nodeid=request.node.nodeid,
        timeline=Timeline(),
        artifacts_dir=opts.artifacts / sanitise_nodeid(request.node.nodeid),
    )
    request.node.stash[HA_RECORD_KEY] = record
    yield record
