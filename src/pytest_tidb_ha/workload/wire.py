"""The MySQL client protocol, as much of it as the Python driver's hot path needs (pure).

Why not pymysql here: pymysql turns every row of a result set into Python
objects (a packet object, a decoded string per column); an ``oltp_read_write``
transaction reads ~370 rows, so the client spent more CPU parsing rows than
sending statements (``bench/workload.py``). sysbench's C client reads the rows
into a buffer and never converts them; :class:`Response` does the same — it
walks the packet headers of the whole result set and counts the rows.

No I/O here: the driver (:mod:`.driver_python`) owns the sockets and feeds
bytes in. What is supported is what TiDB, MySQL and MariaDB need for a plain
connection: protocol 41, ``mysql_native_password`` and the fast path of
``caching_sha2_password`` (its full authentication needs TLS or RSA, which
this client does not do: :class:`ServerError` 2061 says so).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

CLIENT_LONG_PASSWORD = 0x1
CLIENT_LONG_FLAG = 0x4
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
#: What we ask for; deliberately without CLIENT_DEPRECATE_EOF (classic EOF packets)
#: and without multi-statements (one result per query).
CLIENT_FLAGS = (CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_PROTOCOL_41
                | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH)
UTF8MB4_GENERAL_CI = 45
MAX_PAYLOAD = 0xFFFFFF

COM_QUIT = 0x01
COM_QUERY = 0x03

#: Client-side error codes (MySQL's CR_*), used where no server sent one.
CR_SERVER_LOST = 2013
CR_MALFORMED_PACKET = 2027
CR_AUTH_PLUGIN_ERR = 2061

NATIVE = "mysql_native_password"
SHA2 = "caching_sha2_password"


class ServerError(Exception):
    """An ERR packet (``code`` from the server) or a client-side protocol error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"({code}) {message}")
        self.code = code
        self.message = message


class ProtocolError(ServerError):
    """Bytes that are not what the protocol allows here: the connection is unusable."""

    def __init__(self, message: str) -> None:
        super().__init__(CR_MALFORMED_PACKET, message)


def frame(seq: int, payload: bytes) -> bytes:
    """One packet: 3-byte length, sequence id, payload (payloads < 16 MiB only)."""
    if len(payload) >= MAX_PAYLOAD:
        raise ProtocolError(f"packet of {len(payload)} bytes: over the 16 MiB this client sends")
    return len(payload).to_bytes(3, "little") + bytes((seq & 0xFF,)) + payload


def query(sql: bytes) -> bytes:
    """A COM_QUERY packet (sequence 0) for ``sql``."""
    return frame(0, b"\x03" + sql)


def queries(texts: list[str]) -> list[bytes]:
    """COM_QUERY packets for a transaction's statements (each well under 16 MiB)."""
    return [(len(b) + 1).to_bytes(3, "little") + b"\x00\x03" + b
            for b in [t.encode() for t in texts]]


QUIT = frame(0, bytes((COM_QUIT,)))


def split(buf: bytes) -> tuple[int, bytes, bytes] | None:
    """``(seq, payload, rest)`` of the first whole packet in ``buf``; None if incomplete."""
    if len(buf) < 4:
        return None
    n = int.from_bytes(buf[:3], "little")
    if len(buf) < 4 + n:
        return None
    return buf[3], buf[4:4 + n], buf[4 + n:]


def error_of(payload: bytes) -> ServerError:
    """The error of an ERR packet (``0xff``, code, ``#`` + SQLSTATE, message)."""
    if len(payload) < 3 or payload[0] != 0xFF:
        return ProtocolError(f"expected an ERR packet, got {payload[:16]!r}")
    code = int.from_bytes(payload[1:3], "little")
    text = payload[3:]
    if text[:1] == b"#":
        text = text[6:]
    return ServerError(code, text.decode("utf-8", "replace"))


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def scramble_native(password: bytes, salt: bytes) -> bytes:
    """``SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw)))``; empty for an empty password."""
    if not password:
        return b""
    h1 = hashlib.sha1(password).digest()  # noqa: S324 - mysql_native_password is SHA1 by protocol
    h2 = hashlib.sha1(h1).digest()  # noqa: S324 - mysql_native_password is SHA1 by protocol
    return _xor(h1, hashlib.sha1(salt[:20] + h2).digest())  # noqa: S324 - mysql_native_password is SHA1 by protocol


