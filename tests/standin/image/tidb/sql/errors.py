"""MySQL errors as the client sees them: the stand-in's one error type, and TiDB's
syntax error (1064) that anything outside the supported statement shapes gets.
"""

from __future__ import annotations


class SQLError(Exception):
    """A MySQL error: code, SQLSTATE and message exactly as the client sees them."""

    def __init__(self, code: int, message: str, state: str = "HY000") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.state = state


def syntax_error(near: str) -> SQLError:
    return SQLError(
        1064,
        "You have an error in your SQL syntax; check the manual that corresponds to "
        f'your TiDB version for the right syntax to use line 1 column 0 near "{near[:80]}"',
        "42000",
    )
