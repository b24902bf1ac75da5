"""MySQL server protocol (HandshakeV10, protocol 41, mysql_native_password).

Enough of the wire protocol for pymysql and the mysql CLI to talk to the
stand-in unchanged: text result sets, OK/ERR/EOF packets, COM_QUERY, COM_PING,
COM_INIT_DB, COM_QUIT. One thread per connection, like TiDB's goroutine per
connection; a dead client never blocks anything else.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import socket
import struct
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from common.log import get_logger

from .sql import SQLError

log = get_logger("tidb.server")

CLIENT_LONG_PASSWORD = 0x1
CLIENT_FOUND_ROWS = 0x2
CLIENT_LONG_FLAG = 0x4
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_MULTI_STATEMENTS = 0x10000
CLIENT_MULTI_RESULTS = 0x20000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_CONNECT_ATTRS = 0x100000
CLIENT_PLUGIN_AUTH_LENENC = 0x200000

SERVER_CAPS = (
    CLIENT_LONG_PASSWORD
    | CLIENT_FOUND_ROWS
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC
)

STATUS_IN_TRANS = 0x1
STATUS_AUTOCOMMIT = 0x2

COM_QUIT, COM_INIT_DB, COM_QUERY, COM_PING = 0x01, 0x02, 0x03, 0x0E

# (mysql type code, charset, flags, length)
_TYPES: dict[str, tuple[int, int, int, int]] = {
    "int": (8, 63, 0x80 | 0x1000 * 0, 20),  # LONGLONG, binary, NUM_FLAG
    "str": (253, 46, 0, 1024),  # VAR_STRING utf8mb4_bin
    "datetime": (12, 63, 0x80, 26),  # DATETIME
    "decimal": (246, 63, 0x80, 65),  # NEWDECIMAL
    "double": (5, 63, 0x80, 22),  # DOUBLE
    "blob": (252, 63, 0x10 | 0x80, 65535),  # BLOB, binary
    "null": (6, 63, 0x80, 0),  # NULL
}


class ClosedError(Exception):
    pass


def lenenc_int(n: int) -> bytes:
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def lenenc_str(b: bytes) -> bytes:
    return lenenc_int(len(b)) + b


def text_value(v: Any) -> bytes | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v
    if isinstance(v, bool):
        return b"1" if v else b"0"
    if isinstance(v, _dt.datetime):
        s = v.strftime("%Y-%m-%d %H:%M:%S")
        if v.microsecond:
            s += f".{v.microsecond:06d}"
        return s.encode()
    if isinstance(v, Decimal):
        return format(v, "f").encode()
    return str(v).encode()


class Packets:
    """Framing (3-byte length + sequence id) over a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.seq = 0

    def _read_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ClosedError()
            buf += chunk
        return buf

    def read(self) -> bytes:
        payload = b""
        while True:
            header = self._read_exact(4)
            length = header[0] | header[1] << 8 | header[2] << 16
            self.seq = (header[3] + 1) & 0xFF
            payload += self._read_exact(length)
            if length < 0xFFFFFF:
                return payload

    def write(self, payload: bytes) -> None:
        out = b""
        while True:
            chunk, payload = payload[:0xFFFFFF], payload[0xFFFFFF:]
            out += struct.pack("<I", len(chunk))[:3] + bytes([self.seq]) + chunk
            self.seq = (self.seq + 1) & 0xFF
            if len(chunk) < 0xFFFFFF:
                break
        self.sock.sendall(out)


