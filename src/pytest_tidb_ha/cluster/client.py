"""A SQL client that keeps answering while single TiDB nodes do not.

Faults partition, pause or kill TiDB nodes; watchers and workloads must keep reading
through any TiDB that still answers and must never hang. So every connection has
connect/read/write timeouts, and a connection error or timeout moves on to the next
TiDB. A statement that was *sent* and then lost its connection is only retried
elsewhere when it is idempotent (reads by default): re-sending ``ALTER TABLE ... ADD
INDEX`` after a read timeout would submit a second job.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pymysql
import pymysql.cursors

from ..redact import redact

log = logging.getLogger("pytest_tidb_ha.cluster")

# MySQL client-side error codes meaning "the server did not answer / connection gone".
CR_CONNECTION_ERROR = 2002
CR_CONN_HOST_ERROR = 2003
CR_SERVER_GONE_ERROR = 2006
CR_SERVER_LOST = 2013
CR_SERVER_LOST_EXTENDED = 2055
_CONNECTION_CODES = frozenset(
    {CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR, CR_SERVER_GONE_ERROR, CR_SERVER_LOST,
     CR_SERVER_LOST_EXTENDED}
)
_READ_ONLY_RE = re.compile(r"^\s*(?:/\*.*?\*/\s*)*(SELECT|SHOW|EXPLAIN|DESC|DESCRIBE|ADMIN\s+SHOW|ADMIN\s+CHECK|USE)\b",
                           re.IGNORECASE | re.DOTALL)


class SQLError(Exception):
    """A MySQL error from TiDB (``code`` < 2000) or the client (2003, 2013, ...)."""

    def __init__(self, code: int, message: str, node: str | None) -> None:
        self.code = code
        self.message = redact(message)
        self.node = node
        super().__init__(f"({code}) {self.message}" + (f" [on {node}]" if node else ""))


class TiDBUnavailable(SQLError):
    """No TiDB answered (every endpoint refused, timed out or lost the connection)."""


def is_read_only(sql: str) -> bool:
    """True for statements that are safe to re-send to another TiDB after a timeout."""
    return bool(_READ_ONLY_RE.match(sql))


def _error_code(exc: BaseException) -> int:
    if isinstance(exc, pymysql.err.MySQLError) and exc.args and isinstance(exc.args[0], int):
        return int(exc.args[0])
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return CR_SERVER_LOST
    return CR_CONN_HOST_ERROR


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
        return str(exc.args[1])
    return f"{type(exc).__name__}: {exc}"


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    return _error_code(exc) in _CONNECTION_CODES or isinstance(exc, pymysql.err.InterfaceError)


def _tcp_socket(host: str, port: int, timeout: float) -> socket.socket:
    """The connected socket pymysql would open itself (same options, same error), opened
    here so that its owner can shut it down from another thread (`TiDBConnection.shutdown`)."""
    try:
        sock = socket.create_connection((host, port), timeout)
    except OSError as exc:
        raise pymysql.err.OperationalError(
            CR_CONN_HOST_ERROR, f"Can't connect to MySQL server on {host!r} ({exc})") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


class TiDBConnection(pymysql.Connection):
    """A pymysql connection that can be cut from another thread.

    A statement blocked in ``recv`` for an hour (a partitioned ``ALTER TABLE``) is
    abandoned by shutting its socket down; pymysql offers no public handle on its socket,
    so this connection keeps the one it was given (pymysql's public ``connect(sock)``).
    """

    def connect(self, sock: socket.socket | None = None) -> None:
        self.tcp_socket = sock
        super().connect(sock)

    def shutdown(self) -> None:
        """Wake a thread blocked on this connection: its ``recv`` returns at once."""
        sock = getattr(self, "tcp_socket", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class TiDBClient:
    """SQL access to a set of TiDB endpoints ``{node: (host, port)}`` with failover.

    Thread-safe: each call opens its own connection (cheap on loopback), so the
    nemesis, job watcher and workload threads can share one client.
    """

    def __init__(
        self,
        endpoints: Mapping[str, tuple[str, int]],
        user: str = "root",
        password: str = "",
        connect_timeout: float = 3,
        read_timeout: float = 10,
        write_timeout: float = 10,
        *,
        database: str | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("TiDBClient needs at least one endpoint")
        self.endpoints: dict[str, tuple[str, int]] = dict(endpoints)
        self.user = user
        self.password = password
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.database = database
        self._lock = threading.Lock()
        self._preferred: str | None = None

    def __repr__(self) -> str:
        return f"TiDBClient({sorted(self.endpoints)}, user={self.user!r}, database={self.database!r})"

    def with_database(self, database: str | None) -> TiDBClient:
        """The same endpoints and timeouts, another default database."""
        return TiDBClient(
            self.endpoints, self.user, self.password, self.connect_timeout,
            self.read_timeout, self.write_timeout, database=database,
        )

    # -- connections -------------------------------------------------------------------
    def _order(self, node: str | None) -> list[str]:
        if node is not None:
            if node not in self.endpoints:
                raise KeyError(f"no TiDB endpoint named {node!r} (have {sorted(self.endpoints)})")
            return [node]
        names = sorted(self.endpoints)
        with self._lock:
            preferred = self._preferred
        if preferred is not None and preferred in names:
            names.remove(preferred)
            names.insert(0, preferred)
        return names

    def _open(self, node: str, database: str | None, read_timeout: float | None) -> TiDBConnection:
        host, port = self.endpoints[node]
        db = database if database is not None else self.database
        conn = TiDBConnection(
            host=host,
            port=port,
            user=self.user,
            password=self.password,
            database=db or None,
            connect_timeout=self.connect_timeout,
            read_timeout=read_timeout if read_timeout is not None else self.read_timeout,
            write_timeout=self.write_timeout,
            autocommit=True,
            charset="utf8mb4",
            cursorclass=pymysql.cursors.Cursor,
            defer_connect=True,
        )
        conn.connect(_tcp_socket(host, port, self.connect_timeout))
        return conn

    def connect(
        self, node: str | None = None, database: str | None = None, read_timeout: float | None = None
    ) -> TiDBConnection:
        """An autocommit connection to *node*, or to the first TiDB that answers.

        The caller owns (and closes) the connection; it does not fail over by itself.
        """
        failures: list[str] = []
        last: BaseException | None = None
        for name in self._order(node):
            try:
                conn = self._open(name, database, read_timeout)
            except Exception as exc:
                if not _is_connection_error(exc):
                    raise SQLError(_error_code(exc), _error_message(exc), name) from exc
                failures.append(f"{name}: {_error_message(exc)}")
                last = exc
                continue
            with self._lock:
                self._preferred = name
            return conn
        raise TiDBUnavailable(
            _error_code(last) if last else CR_CONN_HOST_ERROR,
            "no TiDB answered: " + "; ".join(failures),
            node,
        )

    # -- statements --------------------------------------------------------------------
    def _run(
        self,
        sql: str,
        args: Sequence[Any] | Mapping[str, Any] | None,
        *,
        node: str | None,
        database: str | None,
        timeout: float | None,
        idempotent: bool | None,
        fetch: bool,
    ) -> tuple[list[dict[str, Any]], int]:
        retry_sent = is_read_only(sql) if idempotent is None else idempotent
        failures: list[str] = []
        last_code = CR_CONN_HOST_ERROR
        for name in self._order(node):
            try:
                conn = self._open(name, database, timeout)
            except Exception as exc:
                if not _is_connection_error(exc):
                    raise SQLError(_error_code(exc), _error_message(exc), name) from exc
                failures.append(f"{name}: {_error_message(exc)}")
                last_code = _error_code(exc)
                continue
            with self._lock:
                self._preferred = name
            try:
                with conn.cursor() as cur:
                    affected = cur.execute(sql, args)
                    rows: list[dict[str, Any]] = []
                    if fetch and cur.description:
                        cols = [d[0] for d in cur.description]
                        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
                    return rows, int(affected or 0)
            except Exception as exc:
                code = _error_code(exc)
                if not _is_connection_error(exc):
                    raise SQLError(code, _error_message(exc), name) from exc
                if not retry_sent:
                    raise SQLError(
                        code,
                        f"{_error_message(exc)} (statement was sent; it may or may not have run, "
                        "not retried on another TiDB)",
                        name,
                    ) from exc
                failures.append(f"{name}: {_error_message(exc)}")
                last_code = code
                with self._lock:
                    if self._preferred == name:
                        self._preferred = None
            finally:
                # A dead connection cannot be closed cleanly; it is gone either way.
                with contextlib.suppress(Exception):
                    conn.close()
        raise TiDBUnavailable(last_code, "no TiDB answered: " + "; ".join(failures), node)

    def query(
        self,
        sql: str,
        args: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        node: str | None = None,
        database: str | None = None,
        timeout: float | None = None,
        idempotent: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Rows as dicts keyed by the column names TiDB returned."""
        rows, _ = self._run(sql, args, node=node, database=database, timeout=timeout,
                            idempotent=idempotent, fetch=True)
        return rows

    def execute(
        self,
        sql: str,
        args: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        node: str | None = None,
        database: str | None = None,
        timeout: float | None = None,
        idempotent: bool | None = None,
    ) -> int:
        """Affected row count."""
        _, affected = self._run(sql, args, node=node, database=database, timeout=timeout,
                                idempotent=idempotent, fetch=False)
        return affected

    def answering(self, timeout: float | None = None) -> list[str]:
        """The TiDB nodes that answer ``SELECT 1`` right now (each probed once)."""
        result = []
        for name in sorted(self.endpoints):
            try:
                self.query("SELECT 1", node=name, database="", timeout=timeout or self.read_timeout)
            except SQLError:
                continue
            result.append(name)
        return result