def scramble_sha2(password: bytes, salt: bytes) -> bytes:
    """``SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + salt)``; empty for an empty password."""
    if not password:
        return b""
    h1 = hashlib.sha256(password).digest()
    h2 = hashlib.sha256(h1).digest()
    return _xor(h1, hashlib.sha256(h2 + salt[:20]).digest())


def auth_data(plugin: str, password: bytes, salt: bytes) -> bytes:
    if plugin == NATIVE:
        return scramble_native(password, salt)
    if plugin == SHA2:
        return scramble_sha2(password, salt)
    raise ServerError(CR_AUTH_PLUGIN_ERR,
                      f"authentication plugin {plugin!r} is not supported by the workload's "
                      f"Python driver (it speaks {NATIVE} and {SHA2})")


@dataclass(frozen=True)
class Greeting:
    """The server's HandshakeV10, reduced to what the login needs."""

    server_version: str
    connection_id: int
    capabilities: int
    salt: bytes
    plugin: str


def parse_greeting(payload: bytes) -> Greeting:
    if payload[:1] == b"\xff":
        raise error_of(payload)  # e.g. 1040 Too many connections
    if payload[:1] != b"\x0a":
        raise ProtocolError(f"unsupported handshake protocol {payload[:1]!r} (expected 10)")
    end = payload.index(b"\x00", 1)
    version = payload[1:end].decode("utf-8", "replace")
    pos = end + 1
    conn_id = int.from_bytes(payload[pos:pos + 4], "little")
    salt = payload[pos + 4:pos + 12]
    pos += 13  # salt part 1 + filler
    caps = int.from_bytes(payload[pos:pos + 2], "little")
    pos += 2
    plugin = NATIVE
    if len(payload) > pos:
        caps |= int.from_bytes(payload[pos + 3:pos + 5], "little") << 16
        salt_len = payload[pos + 5]
        pos += 16  # charset, status, caps upper, salt length, 10 reserved
        if caps & CLIENT_SECURE_CONNECTION:
            n = max(13, salt_len - 8)
            salt += payload[pos:pos + n].rstrip(b"\x00")
            pos += n
        if caps & CLIENT_PLUGIN_AUTH:
            name = payload[pos:].split(b"\x00", 1)[0].decode("ascii", "replace")
            plugin = name or NATIVE
    if not caps & CLIENT_PROTOCOL_41:
        raise ProtocolError(f"server {version!r} does not speak protocol 41")
    return Greeting(version, conn_id, caps, salt, plugin)


class Login:
    """The client side of the connection phase, one server packet at a time.

    ``receive(seq, payload)`` returns the bytes to send (or ``b""``); ``done``
    turns True on the server's OK. Errors raise :class:`ServerError`.
    """

    def __init__(self, user: str, password: str, db: str | None) -> None:
        self.user = user.encode()
        self.password = password.encode()
        self.db = db
        self.greeting: Greeting | None = None
        self.plugin = NATIVE
        self.done = False

    def receive(self, seq: int, payload: bytes) -> bytes:
        if self.greeting is None:
            self.greeting = g = parse_greeting(payload)
            self.plugin = g.plugin if g.plugin in (NATIVE, SHA2) else NATIVE
            flags = CLIENT_FLAGS & (g.capabilities | CLIENT_PROTOCOL_41)
            if self.db:
                flags |= CLIENT_CONNECT_WITH_DB
            data = auth_data(self.plugin, self.password, g.salt)
            body = (flags.to_bytes(4, "little") + MAX_PAYLOAD.to_bytes(4, "little")
                    + bytes((UTF8MB4_GENERAL_CI,)) + bytes(23) + self.user + b"\x00"
                    + bytes((len(data),)) + data)
            if self.db:
                body += self.db.encode() + b"\x00"
            if flags & CLIENT_PLUGIN_AUTH:
                body += self.plugin.encode() + b"\x00"
            return frame(seq + 1, body)
        head = payload[:1]
        if head == b"\x00":
            self.done = True
            return b""
        if head == b"\xff":
            raise error_of(payload)
        if head == b"\xfe":  # AuthSwitchRequest: plugin name, then its salt
            name, _, salt = payload[1:].partition(b"\x00")
            self.plugin = name.decode("ascii", "replace")
            return frame(seq + 1, auth_data(self.plugin, self.password, salt.rstrip(b"\x00")))
        if head == b"\x01" and self.plugin == SHA2:  # AuthMoreData
            if payload[1:2] == b"\x03":  # fast authentication succeeded; OK follows
                return b""
            raise ServerError(CR_AUTH_PLUGIN_ERR,
                              f"{SHA2} asks for full authentication, which needs TLS or "
                              "RSA; the workload's Python driver has neither (use the "
                              f"sysbench binary, or a {NATIVE} user)")
        raise ProtocolError(f"unexpected packet during login: {payload[:16]!r}")


