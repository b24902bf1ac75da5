"""Statement execution for one session: user tables over TiKV, system tables, DDL hooks.

The plugin must not be able to tell this from TiDB through the shapes of
docs/sql-contract.md, so column names/types and error codes follow TiDB; any
other statement ends in a MySQL error, never in a hang.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import threading
import time
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from common.env import scaled
from common.etcd import EtcdError, EtcdUnavailable
from common.log import get_logger

from . import admin_check, codec, mdl, trx
from . import sql as q
from .catalog import Column, Index, Table, commit_schema, table_key
from .kv import TiKVTimeout
from .sql import SQLError

if TYPE_CHECKING:
    from .server import Node

log = get_logger("tidb.executor")


@dataclass
class Result:
    """A result set (``columns`` = [(name, type)]) or an OK packet (``columns`` None)."""

    columns: list[tuple[str, str]] | None = None
    rows: list[list[Any]] = field(default_factory=list)
    affected: int = 0
    last_insert_id: int = 0


@dataclass
class Session:
    conn_id: int
    user: str = "root"
    host: str = "%"
    db: str | None = None
    autocommit: bool = True
    in_txn: bool = False
    buffer: dict[str, Any] = field(default_factory=dict)  # key -> data (None = delete)
    vars: dict[str, Any] = field(default_factory=dict)
    #: metadata locks of the open transaction: table id -> (schema version, what it saw)
    mdl_held: dict[int, tuple[int, mdl.Fingerprint]] = field(default_factory=dict)
    #: when the open transaction began, and its statements (mysql.tidb_mdl_view shows both)
    txn_start: float = 0.0
    txn_sql: list[str] = field(default_factory=list)

    def end_txn(self) -> None:
        """The transaction ended: its metadata locks go with it."""
        self.in_txn = False
        self.mdl_held.clear()
        self.txn_start = 0.0
        self.txn_sql.clear()

    @property
    def txn_open(self) -> bool:
        return self.in_txn or not self.autocommit


#: Statements that commit the open transaction first: the DDL statements the stand-in
#: knows (``BEGIN`` and ``SET autocommit = 1`` commit in their own handlers).
IMPLICIT_COMMIT = frozenset(
    {"create_database", "drop_database", "drop_table", "add_index", "drop_index"}
)


def tikv_timeout() -> SQLError:
    return SQLError(9002, "TiKV server timeout")


def pd_timeout() -> SQLError:
    return SQLError(9001, "PD server timeout: ")


class Env(q.Env):
    def __init__(self, node: Node, session: Session) -> None:
        self.node = node
        self.session = session

    def var(self, name: str, scope: str) -> Any:
        if scope == "user":
            return self.session.vars.get("@" + name)
        return self.node.sysvar_value(name, scope, self.session)

    def func(self, name: str, args: list[Any]) -> Any:
        node = self.node
        if name == "TIDB_IS_DDL_OWNER":
            return 1 if node.is_owner() else 0
        if name == "TIDB_VERSION":
            return node.tidb_version_text()
        if name == "VERSION":
            return node.version_string
        if name == "DATABASE" or name == "SCHEMA":
            return self.session.db
        if name == "CONNECTION_ID":
            return self.session.conn_id
        if name == "TIDB_DECODE_SQL_DIGESTS" and args:
            return trx.decode_digests(args[0], args[1] if len(args) > 1 else None)
        if name in ("NOW", "CURRENT_TIMESTAMP", "SYSDATE"):
            now = _dt.datetime.now()  # NOW(fsp): fsp digits of the fraction, none by default
            fsp = int(args[0]) if args and args[0] is not None else 0
            cut = 10 ** (6 - fsp) if 0 <= fsp <= 6 else 10**6
            return now.replace(microsecond=now.microsecond - now.microsecond % cut)
        if name == "LAST_INSERT_ID":
            return self.session.vars.get("last_insert_id", 0)
        if name in ("USER", "CURRENT_USER", "SESSION_USER"):
            return f"{self.session.user}@{self.session.host}"
        return super().func(name, args)


def _value_type(v: Any) -> str:
    if isinstance(v, (bool, int)):
        return "int"
    if isinstance(v, Decimal):
        return "decimal"
    if isinstance(v, float):
        return "double"
    if isinstance(v, _dt.datetime):
        return "datetime"
    if isinstance(v, bytes):
        return "blob"
    if v is None:
        return "null"
    return "str"


class Executor:
    def __init__(self, node: Node, session: Session) -> None:
        self.node = node
        self.session = session
        self.env = Env(node, session)

    # ---------------------------------------------------------------------------------------
    def execute(self, text: str) -> Result:
        try:
            stmt = q.parse(text)
            result = self._dispatch(stmt, text)
            if self.session.mdl_held and len(self.session.txn_sql) < mdl.MAX_STATEMENTS:
                self.session.txn_sql.append(text)
            return result
        except TiKVTimeout:
            raise tikv_timeout() from None
        except EtcdUnavailable as exc:
            # client-go gives up after its PD backoff budget with ErrPDServerTimeout(""),
            # which TiDB renders as 9001 "PD server timeout: " (pkg/store/driver/error).
            log.warn("PD unavailable past the retry budget", error=str(exc)[:300])
            raise pd_timeout() from None
        except EtcdError as exc:  # an etcd answer (e.g. lease not found) surfaces as is
            raise SQLError(1105, exc.message) from None

    def _dispatch(self, stmt: Any, text: str) -> Result:
        if isinstance(stmt, q.CreateTable) or (
            isinstance(stmt, q.Simple) and stmt.kind in IMPLICIT_COMMIT
        ):
            # TiDB commits the session's open transaction before a DDL statement and leaves
            # it outside any transaction afterwards (pkg/executor/ddl.go DDLExec.Next:
            # sessiontxn.NewTxnInStmt, then SetInTxn(false)), like MySQL's implicit commit.
            self._commit()
        if isinstance(stmt, q.Select):
            return self.select(stmt)
        if isinstance(stmt, q.Insert):
            return self.insert(stmt)
        if isinstance(stmt, q.Update):
            return self.update(stmt)
        if isinstance(stmt, q.Delete):
            return self.delete(stmt)
        if isinstance(stmt, q.CreateTable):
            return self.create_table(stmt, text)
        if not isinstance(stmt, q.Simple):
            raise TypeError(f"the parser returned {stmt!r}")
        handler = getattr(self, "do_" + stmt.kind, None)
        if handler is None:
            raise SQLError(1105, f"statement {stmt.kind} is not supported by the stand-in")
        result: Result = handler(**stmt.args)
        return result

    # ---------------------------------------------------------------------------------------
    # session statements
    def do_use(self, db: str) -> Result:
        if (
            db.lower() not in self.node.schema.current.dbs
            and db.lower() not in self.node.schema.reload(force=True).dbs
            and db.lower() not in self.node.system_dbs
        ):
            raise SQLError(1049, f"Unknown database '{db}'", "42000")
        self.session.db = db
        return Result()

    def do_begin(self) -> Result:
        if self.session.txn_open:  # TiDB commits the open transaction: its locks go with it
            self._commit()
        self.session.in_txn = True
        self.session.txn_start = time.time()
        return Result()

    def do_commit(self) -> Result:
        self._commit()
        return Result()

    def do_rollback(self) -> Result:
        self.session.buffer.clear()
        self.session.end_txn()
        return Result()

    def _commit(self) -> None:
        buf = self.session.buffer
        self.session.buffer = {}
        self.session.end_txn()
        if buf:
            self._apply(list(buf.items()))

    def do_set(self, assigns: list[tuple[str, str, Any]]) -> Result:
        for scope, name, value in assigns:
            if scope == "user":
                self.session.vars["@" + name] = value
                continue
            if name == "autocommit":
                on = str(value).upper() in ("1", "ON", "TRUE")
                if on and not self.session.autocommit:  # commits the open transaction
                    self._commit()
                self.session.autocommit = on
                continue
            self.node.set_sysvar(name, value, scope, self.session)
        return Result()

    def do_create_database(self, db: str, if_not_exists: bool) -> Result:
        node = self.node
        for _ in range(50):
            schema = node.schema.reload(force=True)
            if db.lower() in schema.dbs or db.lower() in node.system_dbs:
                if if_not_exists:
                    return Result()
                raise SQLError(1007, f"Can't create database '{db}'; database exists")
            db_id = node.meta.next_id()
            job_id = node.meta.next_id()
            version = commit_schema(
                node.meta, {f"schema/dbs/{db.lower()}": {"id": db_id, "name": db}}
            )
            if version is not None:
                node.ddl.record_simple_job(
                    job_id, "create schema", db, "", db_id, 0, self._query_text()
                )
                self._synced(version)
                return Result()
        raise SQLError(1105, "schema changed too often, try again")

    def do_drop_database(self, db: str, if_exists: bool) -> Result:
        node = self.node
        for _ in range(50):
            schema = node.schema.reload(force=True)
            info = schema.dbs.get(db.lower())
            if info is None:
                if if_exists:
                    return Result()
                raise SQLError(1008, f"Can't drop database '{db}'; database doesn't exist")
            tables = [t for (d, _n), t in schema.tables.items() if d == db.lower()]
            deletes = [f"schema/dbs/{db.lower()}"] + [table_key(t.db, t.name) for t in tables]
            job_id = node.meta.next_id()
            version = commit_schema(node.meta, {}, deletes)
            if version is not None:
                for t in tables:
                    self._wipe_table_data(t)
                node.ddl.record_simple_job(
                    job_id, "drop schema", info["name"], "", info["id"], 0, self._query_text()
                )
                self._synced(version)
                if self.session.db and self.session.db.lower() == db.lower():
                    self.session.db = None
                return Result()
        raise SQLError(1105, "schema changed too often, try again")

    def _query_text(self) -> str:
        text: str = self.session.vars.get("\0query", "")
        return text

    def _db_of(self, ref: q.TableRef) -> str:
        db = ref.db or self.session.db
        if not db:
            raise SQLError(1046, "No database selected", "3D000")
        return db

    def create_table(self, stmt: q.CreateTable, text: str) -> Result:
        node = self.node
        db = self._db_of(stmt.table)
        for _ in range(50):
            schema = node.schema.reload(force=True)
            dbinfo = schema.dbs.get(db.lower())
            if dbinfo is None:
                raise SQLError(1049, f"Unknown database '{db}'", "42000")
            if schema.table(db, stmt.table.name) is not None:
                if stmt.if_not_exists:
                    return Result()
                raise SQLError(1050, f"Table '{db}.{stmt.table.name}' already exists", "42S01")
            cols = [
                Column(
                    c.name,
                    c.kind,
                    c.type_text,
                    c.not_null
                    or any(
                        i.primary and c.name.lower() in [x.lower() for x in i.columns]
                        for i in stmt.indexes
                    ),
                    c.default,
                    c.auto_inc,
                )
                for c in stmt.columns
            ]
            names = [c.name.lower() for c in cols]
            indexes: list[Index] = []
            pk_handle = None
            for n, idef in enumerate(stmt.indexes, start=1):
                for c in idef.columns:
                    if c.lower() not in names:
                        raise SQLError(1072, f"Key column '{c}' doesn't exist in table", "42000")
                indexes.append(Index(n, idef.name, list(idef.columns), idef.unique, idef.primary))
                if (
                    idef.primary
                    and len(idef.columns) == 1
                    and cols[names.index(idef.columns[0].lower())].kind == "int"
                ):
                    pk_handle = cols[names.index(idef.columns[0].lower())].name
            table_id = node.meta.next_id()
            table = Table(
                table_id, dbinfo["name"], dbinfo["id"], stmt.table.name, cols, indexes, pk_handle
            )
            job_id = node.meta.next_id()
            version = commit_schema(node.meta, {table_key(db, stmt.table.name): table.to_json()})
            if version is not None:
                node.ddl.record_simple_job(
                    job_id,
                    "create table",
                    dbinfo["name"],
                    stmt.table.name,
                    dbinfo["id"],
                    table_id,
                    text,
                )
                self._synced(version)
                return Result()
        raise SQLError(1105, "schema changed too often, try again")

    def do_drop_table(self, tables: list[q.TableRef], if_exists: bool) -> Result:
        node = self.node
        for ref in tables:
            db = self._db_of(ref)
            for _ in range(50):
                schema = node.schema.reload(force=True)
                t = schema.table(db, ref.name)
                if t is None:
                    if if_exists:
                        break
                    raise SQLError(1051, f"Unknown table '{db}.{ref.name}'", "42S02")
                node.ddl.wait_table_idle(t.id)  # DDL jobs on one table run one at a time
                job_id = node.meta.next_id()
                version = commit_schema(node.meta, {}, [table_key(db, ref.name)])
                if version is not None:
                    self._wipe_table_data(t)
                    node.ddl.record_simple_job(
                        job_id, "drop table", t.db, t.name, t.db_id, t.id, self._query_text()
                    )
                    self._synced(version)
                    break
        return Result()

    def _synced(self, version: int) -> None:
        """Load our own change, then wait until every live TiDB has it (TiDB's schema sync)."""
        self.node.adopt_schema(force=True)
        self.node.ddl.wait_synced(version)

    def _wipe_table_data(self, t: Table) -> None:
        """Best effort delete-range of a dropped table (TiDB's GC does it later too)."""
        try:
            keys = [k for k, _ in self.node.kv.scan(f"t{t.id:010d}_", f"t{t.id:010d}`")]
            for i in range(0, len(keys), 2000):
                self.node.kv.batch_delete(keys[i : i + 2000])
        except TiKVTimeout:
            pass

    def do_show_databases(self) -> Result:
        schema = self.node.schema.reload()
        names = sorted([d["name"] for d in schema.dbs.values()] + ["INFORMATION_SCHEMA", "mysql"])
        return Result([("Database", "str")], [[n] for n in names])

    def do_show_tables(self, db: str | None) -> Result:
        dbn = db or self._db_of(q.TableRef(None, ""))
        schema = self.node.schema.reload()
        names = sorted(t.name for (d, _), t in schema.tables.items() if d == dbn.lower())
        return Result([(f"Tables_in_{dbn}", "str")], [[n] for n in names])

    def do_show_warnings(self) -> Result:
        return Result([("Level", "str"), ("Code", "int"), ("Message", "str")], [])

    # ---------------------------------------------------------------------------------------
    # DDL / jobs (delegated)
    def do_add_index(self, table: q.TableRef, index: q.IndexDef, query: str) -> Result:
        db = self._db_of(table)
        self.node.ddl.add_index(db, table.name, index, query, self.session)
        return Result()

    def do_drop_index(self, table: q.TableRef, name: str, query: str) -> Result:
        db = self._db_of(table)
        self.node.ddl.drop_index(db, table.name, name, query, self.session)
        return Result()

    def do_admin_show_ddl(self) -> Result:
        return self.node.ddl.admin_show_ddl()

    def do_admin_show_ddl_jobs(self, n: int, where: Any) -> Result:
        res = self.node.ddl.admin_show_ddl_jobs(n)
        if where is not None and res.columns:
            names = [c[0].lower() for c in res.columns]
            res.rows = [
                r
                for r in res.rows
                if q.truthy(q.evaluate(where, dict(zip(names, r, strict=False)), self.env))
            ]
        return res

    def do_admin_cancel(self, ids: list[int]) -> Result:
        return self.node.ddl.cancel_jobs(ids)

    def do_admin_check(self, tables: list[q.TableRef]) -> Result:
        for ref in tables:
            admin_check.check_table(self.node, self._table(ref))
        return Result()

    def do_import_into(
        self,
        table: q.TableRef,
        source: str,
        format: str,
        options: dict[str, Any],
        query: str,
    ) -> Result:
        t = self._table(table)
        return self.node.importer.submit(t, source, format, options, query, self.session)

    def do_show_import_jobs(self) -> Result:
        return self.node.importer.show(None)

    def do_show_import_job(self, id: int) -> Result:
        return self.node.importer.show(id)

    def do_cancel_import(self, id: int) -> Result:
        self.node.importer.cancel(id)
        return Result()

    # ---------------------------------------------------------------------------------------
    # user tables
    def _table(self, ref: q.TableRef) -> Table:
        db = self._db_of(ref)
        t = self.node.schema.current.table(db, ref.name)
        if t is None:
            t = self.node.schema.reload(force=True).table(db, ref.name)
        if t is None:
            raise SQLError(1146, f"Table '{db}.{ref.name}' doesn't exist", "42S02")
        s = self.session
        # the sysvar is read only for a table new to the transaction: this runs per statement
        if (s.txn_open and t.id not in s.mdl_held
                and self.node.sysvar_on("tidb_enable_metadata_lock")):
            mdl.acquire(s.mdl_held, t, self.node.schema.current.version)
            s.txn_start = s.txn_start or time.time()  # autocommit=0: its first statement
        return t

    def _handle_range(self, t: Table, where: Any) -> tuple[str, Any] | None:
        """Pick point gets / a handle range from conjuncts on the int primary key."""
        if not t.pk_handle:
            return None
        pk = t.pk_handle.lower()
        for c in q.conjuncts(where):
            if (
                isinstance(c, q.BinOp)
                and c.op == "="
                and isinstance(c.left, q.Col)
                and c.left.name == pk
                and isinstance(c.right, q.Lit)
            ):
                return ("points", [c.right.value])
            if (
                isinstance(c, q.InList)
                and not c.negated
                and isinstance(c.expr, q.Col)
                and c.expr.name == pk
                and all(isinstance(i, q.Lit) for i in c.items)
            ):
                return ("points", [i.value for i in c.items])
            if (
                isinstance(c, q.Between)
                and not c.negated
                and isinstance(c.expr, q.Col)
                and c.expr.name == pk
                and isinstance(c.low, q.Lit)
                and isinstance(c.high, q.Lit)
            ):
                return ("range", (c.low.value, c.high.value))
        return None

    def _rows(
        self, t: Table, where: Any, snapshot: int | None = None
    ) -> list[tuple[int, list[Any]]]:
        """(handle, values) of rows matching ``where`` (with this session's txn buffer), the
        newest or as of ``snapshot``."""
        hr = self._handle_range(t, where)
        found: dict[int, list[Any]] = {}
        kv = self.node.kv
        if hr and hr[0] == "points":
            handles = []
            for v in hr[1]:
                try:
                    handles.append(int(q.to_number(v)))
                except (TypeError, ValueError):
                    continue
            keys = [codec.row_key(t.id, h) for h in handles]
            got = kv.batch_get(keys, snapshot)
            for k, d in got.items():
                found[codec.handle_of_row_key(k)] = d
            prefix_keys = set(keys)
        else:
            if hr:
                lo, hi = int(q.to_number(hr[1][0])), int(q.to_number(hr[1][1]))
                start, end = codec.row_key(t.id, lo), codec.row_key(t.id, hi + 1)
            else:
                start = codec.row_prefix(t.id)
                end = codec.prefix_end(start)
            for k, d in kv.scan(start, end, snapshot=snapshot):
                found[codec.handle_of_row_key(k)] = d
            prefix_keys = None
        for k, d in self.session.buffer.items():
            if not k.startswith(codec.row_prefix(t.id)):
                continue
            if prefix_keys is not None and k not in prefix_keys:
                continue
            h = codec.handle_of_row_key(k)
            if d is None:
                found.pop(h, None)
            else:
                found[h] = d
        names = [c.name.lower() for c in t.columns]
        out = []
        for h in sorted(found):
            vals = found[h]
            if where is None or q.truthy(
                q.evaluate(where, dict(zip(names, vals, strict=False)), self.env)
            ):
                out.append((h, vals))
        return out

    def _write(self, items: list[tuple[str, Any]]) -> None:
        """Row changes (``row key -> new values | None``): buffered in a txn, else applied."""
        if self.session.txn_open:
            self.session.buffer.update(items)
        else:
            self._apply(items)

    def _apply(self, items: list[tuple[str, Any]]) -> None:
        """Write rows and derive index entries from the row each change really replaces.

        Index deltas are computed at commit against the committed row (under this
        TiDB's row locks), so concurrent transactions on one row of this TiDB can lose an
        update but never leave a stale or missing index entry. A commit that did not reach
        a quorum is rolled back (`_roll_back`) before its rows are unlocked.
        """
        if not items:
            return
        node = self.node
        if node.schema_expired():
            raise SQLError(
                8027,
                "Information schema is out of date: schema failed to update in 1 lease, "
                "please make sure TiDB can connect to TiKV",
            )
        stripes = sorted({zlib.crc32(k.encode()) % len(node.row_locks) for k, _ in items})
        deadline = time.monotonic() + max(scaled(50.0), node.kv.timeout)
        with contextlib.ExitStack() as held:
            for n in stripes:  # ascending order: no lock-order deadlock between commits
                lock = node.row_locks[n]
                if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    # TiDB's pessimistic lock wait (innodb_lock_wait_timeout, 50 s)
                    raise SQLError(1205, "Lock wait timeout exceeded; try restarting transaction")
                held.callback(lock.release)
            schema = held.enter_context(node.schema.in_use())
            current = node.kv.batch_get([k for k, _ in items])
            writes: list[tuple[str, Any]] = []
            undo: list[tuple[str, Any]] = []
            for key, new in items:
                old = current.get(key)
                writes.append((key, new))
                undo.append((key, old))
                t = schema.table_by_id(int(key[1:11]))
                if t is not None:
                    h = codec.handle_of_row_key(key)
                    writes.extend(self._index_writes(t, h, old, new))
                    undo.extend(self._index_writes(t, h, new, old))
            try:
                node.kv.batch_put(writes)
            except TiKVTimeout:
                # Some replicas may hold this write although it failed: keep the rows locked
                # until the rollback reached a quorum (TiKV keeps a failed prewrite's locks
                # until they are resolved), so no later commit reads around it.
                pending = held.pop_all()
                threading.Thread(
                    target=_roll_back, args=(node, undo, pending), name="rollback", daemon=True
                ).start()
                raise

    def _index_writes(
        self, t: Table, handle: int, old: list[Any] | None, new: list[Any] | None
    ) -> list[tuple[str, Any]]:
        """Index entry changes for a row change, honouring each index's schema state."""
        out: list[tuple[str, Any]] = []
        for idx in t.secondary():
            if idx.state == "none":
                continue
            pos = [t.col_pos(c) for c in idx.columns]
            ok = [old[p] for p in pos] if old is not None else None
            nk = [new[p] for p in pos] if new is not None else None
            if ok is not None and ok == nk:
                continue
            if ok is not None:
                out.append((codec.index_key(t.id, idx.id, ok, handle), None))
            if nk is not None and idx.state != "delete only":
                out.append((codec.index_key(t.id, idx.id, nk, handle), 1))
        return out

    def insert(self, stmt: q.Insert) -> Result:
        t = self._table(stmt.table)
        names = [c.name.lower() for c in t.columns]
        cols = list(stmt.columns) if stmt.columns else names
        for c in cols:
            if c not in names:
                raise SQLError(1054, f"Unknown column '{c}' in 'field list'", "42S22")
        rows: list[tuple[int, list[Any]]] = []
        need_auto = 0
        prepared: list[list[Any]] = []
        for raw in stmt.rows:
            if len(raw) != len(cols):
                raise SQLError(
                    1136,
                    f"Column count doesn't match value count at row {len(prepared) + 1}",
                    "21S01",
                )
            vals: list[Any] = [c.default for c in t.columns]
            given = set()
            for c, e in zip(cols, raw, strict=False):
                vals[names.index(c)] = self._coerce(
                    t.columns[names.index(c)], q.evaluate(e, {}, self.env)
                )
                given.add(c)
            for i, col in enumerate(t.columns):
                if col.auto_inc and (col.name.lower() not in given or vals[i] in (None, 0)):
                    vals[i] = None
                    need_auto += 1
                elif vals[i] is None and col.not_null and not col.auto_inc:
                    raise SQLError(
                        1364 if col.name.lower() not in given else 1048,
                        f"Column '{col.name}' cannot be null"
                        if col.name.lower() in given
                        else f"Field '{col.name}' doesn't have a default value",
                        "23000",
                    )
            prepared.append(vals)
        last_id = 0
        if need_auto or not t.pk_handle:
            base = self.node.meta.next_id(
                f"autoid/{t.id}", need_auto + (0 if t.pk_handle else len(prepared))
            )
        else:
            base = 0
        nxt = base
        for vals in prepared:
            for i, col in enumerate(t.columns):
                if col.auto_inc and vals[i] is None:
                    vals[i] = nxt
                    last_id = last_id or nxt
                    nxt += 1
            if t.pk_handle:
                handle = int(vals[t.col_pos(t.pk_handle)])
            else:
                handle = nxt
                nxt += 1
            rows.append((handle, vals))
        keys = [codec.row_key(t.id, h) for h, _ in rows]
        if len(set(keys)) != len(keys):
            dup = next(h for h in [h for h, _ in rows] if [x for x, _ in rows].count(h) > 1)
            raise SQLError(1062, f"Duplicate entry '{dup}' for key '{t.name}.PRIMARY'", "23000")
        existing = self.node.kv.batch_get(keys) if t.pk_handle else {}
        for k in keys:
            if k in self.session.buffer:
                if self.session.buffer[k] is None:
                    existing.pop(k, None)
                else:
                    existing[k] = self.session.buffer[k]
        writes: list[tuple[str, Any]] = []
        affected = 0
        for (h, vals), k in zip(rows, keys, strict=False):
            if k in existing:
                if stmt.ignore:
                    continue
                raise SQLError(1062, f"Duplicate entry '{h}' for key '{t.name}.PRIMARY'", "23000")
            writes.append((k, vals))
            affected += 1
        self._write(writes)
        if last_id:
            self.session.vars["last_insert_id"] = last_id
        return Result(affected=affected, last_insert_id=last_id)

    @staticmethod
    def _coerce(col: Column, v: Any) -> Any:
        if v is None:
            return None
        if col.kind == "int":
            try:
                return int(q.to_number(v))
            except (TypeError, ValueError, ArithmeticError):
                raise SQLError(
                    1366, f"Incorrect integer value: '{v}' for column '{col.name}'"
                ) from None
        if col.kind == "float":
            return float(q.to_number(v))
        if isinstance(v, Decimal):
            return str(v)
        return str(v) if not isinstance(v, str) else v

    def update(self, stmt: q.Update) -> Result:
        t = self._table(stmt.table)
        names = [c.name.lower() for c in t.columns]
        for c, _ in stmt.sets:
            if c not in names:
                raise SQLError(1054, f"Unknown column '{c}' in 'field list'", "42S22")
            if t.pk_handle and c == t.pk_handle.lower():
                raise SQLError(1105, "updating the primary key is not supported by the stand-in")
        writes: list[tuple[str, Any]] = []
        changed = 0
        for h, vals in self._rows(t, stmt.where):
            row = dict(zip(names, vals, strict=False))
            new = list(vals)
            for c, e in stmt.sets:
                new[names.index(c)] = self._coerce(
                    t.columns[names.index(c)], q.evaluate(e, row, self.env)
                )
            if new == vals:
                continue
            changed += 1
            writes.append((codec.row_key(t.id, h), new))
        self._write(writes)
        return Result(affected=changed)

    def delete(self, stmt: q.Delete) -> Result:
        t = self._table(stmt.table)
        writes: list[tuple[str, Any]] = []
        rows = self._rows(t, stmt.where)
        for h, _vals in rows:
            writes.append((codec.row_key(t.id, h), None))
        self._write(writes)
        return Result(affected=len(rows))

    # ---------------------------------------------------------------------------------------
    # SELECT
    def select(self, stmt: q.Select) -> Result:
        if stmt.table is None:
            return self._project(stmt, [{}], None)
        ref = stmt.table
        db = (ref.db or self.session.db or "").lower()
        if db in self.node.system_dbs:
            columns, rows = self.node.system_table(db, ref.name.lower(), self.session)
            names = [c[0] for c in columns]
            dict_rows = [dict(zip([n.lower() for n in names], r, strict=False)) for r in rows]
            if stmt.where is not None:
                dict_rows = [r for r in dict_rows if q.truthy(q.evaluate(stmt.where, r, self.env))]
            return self._project(stmt, dict_rows, columns)
        t = self._table(ref)
        tcols = [
            (c.name, {"int": "int", "float": "double", "datetime": "datetime"}.get(c.kind, "str"))
            for c in t.columns
        ]
        # A SELECT reads one state of the table, however long its pages take (TiDB reads at
        # its start timestamp); DML reads the newest state under its row locks instead.
        snapshot = self.node.kv.snapshot()
        if ref.hint:
            idx = t.index(ref.hint_index or "")
            if idx is None or idx.state != "public":
                raise SQLError(
                    1176, f"Key '{ref.hint_index}' doesn't exist in table '{t.name}'", "42000"
                )
            if (
                ref.hint in ("USE", "FORCE")
                and self._is_count_star(stmt)
                and stmt.where is None
                and not (idx.primary and t.pk_handle)
            ):
                start = codec.index_prefix(t.id, idx.id)
                n = len(self.node.kv.scan(start, codec.prefix_end(start), snapshot=snapshot))
                return Result([(stmt.items[0].name, "int")], [[n]])
        names = [c.name.lower() for c in t.columns]
        dict_rows = [
            dict(zip(names, vals, strict=False))
            for _h, vals in self._rows(t, stmt.where, snapshot=snapshot)
        ]
        return self._project(stmt, dict_rows, tcols)

    @staticmethod
    def _is_count_star(stmt: q.Select) -> bool:
        return (
            len(stmt.items) == 1
            and isinstance(stmt.items[0].expr, q.Func)
            and stmt.items[0].expr.name == "COUNT"
            and stmt.items[0].expr.star
            and not stmt.group_by
        )

    def _project(
        self, stmt: q.Select, rows: list[dict[str, Any]], columns: list[tuple[str, str]] | None
    ) -> Result:
        env = self.env
        items: list[q.SelectItem] = []
        for it in stmt.items:
            if it.expr is None:
                if columns is None:
                    raise SQLError(1096, "No tables used")
                items.extend(q.SelectItem(q.Col(n.lower()), n) for n, _ in columns)
            else:
                items.append(it)
        col_types = {n.lower(): t for n, t in (columns or [])}
        aggs: list[q.Func] = []
        for it in items:
            q.collect_aggregates(it.expr, aggs)
        for e, _d in stmt.order_by:
            q.collect_aggregates(e, aggs)
        if aggs or stmt.group_by:
            groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
            for r in rows:
                key = tuple(q.evaluate(g, r, env) for g in stmt.group_by)
                groups.setdefault(key, []).append(r)
            if not groups and not stmt.group_by:
                groups[()] = []
            grouped = []
            for members in groups.values():
                base = dict(members[0]) if members else {}
                for f in aggs:
                    base["\0agg:" + repr(f)] = q.aggregate(f, members, env)
                grouped.append(base)
            rows = grouped
        out_rows = []
        for r in rows:
            vals = [q.evaluate(it.expr, r, env) for it in items]
            out_rows.append((vals, r))
        if stmt.distinct:
            seen = set()
            uniq = []
            for vals, r in out_rows:
                key = tuple(str(v) for v in vals)
                if key not in seen:
                    seen.add(key)
                    uniq.append((vals, r))
            out_rows = uniq
        if stmt.order_by:
            alias = {it.name.lower(): it.expr for it in items}
            for e, desc in reversed(stmt.order_by):
                if (
                    isinstance(e, q.Col)
                    and e.name not in (rows[0] if rows else {})
                    and e.name in alias
                ):
                    e = alias[e.name]
                if isinstance(e, q.Lit) and isinstance(e.value, int):
                    pos = e.value - 1
                    keyf = _sort_key_pos(pos)
                else:
                    keyf = _sort_key_expr(e, env)
                out_rows.sort(key=keyf, reverse=desc)
        if stmt.offset:
            out_rows = out_rows[stmt.offset :]
        if stmt.limit is not None:
            out_rows = out_rows[: stmt.limit]
        result_rows = [vals for vals, _ in out_rows]
        types = []
        for i, it in enumerate(items):
            t = None
            if isinstance(it.expr, q.Col) and it.expr.name in col_types:
                t = col_types[it.expr.name]
            elif isinstance(it.expr, q.Func) and it.expr.name == "COUNT":
                t = "int"
            elif isinstance(it.expr, q.Func) and it.expr.name in ("SUM", "AVG"):
                t = "decimal"
            elif isinstance(it.expr, q.Cast):
                t = "str" if it.expr.to in ("CHAR", "VARCHAR") else "int"
            if t is None:
                seen_types = {_value_type(r[i]) for r in result_rows if r[i] is not None}
                t = seen_types.pop() if len(seen_types) == 1 else ("str" if seen_types else "null")
                if t == "null" and isinstance(it.expr, q.Lit):
                    t = "null"
            types.append((it.name, t))
        return Result(types, result_rows)


def _roll_back(node: Node, undo: list[tuple[str, Any]], held: contextlib.ExitStack) -> None:
    """Write the pre-images of a failed commit at a newer version until a quorum has them.

    Without this a minority replica keeps the failed write, newer than everything around
    it: a later commit that read the row from the other replicas leaves it standing (e.g. a
    tombstone of the index entry of the row's value), and the index loses an entry.
    """
    version = time.time_ns()
    with held:
        while True:
            try:
                node.kv.batch_put(undo, version=version)
            except TiKVTimeout as exc:
                log.warn("rolling back a failed commit, retrying", error=exc.detail[:200])
                time.sleep(scaled(0.5, 0.1))
                continue
            log.info("rolled back a failed commit", keys=len(undo))
            return


def _sort_key_pos(pos: int) -> Any:
    def key(item: tuple[list[Any], dict[str, Any]]) -> Any:
        v = item[0][pos]
        return (v is not None, _orderable(v))

    return key


def _sort_key_expr(e: Any, env: q.Env) -> Any:
    def key(item: tuple[list[Any], dict[str, Any]]) -> Any:
        v = q.evaluate(e, item[1], env)
        return (v is not None, _orderable(v))

    return key


def _orderable(v: Any) -> Any:
    if v is None:
        return (0, 0)
    if isinstance(v, (int, float, Decimal)):
        return (1, v)
    if isinstance(v, _dt.datetime):
        return (2, v.timestamp())
    if isinstance(v, bytes):
        return (3, v.decode(errors="replace"))
    return (3, str(v))
