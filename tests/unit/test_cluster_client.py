"""TiDBClient failover and timeouts against tiny in-process MySQL-protocol servers.

The fake speaks just enough of the protocol for PyMySQL: handshake, OK, one-column
result sets, error packets, and a statement that never answers (to prove timeouts).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from loopback import closed_port

from pytest_tidb_ha.cluster.client import SQLError, TiDBClient, TiDBUnavailable


def _packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload


def _lenenc(data: bytes) -> bytes:
    return bytes([len(data)]) + data


_OK = b"\x00\x00\x00\x02\x00\x00\x00"
_EOF = b"\xfe\x00\x00\x02\x00"


class FakeTiDB:
    """Answers ``SELECT <word>`` with one column ``<word>`` = node name; ``HANG`` hangs;
    anything with ``BAD`` gets error 1105; everything else gets OK."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.statements: list[str] = []
        self.hangs = True  # False: statements with HANG are answered like any other
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _recv(conn: socket.socket) -> tuple[int, bytes] | None:
        head = b""
        while len(head) < 4:
            chunk = conn.recv(4 - len(head))
            if not chunk:
                return None
            head += chunk
        size = int.from_bytes(head[:3], "little")
        body = b""
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                return None
            body += chunk
        return head[3], body

    def _serve(self, conn: socket.socket) -> None:
        caps = 0x0001 | 0x0004 | 0x0008 | 0x0200 | 0x8000 | 0x00080000
        greeting = (b"\x0a5.7.25-TiDB-fake\x00" + struct.pack("<I", 1) + b"abcdefgh\x00"
                    + struct.pack("<H", caps & 0xFFFF) + b"\x21" + struct.pack("<H", 2)
                    + struct.pack("<H", caps >> 16) + b"\x15" + b"\x00" * 10
                    + b"abcdefghijkl\x00mysql_native_password\x00")
        with conn:
            conn.sendall(_packet(0, greeting))
            got = self._recv(conn)
            if got is None:
                return
            conn.sendall(_packet(got[0] + 1, _OK))
            while True:
                got = self._recv(conn)
                if got is None or got[1][:1] == b"\x01":  # closed or COM_QUIT
                    return
                sql = got[1][1:].decode()
                if not sql.startswith("SET NAMES"):  # PyMySQL's own session set-up
                    self.statements.append(sql)
                if "HANG" in sql and self.hangs:
                    time.sleep(30)
                    return
                if "BAD" in sql:
                    err = b"\xff" + struct.pack("<H", 1105) + b"#HY000" + b"bad statement"
                    conn.sendall(_packet(1, err))
                elif sql.upper().startswith("SELECT"):
                    col = sql.split()[1].encode()
                    coldef = (_lenenc(b"def") + _lenenc(b"") * 3 + _lenenc(col) + _lenenc(col)
                              + b"\x0c" + struct.pack("<HIBHB", 33, 64, 0xFD, 0, 0) + b"\x00\x00")
                    conn.sendall(_packet(1, b"\x01") + _packet(2, coldef) + _packet(3, _EOF)
                                 + _packet(4, _lenenc(self.name.encode())) + _packet(5, _EOF))
                else:
                    conn.sendall(_packet(1, _OK))


@pytest.fixture
def fakes() -> Iterator[dict[str, FakeTiDB]]:
    servers = {name: FakeTiDB(name) for name in ("tidb-0", "tidb-1")}
    yield servers
    for s in servers.values():
        s.close()


def client_for(endpoints: dict[str, int], **kw: Any) -> TiDBClient:
    kw.setdefault("connect_timeout", 1)
    kw.setdefault("read_timeout", 1)
    return TiDBClient({n: ("127.0.0.1", p) for n, p in endpoints.items()}, **kw)


def test_rows_are_dicts_by_column_name(fakes: dict[str, FakeTiDB]) -> None:
    client = client_for({"tidb-0": fakes["tidb-0"].port})
    assert client.query("SELECT who") == [{"who": "tidb-0"}]
    assert client.execute("CREATE DATABASE d") == 0


def test_connection_refused_fails_over_and_remembers_the_answering_node(
    fakes: dict[str, FakeTiDB]
) -> None:
    client = client_for({"tidb-0": closed_port(), "tidb-1": fakes["tidb-1"].port})
    assert client.query("SELECT who") == [{"who": "tidb-1"}]
    assert client._order(None)[0] == "tidb-1"  # next call goes straight to the live one
    assert client.answering() == ["tidb-1"]