class Connection:
    """One client connection; ``run_query(text) -> Result`` is the executor hook."""

    def __init__(
        self,
        sock: socket.socket,
        conn_id: int,
        server_version: str,
        make_handler: Callable[[Connection], Any],
    ) -> None:
        self.sock = sock
        self.conn_id = conn_id
        self.server_version = server_version
        self.pk = Packets(sock)
        self.handler = make_handler(self)
        self.client_caps = 0
        self.shutting_down = threading.Event()  # the listener's: set once the server closes

    def in_txn(self) -> bool:
        """TiDB's ``InTxn``: an explicit transaction, or buffered writes not yet committed."""
        s = self.handler.session
        return bool(s.in_txn or s.buffer)

    def _closing(self) -> bool:
        # TiDB (pkg/server/conn.go Run): in shutdown mode a connection closes between
        # transactions, before it reads and again before it dispatches a command.
        return self.shutting_down.is_set() and not self.in_txn()

    # -- packets ------------------------------------------------------------------------
    def status_flags(self) -> int:
        s = self.handler.session
        flags = STATUS_AUTOCOMMIT if s.autocommit else 0
        if s.txn_open and (s.in_txn or s.buffer):
            flags |= STATUS_IN_TRANS
        return flags

    def send_ok(self, affected: int = 0, last_id: int = 0) -> None:
        self.pk.write(
            b"\x00"
            + lenenc_int(affected)
            + lenenc_int(last_id)
            + struct.pack("<HH", self.status_flags(), 0)
        )

    def send_err(self, code: int, message: str, state: str = "HY000") -> None:
        self.pk.write(
            b"\xff"
            + struct.pack("<H", code)
            + b"#"
            + state.encode()[:5].ljust(5, b"0")
            + message.encode(errors="replace")[:4000]
        )

    def send_eof(self) -> None:
        self.pk.write(b"\xfe" + struct.pack("<HH", 0, self.status_flags()))

    def send_result(self, columns: list[tuple[str, str]], rows: list[list[Any]]) -> None:
        self.pk.write(lenenc_int(len(columns)))
        for name, typ in columns:
            code, charset, flags, length = _TYPES.get(typ, _TYPES["str"])
            nm = name.encode()
            self.pk.write(
                lenenc_str(b"def")
                + lenenc_str(b"")
                + lenenc_str(b"")
                + lenenc_str(b"")
                + lenenc_str(nm)
                + lenenc_str(nm)
                + b"\x0c"
                + struct.pack("<HIBHB", charset, length, code, flags, 6 if typ == "datetime" else 0)
                + b"\x00\x00"
            )
        self.send_eof()
        for row in rows:
            out = b""
            for v in row:
                tv = text_value(v)
                out += b"\xfb" if tv is None else lenenc_str(tv)
            self.pk.write(out)
        self.send_eof()

    # -- lifecycle ----------------------------------------------------------------------
    def handshake(self) -> bool:
        salt = bytes(b % 94 + 33 for b in os.urandom(20))  # printable, no NUL
        payload = (
            b"\x0a"
            + self.server_version.encode()
            + b"\x00"
            + struct.pack("<I", self.conn_id)
            + salt[:8]
            + b"\x00"
            + struct.pack("<H", SERVER_CAPS & 0xFFFF)
            + bytes([46])
            + struct.pack("<H", STATUS_AUTOCOMMIT)
            + struct.pack("<H", SERVER_CAPS >> 16)
            + bytes([21])
            + b"\x00" * 10
            + salt[8:]
            + b"\x00"
            + b"mysql_native_password\x00"
        )
        self.pk.seq = 0
        self.pk.write(payload)
        resp = self.pk.read()
        if len(resp) < 32:
            self.send_err(1043, "Bad handshake", "08S01")
            return False
        caps = struct.unpack("<I", resp[:4])[0]
        self.client_caps = caps
        if caps & 0x800:  # CLIENT_SSL
            self.send_err(1105, "SSL is not supported by the stand-in", "08S01")
            return False
        pos = 32
        end = resp.index(b"\x00", pos)
        user = resp[pos:end].decode(errors="replace")
        pos = end + 1
        if caps & CLIENT_PLUGIN_AUTH_LENENC:
            n = resp[pos]
            pos += 1
            if n == 0xFC:
                n = struct.unpack("<H", resp[pos : pos + 2])[0]
                pos += 2
            auth = resp[pos : pos + n]
            pos += n
        elif caps & CLIENT_SECURE_CONNECTION:
            n = resp[pos]
            auth = resp[pos + 1 : pos + 1 + n]
            pos += 1 + n
        else:
            end = resp.index(b"\x00", pos)
            auth = resp[pos:end]
            pos = end + 1
        db = None
        if caps & CLIENT_CONNECT_WITH_DB and pos < len(resp):
            end = resp.find(b"\x00", pos)
            end = len(resp) if end < 0 else end
            db = resp[pos:end].decode(errors="replace") or None
        peer = self.sock.getpeername()[0] if self.sock else "%"
        if user != "root" or auth:
            self.send_err(
                1045,
                f"Access denied for user '{user}'@'{peer}' (using password: "
                f"{'YES' if auth else 'NO'})",
                "28000",
            )
            return False
        self.handler.session.user = user
        if db:
            try:
                self.handler.init_db(db)
            except SQLError as exc:
                self.send_err(exc.code, exc.message, exc.state)
                return False
        self.send_ok()
        return True

    def serve(self) -> None:
        try:
            if not self.handshake():
                return
            while True:
                if self._closing():
                    return
                data = self.pk.read()
                if not data or self._closing():
                    continue
                cmd, body = data[0], data[1:]
                if cmd == COM_QUIT:
                    return
                if cmd == COM_PING:
                    self.send_ok()
                    continue
                try:
                    if cmd == COM_INIT_DB:
                        self.handler.init_db(body.decode(errors="replace"))
                        self.send_ok()
                    elif cmd == COM_QUERY:
                        res = self.handler.query(body.decode(errors="replace"))
                        if res.columns is None:
                            self.send_ok(res.affected, res.last_insert_id)
                        else:
                            self.send_result(res.columns, res.rows)
                    else:
                        self.send_err(1047, "Unknown command", "08S01")
                except SQLError as exc:
                    self.send_err(exc.code, exc.message, exc.state)
                except Exception as exc:  # noqa: BLE001 - a bug must never kill the connection thread silently
                    log.error(
                        "unexpected error executing statement",
                        conn=self.conn_id,
                        error=repr(exc)[:500],
                    )
                    self.send_err(1105, f"{exc.__class__.__name__}: {exc}"[:500])
        except (ClosedError, OSError):
            return
        finally:
            try:
                self.handler.close()
            finally:
                with contextlib.suppress(OSError):
                    self.sock.close()


