"""Run one blocking statement (ALTER TABLE / IMPORT INTO) on its own connection.

``ALTER TABLE ... ADD INDEX`` and a non-detached ``IMPORT INTO`` block until
the job ends, possibly for an hour, and a partition can freeze the socket
forever. So the statement gets its own connection, its own named daemon
thread and a long read timeout; the watcher -- not this thread -- decides the
verdict. The thread is *abandoned* (its socket shut down) when the test is
over; its client error, if any, is part of the verdict.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..redact import redact
from .catalog import ErrorInfo

log = logging.getLogger("pytest_tidb_ha.jobs")


def _error_info(exc: BaseException) -> ErrorInfo:
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None)
    if code is None and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]
        message = str(exc.args[1]) if len(exc.args) > 1 else ""
    if message is None:
        message = f"{type(exc).__name__}: {exc}"
    return ErrorInfo(int(code) if code is not None else None, redact(str(message)))


def _session_id(cur: Any) -> int | None:
    """``CONNECTION_ID()`` (the handshake's thread id is TiDB's id cut to 32 bits); None
    when the server does not answer it -- the statement then meets the same failure."""
    try:
        cur.execute("SELECT CONNECTION_ID()")
        row = cur.fetchone()  # the client's cursors give tuples
        return int(row[0]) if row else None
    except Exception:  # noqa: BLE001 - the statement itself reports what is wrong
        return None


class StatementThread:
    """One statement in flight. ``connect`` returns a DB-API connection (pymysql)."""

    def __init__(self, connect: Callable[[], Any], sql: str, *, name: str) -> None:
        self._connect = connect
        self.sql = sql
        self.name = name
        self._conn: Any = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self.rows: list[dict[str, Any]] = []
        self.error: ErrorInfo | None = None
        self.sent_at: float | None = None  # time.monotonic()
        self.finished_at: float | None = None
        self.node: str | None = None
        #: the server's id of the statement's session (diagnostics: not a suspect of its own)
        self.session_id: int | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def again(self, suffix: str) -> StatementThread:
        """A fresh, unstarted copy (same connection factory and SQL) for a resubmission."""
        return StatementThread(self._connect, self.sql, name=f"{self.name}-{suffix}")

    def start(self) -> StatementThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            conn = self._connect()
            with self._lock:
                self._conn = conn
                if self._abandoned:
                    raise ConnectionAbortedError("abandoned before sending")
            with conn.cursor() as cur:
                self.session_id = _session_id(cur)
                self.sent_at = time.monotonic()
                cur.execute(self.sql)
                if cur.description:
                    cols = [d[0] for d in cur.description]
                    self.rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        except BaseException as exc:  # noqa: BLE001 - the error is the result
            self.error = _error_info(exc)
            if not self._abandoned:
                log.info("%s: statement returned %s", self.name, self.error)
        finally:
            self.finished_at = time.monotonic()
            self._close()
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def _close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is None:
            return
        shutdown = getattr(conn, "shutdown", None)  # TiDBConnection: cut a blocked recv
        if callable(shutdown):
            with contextlib.suppress(OSError):
                shutdown()
        with contextlib.suppress(Exception):
            conn.close()

    def abandon(self) -> None:
        """Stop waiting for the statement: shut its socket down, never join.

        The server-side job is unaffected (a DDL job keeps running when its
        client goes away); only our blocked ``recv`` returns.
        """
        self._abandoned = True
        self._close()
