"""The error catalog: is a job's failure what a fault may sensibly cause, or a bug?

Policy (reference ``tidb-contract.md`` §8.2/§8.3 as corrected by §9, DESIGN.md
"Verdicts"):

1. **Bug signals win** over everything: data-inconsistency codes (8003, 8133,
   8134, 8138-8140, 8223) can never be excused, not even by ``allowErrors``.
2. The case's ``allowErrors`` regexes (searched in ``"<code> <message>"``, plus
   ``#<issue>`` when the error is a known bug signature) come next: a QA
   engineer who writes one has looked at that error and accepts it -- by its
   text or by the issue that filed it (``allowErrors: ["#48862"]``).
3. Internal-state errors (``ingest engine not found``, ``task manager is not
   initialized``, ...) are bugs.
4. **Known bug signatures** are bugs: messages that a filed pingcap/tidb HA
   issue reported as the wrong outcome of a fault (``execution result
   undetermined`` #49556, ``etcdserver: request timed out`` #48862, ...). The
   seeds' expectation is "add index can success / import into can finish", so
   such an error is ``failed-unexpected`` and its reason names the issue. They
   are checked before the allow-list's codes: a sensible code (9001) does not
   excuse a filed bug's message.
5. The allow-list of **sensible errors**: MySQL error code first (PD/TiKV
   timeouts, busy, region unavailable, write conflict, schema changed, not
   owner, ...), message substring second (``context deadline exceeded``, ...):
   what TiDB itself treats as retryable and a fault may sensibly surface.
6. ``Cancelled DDL job`` (8214) / import ``cancelled`` are sensible only when
   the test itself cancelled the job.
7. Anything else is unexpected.

Everything here is pure so the rules can be unit-tested on recorded messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Category = Literal["sensible", "unexpected"]

#: Data inconsistency (reference §2.7): any of these after ADD INDEX/IMPORT is a bug.
DATA_INCONSISTENCY_CODES: frozenset[int] = frozenset({8003, 8133, 8134, 8138, 8139, 8140, 8223})

#: Internal-state errors that must never surface to users (reference §8.3).
BUG_MESSAGES: tuple[str, ...] = (
    "ingest engine not found",
    "unknown step",
    "task manager is not initialized",
    "lock held by current process",
    "data inconsistency",
    "panic",
)
#: 8247 = ingest engine not found (reference §8.3).
BUG_CODES: frozenset[int] = frozenset({8247}) | DATA_INCONSISTENCY_CODES

@dataclass(frozen=True)
class BugSignature:
    """A message a filed pingcap/tidb HA issue reported as the wrong outcome of a fault."""

    text: str  # lower-case substring of the message
    issue: int  # github.com/pingcap/tidb/issues/<issue>
    what: str  # the issue's story in a few words

    @property
    def name(self) -> str:
        return f"#{self.issue}"


#: Known bug signatures (reference §9 "§8.2 revisited", §7.4). Not sensible: each one is
#: the symptom an HA issue filed; a case that accepts one names it in ``allowErrors``.
KNOWN_BUG_SIGNATURES: tuple[BugSignature, ...] = (
    BugSignature("execution result undetermined", 49556,
                 "ADD INDEX rolled back after a DDL-owner partition"),
    BugSignature("etcdserver: request timed out", 48862,
                 "ADD INDEX failed after a PD leader/follower partition"),
    BugSignature("requested lease not found", 56550,
                 "ADD INDEX failed after a PD leader partition"),
    BugSignature("[pd] failed to get cluster id", 48064,
                 "ADD INDEX failed after a PD leader partition"),
    BugSignature("errcreatepdclient", 51103, "ADD INDEX failed after a PD leader partition"),
    BugSignature("create pd client error", 51103,
                 "ADD INDEX failed after a PD leader partition"),
    BugSignature("mutex: session is expired", 48546,
                 "ADD INDEX failed under PD leader IO delay (DXF ingest lock)"),
)

#: Error codes a fault may sensibly cause (reference §8.2 / ReorgRetryableErrCodes).
#: 2 (terror.CodeResultUndetermined) is not here: its message is #49556's signature.
SENSIBLE_CODES: frozenset[int] = frozenset(
    {9001, 9002, 9003, 9004, 9005, 9007, 9008, 9010, 9011, 9012, 9013,
     8027, 8028, 8201, 8022, 8005, 8212}
)
#: Message substrings a fault may sensibly cause (TiDB's ReorgRetryableErrMsgs and the
#: texts of the sensible codes), matched case-insensitively.
SENSIBLE_MESSAGES: tuple[str, ...] = (
    "context deadline exceeded",
    "mvcc: required revision has been compacted",
    "all returned regions have no leaders",
    "region is unavailable",
    "tikv server timeout",
    "pd server timeout",
    "tikv server is busy",
    "external storage",
    "s3: ",
)
CANCELLED_CODE = 8214
CANCELLED_MESSAGES: tuple[str, ...] = ("cancelled ddl job", "job is cancelled", "cancelled")

#: Client-side connection errors (pymysql / MySQL client codes): the statement's
#: connection broke, which says nothing about the job (it runs on the server).
CONNECTION_ERROR_CODES: frozenset[int] = frozenset({0, 2003, 2006, 2013, 2014, 2055})

_ERR_RE = re.compile(r"^\s*(?:ERROR|Error)\s+(\d+)(?:\s*\(([0-9A-Z]{5})\))?\s*:?\s*(.*)$", re.S)
_TUPLE_RE = re.compile(r"^\s*\(\s*(\d+)\s*,\s*['\"](.*)['\"]\s*\)\s*$", re.S)


@dataclass(frozen=True)
class ErrorInfo:
    """One error as the verdict sees it: MySQL code (if known) and message."""

    code: int | None
    message: str

    def __str__(self) -> str:
        return f"Error {self.code}: {self.message}" if self.code is not None else self.message

    @property
    def is_connection_error(self) -> bool:
        """True when only the client's connection broke (the job may run on)."""
        if self.code in CONNECTION_ERROR_CODES:
            return True
        low = self.message.lower()
        return self.code is None and any(
            s in low for s in ("lost connection", "can't connect", "timed out",
                               "connection refused", "broken pipe", "connection reset")
        )