class Listener:
    """Accept loop on ``host:port``; one daemon thread per connection."""

    def __init__(
        self, host: str, port: int, server_version: str, make_handler: Callable[[Connection], Any]
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(256)
        self.server_version = server_version
        self.make_handler = make_handler
        self._next_id = 0
        self._lock = threading.Lock()
        self.connections = 0
        self._live: dict[int, Connection] = {}
        self.closed = threading.Event()

    def serve_forever(self) -> None:
        while not self.closed.is_set():
            try:
                client, _addr = self.sock.accept()
            except OSError:
                return
            if self.closed.is_set():
                client.close()
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._next_id += 1
                conn_id = self._next_id
            threading.Thread(
                target=self._run, args=(client, conn_id), name=f"conn-{conn_id}", daemon=True
            ).start()

    def _run(self, client: socket.socket, conn_id: int) -> None:
        conn = Connection(client, conn_id, self.server_version, self.make_handler)
        conn.shutting_down = self.closed
        with self._lock:
            self.connections += 1
            self._live[conn_id] = conn
        try:
            conn.serve()
        finally:
            with self._lock:
                self.connections -= 1
                self._live.pop(conn_id, None)

    def close(self) -> None:
        """Stop accepting (TiDB's ``Server.Close``: new clients are refused from now on)."""
        self.closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()

    def sessions(self) -> list[Any]:
        """The sessions of the open connections (their metadata locks, say)."""
        with self._lock:
            return [c.handler.session for c in self._live.values()]

    def in_txn(self) -> int:
        """How many open connections are inside a transaction now."""
        with self._lock:
            return sum(1 for c in self._live.values() if c.in_txn())

    def kill_all(self) -> None:
        """Close every client connection (TiDB's ``KillAllConnections`` after the drain)."""
        with self._lock:
            conns = list(self._live.values())
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
