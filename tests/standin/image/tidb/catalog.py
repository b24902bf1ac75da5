"""Schema and metadata kept in PD's etcd (prefix ``/standin/tidb/``).

Like TiDB's meta layer, every schema change bumps one global schema version in a
compare-and-swap transaction, and every TiDB reloads the schema when the version
moves; the DDL owner waits until every live TiDB has loaded a version before the
next schema state, which is what makes ``done → synced`` observable.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from common.etcd import Compare, Etcd, EtcdError, Op

PREFIX = "/standin/tidb/"


class Meta:
    """JSON documents under PREFIX with CAS helpers."""

    def __init__(self, etcd: Etcd) -> None:
        self.etcd = etcd

    @staticmethod
    def key(name: str) -> str:
        return name if name.startswith("/") else PREFIX + name

    def get(self, name: str) -> tuple[Any, int]:
        kv = self.etcd.get(self.key(name))
        if kv is None:
            return None, 0
        return json.loads(kv.value), kv.mod_revision

    def list(self, prefix: str) -> list[tuple[str, Any, int]]:
        out = []
        for kv in self.etcd.get_prefix(self.key(prefix)):
            try:
                out.append((kv.key_text, json.loads(kv.value), kv.mod_revision))
            except ValueError:
                continue
        return out

    def put(self, name: str, obj: Any, lease: int = 0) -> None:
        self.etcd.put(self.key(name), json.dumps(obj, separators=(",", ":")), lease=lease)

    def delete(self, name: str) -> None:
        self.etcd.delete(self.key(name))

    def cas(
        self,
        name: str,
        obj: Any,
        mod_rev: int,
        *,
        guards: Sequence[Compare] = (),
        extra: Sequence[Op] = (),
        puts: Mapping[str, Any] | None = None,
    ) -> bool:
        """Write ``obj`` if the key's mod revision is still ``mod_rev`` (0 = absent), and the
        documents of ``puts`` (name -> object) in the same transaction."""
        key = self.key(name)
        cmp = (
            [Compare.mod_revision(key, "=", mod_rev)] if mod_rev else [Compare.version(key, "=", 0)]
        )
        ops = (
            [Op.put(key, json.dumps(obj, separators=(",", ":")))]
            if obj is not None
            else [Op.delete(key)]
        )
        ops += [Op.put(self.key(n), json.dumps(o, separators=(",", ":")))
                for n, o in (puts or {}).items()]
        return self.etcd.txn(list(cmp) + list(guards), ops + list(extra)).succeeded

    def next_id(self, name: str = "global_id", n: int = 1) -> int:
        """Allocate ``n`` ids from a counter; returns the first (TiDB's GlobalID)."""
        for _ in range(200):
            cur, rev = self.get("ids/" + name)
            base = int(cur or 0)
            if self.cas("ids/" + name, base + n, rev):
                return base + 1
            time.sleep(0.01)
        raise EtcdError("etcdserver: too many conflicts allocating ids")


@dataclass
class Column:
    name: str
    kind: str
    type_text: str
    not_null: bool = False
    default: Any = None
    auto_inc: bool = False


@dataclass
class Index:
    id: int
    name: str
    columns: list[str]
    unique: bool = False
    primary: bool = False
    state: str = "public"


@dataclass
class Table:
    id: int
    db: str
    db_id: int
    name: str
    columns: list[Column]
    indexes: list[Index] = field(default_factory=list)
    pk_handle: str | None = None  # int primary key column used as the row handle

    def col_pos(self, name: str) -> int:
        lname = name.lower()
        for i, c in enumerate(self.columns):
            if c.name.lower() == lname:
                return i
        raise KeyError(name)

    def index(self, name: str) -> Index | None:
        for idx in self.indexes:
            if idx.name.lower() == name.lower():
                return idx
        return None

    def secondary(self) -> list[Index]:
        """Indexes stored as entries (the clustered int PK is the handle itself)."""
        return [i for i in self.indexes if not (i.primary and self.pk_handle)]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Table:
        return cls(
            id=d["id"],
            db=d["db"],
            db_id=d["db_id"],
            name=d["name"],
            columns=[Column(**c) for c in d["columns"]],
            indexes=[Index(**i) for i in d.get("indexes", [])],
            pk_handle=d.get("pk_handle"),
        )


@dataclass
class Schema:
    version: int = 0
    dbs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[tuple[str, str], Table] = field(default_factory=dict)

    def table(self, db: str, name: str) -> Table | None:
        return self.tables.get((db.lower(), name.lower()))

    def table_by_id(self, table_id: int) -> Table | None:
        for t in self.tables.values():
            if t.id == table_id:
                return t
        return None


def table_key(db: str, name: str) -> str:
    return f"schema/tables/{db.lower()}/{name.lower()}"


def load_schema(meta: Meta) -> Schema:
    version, _ = meta.get("schema/version")
    schema = Schema(version=int(version or 0))
    for _k, obj, _r in meta.list("schema/dbs/"):
        schema.dbs[obj["name"].lower()] = obj
    for _k, obj, _r in meta.list("schema/tables/"):
        t = Table.from_json(obj)
        schema.tables[(t.db.lower(), t.name.lower())] = t
    return schema


def commit_schema(
    meta: Meta, puts: dict[str, Any], deletes: Sequence[str] = (), guards: Sequence[Compare] = ()
) -> int | None:
    """Apply schema documents and bump the version atomically; None on a lost race."""
    cur, rev = meta.get("schema/version")
    version = int(cur or 0) + 1
    key = meta.key("schema/version")
    cmp = [Compare.mod_revision(key, "=", rev)] if rev else [Compare.version(key, "=", 0)]
    ops = [Op.put(key, json.dumps(version))]
    ops += [Op.put(meta.key(k), json.dumps(v, separators=(",", ":"))) for k, v in puts.items()]
    ops += [Op.delete(meta.key(k)) for k in deletes]
    if meta.etcd.txn(cmp + list(guards), ops).succeeded:
        return version
    return None


class SchemaCache:
    """This TiDB's loaded schema; reloaded when the global version moves.

    Writes run ``in_use()`` of the schema they derive index entries from; `drain` waits
    for the writes of older versions, so a TiDB reports a version only when no write
    computed under an older one is still in flight — what TiDB's schema lease and commit
    check guarantee (a transaction never commits across two schema states of its table).
    ``checked_at`` is when this TiDB last saw the global version (TiDB's schema validator).
    """

    def __init__(self, meta: Meta) -> None:
        self.meta = meta
        self._schema = Schema()
        self._lock = threading.Lock()
        self._writes = threading.Condition()
        self._inflight: Counter[int] = Counter()
        self.checked_at = 0.0

    @property
    def current(self) -> Schema:
        with self._lock:
            return self._schema

    def reload(self, force: bool = False) -> Schema:
        version, _ = self.meta.get("schema/version")
        if not force and int(version or 0) == self.current.version and self.current.version:
            self.checked_at = time.monotonic()
            return self.current
        schema = load_schema(self.meta)
        with self._lock:
            if schema.version >= self._schema.version:
                self._schema = schema
            schema = self._schema
        self.checked_at = time.monotonic()
        return schema

    @contextlib.contextmanager
    def in_use(self) -> Iterator[Schema]:
        """The current schema, counted as in use by one write until the block ends."""
        with self._writes:
            schema = self.current
            self._inflight[schema.version] += 1
        try:
            yield schema
        finally:
            with self._writes:
                self._inflight[schema.version] -= 1
                if not self._inflight[schema.version]:
                    del self._inflight[schema.version]
                self._writes.notify_all()

    def drain(self, version: int, timeout: float) -> bool:
        """Wait until no write that uses a schema older than ``version`` is in flight."""
        with self._writes:
            return self._writes.wait_for(
                lambda: not any(v < version for v in self._inflight), timeout
            )
