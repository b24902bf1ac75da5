"""Row and index storage in the TiKV role, replicated like TiKV's raft groups.

Every key lives on ``R = min(3, stores)`` stores picked by a stable hash over the
store list PD reports (sorted by store id, as max-replicas=3 places peers). A
write succeeds once a majority of the key's replicas acknowledged it and a read
asks a majority and keeps the newest version, so one partitioned TiKV out of
three slows nothing down for long, while losing the majority makes statements
fail with ``9002 TiKV server timeout`` — the same physics as raft.

Values carry a version (``time.time_ns()`` of the writer) and deletes are
tombstones, so a replica that missed writes while cut off never wins a merge.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from common import httpclient
from common.env import scaled
from common.log import get_logger

log = get_logger("tidb.kv")

_REPLICAS = 3


class TiKVTimeout(Exception):
    """A majority of a key's replicas did not answer in time (TiDB error 9002)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("TiKV server timeout")
        self.detail = detail


@dataclass
class WriteReport:
    """What a write observed: stores that timed out even if a quorum acked."""

    timed_out: set[str] = field(default_factory=set)


def _now_version() -> int:
    return time.time_ns()


def encode_value(data: Any, version: int | None = None) -> str:
    return json.dumps({"v": version or _now_version(), "d": data}, separators=(",", ":"))


def decode_value(raw: str | None) -> tuple[int, Any]:
    if raw is None:
        return (0, None)
    try:
        obj = json.loads(raw)
        return int(obj.get("v", 0)), obj.get("d")
    except (ValueError, AttributeError):
        return (0, None)


class StoreList:
    """The TiKV stores PD knows (addresses sorted by store id), refreshed lazily."""

    def __init__(self, pd_endpoints: Sequence[str]) -> None:
        self._pd = [httpclient.normalize_url(e) for e in pd_endpoints]
        self._stores: list[str] = []
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self) -> list[str]:
        with self._lock:
            fresh = time.monotonic() - self._at < scaled(5.0, 1.0)
            if self._stores and fresh:
                return list(self._stores)
        stores = self._fetch()
        with self._lock:
            if stores:
                self._stores, self._at = stores, time.monotonic()
            return list(self._stores)

    def _fetch(self) -> list[str]:
        for base in self._pd:
            try:
                status, data = httpclient.get_json(
                    f"{base}/pd/api/v1/stores", timeout=scaled(2.0, 0.5)
                )
            except httpclient.Unreachable:
                continue
            if status != 200 or not isinstance(data, dict):
                continue
            found = []
            for item in data.get("stores") or []:
                store = item.get("store", {})
                if store.get("state_name") == "Tombstone":
                    continue
                found.append((int(store.get("id", 0)), str(store.get("address", ""))))
            if found:
                return [addr for _id, addr in sorted(found)]
        return []


def replicas_of(key: str, stores: Sequence[str]) -> list[str]:
    """The stores holding ``key``: R consecutive stores from a stable hash (pure)."""
    n = len(stores)
    if n == 0:
        return []
    r = min(_REPLICAS, n)
    start = zlib.crc32(key.encode()) % n
    return [stores[(start + i) % n] for i in range(r)]


def quorum(n: int) -> int:
    return n // 2 + 1


