"""QA's ``crc32Checksum``: the imported table's checksum, compared after IMPORT INTO.

Which TiDB checksum is QA's number? QA's harness is not public; its number
fits in 32 bits (3582177512 in pingcap/tidb#47684, #48649, #48701), which
rules out ``ADMIN CHECKSUM TABLE``'s ``Checksum_crc64_xor`` (a 64-bit value),
and its name and size match TiDB's own ``dbutil.GetCRC32Checksum``
(pingcap/tidb ``pkg/util/dbutil/common.go``, used by sync-diff-inspector)::

    SELECT BIT_XOR(CAST(CRC32(CONCAT_WS(',', c1, c2, ..., CONCAT(ISNULL(c1), ISNULL(c2), ...)))
           AS UNSIGNED)) AS checksum FROM `db`.`t`

over the table's columns in definition order (NULL for an empty table -> 0).
That is the most defensible reading, and it is what we compute; the plan and
a mismatch's message name the formula, so a user whose numbers come from
elsewhere sees why they differ.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..scenario.sqltext import CRC32_CHECKSUM as FORMULA
from .handle import JobHandle
from .model import CheckResult

#: Seconds the checksum query may take at least (it scans the whole table).
MIN_READ_TIMEOUT = 60.0


def _quote(ident: str) -> str:
    return "`" + ident.replace("`", "``") + "`"


def checksum_sql(db: str, table: str, columns: Sequence[str]) -> str:
    """dbutil.GetCRC32Checksum's statement for ``db.table`` (columns in definition order)."""
    cols = ", ".join(_quote(c) for c in columns)
    nulls = ", ".join(f"ISNULL({_quote(c)})" for c in columns)
    return (f"SELECT BIT_XOR(CAST(CRC32(CONCAT_WS(',', {cols}, CONCAT({nulls}))) AS UNSIGNED)) "  # noqa: S608 - quoted identifiers of the job's own table
            f"AS checksum FROM {_quote(db)}.{_quote(table)}")


def crc32_of_rows(rows: Iterable[Sequence[str | None]]) -> int:
    """The same checksum computed here from rows given as TiDB would print them (pure).

    For data whose text form is unambiguous (integers, plain strings) -- e.g. to
    know the number a generated CSV must give.
    """
    total = 0
    for row in rows:
        nulls = "".join("1" if v is None else "0" for v in row)
        text = ",".join([*(v for v in row if v is not None), nulls])
        total ^= zlib.crc32(text.encode("utf-8"))
    return total


def table_checksum(conn: Any, db: str, table: str) -> int:
    """Run the checksum on an open DB-API connection."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {_quote(db)}.{_quote(table)} LIMIT 0")  # noqa: S608 - quoted identifiers
        columns = [d[0] for d in cur.description or ()]
        cur.fetchall()
        cur.execute(checksum_sql(db, table, columns))
        row = cur.fetchone()
    value = row[0] if row else None
    return int(value) if value is not None else 0


def checksum_check(connect: Callable[[float], Any],
                   expected: int) -> Callable[[JobHandle], list[CheckResult]]:
    """A post-success check: the table's checksum must be ``expected`` (QA's crc32Checksum)."""

    def run(handle: JobHandle) -> list[CheckResult]:
        db, table = handle.target.db, handle.target.table
        name = f"{_quote(db)}.{_quote(table)}"
        try:
            conn = connect(max(MIN_READ_TIMEOUT, handle.policy.timeout))
        except Exception as exc:  # noqa: BLE001 - the error is the result
            return [CheckResult("crc32_checksum", False, f"no TiDB answered: {exc}")]
        try:
            got = table_checksum(conn, db, table)
        except Exception as exc:  # noqa: BLE001
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            return [CheckResult("crc32_checksum", False,
                                f"checksum of {name} failed: {exc}", code)]
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        ok = got == expected
        return [CheckResult(
            "crc32_checksum", ok,
            f"crc32Checksum of {name} is {got}, the case expects {expected} ({FORMULA})",
            None if ok else 8133)]

    return run
