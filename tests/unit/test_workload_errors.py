"""ignore_errors parsing and error classification."""

from __future__ import annotations

import pymysql
import pytest

from pytest_tidb_ha.workload.errors import IgnorePolicy, classify, parse_ignore_errors


@pytest.mark.parametrize(("value", "expect"), [
    ("all", "all"), ("ALL", "all"), ("1213,8028", (1213, 8028)), ("1213", (1213,)),
    (1213, (1213,)), ([1213, "9007"], (1213, 9007)), ((), ()), (None, ()),
])
def test_parse_ignore_errors(value: object, expect: object) -> None:
    assert parse_ignore_errors(value) == expect


@pytest.mark.parametrize("value", ["some", True, [1.5], ["x"], object()])
def test_parse_ignore_errors_refuses_garbage(value: object) -> None:
    with pytest.raises(ValueError, match="ignore_errors"):
        parse_ignore_errors(value)


def test_policy_all_ignores_database_errors_but_never_bugs() -> None:
    p = IgnorePolicy.of("all")
    assert p.ignores(1213)
    assert p.ignores(2013)
    assert p.ignores(9005)
    assert not p.ignores(None)


def test_policy_list_ignores_only_listed_codes() -> None:
    p = IgnorePolicy.of((1213, 2013))
    assert p.ignores(1213)
    assert p.ignores(2013)
    assert not p.ignores(1105)
    assert str(p) == "1213,2013"
    assert str(IgnorePolicy(())) == "none"


def test_classify_server_error_keeps_connection() -> None:
    c = classify(pymysql.err.OperationalError(1213, "Deadlock found"))
    assert (c.code, c.connection_lost) == (1213, False)
    assert "Deadlock" in c.message


@pytest.mark.parametrize("exc", [
    pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"),
    pymysql.err.OperationalError(2003, "Can't connect"),
    pymysql.err.InterfaceError(0, ""),
    TimeoutError("timed out"),
    ConnectionResetError(104, "reset"),
])
def test_classify_connection_errors_reconnect(exc: BaseException) -> None:
    c = classify(exc)
    assert c.connection_lost
    assert c.code in (2003, 2006, 2013)


def test_classify_bug_has_no_code() -> None:
    c = classify(TypeError("oops"))
    assert c.code is None
    assert "TypeError" in c.message


def test_classify_errors_that_carry_a_code_attribute() -> None:
    class SQLError(Exception):  # like cluster.client.SQLError(code, message, node)
        def __init__(self, code: int, message: str) -> None:
            super().__init__(f"[{code}] {message}")
            self.code = code

    lost = classify(SQLError(2003, "no TiDB answered"))
    assert (lost.code, lost.connection_lost) == (2003, True)
    server = classify(SQLError(9005, "Region is unavailable"))
    assert (server.code, server.connection_lost) == (9005, False)
