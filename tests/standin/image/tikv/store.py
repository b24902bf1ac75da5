"""The TiKV role's storage: an ordered key-value table in sqlite, fsync'd on every commit.

`PRAGMA synchronous=FULL` makes each batch wait for the disk, so an injected IO delay
slows writes down physically and a SIGKILL loses nothing that was acknowledged.  Keys are
strings (ordered bytewise as UTF-8); values are any JSON value, stored as JSON text.

A write may carry a version (``[key, value, version]``): the store keeps a key's newest
version and ignores an older one that arrives later, as a TiKV replica applies its raft log
in order and MVCC never goes back. Without it a request delayed by a partition (the kernel
still delivers what a client sent before it gave up) could land after a newer write and
turn this replica back in time, breaking the quorum reads of the TiDB role.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Any

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL,"
    " ver INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID"
)
# Newest version wins; an equal one replaces (the same write retried); version 0 = unversioned.
_UPSERT = (
    "INSERT INTO kv (k, v, ver) VALUES (?, ?, ?) ON CONFLICT(k) DO UPDATE"
    " SET v = excluded.v, ver = excluded.ver WHERE excluded.ver >= kv.ver OR excluded.ver = 0"
)


class KVStore:
    """Thread-safe ordered KV store; every method is one sqlite transaction."""

    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "standin-kv.sqlite3")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(kv)")]
        if "ver" not in columns:  # a data dir from before versions
            self._db.execute("ALTER TABLE kv ADD COLUMN ver INTEGER NOT NULL DEFAULT 0")

    def batch_put(self, kvs: Iterable[Sequence[Any]]) -> int:
        """Write ``[key, value]`` or ``[key, value, version]`` items; returns how many were sent."""
        rows = [(_key(item[0]), json.dumps(item[1]), _version(item)) for item in kvs]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(_UPSERT, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def batch_get(self, keys: Iterable[Any]) -> list[list[Any]]:
        wanted = [_key(k) for k in keys]
        found: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for k, v in self._db.execute(f"SELECT k, v FROM kv WHERE k IN ({marks})", chunk):
                    found[k] = json.loads(v)
        return [[k, found[k]] for k in wanted if k in found]

    def scan(self, start: str = "", end: str | None = None, limit: int = 0, reverse: bool = False) -> list[list[Any]]:
        sql = "SELECT k, v FROM kv WHERE k >= ?"
        args: list[Any] = [start or ""]
        if end:
            sql += " AND k < ?"
            args.append(end)
        sql += " ORDER BY k DESC" if reverse else " ORDER BY k"
        if limit and limit > 0:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            return [[k, json.loads(v)] for k, v in self._db.execute(sql, args)]

    def batch_delete(self, keys: Iterable[Any]) -> int:
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

    def stats(self) -> tuple[int, int]:
        """(number of keys, bytes on disk)."""
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM kv").fetchone()
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.path.getsize(self.path + suffix)
        return int(count), size

    def close(self) -> None:
        with self._lock:
            self._db.close()


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
