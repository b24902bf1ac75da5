"""What the plugin sends and what it gets back, recorded at its two exits.

The differential tests run the plugin's own code (watcher, role discovery, cancel
probe, diagnostics bundle) against the real binaries and against the stand-in, and
compare what came back. To compare *everything* those pieces send, without a list
written by hand, the calls are recorded where every one of them leaves the process:

* SQL: :class:`pytest_tidb_ha.cluster.client.TiDBClient` ``query``/``execute`` -- every
  client the plugin makes (the watcher's, role discovery's fallback, diagnostics');
* HTTP: ``urllib.request.urlopen`` -- ``cluster.http`` and the resign injectors.

And so that a statement added to the code later cannot be skipped silently,
:func:`inventory` reads the SQL and HTTP templates out of the plugin's source (AST:
string constants and f-strings); the tests check that the driver exercised each one.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import pytest

from pytest_tidb_ha.cluster.client import TiDBClient, is_read_only

SRC = Path(__file__).resolve().parents[2] / "src" / "pytest_tidb_ha"
#: Where the statements the issue names live: (module, functions or None for all).
SOURCES: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("jobs/watch.py", None),
    ("jobs/submit.py", ("configure", "ddl_job_ids", "find_ddl_job", "import_job_ids")),
    ("cluster/roles.py", None),
    ("jobs/diagnostics.py", None),
    ("jobs/lockwait.py", None),  # the bundle's open transactions and lock waits
    ("faults/injectors.py", ("PdLeaderResign", "DdlOwnerResign")),
    ("jobs/cluster_timers.py", None),  # the recovery timers every verdict window is floored by
)
SQL_START = re.compile(r"^\s*(SELECT|SHOW|ADMIN|SET|CANCEL) \S")
HTTP_PATH = re.compile(r"/(pd/api/v1|info|debug/pprof|ddl/owner|status|v3|config)\b")
HOLE = "\x00"
MAX_ROWS = 50


# -- the inventory (pure) ------------------------------------------------------------------
@dataclass(frozen=True)
class Template:
    """One statement or HTTP path as written in the source; ``{}`` marks an f-string hole."""

    kind: str  # sql | http
    text: str
    where: str  # module:line

    @property
    def pattern(self) -> re.Pattern[str]:
        body = "(.*?)".join(re.escape(_norm_part(p)) for p in self.text.split("{}"))
        if self.kind == "http":
            return re.compile(r"^(GET|POST) " + body + "$")
        return re.compile("^" + body + "$", re.I | re.S)

    @property
    def id(self) -> str:
        words = re.sub(r"[^A-Za-z0-9_./]+", "-", self.text.replace("{}", "N")).strip("-")
        return f"{self.kind}:{words[:70]}"


def _flatten(node: ast.AST) -> str | None:
    """Text of a str constant / f-string (holes as ``{}``), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                out.append(v.value)
            else:
                out.append("{}")
        return "".join(out)
    return None


def _templates_in(tree: ast.AST, where: str) -> list[Template]:
    out: list[Template] = []
    parts = {id(v) for js in ast.walk(tree) if isinstance(js, ast.JoinedStr) for v in js.values}
    for node in ast.walk(tree):
        text = _flatten(node)
        if text is None or id(node) in parts:  # an f-string's piece: the f-string counts
            continue
        assert isinstance(node, ast.expr)  # a str constant or an f-string: it has a line
        if SQL_START.match(text):
            out.append(Template("sql", " ".join(text.split()), f"{where}:{node.lineno}"))
        elif HTTP_PATH.search(text) and (text.startswith("/") or text.startswith("{}")):
            path = text[text.index("/"):] if "/" in text else text
            out.append(Template("http", path, f"{where}:{node.lineno}"))
    return out


def inventory(src: Path = SRC) -> list[Template]:
    """Every SQL/HTTP template of :data:`SOURCES`, de-duplicated, in source order."""
    seen: dict[tuple[str, str], Template] = {}
    for module, names in SOURCES:
        tree = ast.parse((src / module).read_text())
        scopes: list[ast.AST] = [tree] if names is None else [
            n for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in names]
        if names is not None and len(scopes) < len(names):
            found = {getattr(n, "name", "") for n in scopes}
            raise LookupError(f"{module}: {sorted(set(names) - found)} not found (renamed?)")
        for scope in scopes:
            for t in _templates_in(scope, module):
                seen.setdefault((t.kind, t.text), t)
    return list(seen.values())


def _norm_part(text: str) -> str:
    return re.sub(r"\b\d+\b", "N", re.sub(r"\s+", " ", text))


def normalize(text: str) -> str:
    """One spelling per statement or path: whitespace collapsed, numbers as N."""
    return _norm_part(text).strip()


# -- the recording -----------------------------------------------------------------------------
@dataclass
class Call:
    kind: str  # sql | http
    key: str  # normalized SQL, or "METHOD /path?query"
    phase: str
    columns: tuple[str, ...] | None = None
    rows: list[dict[str, str]] = field(default_factory=list)
    error_code: int | None = None
    error: str | None = None
    status: int | None = None
    body: Any = None  # JSON (http), or the first 2000 chars of text


def _text(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "replace")
    return "" if v is None else str(v)


