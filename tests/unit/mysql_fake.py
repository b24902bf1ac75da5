"""A MySQL-protocol server on loopback for the workload driver's unit tests.

Real sockets and the real wire format, a scripted brain: ``handler(conn, sql)``
returns rows (a list of 1-tuples of str), ``None`` for OK, :data:`BLOCK` (never
answer: a partitioned node), :data:`CLOSE` (drop the connection), or raises
:class:`Fail` (an ERR packet). One thread per connection; :meth:`close` ends
them all.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable
from typing import Any

from pytest_tidb_ha.workload.target import Target

BLOCK = object()
CLOSE = object()
SALT = b"0123456789abcdefghij"


class Fail(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


def _native(password: bytes) -> bytes:
    if not password:
        return b""
    h1 = hashlib.sha1(password).digest()  # noqa: S324 - mysql_native_password is SHA1 by protocol
    h2 = hashlib.sha1(h1).digest()  # noqa: S324 - mysql_native_password is SHA1 by protocol
    return bytes(a ^ b for a, b in zip(h1, hashlib.sha1(SALT + h2).digest(), strict=True))  # noqa: S324 - as above


def _lenenc(b: bytes) -> bytes:
    assert len(b) < 251
    return bytes((len(b),)) + b


class Conn:
    """One client connection as the handler sees it."""

    def __init__(self, server: FakeMySQL, sock: socket.socket, index: int) -> None:
        self.server, self.sock, self.index = server, sock, index
        self.executed = 0
        self.db: str | None = None
        self.closed = threading.Event()

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def read_packet(self) -> tuple[int, bytes]:
        head = self._read(4)
        return head[3], self._read(int.from_bytes(head[:3], "little"))

    def send(self, seq: int, payload: bytes) -> None:
        self.sock.sendall(len(payload).to_bytes(3, "little") + bytes((seq & 0xFF,)) + payload)

    def ok(self, seq: int) -> None:
        self.send(seq, b"\x00\x00\x00\x02\x00\x00\x00")

    def err(self, seq: int, code: int, message: str) -> None:
        self.send(seq, b"\xff" + code.to_bytes(2, "little") + b"#HY000" + message.encode())

    def rows(self, rows: list[tuple[str, ...]]) -> None:
        seq = 1
        self.send(seq, b"\x01")
        coldef = (_lenenc(b"def") + _lenenc(b"db") + _lenenc(b"t") + _lenenc(b"t")
                  + _lenenc(b"c") + _lenenc(b"c") + b"\x0c" + (45).to_bytes(2, "little")
                  + (480).to_bytes(4, "little") + b"\xfe" + b"\x00\x00" + b"\x00" + b"\x00\x00")
        seq += 1
        self.send(seq, coldef)
        seq += 1
        self.send(seq, b"\xfe\x00\x00\x02\x00")
        for row in rows:
            seq += 1
            self.send(seq, b"".join(_lenenc(v.encode()) for v in row))
        self.send(seq + 1, b"\xfe\x00\x00\x02\x00")

    def serve(self) -> None:
        srv = self.server
        try:
            greeting = (b"\x0a8.0.11-fake\x00" + self.index.to_bytes(4, "little") + SALT[:8]
                        + b"\x00" + (0xF7FF).to_bytes(2, "little") + b"\x2d"
                        + (2).to_bytes(2, "little") + (0x81FF).to_bytes(2, "little")
                        + bytes((21,)) + bytes(10) + SALT[8:] + b"\x00"
                        + b"mysql_native_password\x00")
            if srv.greet:
                self.send(0, greeting)
            else:
                self.closed.wait()
                return
            seq, resp = self.read_packet()
            user_end = resp.index(b"\x00", 32)
            user = resp[32:user_end].decode()
            n = resp[user_end + 1]
            auth = resp[user_end + 2:user_end + 2 + n]
            rest = resp[user_end + 2 + n:]
            flags = int.from_bytes(resp[:4], "little")
            if flags & 0x8:
                self.db = rest.split(b"\x00", 1)[0].decode()
            with srv.lock:
                srv.logins.append((user, self.db))
            if srv.login_error is not None:
                self.err(seq + 1, *srv.login_error)
                return
            if auth != _native(srv.password.encode()):
                self.err(seq + 1, 1045, f"Access denied for user '{user}'")
                return
            self.ok(seq + 1)
            while True:
                seq, body = self.read_packet()
                if body[:1] == b"\x01":
                    return
                query = body[1:].decode()
                with srv.lock:
                    srv.statements.append(query)
                self.executed += 1
                try:
                    out = srv.handler(self, query) if srv.handler else None
                except Fail as exc:
                    self.err(1, exc.code, exc.message)
                    continue
                if out is BLOCK:
                    with contextlib.suppress(OSError):
                        while self.sock.recv(4096):
                            pass  # until the client goes away
                    return
                if out is CLOSE:
                    return
                if out is None:
                    self.ok(1)
                else:
                    self.rows(out)
        except (EOFError, OSError):
            pass
        finally:
            self.closed.set()
            with contextlib.suppress(OSError):
                self.sock.close()


class FakeMySQL:
    """``with FakeMySQL(handler) as srv: ... srv.target()``."""

    def __init__(self, handler: Callable[[Conn, str], Any] | None = None, *,
                 password: str = "", greet: bool = True,
                 login_error: tuple[int, str] | None = None) -> None:
        self.handler = handler
        self.password = password
        self.greet = greet
        self.login_error = login_error
        self.statements: list[str] = []
        self.logins: list[tuple[str, str | None]] = []
        self.conns: list[Conn] = []
        self.lock = threading.Lock()
        self._listen = socket.socket()
        self._listen.bind(("127.0.0.1", 0))
        self._listen.listen(64)
        self.port = self._listen.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept.start()

    def target(self, **kw: Any) -> Target:
        return Target((("127.0.0.1", self.port),), password=self.password, **kw)

    @property
    def connects(self) -> int:
        with self.lock:
            return len(self.conns)

    def count(self, prefix: str) -> int:
        with self.lock:
            return sum(1 for s in self.statements if s.startswith(prefix))

    def open_connections(self) -> int:
        with self.lock:
            return sum(1 for c in self.conns if not c.closed.is_set())

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._listen.accept()
            except OSError:
                return
            with self.lock:
                conn = Conn(self, sock, len(self.conns) + 1)
                self.conns.append(conn)
            t = threading.Thread(target=conn.serve, daemon=True)
            self._threads.append(t)
            t.start()

    def close(self) -> None:
        self._listen.close()
        for c in list(self.conns):
            c.closed.set()
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> FakeMySQL:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def refused_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
