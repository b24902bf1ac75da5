"""The stash keys the layers share: one home, so no layer imports another's glue for them.

pytest keeps per-run and per-test state in ``config.stash`` / ``item.stash``. A key
that several modules read (the resolved options, the case of an item, the record of a
test, the outcomes the report hooks keep) lives here; this module imports only the
types the keys hold, so every fixture module can use it without pulling in the
report or the plugin. A key one module keeps to itself stays beside its owner
(``plugin.TOPOLOGY_KEY``, ``workload.fixtures.WORKLOADS_KEY``).
"""

from __future__ import annotations

import pytest

from .options import HAOptions
from .record import HARecord
from .scenario.model import Case

__all__ = [
    "ATTEMPT_KEY",
    "CASE_KEY",
    "FAILURES_KEY",
    "HA_OPTIONS_KEY",
    "HA_RECORD_KEY",
    "OUTCOMES_KEY",
    "PLANS_KEY",
    "ha_options",
]

#: The per-test record (``ha_record`` fixture); the report hooks read it after the test.
HA_RECORD_KEY = pytest.StashKey[HARecord]()
#: The resolved options of the run (``pytest_configure``).
HA_OPTIONS_KEY = pytest.StashKey[HAOptions]()
#: The Case of an item (YAML case or built from its markers), set at collection.
CASE_KEY = pytest.StashKey[Case]()
#: phase ("setup" | "call" | "teardown") → report outcome; kept by the report hooks.
OUTCOMES_KEY = pytest.StashKey[dict[str, str]]()
#: phase → one-line failure text (the exception, redacted); kept by the report hooks.
FAILURES_KEY = pytest.StashKey[dict[str, str]]()
#: How many times the test has started (pytest-rerunfailures runs a failed test again).
ATTEMPT_KEY = pytest.StashKey[int]()
#: ``--ha-dry-run``: (node id, plan text) of every planned item, in collection order.
PLANS_KEY = pytest.StashKey[list[tuple[str, str]]]()


def ha_options(config: pytest.Config) -> HAOptions:
    """The resolved options (defaults when the plugin was configured without them)."""
    return config.stash.get(HA_OPTIONS_KEY, HAOptions())