@dataclass(frozen=True)
class Classification:
    category: Category
    rule: str  # which rule decided, for the verdict's evidence ("code 9005", "allowErrors ...")
    issue: int | None = None  # the pingcap/tidb issue of a known bug signature


def bug_signature(message: str) -> BugSignature | None:
    """The known bug signature *message* carries, if any."""
    low = message.lower()
    return next((b for b in KNOWN_BUG_SIGNATURES if b.text in low), None)


def parse_error(text: str | None, code: int | None = None) -> ErrorInfo | None:
    """Normalise ``Error 1105 (HY000): msg`` / ``(1105, 'msg')`` / plain text."""
    if text is None and code is None:
        return None
    text = (text or "").strip()
    m = _ERR_RE.match(text)
    if m:
        return ErrorInfo(int(m.group(1)) if code is None else code, m.group(3).strip())
    m = _TUPLE_RE.match(text)
    if m:
        return ErrorInfo(int(m.group(1)) if code is None else code, m.group(2).strip())
    # "[ddl:8214]Cancelled DDL job" / "[global:2]execution result undetermined"
    m = re.match(r"^\[[a-zA-Z:_-]*?:(\d+)\](.*)$", text, re.S)
    if m and code is None:
        return ErrorInfo(int(m.group(1)), text)
    return ErrorInfo(code, text)


def compile_allow(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """The case's ``allowErrors`` as regexes; a bad regex falls back to a literal match."""
    out: list[re.Pattern[str]] = []
    for p in patterns:
        try:
            out.append(re.compile(p, re.I))
        except re.error:
            out.append(re.compile(re.escape(p), re.I))
    return tuple(out)


def classify(
    error: ErrorInfo,
    *,
    allow_errors: Sequence[str] = (),
    cancelled_by_test: bool = False,
) -> Classification:
    """Sensible or unexpected, by the ordered rules in the module docstring."""
    msg = error.message
    low = msg.lower()
    code = error.code
    if code in DATA_INCONSISTENCY_CODES:
        return Classification("unexpected", f"data inconsistency code {code}")
    subject = f"{code} {msg}" if code is not None else msg
    known = bug_signature(msg)
    if known is not None:
        subject += f" {known.name}"
    for rx in compile_allow(allow_errors):
        if rx.search(subject):
            return Classification("sensible", f"allowErrors {rx.pattern!r}",
                                  known.issue if known else None)
    if code in BUG_CODES:
        return Classification("unexpected", f"internal error code {code}")
    for s in BUG_MESSAGES:
        if s in low:
            return Classification("unexpected", f"internal error {s!r}")
    if known is not None:
        return Classification(
            "unexpected", f"known bug signature {known.text!r}, pingcap/tidb{known.name}: "
                          f"{known.what}", known.issue)
    if code == CANCELLED_CODE or any(s in low for s in CANCELLED_MESSAGES):
        if cancelled_by_test:
            return Classification("sensible", "cancelled by the test")
        return Classification("unexpected", "cancelled, but not by the test")
    if code is not None and code in SENSIBLE_CODES:
        return Classification("sensible", f"code {code}")
    for s in SENSIBLE_MESSAGES:
        if s in low:
            return Classification("sensible", f"message {s!r}")
    return Classification("unexpected", "not in the allow-list")
