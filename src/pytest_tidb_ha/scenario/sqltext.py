"""The SQL that QA's case files carry as text (pure parsing, no execution).

* ``tidbGlobalVariables`` items: ``tidb_enable_dist_task='on'`` (pingcap/tidb#47125)
  or a whole ``SET GLOBAL ...`` statement;
* ``importInto.cmd``: a whole ``IMPORT INTO <table> FROM '<source>' WITH ...``
  statement (#47684), run as written -- we only read which table it fills and
  from where, to watch its job and to name it in the plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import FieldError

#: QA's ``crc32Checksum`` (TiDB's dbutil.GetCRC32Checksum; see jobs/checksum.py for why).
CRC32_CHECKSUM = ("BIT_XOR(CAST(CRC32(CONCAT_WS(',', <columns>, CONCAT(ISNULL(<column>), ...))) "
                  "AS UNSIGNED)) over the table's rows")
_IDENT = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_IMPORT = re.compile(
    rf"^\s*IMPORT\s+INTO\s+(?P<first>{_IDENT})(?:\s*\.\s*(?P<second>{_IDENT}))?"
    rf"(?P<rest>.*?)\bFROM\s+(?:(?P<q>['\"])(?P<source>.*?)(?P=q)|(?P<select>SELECT\b))",
    re.IGNORECASE | re.DOTALL,
)
_ASSIGNMENT = re.compile(r"^(?:@@global\.|@@)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S.*)$", re.DOTALL)
_SET = re.compile(r"^SET\s", re.IGNORECASE)
_SET_GLOBAL = re.compile(
    r"^SET\s+(?:GLOBAL\s+|@@global\.)([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S.*)$",
    re.IGNORECASE | re.DOTALL)


def strip_statement(sql: str) -> str:
    """Without surrounding space and trailing semicolons (one statement per call)."""
    return sql.strip().rstrip(";").rstrip()


def _unquote(ident: str) -> str:
    return ident[1:-1].replace("``", "`") if ident.startswith("`") else ident


@dataclass(frozen=True)
class ImportTarget:
    db: str | None  # when the statement qualifies the table
    table: str
    source: str | None  # the quoted file location; None for IMPORT INTO ... FROM SELECT


def parse_import_cmd(cmd: str, field: str = "cmd") -> ImportTarget:
    """Which table an ``IMPORT INTO`` statement fills and from where."""
    match = _IMPORT.match(cmd)
    if match is None:
        raise FieldError(field, f"{field} must be an IMPORT INTO <table> FROM '<source>' ... "
                                f"statement, got {cmd.strip()[:60]!r}")
    first, second = match.group("first"), match.group("second")
    db, table = (_unquote(first), _unquote(second)) if second else (None, _unquote(first))
    return ImportTarget(db, table, match.group("source"))


def global_variable_statement(item: object, field: str = "beforeCase") -> str:
    """``name=value`` -> ``SET GLOBAL name=value``; a ``SET ...`` statement stays as written."""
    if isinstance(item, bool) or not isinstance(item, str) or not item.strip():
        raise FieldError(field, f"{field}: each item is name=value or a SET GLOBAL statement, "
                                f"got {item!r}")
    text = strip_statement(item)
    if _SET.match(text):
        return text
    if _ASSIGNMENT.match(text):
        return f"SET GLOBAL {text}"
    raise FieldError(field, f"{field}: {text!r} is neither name=value (e.g. "
                            f"tidb_enable_dist_task='on') nor a SET GLOBAL statement")


def global_assignment(statement: str) -> tuple[str, str] | None:
    """``SET GLOBAL name = 'on'`` -> ('name', 'on'), lower-case name, value unquoted."""
    match = _SET_GLOBAL.match(statement)
    if match is None:
        return None
    value = match.group(2).strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return match.group(1).lower(), value
