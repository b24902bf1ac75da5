"""The Python driver's MySQL protocol pieces (pure): framing, login, response scanning."""

from __future__ import annotations

import pytest

from pytest_tidb_ha.workload import wire

SALT = b"0123456789abcdefghij"


def pkt(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes((seq,)) + payload


def lenenc(b: bytes) -> bytes:
    return bytes((len(b),)) + b


EOF = b"\xfe\x00\x00\x02\x00"


def result_set(rows: list[bytes]) -> bytes:
    out = pkt(1, b"\x01") + pkt(2, b"\x03def" + b"\x00" * 30) + pkt(3, EOF)
    for i, r in enumerate(rows):
        out += pkt(4 + i, lenenc(r))
    return out + pkt(4 + len(rows), EOF)


def test_query_packet_is_framed_with_sequence_zero() -> None:
    assert wire.query(b"BEGIN") == b"\x06\x00\x00\x00\x03BEGIN"
    with pytest.raises(wire.ProtocolError, match="16 MiB"):
        wire.frame(0, b"x" * wire.MAX_PAYLOAD)


def test_split_takes_one_whole_packet() -> None:
    data = pkt(7, b"abc") + b"\x05\x00"
    assert wire.split(data) == (7, b"abc", b"\x05\x00")
    assert wire.split(b"\x05\x00\x00\x01abc") is None


def test_scrambles_match_the_reference_client() -> None:
    # vectors from pymysql's implementation (an independent client)
    assert wire.scramble_native(b"s3cr3t", SALT).hex() == \
        "02b604fc6676a22a85862d8a895229773844a6bd"
    assert wire.scramble_sha2(b"s3cr3t", SALT).hex() == \
        "26886689065ad37f974d5aa713b5c1c38e99ad2d429c1339db3817c7b2c46e6e"
    assert wire.scramble_native(b"", SALT) == wire.scramble_sha2(b"", SALT) == b""


def greeting(plugin: bytes = b"mysql_native_password", caps_hi: int = 0x81FF) -> bytes:
    return (b"\x0a8.0.11-TiDB-v7.5.0\x00" + (42).to_bytes(4, "little") + SALT[:8] + b"\x00"
            + (0xF7FF).to_bytes(2, "little") + b"\x2d" + (2).to_bytes(2, "little")
            + caps_hi.to_bytes(2, "little") + bytes((21,)) + bytes(10) + SALT[8:] + b"\x00"
            + plugin + b"\x00")


def test_greeting_is_parsed() -> None:
    g = wire.parse_greeting(greeting())
    assert (g.server_version, g.connection_id, g.salt, g.plugin) == \
        ("8.0.11-TiDB-v7.5.0", 42, SALT, "mysql_native_password")
    with pytest.raises(wire.ServerError, match="1040"):
        wire.parse_greeting(b"\xff\x10\x04Too many connections")
    with pytest.raises(wire.ProtocolError, match="protocol"):
        wire.parse_greeting(b"\x09old")


def test_login_sends_user_scramble_db_and_plugin_then_ends_on_ok() -> None:
    login = wire.Login("root", "s3cr3t", "sbtest")
    out = login.receive(0, greeting())
    seq, body, rest = wire.split(out)  # type: ignore[misc]
    assert seq == 1
    assert rest == b""
    flags = int.from_bytes(body[:4], "little")
    assert flags & wire.CLIENT_CONNECT_WITH_DB
    assert flags & wire.CLIENT_PLUGIN_AUTH
    assert not flags & (1 << 24)  # no DEPRECATE_EOF: we read classic EOF packets
    assert body[8] == wire.UTF8MB4_GENERAL_CI
    user_end = body.index(b"\x00", 32)
    assert body[32:user_end] == b"root"
    n = body[user_end + 1]
    assert body[user_end + 2:user_end + 2 + n] == wire.scramble_native(b"s3cr3t", SALT)
    assert body[user_end + 2 + n:] == b"sbtest\x00mysql_native_password\x00"
    assert not login.done
    assert login.receive(2, b"\x00\x00\x00\x02\x00\x00\x00") == b""
    assert login.done


def test_login_follows_an_auth_switch_and_sha2_fast_auth() -> None:
    login = wire.Login("u", "pw", None)
    login.receive(0, greeting(b"caching_sha2_password"))
    out = login.receive(2, b"\xfemysql_native_password\x00" + SALT + b"\x00")
    assert wire.split(out) == (3, wire.scramble_native(b"pw", SALT), b"")
    login = wire.Login("u", "pw", None)
    login.receive(0, greeting(b"caching_sha2_password"))
    assert login.receive(2, b"\x01\x03") == b""  # fast auth ok; OK follows
    login.receive(3, b"\x00\x00\x00\x02\x00\x00\x00")
    assert login.done


def test_login_errors_say_why() -> None:
    login = wire.Login("u", "pw", None)
    login.receive(0, greeting(b"caching_sha2_password"))
    with pytest.raises(wire.ServerError, match="full authentication") as info:
        login.receive(2, b"\x01\x04")
    assert info.value.code == wire.CR_AUTH_PLUGIN_ERR
    login = wire.Login("u", "pw", None)
    login.receive(0, greeting())
    with pytest.raises(wire.ServerError, match="Access denied") as denied:
        login.receive(2, b"\xff\x15\x04#28000Access denied for user 'u'")
    assert denied.value.code == 1045
    login = wire.Login("u", "pw", None)
    login.receive(0, greeting())
    with pytest.raises(wire.ServerError, match="not supported"):
        login.receive(2, b"\xfeclient_ed25519\x00" + SALT)


def test_response_ok_and_err() -> None:
    r = wire.Response()
    assert r.feed(pkt(1, b"\x00\x01\x00\x02\x00\x00\x00")) == wire.OK
    r.reset()
    assert r.feed(pkt(1, b"\xff\xbd\x04#40001Deadlock found")) == wire.ERROR
    assert r.error is not None
    assert (r.error.code, r.error.message) == (1213, "Deadlock found")


@pytest.mark.parametrize("cut", [1, 3, 4, 5, 9, 13, 40, 60, 100])
def test_response_counts_rows_whatever_the_read_boundaries(cut: int) -> None:
    data = result_set([b"a" * 119] * 5 + [b"\xfe" * 20])  # a long row may start with 0xfe
    r = wire.Response()
    results = [r.feed(data[i:i + cut]) for i in range(0, len(data), cut)]
    assert results[-1] == wire.ROWS
    assert set(results[:-1]) <= {wire.PENDING}
    assert r.rows == 6
    assert r.rest == b""


def test_response_error_in_the_middle_of_rows() -> None:
    data = result_set([b"x"])[:-9] + pkt(6, b"\xff\x0b\x04#HY000Query interrupted")
    r = wire.Response()
    assert r.feed(data) == wire.ERROR
    assert r.rows == 1
    assert r.error is not None
    assert r.error.code == 1035


def test_response_rejects_what_the_protocol_does_not_allow() -> None:
    with pytest.raises(wire.ProtocolError):
        wire.Response().feed(pkt(1, b"\xfbLOCAL INFILE"))
    with pytest.raises(wire.ProtocolError, match="EOF"):
        wire.Response().feed(pkt(1, b"\x01") + pkt(2, b"coldef") + pkt(3, b"\x01row"))
