"""Reading a running cluster's recovery timers from where it reports them (the I/O edge).

Each timer of :data:`.floors.TIMERS` with a surface is read here; what cannot be
read (no answer, a version without the surface, attach mode without a PD URL)
keeps its per-version table value, and the reason is returned as a note. The
stand-in reports its own (scaled) timers on the same surfaces, so this module
has no branch for it.

Every call has a timeout; a cluster that does not answer costs at most a few
seconds and yields the table.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

from ..cluster.http import get_json, request
from ..cluster.protocol import ClusterLike
from ..scenario.durations import DurationError, parse_duration
from ..scenario.floors import (
    OWNER_TTL,
    PD_LEADER_LEASE,
    RAFT_ELECTION,
    SCHEMA_LEASE,
    Timer,
    merge_reported,
    table_timers,
)

log = logging.getLogger("pytest_tidb_ha.jobs")

#: The DDL owner election key (pingcap/tidb pkg/ddl/ddl.go DDLOwnerKey); each campaign
#: puts ``<key>/<lease id hex>`` under the campaigner's etcd session lease.
DDL_OWNER_KEY = "/tidb/ddl/fg/owner"
CALL_TIMEOUT = 2.0


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _seconds(value: object) -> float | None:
    try:
        return parse_duration(value).seconds
    except DurationError:
        return None


def _urls(cluster: ClusterLike, component: str) -> list[str]:
    try:
        return list(cluster.status_urls(component).values())
    except Exception:  # noqa: BLE001 - attach mode / fakes without status URLs
        return []


def _pd_urls(cluster: ClusterLike) -> list[str]:
    try:
        return list(cluster.pd_urls())
    except Exception:  # noqa: BLE001
        return []


def _answers(urls: list[str], path: str, timeout: float) -> list[Any]:
    """The JSON of every node that answers (a killed or partitioned one is skipped);
    the last error when none does."""
    out: list[Any] = []
    last: Exception | None = None
    for url in urls:
        try:
            out.append(get_json(url + path, timeout=timeout) or {})
        except Exception as exc:  # noqa: BLE001 - another node may answer
            last = exc
    if not out and last is not None:
        raise last
    return out


def schema_lease(cluster: ClusterLike, timeout: float) -> Timer | None:
    """The longest ``lease`` any TiDB's ``/info`` shows (Go duration text, e.g. ``45s``)."""
    found = [s for s in (_seconds(info.get("lease"))
                         for info in _answers(_urls(cluster, "tidb"), "/info", timeout)) if s]
    return Timer(SCHEMA_LEASE, max(found), "TiDB /info lease") if found else None


def _post_json(url: str, body: dict[str, Any], timeout: float) -> Any:
    status, data = request(url, method="POST", timeout=timeout, body=json.dumps(body).encode())
    if not 200 <= status < 300:
        raise RuntimeError(f"{url}: HTTP {status}")
    return json.loads(data or b"{}")


def owner_ttl(cluster: ClusterLike, timeout: float) -> Timer | None:
    """grantedTTL of the etcd lease the current DDL owner campaigned with (PD's /v3)."""
    prefix = DDL_OWNER_KEY + "/"
    last: Exception | None = None
    for pd in _pd_urls(cluster):
        try:
            kvs = _post_json(pd + "/v3/kv/range", {"key": _b64(prefix),
                                                  "range_end": _b64(prefix[:-1] + "0")},
                             timeout).get("kvs") or []
            leases = [int(kv["lease"]) for kv in kvs if str(kv.get("lease") or "0") != "0"]
            if not leases:
                return None
            ttl = _post_json(pd + "/v3/lease/timetolive", {"ID": leases[0]}, timeout)
        except Exception as exc:  # noqa: BLE001 - the next PD may answer
            last = exc
            continue
        granted = int(ttl.get("grantedTTL") or 0)
        return Timer(OWNER_TTL, float(granted), "PD etcd lease of the DDL owner key") \
            if granted > 0 else None
    if last is not None:
        raise last
    return None


def raft_election(cluster: ClusterLike, timeout: float) -> Timer | None:
    """raft-base-tick-interval x raft-election-timeout-ticks from TiKV's ``/config``."""
    found = []
    for config in _answers(_urls(cluster, "tikv"), "/config", timeout):
        raft = config.get("raftstore") or {}
        tick = _seconds(raft.get("raft-base-tick-interval"))
        ticks = raft.get("raft-election-timeout-ticks")
        if tick and isinstance(ticks, int) and ticks > 0:
            found.append(tick * ticks)
    return Timer(RAFT_ELECTION, max(found), "TiKV /config raftstore") if found else None


def pd_leader_lease(cluster: ClusterLike, timeout: float) -> Timer | None:
    """PD's leader ``lease`` (seconds) from ``/pd/api/v1/config``."""
    for config in _answers(_pd_urls(cluster), "/pd/api/v1/config", timeout):
        lease = config.get("lease")
        if isinstance(lease, (int, float)) and lease > 0:
            return Timer(PD_LEADER_LEASE, float(lease), "PD /pd/api/v1/config lease")
    return None


READERS: tuple[Callable[[Any, float], Timer | None], ...] = (
    schema_lease, owner_ttl, raft_election, pd_leader_lease)


def read_timers(cluster: ClusterLike, version: str | None, *,
                timeout: float = CALL_TIMEOUT) -> tuple[dict[str, Timer], list[str]]:
    """Every timer: as the cluster reports it, else from the table for *version*.

    Returns the timers and one note per surface that gave no usable answer.
    """
    reported: list[Timer] = []
    notes: list[str] = []
    for reader in READERS:
        name = reader.__name__.replace("_", " ")
        try:
            t = reader(cluster, timeout)
        except Exception as exc:  # noqa: BLE001 - the table stands in; say why
            notes.append(f"{name}: not read from the cluster ({type(exc).__name__}: {exc}); "
                         f"using the per-version table")
            continue
        if t is None:
            notes.append(f"{name}: the cluster did not report it; using the per-version table")
        else:
            reported.append(t)
    timers = merge_reported(table_timers(version), reported)
    log.info("cluster timers: %s", "; ".join(t.describe() for t in timers.values()))
    return timers, notes
