"""Every fixture the plugin offers, gathered for ``plugin.py`` to import.

Each layer keeps its fixtures beside its code (``cluster/fixtures.py``, ...);
this module only re-exports them so pytest sees them on the plugin module.
"""

from __future__ import annotations

from .cluster.fixtures import *  # noqa: F403 - tidb_cluster[_settings|_pool], tidb_client, tidb_dsn
from .faults.fixtures import nemesis  # noqa: F401
from .jobs.fixtures import tidb  # noqa: F401
from .workload.fixtures import ha_workload, ha_workload_scale  # noqa: F401
