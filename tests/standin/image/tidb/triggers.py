"""How often the physical trigger of each seed's bug happened in this TiDB (any bug mode).

A fixed-mode test passing proves nothing unless the trigger its bug needs really happened
(issue 14 item 11); a bug-mode verdict proves little unless the trigger came first. So the
TiDB role counts each trigger where it observes it — whether or not the bug mode is on —
logs ``["stand-in trigger"] [bug=...]`` and serves the counts on its status port at
``GET /standin/triggers`` (a stand-in-only path; nothing of the plugin reads it).

- ``48303``: an ingest backfill write to a TiKV timed out (a partitioned store);
- ``48546``: a DXF ingest flush met its etcd session unable to renew (its PD member cut from
  the quorum) or expired;
- ``46735``: an owner took over an ``ImportInto`` task whose scheduler had died.
"""

from __future__ import annotations

import threading
from collections import Counter

from common.log import get_logger

log = get_logger("tidb.triggers")

TRIGGERS = {
    "48303": "ingest write to a TiKV timed out during the backfill",
    "48546": "a DXF ingest flush met an etcd session that could not renew (its PD member cut from the quorum) or had expired",
    "46735": "an owner took over an ImportInto task from a dead scheduler",
}
_counts: Counter[str] = Counter()
_lock = threading.Lock()


def note(bug: str, **fields: object) -> None:
    """Count one occurrence of ``bug``'s trigger (a key of `TRIGGERS`) and log it."""
    with _lock:
        _counts[bug] += 1
        count = _counts[bug]
    log.info("stand-in trigger", bug=bug, trigger=TRIGGERS[bug], count=count, **fields)


def counts() -> dict[str, int]:
    """Every trigger's count since this TiDB started (zeros included)."""
    with _lock:
        return {bug: _counts[bug] for bug in TRIGGERS}
