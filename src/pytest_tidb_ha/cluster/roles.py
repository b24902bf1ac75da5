"""Live role discovery: PD leader/followers, the DDL owner, TiKV stores.

Faults target roles (``pdleader_to_pdfollower``, ``tidb(ddl_owner)``), so roles are
read at the moment a fault window opens, from whichever PD/TiDB still answers. Every
HTTP call has a timeout; a node that does not answer is skipped, never waited on.
Sources: reference/tidb-containers.md §2.1 (PD API), tidb-contract.md (``/info/all``,
``ADMIN SHOW DDL``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .client import SQLError
from .http import HTTPProblem, get_json
from .protocol import ClusterLike

log = logging.getLogger("pytest_tidb_ha.cluster")

HTTP_TIMEOUT = 3.0
T = TypeVar("T")


class RoleUnknown(RuntimeError):
    """No PD/TiDB answered the role question."""


def _first_answer(urls: list[str], path: str, parse: Callable[[Any], T], *,
                  timeout: float = HTTP_TIMEOUT) -> T:
    """``parse(json)`` of the first URL that answers; :class:`RoleUnknown` with every reason."""
    problems = []
    for base in urls:
        try:
            return parse(get_json(base + path, timeout=timeout))
        except (HTTPProblem, ValueError, KeyError, TypeError, AttributeError) as exc:
            problems.append(f"{base}{path}: {exc}")
    raise RoleUnknown("; ".join(problems) or f"no URL to ask for {path}")


def _leader_name(answer: Any) -> str:
    name = (answer or {}).get("name")
    if not name:
        raise ValueError(f"no leader in {answer!r}")
    return str(name)


def pd_leader(cluster: ClusterLike, *, timeout: float = HTTP_TIMEOUT) -> str | None:
    """Name of the PD leader (``/pd/api/v1/leader``), None when no PD knows one."""
    try:
        return _first_answer(cluster.pd_urls(), "/pd/api/v1/leader", _leader_name, timeout=timeout)
    except RoleUnknown as exc:
        log.debug("pd_leader unknown: %s", exc)
        return None


def pd_members(cluster: ClusterLike, *, timeout: float = HTTP_TIMEOUT) -> list[str]:
    """Names of all PD members (``/pd/api/v1/members``), [] when no PD answers."""

    def parse(answer: Any) -> list[str]:
        return sorted(str(m["name"]) for m in answer["members"])

    try:
        return _first_answer(cluster.pd_urls(), "/pd/api/v1/members", parse, timeout=timeout)
    except RoleUnknown as exc:
        log.debug("pd_members unknown: %s", exc)
        return []


def pd_followers(cluster: ClusterLike, *, timeout: float = HTTP_TIMEOUT) -> list[str]:
    """Members that are not the leader ([] when the leader is unknown)."""
    leader = pd_leader(cluster, timeout=timeout)
    if leader is None:
        return []
    return [m for m in pd_members(cluster, timeout=timeout) if m != leader]


def owner_from_info_all(answer: Any, cluster: ClusterLike) -> str | None:
    """``/info/all`` → ``owner_id`` → ``all_servers_info[owner_id].ip`` → node name (pure)."""
    owner_id = (answer or {}).get("owner_id")
    if not owner_id:
        return None
    info = ((answer or {}).get("all_servers_info") or {}).get(owner_id) or {}
    ip = info.get("ip")
    if not ip:
        return None
    return cluster.node_of_address(f"{ip}:{info.get('listening_port', 4000)}")


def ddl_owner(cluster: ClusterLike, *, timeout: float = HTTP_TIMEOUT) -> str | None:
    """The TiDB node that owns DDL: ``/info/all`` on any TiDB, else ``ADMIN SHOW DDL``."""
    urls = list(cluster.status_urls("tidb").values())
    try:
        owner = _first_answer(urls, "/info/all", lambda a: owner_from_info_all(a, cluster),
                              timeout=timeout)
        if owner is not None:
            return owner
    except RoleUnknown as exc:
        log.debug("ddl owner via /info/all unknown: %s", exc)
    try:
        client = cluster.client(connect_timeout=timeout, read_timeout=timeout)
        rows = client.query("ADMIN SHOW DDL", database="", timeout=timeout)
    except SQLError as exc:
        log.debug("ddl owner via ADMIN SHOW DDL unknown: %s", exc)
        return None
    if not rows:
        return None
    address = str(rows[0].get("OWNER_ADDRESS") or "")
    return cluster.node_of_address(address) if address else None


def tikv_stores(cluster: ClusterLike, *, timeout: float = HTTP_TIMEOUT) -> list[dict[str, Any]]:
    """``[{id, address, state_name, node}]`` from ``/pd/api/v1/stores`` ([] when no PD answers)."""

    def parse(answer: Any) -> list[dict[str, Any]]:
        stores = []
        for entry in answer.get("stores") or []:
            store = entry["store"]
            address = str(store.get("address", ""))
            stores.append(
                {
                    "id": store.get("id"),
                    "address": address,
                    "state_name": store.get("state_name"),
                    "node": cluster.node_of_address(address) if address else None,
                }
            )
        return sorted(stores, key=lambda s: (s["id"] is None, s["id"]))

    try:
        return _first_answer(cluster.pd_urls(), "/pd/api/v1/stores", parse, timeout=timeout)
    except RoleUnknown as exc:
        log.debug("tikv stores unknown: %s", exc)
        return []


def roles_snapshot(cluster: ClusterLike, *, timeout: float = HTTP_TIMEOUT) -> dict[str, Any]:
    """Everything above in one dict (for ``fault.inject`` events and diagnostics)."""
    leader = pd_leader(cluster, timeout=timeout)
    members = pd_members(cluster, timeout=timeout)
    return {
        "pd_leader": leader,
        "pd_followers": [m for m in members if m != leader] if leader else [],
        "ddl_owner": ddl_owner(cluster, timeout=timeout),
        "tikv_stores": tikv_stores(cluster, timeout=timeout),
    }