class Transcript:
    """The calls of one side (real or stand-in), in order."""

    def __init__(self, side: str) -> None:
        self.side = side
        self.calls: list[Call] = []
        self.phase = "setup"
        self.facts: dict[str, Any] = {}
        self._lock = threading.Lock()

    def add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def matching(self, template: Template) -> list[Call]:
        pat = template.pattern
        return [c for c in self.calls if c.kind == template.kind and pat.search(c.key)]

    def of_phase(self, phase: str) -> list[Call]:
        return [c for c in self.calls if c.phase == phase]

    @contextlib.contextmanager
    def phase_of(self, phase: str) -> Iterator[None]:
        before, self.phase = self.phase, phase
        try:
            yield
        finally:
            self.phase = before

    @contextlib.contextmanager
    def recording(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[Transcript]:
        """Record every TiDBClient statement and urllib request made inside the block."""
        me = self
        real_query, real_execute = TiDBClient.query, TiDBClient.execute
        real_urlopen = urllib.request.urlopen

        def sql_call(self_: TiDBClient, sql: str, args: Any, fn: Any, *rest: Any,
                     **kw: Any) -> Any:
            call = Call("sql", normalize(sql), me.phase)
            try:
                result = fn(self_, sql, args, *rest, **kw)
            except Exception as exc:
                call.error_code = getattr(exc, "code", None)
                call.error = str(exc)[:500]
                me.add(call)
                raise
            if isinstance(result, list):
                call.columns = tuple(result[0].keys()) if result else _columns(self_, sql, args)
                call.rows = [{k: _text(v)[:300] for k, v in r.items()} for r in result[:MAX_ROWS]]
            me.add(call)
            return result

        def query(self: TiDBClient, sql: str, args: Any = None, *rest: Any, **kw: Any) -> Any:
            return sql_call(self, sql, args, real_query, *rest, **kw)

        def execute(self: TiDBClient, sql: str, args: Any = None, *rest: Any, **kw: Any) -> Any:
            return sql_call(self, sql, args, real_execute, *rest, **kw)

        def urlopen(req: Any, *args: Any, **kw: Any) -> Any:
            url = req.full_url if isinstance(req, urllib.request.Request) else str(req)
            method = req.get_method() if isinstance(req, urllib.request.Request) else "GET"
            path = re.sub(r"^[a-z]+://[^/]+", "", url)
            call = Call("http", f"{method} {normalize(path)}", me.phase)
            try:
                resp = real_urlopen(req, *args, **kw)
            except urllib.error.HTTPError as exc:
                body = exc.read()
                call.status, call.body = exc.code, _decode(body)
                me.add(call)
                # _Body is the file-like part of IO[bytes] that HTTPError uses
                raise urllib.error.HTTPError(exc.url, exc.code, exc.msg, exc.hdrs,
                                             cast("IO[bytes]", _Body(body))) from None
            except Exception as exc:
                call.error = f"{type(exc).__name__}: {exc}"
                me.add(call)
                raise
            with resp:
                body = resp.read()
                call.status = int(resp.status)
            call.body = _decode(body)
            me.add(call)
            return _Response(int(resp.status), body)

        monkeypatch.setattr(TiDBClient, "query", query)
        monkeypatch.setattr(TiDBClient, "execute", execute)
        monkeypatch.setattr(urllib.request, "urlopen", urlopen)
        try:
            yield self
        finally:
            monkeypatch.setattr(TiDBClient, "query", real_query)
            monkeypatch.setattr(TiDBClient, "execute", real_execute)
            monkeypatch.setattr(urllib.request, "urlopen", real_urlopen)


def _columns(client: TiDBClient, sql: str, args: Any) -> tuple[str, ...] | None:
    """Column names of an empty answer, read again through a cursor (read-only only)."""
    if not is_read_only(sql):
        return None
    try:
        conn = client.connect(read_timeout=10)
    except Exception:  # noqa: BLE001 - no names is an answer the comparison shows
        return None
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return tuple(d[0] for d in cur.description or ())
    except Exception:  # noqa: BLE001
        return None
    finally:
        conn.close()


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body) if body.strip() else None
    except ValueError:
        return body[:2000].decode("utf-8", "replace")


class _Body:
    """A file-like body for a re-raised HTTPError (the original was read)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data

    def close(self) -> None:
        return None


class _Response(_Body):
    """What ``urlopen`` returned, already read: ``status``, ``read()``, context manager."""

    def __init__(self, status: int, data: bytes) -> None:
        super().__init__(data)
        self.status = status

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


# -- comparison (pure) -------------------------------------------------------------------------
#: Map keys that are ids (TiDB server UUIDs in /info/all, numeric ids), not field names.
ID_KEY = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+)$")


def shape(value: Any, prefix: str = "") -> set[str]:
    """Key paths of a JSON value with their types: ``members[].name:str``; ids as ``*``."""
    out: set[str] = set()
    if isinstance(value, dict):
        out.add(f"{prefix or '.'}:object")
        for k, v in value.items():
            out |= shape(v, f"{prefix}.{'*' if ID_KEY.match(str(k)) else k}")
    elif isinstance(value, list):
        out.add(f"{prefix or '.'}:array")
        for v in value:
            out |= shape(v, f"{prefix}[]")
    else:
        kind = {bool: "bool", int: "number", float: "number", str: "str",
                type(None): "null"}.get(type(value), type(value).__name__)
        out.add(f"{prefix or '.'}:{kind}")
    return out


def summary(calls: list[Call]) -> dict[str, Any]:
    """What must agree between the sides for one template's calls."""
    out: dict[str, Any] = {"count": len(calls)}
    if not calls:
        return out
    if calls[0].kind == "sql":
        out["columns"] = sorted({c.columns for c in calls if c.columns is not None})
        out["errors"] = sorted({c.error_code for c in calls if c.error_code is not None})
        out["ok"] = any(c.error_code is None and c.error is None for c in calls)
    else:
        out["status"] = sorted({c.status for c in calls if c.status is not None})
        paths: set[str] = set()
        for c in calls:
            if c.status is not None and 200 <= c.status < 300:
                paths |= shape(c.body) if not isinstance(c.body, str) else {".:text"}
        out["shape"] = paths
    return out
