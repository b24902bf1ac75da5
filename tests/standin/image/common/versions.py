"""The release a stand-in container plays, and the parts of TiDB's surface that depend on it.

One image plays every version: the release comes from ``STANDIN_VERSION`` (set by this
repository's conftest from the plugin's ``--tidb-version``/case version), defaulting to the
plugin's own default. Every role reports it (PD ``/version``, ``/status``, members'
``binary_version``; TiKV's store version; TiDB's ``@@version``, ``tidb_version()``, ``/status``),
and the TiDB role shapes its answers by it (`Surface`). Pure: no I/O but the environment.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

#: The plugin's default ``--tidb-version``.
DEFAULT_VERSION = "v8.5.7"


def release_version() -> str:
    """``STANDIN_VERSION`` (``v8.5.7`` style; a missing ``v`` is added), else the default."""
    raw = os.environ.get("STANDIN_VERSION", "").strip()
    if not raw:
        return DEFAULT_VERSION
    return raw if raw.startswith("v") else f"v{raw}"


def version_tuple(version: str) -> tuple[int, int, int]:
    """``v8.5.7`` -> (8, 5, 7); ``nightly``/garbage -> a version newer than any release."""
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    if not match:
        return (99, 0, 0)
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


@dataclass(frozen=True)
class Surface:
    """What differs between the TiDB releases the stand-in plays (each with its source)."""

    version: str

    @property
    def at_least(self) -> tuple[int, int, int]:
        return version_tuple(self.version)

    @property
    def dist_task_default_on(self) -> bool:
        """``tidb_enable_dist_task`` defaults to ON from v8.1.0 (docs: System Variables)."""
        return self.at_least >= (8, 1, 0)

    @property
    def dist_task_needs_fast_reorg(self) -> bool:
        """DXF on + fast reorg off fails ADD INDEX with 8200 (``ErrUnsupportedDistTask``).

        v7.5.0 silently runs such a job as a non-distributed txn backfill (pkg/ddl/index.go
        ``pickBackfillType`` picks DXF only on the ingest path). Newer releases check at
        submission (``initJobReorgMetaFromVariables``); the first release with the check is
        UNCONFIRMED — taken here as v8.1, where DXF became the default.
        """
        return self.at_least >= (8, 1, 0)

    @property
    def import_cancel_waits(self) -> bool:
        """CANCEL IMPORT JOB waits until the import task is done (PR #48928, "cancel import
        job now wait task done", Dec 2023, after v7.5.0). v7.5.0 writes ``cancelled`` into
        the job row at once and returns (pkg/executor/importer/job.go ``CancelJob``); the
        first release with the wait is UNCONFIRMED — taken here as v7.5.1."""
        return self.at_least >= (7, 5, 1)

    @property
    def dxf_v8_columns(self) -> bool:
        """mysql.tidb_global_task gains priority/create_time/end_time/target_scope and
        tidb_background_subtask concurrency/create_time/end_time/ordinal after v7.5: a real
        v7.5.0 tidb-server has none of them (tests/realbin/test_differential.py)."""
        return self.at_least >= (8, 0, 0)

    @property
    def mdl_view_v8(self) -> bool:
        """``mysql.tidb_mdl_view``'s newer shape (``start_time``; only the jobs waiting in
        ``tidb_mdl_info``): bootstrap versions 193 and 197 replaced v7.5's view, and they lie
        between v7.5's (up to 189) and v8.1's patches (199-208): taken here from v8.0,
        UNCONFIRMED for v8.0 itself."""
        return self.at_least >= (8, 0, 0)

    @property
    def show_ddl_jobs_comments(self) -> bool:
        """ADMIN SHOW DDL JOBS gains a 13th column COMMENTS and JOB_TYPE loses its reorg suffix.

        PR #57392 (merged 2024-11, cherry-picked to release-8.5): v8.5 shows JOB_TYPE
        ``add index`` with ``ingest, DXF`` in COMMENTS; v7.5-v8.4 show
        ``add index /* ingest */`` and 12 columns (pkg/executor/show_ddl_jobs.go).
        """
        return self.at_least >= (8, 5, 0)


@lru_cache(maxsize=8)
def surface(version: str | None = None) -> Surface:
    return Surface(version or release_version())
