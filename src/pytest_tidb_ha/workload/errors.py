"""Which errors the workload tolerates, and which mean "reconnect" (pure).

sysbench's ``--mysql-ignore-errors`` takes ``all`` or a list of MySQL error
codes; an error outside the list ends the run. We do the same, with one
addition: an exception that is not a database or network error (a bug in our
own code, say) is never ignored, even with ``all`` — silently counting it
would turn a broken workload into a "healthy cluster under load".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import pymysql

#: Client-side codes (CR_*) and server codes after which the connection is
#: unusable: drop it and connect again.
CR_CONN_HOST_ERROR = 2002
CR_CONNECTION_ERROR = 2003
CR_SERVER_GONE_ERROR = 2006
CR_SERVER_LOST = 2013
CONNECTION_ERRORS = frozenset({
    1053,  # ER_SERVER_SHUTDOWN
    1152,  # ER_ABORTING_CONNECTION
    1927,  # ER_CONNECTION_KILLED (MariaDB)
    CR_CONN_HOST_ERROR, CR_CONNECTION_ERROR, CR_SERVER_GONE_ERROR, 2005, CR_SERVER_LOST,
    2014,  # commands out of sync: the protocol state is lost
    2055,
    2027,  # malformed packet: the protocol state is lost
})

IgnoreErrors = Literal["all"] | tuple[int, ...]


class WorkloadError(RuntimeError):
    """The workload stopped on an error its ``ignore_errors`` does not cover."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Classified:
    """An exception seen by a worker, reduced to what the policy needs."""

    code: int | None  # None: not a database/network error (never ignored)
    message: str
    connection_lost: bool


def classify(exc: BaseException) -> Classified:
    """Map a driver/network exception to a MySQL error code."""
    if isinstance(exc, pymysql.err.MySQLError):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        if code == 0 or isinstance(exc, pymysql.err.InterfaceError):
            # pymysql's "(0, '')": the connection was already closed
            code = CR_SERVER_GONE_ERROR
        return Classified(code, message, code in CONNECTION_ERRORS)
    attr = getattr(exc, "code", None)
    if isinstance(attr, int) and not isinstance(attr, bool):
        # e.g. cluster.client.SQLError / TiDBUnavailable from TiDBClient.connect()
        return Classified(attr, str(exc), attr in CONNECTION_ERRORS)
    if isinstance(exc, (OSError, EOFError)):  # timeouts, resets, refused connects
        return Classified(CR_SERVER_LOST, f"{type(exc).__name__}: {exc}", True)
    return Classified(None, f"{type(exc).__name__}: {exc}", True)


def parse_ignore_errors(value: object) -> IgnoreErrors:
    """``"all"``, ``"1213,8028"``, ``1213`` or an iterable of codes → policy value."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "all":
            return "all"
        parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
        try:
            return tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"ignore_errors {value!r}: expected 'all' or a comma list "
                             "of MySQL error codes") from None
    if isinstance(value, bool):
        raise ValueError(f"ignore_errors {value!r}: expected 'all' or MySQL error codes")
    if isinstance(value, int):
        return (value,)
    if value is None:
        return ()
    if isinstance(value, Iterable):
        codes = []
        for v in value:
            if isinstance(v, bool) or not isinstance(v, (int, str)) or (
                    isinstance(v, str) and not v.strip().isdigit()):
                raise ValueError(f"ignore_errors {value!r}: {v!r} is not an error code")
            codes.append(int(v))
        return tuple(codes)
    raise ValueError(f"ignore_errors {value!r}: expected 'all' or MySQL error codes")


@dataclass(frozen=True)
class IgnorePolicy:
    ignore: IgnoreErrors = "all"

    @classmethod
    def of(cls, value: object) -> IgnorePolicy:
        return cls(parse_ignore_errors(value))

    def ignores(self, code: int | None) -> bool:
        if code is None:
            return False
        return self.ignore == "all" or code in self.ignore

    def __str__(self) -> str:
        return "all" if self.ignore == "all" else ",".join(map(str, self.ignore)) or "none"