#: :class:`Response` outcomes.
PENDING, OK, ROWS, ERROR = 0, 1, 2, 3
_FIRST, _COLUMNS, _COLUMNS_EOF, _ROWS = 0, 1, 2, 3


class Response:
    """Reads one COM_QUERY response incrementally: OK, ERR or a whole result set.

    ``feed(data)`` returns :data:`PENDING` until the response is complete, then
    :data:`OK`, :data:`ROWS` (``rows`` holds the count) or :data:`ERROR`
    (``error`` holds it). Rows are walked by their packet headers only, never
    decoded. Bytes after the response (there are none in this protocol) are
    kept in ``rest``. One instance is reused: :meth:`reset` before each query.
    """

    __slots__ = ("_buf", "_left", "_phase", "error", "rest", "rows")

    def __init__(self) -> None:
        self._buf = b""
        self._phase = _FIRST
        self._left = 0
        self.rows = 0
        self.error: ServerError | None = None
        self.rest = b""

    def reset(self) -> None:
        self._buf = b""
        self._phase = _FIRST
        self.rows = 0
        self.error = None

    def feed(self, data: bytes) -> int:
        buf = self._buf + data if self._buf else data
        end = len(buf)
        pos = 0
        phase = self._phase
        rows = self.rows
        result = PENDING
        while end - pos >= 4:
            if phase == _ROWS:
                # the hot loop: ~370 rows per oltp_read_write transaction
                while end - pos >= 4:
                    nxt = pos + 4 + (buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16)
                    if nxt > end:
                        break
                    head = buf[pos + 4] if nxt > pos + 4 else -1
                    if head >= 0xFE:
                        if head == 0xFF:
                            self.error = error_of(buf[pos + 4:nxt])
                            result = ERROR
                        elif nxt - pos - 4 < 9:  # EOF (a longer 0xfe packet is a row)
                            result = ROWS
                        if result:
                            pos = nxt
                            break
                    rows += 1
                    pos = nxt
                break
            n = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            body = pos + 4
            nxt = body + n
            if nxt > end:
                break
            if n == MAX_PAYLOAD:
                raise ProtocolError("a packet of 16 MiB or more in a workload response")
            head = buf[body] if n else -1
            pos = nxt
            if phase == _FIRST:
                if head == 0x00:
                    result = OK
                    break
                if head == 0xFF:
                    self.error = error_of(buf[body:nxt])
                    result = ERROR
                    break
                if head <= 0 or head >= 0xFB:  # no data, LOCAL INFILE, >250 columns
                    raise ProtocolError(f"unexpected first response packet {buf[body:nxt][:16]!r}")
                self._left = head  # column count (< 251: one byte)
                phase = _COLUMNS
            elif phase == _COLUMNS:
                self._left -= 1
                if self._left == 0:
                    phase = _COLUMNS_EOF
            else:  # _COLUMNS_EOF
                if head != 0xFE:
                    raise ProtocolError(f"expected EOF after column definitions, got "
                                        f"{buf[body:nxt][:16]!r}")
                phase = _ROWS
        self.rows = rows
        if result == PENDING:
            self._phase = phase
            self._buf = buf[pos:] if pos else buf
        else:
            self._buf = b""
            self.rest = buf[pos:]
        return result
