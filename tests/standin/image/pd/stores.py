"""Store registry of the PD role: TiKV heartbeats in, PD's `/stores` JSON out.

Heartbeats are written to etcd (so they need PD's quorum, like real store heartbeats
need a PD leader), and the state shown is derived from heartbeat age exactly as PD's
`BuildStoreInfo` does: `Up`, then `Disconnected` once heartbeats stop for a while, then
`Down` after `max-store-down-time`.  All thresholds scale with STANDIN_TIME_SCALE.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from common.env import scaled, store_heartbeat_interval
from common.etcd import Compare, Etcd, Op
from common.gofmt import bytes_size, go_duration, go_time

STORE_PREFIX = "/standin/pd/stores/"
STORE_ID_KEY = "/standin/pd/store_id"
BOOTSTRAP_KEY = "/standin/pd/bootstrap_time"
DEFAULT_CAPACITY = 100 * 1024**3


@dataclass(frozen=True)
class StoreThresholds:
    disconnected_after: float
    down_after: float

    @classmethod
    def from_config(cls, max_store_down_time: float) -> StoreThresholds:
        """PD: disconnected after 20s without heartbeat, down after max-store-down-time (30m).

        The 3 s floor outlasts one PD leader re-election (etcd election timeout floor 1 s)
        plus one timed-out heartbeat, so a PD failover alone never disconnects a store —
        as in a real cluster, where 20 s is far above PD's failover time.
        """
        interval = store_heartbeat_interval()
        disconnected = max(3.0, 3 * interval, scaled(20.0, 0.0))
        down = max(2 * disconnected, scaled(max_store_down_time, 0.0))
        return cls(disconnected, down)


def state_name(record: dict[str, Any], now: float, thresholds: StoreThresholds) -> str:
    """`Up`, `Disconnected`, `Down` (or the record's explicit Offline/Tombstone state)."""
    explicit = record.get("state_name", "Up")
    if explicit != "Up":
        return str(explicit)
    age = now - float(record.get("last_heartbeat", 0.0))
    if age > thresholds.down_after:
        return "Down"
    if age > thresholds.disconnected_after:
        return "Disconnected"
    return "Up"


def store_info(record: dict[str, Any], now: float, thresholds: StoreThresholds) -> dict[str, Any]:
    """One element of `/pd/api/v1/stores` `stores` (tikv/pd pkg/response/store.go shape)."""
    last = float(record.get("last_heartbeat", 0.0))
    start = float(record.get("start_timestamp", 0) or 0)
    capacity = int(record.get("capacity") or DEFAULT_CAPACITY)
    used = int(record.get("used_size", 0) or 0)
    available = int(record.get("available") or max(capacity - used, 0))
    store: dict[str, Any] = {
        "id": int(record["id"]),
        "address": record["address"],
        "version": record.get("version", ""),
        "peer_address": record.get("address", ""),
        "status_address": record.get("status_address", ""),
        "git_hash": record.get("git_hash", "standin"),
        "start_timestamp": int(start),
        "deploy_path": record.get("deploy_path", "/"),
        "last_heartbeat": int(last * 1e9),
        "node_state": 1,
        "state_name": state_name(record, now, thresholds),
    }
    labels = record.get("labels") or {}
    if labels:
        store["labels"] = [{"key": k, "value": v} for k, v in labels.items()]
    status: dict[str, Any] = {
        "capacity": bytes_size(capacity),
        "available": bytes_size(available),
        "used_size": bytes_size(used),
        "leader_count": 0,
        "leader_weight": 1,
        "leader_score": 0,
        "leader_size": 0,
        "region_count": 0,
        "region_weight": 1,
        "region_score": 0,
        "region_size": 0,
    }
    if start:
        status["start_ts"] = go_time(start)
    if last:
        status["last_heartbeat_ts"] = go_time(last)
    if start and last > start:
        status["uptime"] = go_duration(round(last - start, 6))
    return {"store": store, "status": status}


def stores_response(records: list[dict[str, Any]], now: float, thresholds: StoreThresholds) -> dict[str, Any]:
    """`{count, stores}` sorted by store id."""
    infos = [store_info(r, now, thresholds) for r in sorted(records, key=lambda r: int(r["id"]))]
    return {"count": len(infos), "stores": infos}


class StoreRegistry:
    """Store records in etcd (all calls bounded by `timeout`; every call needs quorum)."""

    def __init__(self, etcd: Etcd, timeout: float) -> None:
        self.etcd = etcd
        self.timeout = timeout

    def records(self) -> list[dict[str, Any]]:
        return [kv.json() for kv in self.etcd.get_prefix(STORE_PREFIX, timeout=self.timeout)]

    def register(self, beat: dict[str, Any], now: float) -> dict[str, Any]:
        """First heartbeat of an address: allocate the next store id (or return the record)."""
        address = str(beat["address"])
        key = STORE_PREFIX + address
        for _ in range(20):
            current = self.etcd.get(key, timeout=self.timeout)
            if current is not None:
                record: dict[str, Any] = current.json()
                return record
            counter = self.etcd.get(STORE_ID_KEY, timeout=self.timeout)
            next_id = (int(counter.text) if counter else 0) + 1
            guard = (
                Compare.mod_revision(STORE_ID_KEY, "=", counter.mod_revision)
                if counter
                else Compare.version(STORE_ID_KEY, "=", 0)
            )
            record = {"id": next_id, "address": address, "state_name": "Up", "first_heartbeat": now}
            record.update(_beat_fields(beat))
            record["last_heartbeat"] = now
            result = self.etcd.txn(
                [guard, Compare.version(key, "=", 0)],
                [Op.put(STORE_ID_KEY, str(next_id)), Op.put(key, json.dumps(record))],
                timeout=self.timeout,
            )
            if result.succeeded:
                self.etcd.create(BOOTSTRAP_KEY, str(now), timeout=self.timeout)
                return record
        raise RuntimeError(f"store registration for {address} kept conflicting")

    def save(self, record: dict[str, Any]) -> None:
        self.etcd.put(STORE_PREFIX + str(record["address"]), json.dumps(record), timeout=self.timeout)

    def bootstrap_time(self) -> float | None:
        kv = self.etcd.get(BOOTSTRAP_KEY, timeout=self.timeout)
        return float(kv.text) if kv else None


class NotLoaded(Exception):
    """This PD has not (yet) loaded the store records from etcd."""


class StoreBook:
    """The PD leader's in-memory view of the stores, as real PD keeps it.

    Heartbeats update memory only (real PD does not write each heartbeat to its storage),
    so a slow PD disk does not make stores look Disconnected; registration of a new store
    and the periodic persistence of records go to etcd.  A new leader loads the records
    and gives every store not already Down one grace period to heartbeat it.
    """

    def __init__(self, registry: StoreRegistry, thresholds: StoreThresholds) -> None:
        self.registry = registry
        self.thresholds = thresholds
        self._records: dict[str, dict[str, Any]] | None = None
        self._dirty: set[str] = set()
        self._bootstrap: float | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        with self._lock:
            return self._records is not None

    def load(self, now: float | None = None) -> None:
        """Read every record from etcd (needs quorum); raises EtcdError."""
        now = time.time() if now is None else now
        records = self.registry.records()
        boot = self.registry.bootstrap_time()
        loaded: dict[str, dict[str, Any]] = {}
        for record in records:
            age = now - float(record.get("last_heartbeat", 0.0))
            if age < self.thresholds.down_after:
                record["last_heartbeat"] = max(float(record.get("last_heartbeat", 0.0)), now)
            loaded[str(record["address"])] = record
        with self._lock:
            self._records, self._bootstrap, self._dirty = loaded, boot, set()

    def drop(self) -> None:
        with self._lock:
            self._records, self._dirty = None, set()

    def heartbeat(self, beat: dict[str, Any], now: float | None = None) -> int:
        """Record one heartbeat in memory; the first one of an address registers the store."""
        now = time.time() if now is None else now
        address = str(beat["address"])
        with self._lock:
            if self._records is None:
                raise NotLoaded("store records not loaded")
            record = self._records.get(address)
            if record is not None:
                record.update(_beat_fields(beat))
                record["last_heartbeat"] = now
                self._dirty.add(address)
                return int(record["id"])
        fresh = self.registry.register(beat, now)  # outside the lock: needs quorum
        fresh.update(_beat_fields(beat))
        fresh["last_heartbeat"] = now
        with self._lock:
            if self._records is None:
                raise NotLoaded("lost leadership while registering")
            self._records[address] = fresh
            self._dirty.add(address)
            if self._bootstrap is None:
                self._bootstrap = now
        return int(fresh["id"])

    def snapshot(self) -> tuple[list[dict[str, Any]], float | None]:
        """(copies of the records, bootstrap time); raises NotLoaded."""
        with self._lock:
            if self._records is None:
                raise NotLoaded("store records not loaded")
            return [dict(r) for r in self._records.values()], self._bootstrap

    def persist(self) -> int:
        """Write the records changed since the last call to etcd; returns how many."""
        with self._lock:
            if self._records is None:
                return 0
            dirty = [dict(self._records[a]) for a in sorted(self._dirty) if a in self._records]
            self._dirty = set()
        for index, record in enumerate(dirty):
            try:
                self.registry.save(record)
            except Exception:
                with self._lock:
                    self._dirty.update(str(r["address"]) for r in dirty[index:])
                raise
        return len(dirty)


def _beat_fields(beat: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("status_address", "version", "git_hash", "start_timestamp", "deploy_path",
                 "capacity", "available", "used_size", "labels"):
        if name in beat and beat[name] is not None:
            fields[name] = beat[name]
    return fields
