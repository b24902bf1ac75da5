"""The TiKV role's storage: a multi-version key-value table in sqlite, fsync'd on every commit.

`PRAGMA synchronous=FULL` makes each batch wait for the disk, so an injected IO delay
slows writes down physically and a SIGKILL loses nothing that was acknowledged.  Keys are
strings (ordered bytewise as UTF-8); values are any JSON value, stored as JSON text.

Like TiKV's MVCC, a write adds a version (``[key, value, version]``; no version = 0) and a
read returns each key's newest version — or, with ``snapshot``, its newest version not
newer than it, so a statement reads one consistent state while others keep writing (TiDB
reads at its transaction's start timestamp). A request delayed by a partition that lands
after a newer write therefore never turns a replica back in time. Versions older than the
GC life time are collected, keeping each key's newest (TiKV's ``tidb_gc_life_time``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv (k TEXT NOT NULL, ver INTEGER NOT NULL, v TEXT NOT NULL,"
    " PRIMARY KEY (k, ver)) WITHOUT ROWID"
)
# sqlite returns the bare column ``v`` of the row that holds MAX(ver).
_NEWEST = "SELECT k, v, MAX(ver) FROM kv WHERE {where} GROUP BY k ORDER BY k {order}"


class KVStore:
    """Thread-safe ordered multi-version KV store; every method is one sqlite transaction."""

    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "standin-mvcc.sqlite3")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def batch_put(self, kvs: Iterable[Sequence[Any]]) -> int:
        """Add ``[key, value]`` or ``[key, value, version]`` items; returns how many."""
        rows = [(_key(item[0]), _version(item), json.dumps(item[1])) for item in kvs]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO kv (k, ver, v) VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def batch_get(self, keys: Iterable[Any], snapshot: int | None = None) -> list[list[Any]]:
        """``[key, value]`` of the newest version (at ``snapshot``) of each key that has one."""
        wanted = [_key(k) for k in keys]
        found: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                where = f"k IN ({','.join('?' * len(chunk))})"
                args: list[Any] = list(chunk)
                if snapshot is not None:
                    where += " AND ver <= ?"
                    args.append(int(snapshot))
                for k, v, _ver in self._db.execute(_NEWEST.format(where=where, order=""), args):
                    found[k] = json.loads(v)
        return [[k, found[k]] for k in wanted if k in found]

    def scan(self, start: str = "", end: str | None = None, limit: int = 0, reverse: bool = False,
             snapshot: int | None = None) -> list[list[Any]]:
        where = "k >= ?"
        args: list[Any] = [start or ""]
        if end:
            where += " AND k < ?"
            args.append(end)
        if snapshot is not None:
            where += " AND ver <= ?"
            args.append(int(snapshot))
        sql = _NEWEST.format(where=where, order="DESC" if reverse else "")
        if limit and limit > 0:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            return [[k, json.loads(v)] for k, v, _ver in self._db.execute(sql, args)]

    def batch_delete(self, keys: Iterable[Any]) -> int:
        """Remove every version of the keys (a physical delete, not a tombstone)."""
        rows = [(_key(k),) for k in keys]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                before = self._db.total_changes
                self._db.executemany("DELETE FROM kv WHERE k = ?", rows)
                deleted = self._db.total_changes - before
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return deleted

    def delete_range(self, start: str, end: str | None) -> int:
        with self._lock:
            if end:
                cursor = self._db.execute("DELETE FROM kv WHERE k >= ? AND k < ?", (start or "", end))
            else:
                cursor = self._db.execute("DELETE FROM kv WHERE k >= ?", (start or "",))
            return cursor.rowcount

    def gc(self, safe_point: int) -> int:
        """Drop versions older than ``safe_point`` that a newer version (also older than it)
        shadows: every snapshot from ``safe_point`` on reads the same. Returns how many."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM kv WHERE ver < ? AND EXISTS (SELECT 1 FROM kv AS newer "
                "WHERE newer.k = kv.k AND newer.ver > kv.ver AND newer.ver <= ?)",
                (safe_point, safe_point),
            )
            return cursor.rowcount

    def count_keys(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(DISTINCT k) FROM kv").fetchone()
        return int(count)

    def size(self) -> int:
        """Bytes on disk (database and write-ahead log)."""
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.path.getsize(self.path + suffix)
        return size

    def close(self) -> None:
        with self._lock:
            self._db.close()


def now_version() -> int:
    """A version for this moment (the TiDB role's writers use ``time.time_ns()``)."""
    return time.time_ns()


def _version(item: Sequence[Any]) -> int:
    if len(item) < 3 or item[2] is None:
        return 0
    version = int(item[2])
    if version < 0:
        raise ValueError(f"version must not be negative, got {version}")
    return version


def _key(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"keys must be strings, got {type(value).__name__}")
    return value