class KVBackend:
    """Transport to one store; implemented over HTTP JSON or in memory."""

    def call(self, store: str, op: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        raise NotImplementedError


class HTTPBackend(KVBackend):
    def call(self, store: str, op: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            result = httpclient.request("POST", f"http://{store}/kv/{op}", body, timeout=timeout)
        except httpclient.Unreachable as exc:
            raise TiKVTimeout(str(exc)) from exc
        if not result.ok:
            raise TiKVTimeout(f"{store} answered HTTP {result.status}")
        data = result.json()
        return data if isinstance(data, dict) else {}


class MemoryBackend(KVBackend):
    """``--store=mocktikv``: an in-process store, like TiDB's own mocktikv."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()

    def call(self, store: str, op: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        with self._lock:
            if op == "batch_put":
                for item in body["kvs"]:
                    k, v = item[0], item[1]
                    if decode_value(v)[0] >= decode_value(self._data.get(k))[0]:
                        self._data[k] = v  # newest version wins, like the TiKV role
                return {}
            if op == "batch_get":
                return {"kvs": [[k, self._data[k]] for k in body["keys"] if k in self._data]}
            if op == "batch_delete":
                for k in body["keys"]:
                    self._data.pop(k, None)
                return {}
            if op == "scan":
                start, end = body["start"], body.get("end") or "\U0010ffff"
                keys = sorted(k for k in self._data if start <= k < end)
                limit = int(body.get("limit") or 0)
                if limit:
                    keys = keys[:limit]
                return {"kvs": [[k, self._data[k]] for k in keys]}
        raise ValueError(op)


def _pairs(data: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    kvs = data.get("kvs", data.get("pairs", []))
    if isinstance(kvs, dict):
        yield from kvs.items()
        return
    for item in kvs or []:
        if isinstance(item, dict):
            yield str(item.get("key")), item.get("value")
        else:
            yield str(item[0]), item[1]


class KVClient:
    """Quorum reads/writes over the stores; every call bounded by ``timeout``."""

    def __init__(self, stores: StoreList | None, backend: KVBackend) -> None:
        self._stores = stores
        self._backend = backend
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="tikv-client")
        self._suspect: dict[str, float] = {}
        self._suspect_lock = threading.Lock()
        self._writing: Counter[int] = Counter()  # versions of this TiDB's writes in flight
        self._writes_done = threading.Condition()

    def snapshot(self) -> int:
        """A read version for a statement: now, once this TiDB's writes older than it landed.

        TiKV makes a reader at ``ts`` wait for the locks of transactions older than ``ts``
        (their prewrites); the stand-in's equivalent is waiting for its own writes in flight.
        """
        version = _now_version()
        with self._writes_done:
            self._writes_done.wait_for(
                lambda: not any(v < version for v in self._writing), self.timeout + 0.5
            )
        return version

    @property
    def timeout(self) -> float:
        return scaled(4.0, 1.5)

    def stores(self) -> list[str]:
        if self._stores is None:
            return ["mocktikv"]
        found = self._stores.get()
        if not found:
            raise TiKVTimeout("no TiKV store registered in PD")
        return found

    def _fanout(
        self,
        per_store: dict[str, dict[str, Any]],
        op: str,
        need: dict[str, int] | None,
        wait_all: bool,
        report: WriteReport | None,
    ) -> dict[str, dict[str, Any]]:
        """Send one request per store; return the answers that arrived in time.

        ``wait_all`` waits for every store except those that recently timed out
        (TiKV's client likewise stops waiting on a store it marked unreachable);
        the request to a suspect store still goes out and clears it on success.
        """
        timeout = self.timeout
        now = time.monotonic()
        with self._suspect_lock:
            suspects = {s for s, until in self._suspect.items() if until > now}
        if op == "batch_put":
            suspects = (
                set()
            )  # ingest writes need every replica (Lightning writes SSTs to all peers)
        futures: dict[Future[dict[str, Any]], str] = {}
        for store, body in per_store.items():
            fut = self._pool.submit(self._backend.call, store, op, body, timeout)
            fut.add_done_callback(functools.partial(self._observe, store))
            futures[fut] = store
        answers: dict[str, dict[str, Any]] = {}
        deadline = now + timeout + 0.2
        pending = set(futures)
        while pending:
            done, pending = wait(
                pending, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_COMPLETED
            )
            for fut in done:
                store = futures[fut]
                try:
                    answers[store] = fut.result()
                except Exception as exc:  # noqa: BLE001 - every failure of a store means "no answer"
                    if report is not None:
                        report.timed_out.add(store)
                    log.warn("tikv request failed", store=store, op=op, error=str(exc)[:200])
            if time.monotonic() >= deadline:
                break
            if wait_all:
                if not any(futures[f] not in suspects for f in pending):
                    break
            elif need is not None and all(
                sum(1 for s in stores_ if s in answers) >= q
                for stores_, q in _need_groups(need, per_store)
            ):
                break
        if report is not None:
            for fut in pending:
                if futures[fut] not in suspects:
                    report.timed_out.add(futures[fut])
        return answers

    def _observe(self, store: str, fut: Future[dict[str, Any]]) -> None:
        failed = fut.exception() is not None
        with self._suspect_lock:
            if failed:
                self._suspect[store] = time.monotonic() + scaled(5.0, 1.0)
            else:
                self._suspect.pop(store, None)

    def batch_put(
        self,
        items: Sequence[tuple[str, Any] | tuple[str, Any, int]],
        *,
        wait_all: bool = False,
        report: WriteReport | None = None,
        version: int | None = None,
    ) -> None:
        """Write ``(key, data)`` pairs (``data=None`` is a tombstone) at one new version.

        An item ``(key, data, version)`` keeps its own version instead: a backfill writes
        each index entry at the version of the row it was read from, so any later change of
        that row (a newer version) wins over it whatever order the writes land in.
        """
        if not items:
            return
        stores = self.stores()
        ver = version or _now_version()
        per_store: dict[str, dict[str, Any]] = {}
        owners: dict[str, list[str]] = {}
        for item in items:
            key, data = item[0], item[1]
            item_ver = int(item[2]) if len(item) > 2 else ver
            reps = replicas_of(key, stores)
            owners[key] = reps
            value = [key, encode_value(data, item_ver), item_ver]
            for s in reps:
                per_store.setdefault(s, {"kvs": []})["kvs"].append(value)
        with self._writes_done:
            self._writing[ver] += 1
        try:
            answers = self._fanout(per_store, "batch_put", _need_map(owners), wait_all, report)
        finally:
            with self._writes_done:
                self._writing[ver] -= 1
                if not self._writing[ver]:
                    del self._writing[ver]
                self._writes_done.notify_all()
        for key, reps in owners.items():
            if sum(1 for s in reps if s in answers) < quorum(len(reps)):
                raise TiKVTimeout(
                    f"write of {key!r} reached {sorted(set(reps) & set(answers))} of {reps}"
                )

    def batch_get(self, keys: Sequence[str], snapshot: int | None = None) -> dict[str, Any]:
        """Newest live value per key, at ``snapshot`` if given (missing/tombstoned: absent)."""
        if not keys:
            return {}
        stores = self.stores()
        per_store: dict[str, dict[str, Any]] = {}
        owners: dict[str, list[str]] = {}
        for key in keys:
            reps = replicas_of(key, stores)
            owners[key] = reps
            for s in reps:
                per_store.setdefault(s, {"keys": [], "snapshot": snapshot})["keys"].append(key)
        answers = self._fanout(per_store, "batch_get", _need_map(owners), False, None)
        best: dict[str, tuple[int, Any]] = {}
        for key, reps in owners.items():
            if sum(1 for s in reps if s in answers) < quorum(len(reps)):
                raise TiKVTimeout(
                    f"read of {key!r} reached {sorted(set(reps) & set(answers))} of {reps}"
                )
        for _store, data in answers.items():
            for k, raw in _pairs(data):
                ver, d = decode_value(raw)
                if k not in best or ver > best[k][0]:
                    best[k] = (ver, d)
        return {k: d for k, (v, d) in best.items() if d is not None}

    def scan(
        self, start: str, end: str, page: int = 4000, snapshot: int | None = None
    ) -> list[tuple[str, Any]]:
        """All live ``(key, data)`` in ``[start, end)`` in key order, merged over replicas.

        Read in pages (like coprocessor paging) so every request stays small and bounded;
        with ``snapshot`` every page reads the same state, whatever is written meanwhile.
        """
        out: list[tuple[str, Any]] = []
        cursor = start
        while True:
            items, last = self.scan_limited(cursor, end, page, snapshot)
            out.extend(items)
            if last is None:
                return out
            cursor = last + "\0"

    def scan_limited(
        self, start: str, end: str, limit: int, snapshot: int | None = None
    ) -> tuple[list[tuple[str, Any]], str | None]:
        """Up to ``limit`` live pairs from ``start``; also the last key examined (None = range done)."""
        live, bound = self.scan_versioned(start, end, limit, snapshot)
        return [(k, d) for k, d, _v in live], bound

    def scan_versioned(
        self, start: str, end: str, limit: int, snapshot: int | None = None
    ) -> tuple[list[tuple[str, Any, int]], str | None]:
        """Like `scan_limited`, with each pair's version (the snapshot a backfill reads)."""
        stores = self.stores()
        r = min(_REPLICAS, len(stores))
        per_store = {
            s: {"start": start, "end": end, "limit": limit, "snapshot": snapshot} for s in stores
        }
        answers = self._fanout(per_store, "scan", None, True, None)
        if len(stores) - len(answers) > r - quorum(r):
            raise TiKVTimeout(f"scan reached {sorted(answers)} of {stores}")
        bound: str | None = None
        best: dict[str, tuple[int, Any]] = {}
        for data in answers.values():
            pairs = list(_pairs(data))
            if len(pairs) >= limit and pairs:
                last = max(k for k, _ in pairs)
                bound = last if bound is None or last < bound else bound
            for k, raw in pairs:
                ver, d = decode_value(raw)
                if k not in best or ver > best[k][0]:
                    best[k] = (ver, d)
        keys = sorted(k for k in best if bound is None or k <= bound)
        live = [(k, best[k][1], best[k][0]) for k in keys if best[k][1] is not None]
        return live, bound

    def batch_delete(self, keys: Sequence[str]) -> None:
        """Delete by writing tombstones (a lagging replica must not resurrect rows)."""
        self.batch_put([(k, None) for k in keys])


def _need_map(owners: dict[str, list[str]]) -> dict[str, int]:
    groups: dict[str, int] = {}
    for reps in owners.values():
        groups[",".join(reps)] = quorum(len(reps))
    return groups


def _need_groups(
    need: dict[str, int], per_store: dict[str, Any]
) -> Iterable[tuple[list[str], int]]:
    for joined, q in need.items():
        yield joined.split(","), q
