"""etcd sessions, DDL owner election and the TiDB server registry.

A session is an etcd lease kept alive from a thread *pinned to one PD member*
(TiDB's etcd client holds one gRPC keepalive stream and only re-dials when the
connection breaks). So a PD member that is cut off from its quorum — or whose IO
stalls — lets the lease run out: the session expires, this TiDB stops being the
DDL owner, and another TiDB wins the election (etcd ``concurrency.Election``:
the key with the lowest create revision under ``/tidb/ddl/fg/owner/`` owns).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from common.env import scaled
from common.etcd import Compare, Etcd, EtcdError, LeaseNotFound
from common.log import get_logger

log = get_logger("tidb.owner")

OWNER_PREFIX = "/tidb/ddl/fg/owner/"
SERVERS_PREFIX = "/standin/tidb/servers/"


def session_ttl() -> int:
    """The owner's etcd session TTL in whole seconds (etcd's unit).

    Like tidb-server, the ``tidb_manager_ttl`` environment variable sets it (pkg/owner
    manager.go ``setManagerSessionTTL``; TiDB's default is 60); without it the stand-in uses
    10 s scaled, at least 2 s so keepalives can land.
    """
    raw = os.environ.get("tidb_manager_ttl", "").strip()  # noqa: SIM112 - tidb-server reads it lower-case
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return max(2, round(scaled(10.0, 2.0)))


def _dead_member(exc: Exception) -> bool:
    """A refused/unresolvable member is gone for good: re-dial elsewhere (a hung one is not)."""
    text = str(exc)
    return any(
        s in text for s in ("Refused", "gaierror", "Name or service", "No route", "unreachable")
    )


class LeaseSession:
    """One etcd lease with a keepalive thread pinned to the member it was granted on."""

    def __init__(self, endpoints: list[str], ttl: int) -> None:
        self.endpoints = endpoints
        self.ttl = ttl
        self.lease_id = 0
        self.endpoint = ""
        self.expired = threading.Event()
        self.last_ok = 0.0
        self._stop = threading.Event()
        self._client: Etcd | None = None

    def _leader_first(self) -> list[str]:
        """Endpoints with the etcd leader first (TiDB's clients end up talking to PD's leader)."""
        leader_ep = None
        for ep in self.endpoints:
            try:
                st = Etcd([ep], timeout=scaled(1.0, 0.3)).status()
            except EtcdError:
                continue
            member = str(st.get("header", {}).get("member_id", ""))
            if member and member == str(st.get("leader", "")):
                leader_ep = ep
                break
        return ([leader_ep] if leader_ep else []) + [e for e in self.endpoints if e != leader_ep]

    def open(self) -> None:
        last: Exception | None = None
        for ep in self._leader_first():
            client = Etcd([ep], timeout=scaled(2.0, 0.5))
            try:
                self.lease_id = client.grant(self.ttl)
            except EtcdError as exc:
                last = exc
                continue
            self._client, self.endpoint = client, ep
            self.last_ok = time.monotonic()
            threading.Thread(
                target=self._keepalive, name=f"etcd-keepalive-{self.lease_id:x}", daemon=True
            ).start()
            return
        raise EtcdError(f"cannot grant a lease on any PD: {last}")

    def _keepalive(self) -> None:
        interval = self.ttl / 3.0
        while not self._stop.is_set() and not self.expired.is_set():
            if self._client is None:  # set before this thread starts
                return
            try:
                self._client.keepalive(self.lease_id, timeout=min(interval, scaled(2.0, 0.5)))
                self.last_ok = time.monotonic()
            except LeaseNotFound:
                log.warn("etcd session lease not found", lease=f"{self.lease_id:x}")
                self.expired.set()
                return
            except EtcdError as exc:
                if _dead_member(exc):
                    for ep in self.endpoints:
                        if ep != self.endpoint:
                            self._client, self.endpoint = Etcd([ep], timeout=scaled(2.0, 0.5)), ep
                            break
                log.warn(
                    "etcd keepalive failed",
                    lease=f"{self.lease_id:x}",
                    endpoint=self.endpoint,
                    error=str(exc)[:200],
                )
            if time.monotonic() - self.last_ok > self.ttl:
                log.warn("etcd session is done", lease=f"{self.lease_id:x}", ttl=self.ttl)
                self.expired.set()
                return
            self._stop.wait(interval)

    @property
    def alive(self) -> bool:
        return self.lease_id != 0 and not self.expired.is_set()

    def stalled(self) -> bool:
        """Alive but not renewed for more than one and a half keepalive intervals: the PD
        member it is pinned to cannot reach its quorum (or this TiDB cannot reach it)."""
        return self.alive and time.monotonic() - self.last_ok > self.ttl / 2

    def renews(self) -> bool:
        """Whether the lease can be renewed *now*, asked of the member it is pinned to.

        What a flush's ``Mutex.Lock`` meets at once (its txn carries this lease to the same
        member and must commit through the member's quorum), not ``ttl/2`` later as the
        keepalive thread notices — nor an election timeout later, when an isolated etcd
        leader that still answers keepalives steps down: the linearizable read needs the
        quorum, so every flush that overlaps the member's cut sees it.
        """
        if not self.alive or self._client is None:
            return False
        if self.stalled():
            return False
        try:
            self._client.keepalive(self.lease_id, timeout=scaled(1.0, 0.3))
            self._client.range(OWNER_PREFIX, prefix=True, count_only=True,
                               timeout=scaled(1.0, 0.3))
        except LeaseNotFound:
            self.expired.set()
            return False
        except EtcdError:
            return False
        self.last_ok = time.monotonic()
        return True

    def close(self, etcd: Etcd | None = None) -> None:
        self._stop.set()
        if self.lease_id and etcd is not None:
            with contextlib.suppress(EtcdError):
                etcd.revoke(self.lease_id, timeout=scaled(1.0, 0.3))


class OwnerManager:
    """Campaigns for DDL ownership and keeps this server's registry entry alive."""

    def __init__(
        self,
        etcd: Etcd,
        endpoints: list[str],
        ddl_id: str,
        info: Callable[[], dict[str, Any]],
        campaign: bool = True,
    ) -> None:
        self.etcd = etcd
        self.endpoints = endpoints
        self.ddl_id = ddl_id
        self.info = info
        self.campaign = campaign
        self.session: LeaseSession | None = None
        self._my_key = ""
        self._my_rev = 0
        self._owner_id = ""
        self._is_owner = False
        self._resigned_until = 0.0
        self._registered: dict[str, Any] = {}
        self._registered_at = 0.0
        self._refresh = scaled(2.0, 0.5)  # seconds between writes of an unchanged entry
        self._register_lock = threading.Lock()
        self._lock = threading.Lock()
        self.on_change: list[Callable[[bool], None]] = []
        self.generation = 0  # bumps every time this node becomes owner
        self._stopped = False

    # -- public -------------------------------------------------------------------------
    def is_owner(self) -> bool:
        with self._lock:
            return self._is_owner and self.session is not None and self.session.alive

    def owner_id(self) -> str:
        with self._lock:
            return self._owner_id

    def guard(self) -> list[Compare]:
        """Txn guard: this node's owner key still exists as campaigned (fencing)."""
        with self._lock:
            return (
                [Compare.create_revision(self._my_key, "=", self._my_rev)] if self._my_key else []
            )

    def resign(self) -> bool:
        if not self.is_owner():
            return False
        with self._lock:
            key = self._my_key
            self._my_key, self._my_rev = "", 0
            self._resigned_until = time.monotonic() + scaled(3.0, 0.5)
        with contextlib.suppress(EtcdError):
            self.etcd.delete(key)
        self._set_owner(False, "")
        return True

    def publish(self) -> None:
        """Refresh this server's registry entry now (e.g. a new schema version loaded)."""
        sess = self.session
        if sess is None or not sess.alive:
            return
        with contextlib.suppress(EtcdError):
            self._register(sess, force=True)

    def _register(self, sess: LeaseSession, *, force: bool) -> None:
        """Write this server's registry entry as it is now (unless it was written so already).

        The schema loop (`publish`) and the campaign loop both write it. Unserialised, an
        older entry could land in etcd after a newer one while ``_registered`` recorded the
        newer: the registry then kept an old ``schema_version`` with ``mdl_wait`` set, and
        the owner waited for it without a deadline (CI20: an ADD INDEX held at ``delete
        only`` with no transaction holding it). Under one lock the last write carries the
        last state; a write that failed (or timed out, and may still land) is written again
        at the next campaign tick, and an unchanged one every few seconds (a write the client
        gave up on can still land late)."""
        with self._register_lock:
            info = dict(self.info())
            if (not force and info == self._registered
                    and time.monotonic() - self._registered_at < self._refresh):
                return
            self._registered = {}
            self.etcd.put(SERVERS_PREFIX + self.ddl_id, json.dumps(info), lease=sess.lease_id)
            self._registered, self._registered_at = info, time.monotonic()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="ddl-owner-campaign", daemon=True).start()

    def close(self) -> None:
        """Leave the cluster at shutdown: revoke the session lease at once.

        TiDB's ``ownerManager.Cancel`` revokes its etcd session when the server closes
        (pkg/owner/manager.go ``revokeSession``), so the owner key and the server's
        registry entry vanish now and another TiDB takes over without waiting for the TTL.
        """
        self._stopped = True
        sess = self.session
        self._set_owner(False, "")
        if sess is not None:
            sess.close(self.etcd)

    # -- loop ---------------------------------------------------------------------------
    def _set_owner(self, owner: bool, owner_id: str) -> None:
        with self._lock:
            changed = owner != self._is_owner
            self._is_owner = owner
            self._owner_id = owner_id
            if changed and owner:
                self.generation += 1
        if changed:
            log.info(
                "ddl owner changed" if owner else "ddl owner lost",
                ddl_id=self.ddl_id,
                is_owner=owner,
            )
            for cb in self.on_change:
                try:
                    cb(owner)
                except Exception as exc:  # noqa: BLE001
                    log.warn("owner callback failed", error=repr(exc))

    def _loop(self) -> None:
        tick = scaled(0.5, 0.2)
        while not self._stopped:
            try:
                self._step()
            except EtcdError as exc:
                log.warn("owner campaign step failed", error=str(exc)[:200])
                if self.session is not None and not self.session.alive:
                    self._set_owner(False, self._owner_id)
            except Exception as exc:  # noqa: BLE001 - the campaign must survive anything
                log.error("owner campaign crashed a step", error=repr(exc)[:300])
            time.sleep(tick)

    def _step(self) -> None:
        sess = self.session
        if sess is None or not sess.alive:
            if sess is not None:
                self._set_owner(False, self._owner_id)
                log.warn("etcd session expired, creating a new one", ddl_id=self.ddl_id)
                with self._lock:
                    self._my_key, self._my_rev = "", 0
                self._registered = {}
                sess.close()
            new = LeaseSession(self.endpoints, session_ttl())
            new.open()
            self.session = sess = new
        self._register(sess, force=False)
        if self.campaign and not self._my_key and time.monotonic() >= self._resigned_until:
            key = f"{OWNER_PREFIX}{sess.lease_id:x}"
            self.etcd.put(key, self.ddl_id, lease=sess.lease_id)
            kv = self.etcd.get(key)
            if kv is not None:
                with self._lock:
                    self._my_key, self._my_rev = key, kv.create_revision
        kvs = sorted(self.etcd.get_prefix(OWNER_PREFIX), key=lambda kv: kv.create_revision)
        owner_id = kvs[0].text if kvs else ""
        mine = bool(kvs) and kvs[0].key_text == self._my_key and sess.alive
        if self._my_key and not any(kv.key_text == self._my_key for kv in kvs):
            with self._lock:
                self._my_key, self._my_rev = "", 0  # our key vanished (lease expired server-side)
        self._set_owner(mine, owner_id)

    def servers(self) -> dict[str, dict[str, Any]]:
        """Live TiDB servers (registry entries whose lease is alive)."""
        out = {}
        for kv in self.etcd.get_prefix(SERVERS_PREFIX):
            try:
                out[kv.key_text[len(SERVERS_PREFIX) :]] = json.loads(kv.value)
            except ValueError:
                continue
        return out
