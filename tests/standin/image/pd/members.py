"""PD membership as etcd sees it: members, leader, cluster id — all answered locally.

Leader = the etcd raft leader.  etcd runs with CheckQuorum, so a leader cut off from its
followers steps down after an election timeout and the majority side elects a new one;
every call here is a local (serializable) etcd call, so an isolated PD still answers
`/members` quickly, with no leader.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from common.etcd import Etcd, EtcdError, Member
from common.versions import release_version

MEMBER_PREFIX = "/standin/pd/members/"


@dataclass(frozen=True)
class MemberView:
    cluster_id: int
    members: list[dict[str, Any]]  # pdpb.Member JSON objects
    leader_id: int
    self_id: int

    def by_id(self, member_id: int) -> dict[str, Any] | None:
        return next((m for m in self.members if m["member_id"] == member_id), None)

    def by_name(self, name: str) -> dict[str, Any] | None:
        return next((m for m in self.members if m["name"] == name), None)

    @property
    def leader(self) -> dict[str, Any] | None:
        return self.by_id(self.leader_id) if self.leader_id else None


def _client_urls_from_peer(peer_urls: list[str]) -> list[str]:
    out = []
    for url in peer_urls:
        scheme, _, rest = url.partition("://")
        host = rest.split("/", 1)[0].rsplit(":", 1)[0]
        out.append(f"{scheme}://{host}:2379")
    return out


class Membership:
    """Builds `MemberView`s from the local etcd; caches advertised client URLs per member."""

    def __init__(self, etcd: Etcd, name: str, advertise_client_urls: list[str],
                 initial_cluster: str, timeout: float) -> None:
        self.etcd = etcd
        self.name = name
        self.advertise_client_urls = advertise_client_urls
        self.timeout = timeout
        self._names_by_peer: dict[str, str] = {}
        for item in initial_cluster.split(","):
            member, sep, url = item.partition("=")
            if sep:
                self._names_by_peer[url.strip().rstrip("/")] = member.strip()
        self._published = False
        self._client_urls: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def publish(self) -> bool:
        """Write this PD's advertised client URLs to etcd (needs quorum; retried by caller)."""
        if self._published:
            return True
        info = {
            "name": self.name,
            "client_urls": self.advertise_client_urls,
            "binary_version": release_version(),
            "git_hash": "standin",
            "deploy_path": "/",
        }
        self.etcd.put(MEMBER_PREFIX + self.name, json.dumps(info), timeout=self.timeout)
        self._published = True
        return True

    def _known_client_urls(self) -> dict[str, list[str]]:
        try:
            kvs = self.etcd.range(MEMBER_PREFIX, prefix=True, serializable=True, timeout=self.timeout).kvs
            with self._lock:
                for kv in kvs:
                    info = kv.json()
                    self._client_urls[str(info["name"])] = list(info.get("client_urls", []))
        except (EtcdError, ValueError, KeyError):
            pass
        with self._lock:
            return dict(self._client_urls)

    def view(self) -> MemberView:
        """Raises EtcdError when the local etcd does not answer."""
        cluster_id, raw_members = self.etcd.members(timeout=self.timeout)
        status = self.etcd.status(timeout=self.timeout)
        leader_id = int(status.get("leader", 0) or 0)
        self_id = int(status.get("header", {}).get("member_id", 0) or 0)
        # etcd may still report an old leader it has not heard from: trust it only if
        # the raft term is current — CheckQuorum makes an isolated leader step down, and
        # a follower without a leader reports 0.
        urls = self._known_client_urls()
        members = [self._member_json(m, urls) for m in raw_members]
        return MemberView(cluster_id, members, leader_id, self_id)

    def _member_json(self, member: Member, urls: dict[str, list[str]]) -> dict[str, Any]:
        name = member.name or self._names_by_peer.get(
            (member.peer_urls[0] if member.peer_urls else "").rstrip("/"), ""
        )
        client_urls = urls.get(name) or (
            self.advertise_client_urls if name == self.name else _client_urls_from_peer(member.peer_urls)
        )
        return {
            "name": name,
            "member_id": member.id,
            "peer_urls": member.peer_urls,
            "client_urls": client_urls,
            "deploy_path": "/",
            "binary_version": release_version(),
            "git_hash": "standin",
        }


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False
