"""`pd-server --join`: add this member to a running PD cluster, as tikv/pd server/join does.

With data already in the data dir the member simply restarts (etcd ignores the initial
cluster).  Otherwise the member is added through the existing cluster's client URLs (the
`/v3` gateway of a running PD), and etcd starts with `--initial-cluster-state=existing`
and the member list the add returned.
"""

from __future__ import annotations

import time

from common.etcd import Etcd, EtcdError
from common.log import get_logger

log = get_logger("pd.join")


class JoinError(Exception):
    """The member cannot join (duplicate name, no quorum, unreachable cluster)."""


def join_cluster(name: str, join_urls: list[str], advertise_peer_urls: list[str],
                 timeout: float = 60.0) -> str:
    """Add this member; returns the `--initial-cluster` value for its etcd."""
    etcd = Etcd(join_urls, timeout=3.0)
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            _, members = etcd.members()
            for member in members:
                if member.name == name:
                    raise JoinError("missing data or join a duplicated pd")
            if any(set(m.peer_urls) == set(advertise_peer_urls) for m in members):
                # Added by an earlier attempt that died before etcd started: reuse it.
                listed = members
            else:
                _, listed = etcd.add_member(advertise_peer_urls)
            parts: list[str] = []
            for member in listed:
                member_name = member.name or (name if set(member.peer_urls) == set(advertise_peer_urls) else "")
                if not member_name:
                    continue  # another member still joining: etcd learns it from the cluster
                parts.extend(f"{member_name}={url}" for url in member.peer_urls)
            log.info("joined the PD cluster", join=",".join(join_urls), initial_cluster=",".join(parts))
            return ",".join(parts)
        except EtcdError as exc:
            last = str(exc)
            log.warn("join failed, retrying", error=last)
            time.sleep(1.0)
    raise JoinError(f"cannot join {','.join(join_urls)}: {last}")
