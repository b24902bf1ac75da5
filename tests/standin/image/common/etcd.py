"""Client for etcd's v3 JSON gateway (`/v3/*`), shared by the PD and TiDB roles.

The TiDB role reaches etcd through PD's client port exactly like real TiDB does (PD embeds
etcd), so every call goes to `http://<pd>:2379/v3/...`, which the PD role proxies to its
local etcd.  Faults therefore act physically: a PD without quorum answers 503 or times out
and the call fails over to the next endpoint; when no endpoint answers before the deadline
the call raises `EtcdUnavailable`.

Keys and values are `str` or `bytes` on the way in (base64 on the wire) and `bytes` on
the way out (`KV.text`, `KV.json()` decode).  Every call has a per-attempt timeout and an
overall deadline; nothing here can block forever.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from common import httpclient

Bytes = str | bytes

# etcd/gRPC codes that mean "this member cannot serve now, ask another one".
_RETRYABLE_CODES = frozenset({4, 14})  # DeadlineExceeded, Unavailable
_RETRYABLE_STATUS = frozenset({502, 503, 504})
_RETRYABLE_MESSAGES = (
    "etcdserver: request timed out",
    "etcdserver: leader changed",
    "etcdserver: no leader",
    "etcdserver: server stopped",
    "etcdserver: too many requests",
)


class EtcdError(Exception):
    """etcd answered with an error (e.g. `etcdserver: requested lease not found`)."""

    def __init__(self, message: str, code: int = 0, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class EtcdUnavailable(EtcdError):
    """No endpoint answered before the deadline (lost quorum, partition, dead PDs)."""


class LeaseNotFound(EtcdError):
    """The lease expired or was revoked (`etcdserver: requested lease not found`)."""


def _b(value: Bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _enc(value: Bytes) -> str:
    return base64.b64encode(_b(value)).decode()


def _dec(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def prefix_end(prefix: Bytes) -> bytes:
    """The `range_end` that makes a range cover every key starting with `prefix`."""
    raw = bytearray(_b(prefix))
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return b"\x00"  # the whole keyspace


@dataclass(frozen=True)
class KV:
    key: bytes
    value: bytes
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    lease: int = 0

    @property
    def key_text(self) -> str:
        return self.key.decode(errors="surrogateescape")

    @property
    def text(self) -> str:
        return self.value.decode(errors="surrogateescape")

    def json(self) -> Any:
        return json.loads(self.value)

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> KV:
        return cls(
            key=_dec(raw.get("key")),
            value=_dec(raw.get("value")),
            create_revision=int(raw.get("create_revision", 0)),
            mod_revision=int(raw.get("mod_revision", 0)),
            version=int(raw.get("version", 0)),
            lease=int(raw.get("lease", 0)),
        )


@dataclass(frozen=True)
class RangeResult:
    kvs: list[KV]
    revision: int
    count: int
    more: bool


@dataclass(frozen=True)
class Compare:
    """One txn guard; build with the classmethods (`Compare.version(key, "=", 0)`)."""

    wire: dict[str, Any]

    _OPS: ClassVar[dict[str, str]] = {"=": "EQUAL", "==": "EQUAL", "!=": "NOT_EQUAL", ">": "GREATER", "<": "LESS"}

    @classmethod
    def _make(cls, key: Bytes, op: str, target: str, field_name: str, value: Any) -> Compare:
        return cls({"key": _enc(key), "result": cls._OPS[op], "target": target, field_name: value})

    @classmethod
    def value(cls, key: Bytes, op: str, value: Bytes) -> Compare:
        return cls._make(key, op, "VALUE", "value", _enc(value))

    @classmethod
    def version(cls, key: Bytes, op: str, version: int) -> Compare:
        return cls._make(key, op, "VERSION", "version", str(version))

    @classmethod
    def create_revision(cls, key: Bytes, op: str, revision: int) -> Compare:
        return cls._make(key, op, "CREATE", "create_revision", str(revision))

    @classmethod
    def mod_revision(cls, key: Bytes, op: str, revision: int) -> Compare:
        return cls._make(key, op, "MOD", "mod_revision", str(revision))

    @classmethod
    def lease(cls, key: Bytes, op: str, lease: int) -> Compare:
        return cls._make(key, op, "LEASE", "lease", str(lease))


@dataclass(frozen=True)
class Op:
    """One txn operation; build with `Op.put`, `Op.get`, `Op.delete`."""

    wire: dict[str, Any]

    @classmethod
    def put(cls, key: Bytes, value: Bytes, lease: int = 0) -> Op:
        body: dict[str, Any] = {"key": _enc(key), "value": _enc(value)}
        if lease:
            body["lease"] = str(lease)
        return cls({"request_put": body})

    @classmethod
    def get(cls, key: Bytes, *, prefix: bool = False, range_end: Bytes | None = None) -> Op:
        body: dict[str, Any] = {"key": _enc(key)}
        end = prefix_end(key) if prefix else range_end
        if end is not None:
            body["range_end"] = _enc(end)
        return cls({"request_range": body})

    @classmethod
    def delete(cls, key: Bytes, *, prefix: bool = False, range_end: Bytes | None = None) -> Op:
        body: dict[str, Any] = {"key": _enc(key)}
        end = prefix_end(key) if prefix else range_end
        if end is not None:
            body["range_end"] = _enc(end)
        return cls({"request_delete_range": body})


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int
    # One entry per executed op: a list of KVs for gets, the deleted count for deletes,
    # None for puts.
    responses: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    peer_urls: list[str]
    client_urls: list[str]


class Etcd:
    """A failover client for the etcd v3 JSON gateway.

    `endpoints`: base URLs or `host:port` (`pd0:2379`, `http://127.0.0.1:12379`).
    `timeout`: seconds per attempt; `deadline`: seconds per call over all attempts
    (default `timeout * len(endpoints)`, at least `timeout`).
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = 2.0,
        deadline: float | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("etcd client needs at least one endpoint")
        self.endpoints = [httpclient.normalize_url(e) for e in endpoints]
        self.timeout = timeout
        self.deadline = deadline if deadline is not None else timeout * max(1, len(self.endpoints))
        self._preferred = 0
        self._lock = threading.Lock()

    # -- transport -------------------------------------------------------------------------
    def call(self, path: str, body: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """POST `body` to `/v3/<path>` on the first endpoint that can serve it."""
        per_try = timeout or self.timeout
        end = time.monotonic() + max(self.deadline, per_try)
        with self._lock:
            start = self._preferred
        n = len(self.endpoints)
        last: str = "no attempt"
        attempt = 0
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0.01:
                break
            index = (start + attempt) % n
            url = f"{self.endpoints[index]}/v3/{path.lstrip('/')}"
            attempt += 1
            try:
                result = httpclient.request("POST", url, body, timeout=min(per_try, remaining))
            except httpclient.Unreachable as exc:
                last = str(exc)
                self._pause_after_round(attempt, n, end)
                continue
            data = self._parse(result)
            if result.ok and isinstance(data, dict) and "error" not in data:
                with self._lock:
                    self._preferred = index
                return data
            error = self._error(result.status, data)
            if self._retryable(error):
                last = f"{url}: {error.message}"
                self._pause_after_round(attempt, n, end)
                continue
            raise error
        raise EtcdUnavailable(f"etcd unavailable: {last}", code=14)

    def _pause_after_round(self, attempt: int, n: int, end: float) -> None:
        # After every endpoint failed once, back off (growing, like client-go's backoffer)
        # instead of hammering members that are electing a leader.
        if attempt % n == 0:
            pause = min(0.05 * (attempt // n), 0.5)
            time.sleep(max(0.0, min(pause, end - time.monotonic())))

    @staticmethod
    def _parse(result: httpclient.HTTPResult) -> Any:
        text = result.body.strip()
        if not text:
            return {}
        # Streaming endpoints (keepalive) answer `{"result": {...}}` lines.
        first = text.split(b"\n", 1)[0]
        try:
            data = json.loads(first)
        except ValueError:
            return {"error": text.decode(errors="replace"), "code": 0}
        if isinstance(data, dict) and "result" in data and isinstance(data["result"], dict):
            return data["result"]
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            inner = data["error"]
            return {"error": inner.get("message", ""), "code": inner.get("grpc_code", inner.get("code", 0))}
        return data

    @staticmethod
    def _error(status: int, data: Any) -> EtcdError:
        if isinstance(data, dict):
            message = str(data.get("message") or data.get("error") or f"HTTP {status}")
            code = int(data.get("code", 0) or 0)
        else:
            message, code = str(data) or f"HTTP {status}", 0
        if "requested lease not found" in message:
            return LeaseNotFound(message, code, status)
        if status in _RETRYABLE_STATUS or code in _RETRYABLE_CODES:
            return EtcdUnavailable(message, code or 14, status)
        return EtcdError(message, code, status)

    @staticmethod
    def _retryable(error: EtcdError) -> bool:
        if isinstance(error, EtcdUnavailable):
            return True
        return any(m in error.message for m in _RETRYABLE_MESSAGES)

    # -- kv --------------------------------------------------------------------------------
    def range(
        self,
        key: Bytes,
        range_end: Bytes | None = None,
        *,
        prefix: bool = False,
        limit: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
        serializable: bool = False,
        revision: int = 0,
        sort_order: str | None = None,
        sort_target: str | None = None,
        timeout: float | None = None,
    ) -> RangeResult:
        """Range read; linearizable unless `serializable` (then a member answers locally)."""
        body: dict[str, Any] = {"key": _enc(key)}
        end = prefix_end(key) if prefix else range_end
        if end is not None:
            body["range_end"] = _enc(end)
        if limit:
            body["limit"] = str(limit)
        if keys_only:
            body["keys_only"] = True
        if count_only:
            body["count_only"] = True
        if serializable:
            body["serializable"] = True
        if revision:
            body["revision"] = str(revision)
        if sort_order:
            body["sort_order"] = sort_order  # ASCEND | DESCEND
        if sort_target:
            body["sort_target"] = sort_target  # KEY | VERSION | CREATE | MOD | VALUE
        data = self.call("kv/range", body, timeout=timeout)
        return RangeResult(
            kvs=[KV.from_wire(kv) for kv in data.get("kvs", [])],
            revision=int(data.get("header", {}).get("revision", 0)),
            count=int(data.get("count", 0)),
            more=bool(data.get("more", False)),
        )

    def get(self, key: Bytes, *, timeout: float | None = None) -> KV | None:
        kvs = self.range(key, timeout=timeout).kvs
        return kvs[0] if kvs else None

    def get_prefix(self, prefix: Bytes, *, timeout: float | None = None) -> list[KV]:
        return self.range(prefix, prefix=True, timeout=timeout).kvs

    def put(self, key: Bytes, value: Bytes, *, lease: int = 0, timeout: float | None = None) -> int:
        """Write one key; returns the new store revision."""
        body: dict[str, Any] = {"key": _enc(key), "value": _enc(value)}
        if lease:
            body["lease"] = str(lease)
        data = self.call("kv/put", body, timeout=timeout)
        return int(data.get("header", {}).get("revision", 0))

    def delete(
        self,
        key: Bytes,
        range_end: Bytes | None = None,
        *,
        prefix: bool = False,
        timeout: float | None = None,
    ) -> int:
        """Delete a key or range; returns how many keys were deleted."""
        body: dict[str, Any] = {"key": _enc(key)}
        end = prefix_end(key) if prefix else range_end
        if end is not None:
            body["range_end"] = _enc(end)
        data = self.call("kv/deleterange", body, timeout=timeout)
        return int(data.get("deleted", 0))

    def txn(
        self,
        compare: Sequence[Compare],
        success: Sequence[Op],
        failure: Sequence[Op] = (),
        *,
        timeout: float | None = None,
    ) -> TxnResult:
        """Atomic compare-and-swap: `success` ops run when every `compare` holds."""
        body = {
            "compare": [c.wire for c in compare],
            "success": [o.wire for o in success],
            "failure": [o.wire for o in failure],
        }
        data = self.call("kv/txn", body, timeout=timeout)
        responses: list[Any] = []
        for item in data.get("responses", []):
            if "response_range" in item:
                responses.append([KV.from_wire(kv) for kv in item["response_range"].get("kvs", [])])
            elif "response_delete_range" in item:
                responses.append(int(item["response_delete_range"].get("deleted", 0)))
            else:
                responses.append(None)
        return TxnResult(
            succeeded=bool(data.get("succeeded", False)),
            revision=int(data.get("header", {}).get("revision", 0)),
            responses=responses,
        )

    def create(self, key: Bytes, value: Bytes, *, lease: int = 0, timeout: float | None = None) -> bool:
        """Put `key` only if it does not exist; True when this call created it."""
        return self.txn([Compare.version(key, "=", 0)], [Op.put(key, value, lease)], timeout=timeout).succeeded

    # -- leases ----------------------------------------------------------------------------
    def grant(self, ttl: int, lease_id: int = 0, *, timeout: float | None = None) -> int:
        """Grant a lease of `ttl` seconds (etcd's minimum applies); returns its id."""
        body: dict[str, Any] = {"TTL": str(max(1, int(ttl)))}
        if lease_id:
            body["ID"] = str(lease_id)
        data = self.call("lease/grant", body, timeout=timeout)
        if data.get("error"):
            raise EtcdError(str(data["error"]))
        return int(data["ID"])

    def keepalive(self, lease_id: int, *, timeout: float | None = None) -> int:
        """Refresh a lease once; returns the new TTL. Raises `LeaseNotFound` when expired."""
        data = self.call("lease/keepalive", {"ID": str(lease_id)}, timeout=timeout)
        ttl = int(data.get("TTL", 0))
        if ttl <= 0:
            raise LeaseNotFound("etcdserver: requested lease not found", code=5, status=404)
        return ttl

    def revoke(self, lease_id: int, *, timeout: float | None = None) -> None:
        """Revoke a lease (its keys are deleted); an already-gone lease is not an error."""
        with contextlib.suppress(LeaseNotFound):
            self.call("lease/revoke", {"ID": str(lease_id)}, timeout=timeout)

    def time_to_live(self, lease_id: int, *, timeout: float | None = None) -> int:
        """Remaining TTL in seconds; -1 when the lease does not exist."""
        data = self.call("lease/timetolive", {"ID": str(lease_id)}, timeout=timeout)
        return int(data.get("TTL", -1))

    def leases(self, *, timeout: float | None = None) -> list[int]:
        data = self.call("lease/leases", {}, timeout=timeout)
        return [int(item["ID"]) for item in data.get("leases", [])]

    # -- cluster / maintenance -------------------------------------------------------------
    def status(self, *, timeout: float | None = None) -> dict[str, Any]:
        """`/v3/maintenance/status` of the answering member (leader id, raft term, ...)."""
        return self.call("maintenance/status", {}, timeout=timeout)

    def members(self, *, timeout: float | None = None) -> tuple[int, list[Member]]:
        """(cluster_id, members) as the answering member knows them (no quorum needed)."""
        data = self.call("cluster/member/list", {}, timeout=timeout)
        members = [
            Member(
                id=int(m.get("ID", 0)),
                name=str(m.get("name", "")),
                peer_urls=list(m.get("peerURLs", [])),
                client_urls=list(m.get("clientURLs", [])),
            )
            for m in data.get("members", [])
        ]
        return int(data.get("header", {}).get("cluster_id", 0)), members

    def add_member(self, peer_urls: Sequence[str], *, timeout: float | None = None) -> tuple[int, list[Member]]:
        """Add a member (needs quorum); returns (new member id, the members after the add)."""
        data = self.call("cluster/member/add", {"peerURLs": list(peer_urls)}, timeout=timeout)
        members = [
            Member(int(m.get("ID", 0)), str(m.get("name", "")), list(m.get("peerURLs", [])),
                   list(m.get("clientURLs", [])))
            for m in data.get("members", [])
        ]
        return int(data.get("member", {}).get("ID", 0)), members

    def remove_member(self, member_id: int, *, timeout: float | None = None) -> None:
        """Remove a member from the cluster (needs quorum)."""
        self.call("cluster/member/remove", {"ID": str(member_id)}, timeout=timeout)

    def move_leader(self, target_id: int, *, timeout: float | None = None) -> None:
        """Hand raft leadership to `target_id`; must be sent to the current leader."""
        self.call("maintenance/transfer-leadership", {"targetID": str(target_id)}, timeout=timeout)