def test_read_timeout_on_a_read_fails_over(fakes: dict[str, FakeTiDB]) -> None:
    fakes["tidb-1"].hangs = False
    client = client_for({"tidb-0": fakes["tidb-0"].port, "tidb-1": fakes["tidb-1"].port})
    began = time.monotonic()
    rows = client.query("SELECT HANG")  # tidb-0 does not answer within 1 s
    assert time.monotonic() - began < 5
    assert rows == [{"HANG": "tidb-1"}]
    assert fakes["tidb-0"].statements == ["SELECT HANG"]


def test_read_timeout_on_a_write_is_not_resent(fakes: dict[str, FakeTiDB]) -> None:
    fakes["tidb-1"].hangs = False
    client = client_for({"tidb-0": fakes["tidb-0"].port, "tidb-1": fakes["tidb-1"].port})
    with pytest.raises(SQLError) as info:
        client.execute("ALTER TABLE t ADD INDEX HANG (c)")
    assert info.value.code == 2013
    assert "may or may not have run" in info.value.message
    assert info.value.node == "tidb-0"
    assert fakes["tidb-1"].statements == []  # never a second ADD INDEX job


def test_idempotent_write_may_be_resent(fakes: dict[str, FakeTiDB]) -> None:
    fakes["tidb-1"].hangs = False
    client = client_for({"tidb-0": fakes["tidb-0"].port, "tidb-1": fakes["tidb-1"].port})
    client.execute("CREATE DATABASE IF NOT EXISTS HANG", idempotent=True)
    assert fakes["tidb-1"].statements == ["CREATE DATABASE IF NOT EXISTS HANG"]


def test_server_error_is_raised_with_code_and_node_without_failover(
    fakes: dict[str, FakeTiDB]
) -> None:
    client = client_for({"tidb-0": fakes["tidb-0"].port, "tidb-1": fakes["tidb-1"].port})
    with pytest.raises(SQLError) as info:
        client.query("SELECT BAD")
    assert not isinstance(info.value, TiDBUnavailable)
    assert (info.value.code, info.value.message, info.value.node) == (1105, "bad statement", "tidb-0")
    assert fakes["tidb-1"].statements == []


def test_pinned_node_does_not_fail_over(fakes: dict[str, FakeTiDB]) -> None:
    client = client_for({"tidb-0": closed_port(), "tidb-1": fakes["tidb-1"].port})
    with pytest.raises(TiDBUnavailable, match="tidb-0"):
        client.query("SELECT who", node="tidb-0")


def test_per_call_timeout_overrides_the_default(fakes: dict[str, FakeTiDB]) -> None:
    client = client_for({"tidb-0": fakes["tidb-0"].port}, read_timeout=20)
    began = time.monotonic()
    with pytest.raises(TiDBUnavailable):
        client.query("SELECT HANG", timeout=0.5)
    assert time.monotonic() - began < 3


def test_silent_node_at_handshake_fails_over(fakes: dict[str, FakeTiDB]) -> None:
    # Like a paused container behind docker-proxy: TCP is accepted, no greeting ever comes.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        client = client_for({"tidb-0": silent.getsockname()[1], "tidb-1": fakes["tidb-1"].port})
        began = time.monotonic()
        assert client.query("SELECT who") == [{"who": "tidb-1"}]
        assert time.monotonic() - began < 5
    finally:
        silent.close()


def test_abandoned_statement_returns_at_once_from_a_hung_read(fakes: dict[str, FakeTiDB]) -> None:
    """An ``ALTER TABLE`` blocked for an hour (a partitioned TiDB) is cut by shutting its
    socket down from another thread; without that the thread would sit out its 60 s read
    timeout."""
    from pytest_tidb_ha.jobs.statement import StatementThread

    client = TiDBClient({"tidb-0": ("127.0.0.1", fakes["tidb-0"].port)}, read_timeout=60)
    stmt = StatementThread(client.connect, "SELECT HANG", name="hung").start()
    deadline = time.monotonic() + 10
    while "SELECT HANG" not in fakes["tidb-0"].statements:
        assert time.monotonic() < deadline, "the statement never reached the server"
        time.sleep(0.01)
    assert not stmt.done
    # abandon() itself must not block either (closing a connection whose reader holds the
    # buffer lock would wait for the hung read): both must return long before the fake's
    # 30 s hang ends.
    cutter = threading.Thread(target=stmt.abandon, daemon=True)
    cutter.start()
    cutter.join(5)
    assert not cutter.is_alive(), "abandon() blocked behind the hung read"
    assert stmt.wait(5), "abandon() left the thread blocked in recv"
    assert stmt.error is not None
