"""A small SQL front end for the statement shapes of docs/sql-contract.md.

Tokenizer + recursive-descent parser producing plain dataclasses; evaluation of
expressions over a row (a ``dict`` of lower-case column name -> value) lives here
too because it is pure. Anything outside the supported shapes raises
``SQLError(1064, ...)`` like TiDB's parser does.
"""

from __future__ import annotations

import datetime as _dt
import re
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


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


# ---------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class Tok:
    kind: str  # id | qid | str | num | op | var | eof
    text: str
    value: Any = None

    def kw(self, *words: str) -> bool:
        return self.kind == "id" and self.text.upper() in words


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|--[^\n]*|\#[^\n]*|/\*.*?\*/)
  | (?P<qid>`(?:[^`]|``)*`)
  | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+|\d+(?:[eE][-+]?\d+)?)
  | (?P<var>@@(?:global\.|session\.|local\.)?[A-Za-z_][A-Za-z0-9_]*|@[A-Za-z_][A-Za-z0-9_]*)
  | (?P<id>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op><=>|<=|>=|!=|<>|\|\||&&|[-+*/%=<>(),.;!])
""",
    re.S | re.X,
)

_ESC = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "0": "\0",
    "b": "\b",
    "Z": "\x1a",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "%": "\\%",
    "_": "\\_",
}


def _unquote(text: str) -> str:
    q = text[0]
    body = text[1:-1]
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(_ESC.get(body[i + 1], body[i + 1]))
            i += 2
            continue
        if ch == q and i + 1 < len(body) and body[i + 1] == q:
            out.append(q)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def tokenize(sql: str) -> list[Tok]:
    toks: list[Tok] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if not m:
            raise syntax_error(sql[pos:])
        pos = m.end()
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "ws":
            continue
        if kind == "qid":
            toks.append(Tok("qid", text[1:-1].replace("``", "`")))
        elif kind == "str":
            toks.append(Tok("str", text, _unquote(text)))
        elif kind == "num":
            val: Any = int(text) if re.fullmatch(r"\d+", text) else Decimal(text)
            toks.append(Tok("num", text, val))
        else:
            toks.append(Tok(kind, text))
    while toks and toks[-1].kind == "op" and toks[-1].text == ";":
        toks.pop()
    toks.append(Tok("eof", ""))
    return toks


# ---------------------------------------------------------------------------------------------
# Expressions


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Col:
    name: str  # lower-case
    table: str | None = None


@dataclass(frozen=True)
class Var:
    name: str  # lower-case, without @@ / scope
    scope: str  # global | session | user


@dataclass(frozen=True)
class Func:
    name: str  # upper-case
    args: tuple[Any, ...]
    star: bool = False
    distinct: bool = False


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Not:
    expr: Any


@dataclass(frozen=True)
class InList:
    expr: Any
    items: tuple[Any, ...]
    negated: bool = False


@dataclass(frozen=True)
class Between:
    expr: Any
    low: Any
    high: Any
    negated: bool = False


@dataclass(frozen=True)
class Like:
    expr: Any
    pattern: Any
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    expr: Any
    negated: bool = False


@dataclass(frozen=True)
class Cast:
    expr: Any
    to: str


AGGREGATES = {"COUNT", "SUM", "MIN", "MAX", "AVG", "BIT_XOR"}


def has_aggregate(expr: Any) -> bool:
    if isinstance(expr, Func):
        return expr.name in AGGREGATES or any(has_aggregate(a) for a in expr.args)
    if isinstance(expr, (BinOp,)):
        return has_aggregate(expr.left) or has_aggregate(expr.right)
    if isinstance(expr, (Not, Cast)):
        return has_aggregate(expr.expr)
    return False


def expr_name(expr: Any, source: str) -> str:
    """The result column name MySQL/TiDB shows for an un-aliased expression."""
    if isinstance(expr, Col):
        return source.split(".")[-1].strip().strip("`")
    return source.strip()


# ---------------------------------------------------------------------------------------------
# Statements


@dataclass(frozen=True)
class TableRef:
    db: str | None
    name: str
    hint: str | None = None  # USE | IGNORE | FORCE
    hint_index: str | None = None


@dataclass(frozen=True)
class SelectItem:
    expr: Any  # None for "*"
    name: str


@dataclass(frozen=True)
class Select:
    items: tuple[SelectItem, ...]
    table: TableRef | None
    where: Any
    group_by: tuple[Any, ...]
    order_by: tuple[tuple[Any, bool], ...]  # (expr, descending)
    limit: int | None
    offset: int
    distinct: bool


@dataclass(frozen=True)
class ColumnDef:
    name: str
    type_text: str
    kind: str  # int | str | float | datetime
    not_null: bool
    default: Any
    auto_inc: bool
    primary: bool


@dataclass(frozen=True)
class IndexDef:
    name: str
    columns: tuple[str, ...]
    unique: bool = False
    primary: bool = False


@dataclass(frozen=True)
class CreateTable:
    table: TableRef
    if_not_exists: bool
    columns: tuple[ColumnDef, ...]
    indexes: tuple[IndexDef, ...]


@dataclass(frozen=True)
class Insert:
    table: TableRef
    columns: tuple[str, ...] | None
    rows: tuple[tuple[Any, ...], ...]
    ignore: bool = False


@dataclass(frozen=True)
class Update:
    table: TableRef
    sets: tuple[tuple[str, Any], ...]
    where: Any


@dataclass(frozen=True)
class Delete:
    table: TableRef
    where: Any


@dataclass(frozen=True)
class Simple:
    """Statements without much structure: kind + arguments."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)


class Parser:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.toks = tokenize(sql)
        self.i = 0

    # -- helpers --------------------------------------------------------------------------
    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def peek(self, n: int = 1) -> Tok:
        return self.toks[min(self.i + n, len(self.toks) - 1)]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return t

    def error(self) -> SQLError:
        rest = " ".join(t.text for t in self.toks[self.i : self.i + 8])
        return syntax_error(rest)

    def accept_kw(self, *words: str) -> bool:
        if self.tok.kw(*words):
            self.next()
            return True
        return False

    def expect_kw(self, *words: str) -> str:
        if not self.tok.kw(*words):
            raise self.error()
        return self.next().text.upper()

    def accept_op(self, op: str) -> bool:
        if self.tok.kind == "op" and self.tok.text == op:
            self.next()
            return True
        return False

    def expect_op(self, op: str) -> None:
        if not self.accept_op(op):
            raise self.error()

    def ident(self) -> str:
        t = self.tok
        if t.kind in ("id", "qid"):
            self.next()
            return t.text
        raise self.error()

    def end(self) -> None:
        if self.tok.kind != "eof":
            raise self.error()

    def table_ref(self) -> TableRef:
        first = self.ident()
        if self.accept_op("."):
            return TableRef(first, self.ident())
        return TableRef(None, first)

    def integer(self) -> int:
        t = self.next()
        if t.kind == "num" and isinstance(t.value, int):
            return t.value
        if t.kind == "str" and str(t.value).isdigit():
            return int(t.value)
        raise self.error()

    # -- expressions ----------------------------------------------------------------------
    def expr(self) -> Any:
        left = self.and_expr()
        while self.tok.kw("OR") or (self.tok.kind == "op" and self.tok.text == "||"):
            self.next()
            left = BinOp("OR", left, self.and_expr())
        return left

    def and_expr(self) -> Any:
        left = self.not_expr()
        while self.tok.kw("AND") or (self.tok.kind == "op" and self.tok.text == "&&"):
            self.next()
            left = BinOp("AND", left, self.not_expr())
        return left

    def not_expr(self) -> Any:
        if self.accept_kw("NOT") or self.accept_op("!"):
            return Not(self.not_expr())
        return self.predicate()

    def predicate(self) -> Any:
        left = self.additive()
        while True:
            t = self.tok
            if t.kind == "op" and t.text in ("=", "!=", "<>", "<", "<=", ">", ">=", "<=>"):
                self.next()
                op = "!=" if t.text == "<>" else t.text
                left = BinOp(op, left, self.additive())
                continue
            negated = False
            if t.kw("NOT") and self.peek().kw("IN", "LIKE", "BETWEEN"):
                self.next()
                negated = True
                t = self.tok
            if t.kw("IN"):
                self.next()
                self.expect_op("(")
                items = [self.expr()]
                while self.accept_op(","):
                    items.append(self.expr())
                self.expect_op(")")
                left = InList(left, tuple(items), negated)
                continue
            if t.kw("LIKE"):
                self.next()
                left = Like(left, self.additive(), negated)
                continue
            if t.kw("BETWEEN"):
                self.next()
                low = self.additive()
                self.expect_kw("AND")
                high = self.additive()
                left = Between(left, low, high, negated)
                continue
            if t.kw("IS"):
                self.next()
                neg = self.accept_kw("NOT")
                self.expect_kw("NULL")
                left = IsNull(left, neg)
                continue
            return left

    def additive(self) -> Any:
        left = self.multiplicative()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.next().text
            left = BinOp(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Any:
        left = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/", "%"):
            op = self.next().text
            left = BinOp(op, left, self.unary())
        return left

    def unary(self) -> Any:
        if self.accept_op("-"):
            inner = self.unary()
            if isinstance(inner, Lit) and isinstance(inner.value, (int, Decimal)):
                return Lit(-inner.value)
            return BinOp("-", Lit(0), inner)
        if self.accept_op("+"):
            return self.unary()
        return self.primary()

    def primary(self) -> Any:
        t = self.tok
        if t.kind == "num":
            self.next()
            return Lit(t.value)
        if t.kind == "str":
            self.next()
            return Lit(t.value)
        if t.kind == "var":
            self.next()
            text = t.text.lower()
            if text.startswith("@@"):
                body = text[2:]
                scope = "session"
                for sc in ("global.", "session.", "local."):
                    if body.startswith(sc):
                        scope = "global" if sc == "global." else "session"
                        body = body[len(sc) :]
                return Var(body, scope)
            return Var(text[1:], "user")
        if self.accept_op("("):
            inner = self.expr()
            self.expect_op(")")
            return inner
        if t.kind == "id" and t.text.upper() in ("NULL", "TRUE", "FALSE"):
            self.next()
            return Lit({"NULL": None, "TRUE": 1, "FALSE": 0}[t.text.upper()])
        if t.kind in ("id", "qid"):
            name = self.next().text
            if t.kind == "id" and self.tok.kind == "op" and self.tok.text == "(":
                return self.function(name.upper())
            if self.accept_op("."):
                col = self.ident()
                return Col(col.lower(), name.lower())
            return Col(name.lower())
        raise self.error()

    def function(self, name: str) -> Any:
        self.expect_op("(")
        if name == "CAST":
            inner = self.expr()
            self.expect_kw("AS")
            to = self.ident().upper()
            if self.accept_op("("):
                self.integer()
                self.expect_op(")")
            self.expect_op(")")
            return Cast(inner, to)
        if self.accept_op(")"):
            return Func(name, ())
        if self.tok.kind == "op" and self.tok.text == "*":
            self.next()
            self.expect_op(")")
            return Func(name, (), star=True)
        distinct = self.accept_kw("DISTINCT")
        args = [self.expr()]
        while self.accept_op(","):
            args.append(self.expr())
        self.expect_op(")")
        return Func(name, tuple(args), distinct=distinct)

    def literal(self) -> Any:
        e = self.unary()
        if not isinstance(e, Lit):
            raise self.error()
        return e.value

    # -- SELECT ---------------------------------------------------------------------------
    def select(self) -> Select:
        self.expect_kw("SELECT")
        distinct = self.accept_kw("DISTINCT")
        self.accept_kw("ALL")
        items: list[SelectItem] = []
        while True:
            if self.tok.kind == "op" and self.tok.text == "*":
                self.next()
                items.append(SelectItem(None, "*"))
            else:
                start = self.i
                e = self.expr()
                src = self._source(start, self.i)
                name = expr_name(e, src)
                if self.accept_kw("AS"):
                    name = self.ident() if self.tok.kind != "str" else str(self.next().value)
                elif self.tok.kind in ("qid",) or (
                    self.tok.kind == "id"
                    and not self.tok.kw("FROM", "WHERE", "ORDER", "GROUP", "LIMIT", "HAVING")
                ):
                    name = self.ident()
                elif self.tok.kind == "str":
                    name = str(self.next().value)
                items.append(SelectItem(e, name))
            if not self.accept_op(","):
                break
        table = None
        if self.accept_kw("FROM"):
            table = self.table_ref()
            if self.accept_kw("AS") or (
                self.tok.kind in ("id", "qid")
                and not self.tok.kw(
                    "WHERE", "ORDER", "GROUP", "LIMIT", "USE", "IGNORE", "FORCE", "HAVING"
                )
            ):
                self.ident()
            if self.tok.kw("USE", "IGNORE", "FORCE"):
                hint = self.next().text.upper()
                self.expect_kw("INDEX", "KEY")
                self.expect_op("(")
                idx = self.ident() if not (self.tok.kind == "op" and self.tok.text == ")") else ""
                self.expect_op(")")
                table = TableRef(table.db, table.name, hint, idx)
        where = None
        if self.accept_kw("WHERE"):
            where = self.expr()
        group: list[Any] = []
        if self.accept_kw("GROUP"):
            self.expect_kw("BY")
            group.append(self.expr())
            while self.accept_op(","):
                group.append(self.expr())
        order: list[tuple[Any, bool]] = []
        if self.accept_kw("ORDER"):
            self.expect_kw("BY")
            while True:
                e = self.expr()
                desc = False
                if self.accept_kw("DESC"):
                    desc = True
                else:
                    self.accept_kw("ASC")
                order.append((e, desc))
                if not self.accept_op(","):
                    break
        limit = None
        offset = 0
        if self.accept_kw("LIMIT"):
            limit = self.integer()
            if self.accept_op(","):
                offset, limit = limit, self.integer()
            elif self.accept_kw("OFFSET"):
                offset = self.integer()
        self.accept_kw("FOR") and self.expect_kw("UPDATE")
        self.end()
        return Select(
            tuple(items), table, where, tuple(group), tuple(order), limit, offset, distinct
        )

    def _source(self, start: int, stop: int) -> str:
        """Original text of tokens [start, stop) (for result column names)."""
        parts = []
        for t in self.toks[start:stop]:
            parts.append(t.text if t.kind != "qid" else f"`{t.text}`")
        text = ""
        for idx, p in enumerate(parts):
            prev = parts[idx - 1] if idx else ""
            if idx and not (p in "(),." or prev in "(." or p == ")"):
                text += " "
            text += p
        return text.replace(" ,", ",")

    # -- CREATE TABLE ---------------------------------------------------------------------
    def create_table(self, if_not_exists: bool) -> CreateTable:
        table = self.table_ref()
        self.expect_op("(")
        cols: list[ColumnDef] = []
        idxs: list[IndexDef] = []
        while True:
            if self.tok.kw("PRIMARY"):
                self.next()
                self.expect_kw("KEY")
                idxs.append(IndexDef("PRIMARY", self._col_list(), True, True))
                self._index_options()
            elif self.tok.kw("KEY", "INDEX", "UNIQUE"):
                unique = self.accept_kw("UNIQUE")
                if unique:
                    self.accept_kw("KEY", "INDEX")
                else:
                    self.next()
                name = self.ident() if self.tok.kind in ("id", "qid") else ""
                columns = self._col_list()
                idxs.append(IndexDef(name or columns[0], columns, unique))
                self._index_options()
            else:
                cols.append(self._column_def())
            if not self.accept_op(","):
                break
        self.expect_op(")")
        # table options: ENGINE=..., DEFAULT CHARSET=..., COLLATE=..., COMMENT=...
        while self.tok.kind != "eof":
            self.next()
        for c in cols:
            if c.primary:
                idxs.insert(0, IndexDef("PRIMARY", (c.name,), True, True))
        return CreateTable(table, if_not_exists, tuple(cols), tuple(idxs))

    def _col_list(self) -> tuple[str, ...]:
        self.expect_op("(")
        names = [self.ident()]
        if self.accept_op("("):
            self.integer()
            self.expect_op(")")
        while self.accept_op(","):
            names.append(self.ident())
            if self.accept_op("("):
                self.integer()
                self.expect_op(")")
        self.expect_op(")")
        return tuple(names)

    def _index_options(self) -> None:
        while self.tok.kw(
            "USING", "COMMENT", "CLUSTERED", "NONCLUSTERED", "BTREE", "HASH", "VISIBLE", "INVISIBLE"
        ):
            self.next()
            if self.tok.kind == "str":
                self.next()
        if self.tok.kind == "op" and self.tok.text == "/":
            raise self.error()

    def _column_def(self) -> ColumnDef:
        name = self.ident()
        type_name = self.ident().upper()
        type_text = type_name.lower()
        if self.accept_op("("):
            args = [str(self.integer())]
            while self.accept_op(","):
                args.append(str(self.integer()))
            self.expect_op(")")
            type_text += "(" + ",".join(args) + ")"
        if type_name in (
            "INT",
            "INTEGER",
            "BIGINT",
            "SMALLINT",
            "TINYINT",
            "MEDIUMINT",
            "BOOL",
            "BOOLEAN",
            "BIT",
        ):
            kind = "int"
        elif type_name in (
            "CHAR",
            "VARCHAR",
            "TEXT",
            "TINYTEXT",
            "MEDIUMTEXT",
            "LONGTEXT",
            "BLOB",
            "VARBINARY",
            "BINARY",
            "JSON",
            "ENUM",
        ):
            kind = "str"
        elif type_name in ("DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC"):
            kind = "float"
        elif type_name in ("DATETIME", "TIMESTAMP", "DATE", "TIME", "YEAR"):
            kind = "datetime"
        else:
            raise SQLError(1105, f"unsupported column type {type_name} in the stand-in")
        not_null = False
        default: Any = None
        auto_inc = False
        primary = False
        while self.tok.kind != "eof" and not (
            self.tok.kind == "op" and self.tok.text in (",", ")")
        ):
            if self.accept_kw("UNSIGNED", "SIGNED", "ZEROFILL", "BINARY"):
                continue
            if self.accept_kw("NOT"):
                self.expect_kw("NULL")
                not_null = True
            elif self.accept_kw("NULL"):
                not_null = False
            elif self.accept_kw("DEFAULT"):
                if self.tok.kind == "id" and self.tok.text.upper() in ("CURRENT_TIMESTAMP", "NOW"):
                    self.next()
                    if self.accept_op("("):
                        self.expect_op(")")
                    default = None
                else:
                    default = self.literal()
            elif self.accept_kw("AUTO_INCREMENT"):
                auto_inc = True
            elif self.accept_kw("PRIMARY"):
                self.expect_kw("KEY")
                primary = True
            elif self.accept_kw("KEY"):
                primary = True
            elif self.accept_kw("UNIQUE"):
                self.accept_kw("KEY")
            elif self.accept_kw("COMMENT"):
                self.next()
            elif self.accept_kw("CHARACTER"):
                self.expect_kw("SET")
                self.ident()
            elif self.accept_kw("CHARSET", "COLLATE"):
                self.ident()
            else:
                raise self.error()
        return ColumnDef(name, type_text, kind, not_null, default, auto_inc, primary)


# ---------------------------------------------------------------------------------------------
# Statement dispatch


def _index_cols(p: Parser) -> tuple[str, ...]:
    return p._col_list()  # noqa: SLF001 - same module


def parse(sql: str) -> Any:
    """Parse one statement; raises SQLError(1064) for anything unsupported."""
    p = Parser(sql)
    t = p.tok
    if t.kw("SELECT"):
        return p.select()
    if t.kw("SET"):
        return _parse_set(p)
    if t.kw("USE"):
        p.next()
        db = p.ident()
        p.end()
        return Simple("use", {"db": db})
    if t.kw("BEGIN") or (t.kw("START") and p.peek().kw("TRANSACTION")):
        while p.tok.kind != "eof":
            p.next()
        return Simple("begin")
    if t.kw("COMMIT"):
        p.next()
        p.accept_kw("WORK")
        p.end()
        return Simple("commit")
    if t.kw("ROLLBACK"):
        p.next()
        p.accept_kw("WORK")
        p.end()
        return Simple("rollback")
    if t.kw("CREATE"):
        return _parse_create(p)
    if t.kw("DROP"):
        return _parse_drop(p)
    if t.kw("INSERT", "REPLACE"):
        return _parse_insert(p)
    if t.kw("UPDATE"):
        p.next()
        table = p.table_ref()
        p.expect_kw("SET")
        sets = []
        while True:
            col = p.ident()
            if p.accept_op("."):
                col = p.ident()
            p.expect_op("=")
            sets.append((col.lower(), p.expr()))
            if not p.accept_op(","):
                break
        where = p.expr() if p.accept_kw("WHERE") else None
        p.end()
        return Update(table, tuple(sets), where)
    if t.kw("DELETE"):
        p.next()
        p.expect_kw("FROM")
        table = p.table_ref()
        where = p.expr() if p.accept_kw("WHERE") else None
        p.end()
        return Delete(table, where)
    if t.kw("ALTER"):
        return _parse_alter(p)
    if t.kw("ADMIN"):
        return _parse_admin(p)
    if t.kw("IMPORT"):
        return _parse_import(p)
    if t.kw("SHOW"):
        return _parse_show(p)
    if t.kw("CANCEL"):
        p.next()
        p.expect_kw("IMPORT")
        p.expect_kw("JOB")
        job = p.integer()
        p.end()
        return Simple("cancel_import", {"id": job})
    raise p.error()


def _parse_set(p: Parser) -> Simple:
    p.next()
    assigns: list[tuple[str, str, Any]] = []
    if p.accept_kw("NAMES"):
        while p.tok.kind != "eof":
            p.next()
        return Simple("set", {"assigns": []})
    while True:
        scope = "session"
        if p.tok.kw("GLOBAL", "SESSION", "LOCAL"):
            scope = "global" if p.next().text.upper() == "GLOBAL" else "session"
        if p.tok.kind == "var":
            v = p.primary()
            assert isinstance(v, Var)
            name, scope = v.name, v.scope
        else:
            name = p.ident().lower()
        if not (p.accept_op("=") or (p.tok.kind == "op" and p.tok.text == ":" and p.next())):
            raise p.error()
        if p.tok.kind in ("id",) and p.tok.text.upper() in ("ON", "OFF", "DEFAULT"):
            value: Any = p.next().text.upper()
        else:
            value = p.literal()
        assigns.append((scope, name, value))
        if not p.accept_op(","):
            break
    p.end()
    return Simple("set", {"assigns": assigns})


def _parse_create(p: Parser) -> Any:
    p.next()
    if p.accept_kw("DATABASE", "SCHEMA"):
        ine = False
        if p.accept_kw("IF"):
            p.expect_kw("NOT")
            p.expect_kw("EXISTS")
            ine = True
        db = p.ident()
        while p.tok.kind != "eof":
            p.next()
        return Simple("create_database", {"db": db, "if_not_exists": ine})
    unique = p.accept_kw("UNIQUE")
    if p.accept_kw("INDEX", "KEY"):
        name = p.ident()
        p.expect_kw("ON")
        table = p.table_ref()
        cols = _index_cols(p)
        p._index_options()  # noqa: SLF001
        p.end()
        return Simple(
            "add_index", {"table": table, "index": IndexDef(name, cols, unique), "query": p.sql}
        )
    if unique:
        raise p.error()
    p.expect_kw("TABLE")
    ine = False
    if p.accept_kw("IF"):
        p.expect_kw("NOT")
        p.expect_kw("EXISTS")
        ine = True
    return p.create_table(ine)


def _parse_drop(p: Parser) -> Simple:
    p.next()
    if p.accept_kw("DATABASE", "SCHEMA"):
        ie = False
        if p.accept_kw("IF"):
            p.expect_kw("EXISTS")
            ie = True
        db = p.ident()
        p.end()
        return Simple("drop_database", {"db": db, "if_exists": ie})
    if p.accept_kw("INDEX"):
        name = p.ident()
        p.expect_kw("ON")
        table = p.table_ref()
        p.end()
        return Simple("drop_index", {"table": table, "name": name, "query": p.sql})
    p.expect_kw("TABLE")
    ie = False
    if p.accept_kw("IF"):
        p.expect_kw("EXISTS")
        ie = True
    tables = [p.table_ref()]
    while p.accept_op(","):
        tables.append(p.table_ref())
    p.end()
    return Simple("drop_table", {"tables": tables, "if_exists": ie})


def _parse_insert(p: Parser) -> Insert:
    replace = p.next().text.upper() == "REPLACE"
    ignore = p.accept_kw("IGNORE")
    p.accept_kw("INTO")
    table = p.table_ref()
    cols: tuple[str, ...] | None = None
    if p.tok.kind == "op" and p.tok.text == "(":
        cols = tuple(c.lower() for c in _index_cols(p))
    p.expect_kw("VALUES", "VALUE")
    rows = []
    while True:
        p.expect_op("(")
        vals = [] if (p.tok.kind == "op" and p.tok.text == ")") else [p.expr()]
        while p.accept_op(","):
            vals.append(p.expr())
        p.expect_op(")")
        rows.append(tuple(vals))
        if not p.accept_op(","):
            break
    p.end()
    if replace:
        raise SQLError(1105, "REPLACE is not supported by the stand-in")
    return Insert(table, cols, tuple(rows), ignore)


def _parse_alter(p: Parser) -> Simple:
    p.next()
    p.expect_kw("TABLE")
    table = p.table_ref()
    if p.accept_kw("ADD"):
        unique = p.accept_kw("UNIQUE")
        p.expect_kw("INDEX", "KEY")
        name = p.ident() if p.tok.kind in ("id", "qid") else ""
        cols = _index_cols(p)
        p._index_options()  # noqa: SLF001
        p.end()
        return Simple(
            "add_index", {"table": table, "index": IndexDef(name, cols, unique), "query": p.sql}
        )
    if p.accept_kw("DROP"):
        p.expect_kw("INDEX", "KEY")
        name = p.ident()
        p.end()
        return Simple("drop_index", {"table": table, "name": name, "query": p.sql})
    raise p.error()


def _parse_admin(p: Parser) -> Simple:
    p.next()
    if p.accept_kw("SHOW"):
        p.expect_kw("DDL")
        if p.accept_kw("JOBS"):
            n = p.integer() if p.tok.kind == "num" else 10
            where = p.expr() if p.accept_kw("WHERE") else None
            p.end()
            return Simple("admin_show_ddl_jobs", {"n": n, "where": where})
        p.end()
        return Simple("admin_show_ddl")
    if p.accept_kw("CANCEL"):
        p.expect_kw("DDL")
        p.expect_kw("JOBS")
        ids = [p.integer()]
        while p.accept_op(","):
            ids.append(p.integer())
        p.end()
        return Simple("admin_cancel", {"ids": ids})
    if p.accept_kw("CHECK"):
        p.expect_kw("TABLE")
        tables = [p.table_ref()]
        while p.accept_op(","):
            tables.append(p.table_ref())
        p.end()
        return Simple("admin_check", {"tables": tables})
    raise p.error()


def _parse_import(p: Parser) -> Simple:
    p.next()
    p.expect_kw("INTO")
    table = p.table_ref()
    if p.tok.kind == "op" and p.tok.text == "(":
        raise SQLError(1105, "IMPORT INTO with a column list is not supported by the stand-in")
    p.expect_kw("FROM")
    if p.tok.kind != "str":
        raise p.error()
    source = str(p.next().value)
    fmt = "csv"
    if p.accept_kw("FORMAT"):
        if p.tok.kind != "str":
            raise p.error()
        fmt = str(p.next().value).lower()
    options: dict[str, Any] = {}
    if p.accept_kw("WITH"):
        while True:
            name = p.ident().lower()
            value: Any = None
            if p.accept_op("="):
                value = p.literal()
            options[name] = value
            if not p.accept_op(","):
                break
    p.end()
    return Simple(
        "import_into",
        {"table": table, "source": source, "format": fmt, "options": options, "query": p.sql},
    )


def _parse_show(p: Parser) -> Simple:
    p.next()
    if p.accept_kw("IMPORT"):
        if p.accept_kw("JOBS"):
            p.end()
            return Simple("show_import_jobs")
        p.expect_kw("JOB")
        job = p.integer()
        p.end()
        return Simple("show_import_job", {"id": job})
    if p.accept_kw("DATABASES"):
        p.end()
        return Simple("show_databases")
    if p.accept_kw("TABLES"):
        db = None
        if p.accept_kw("FROM", "IN"):
            db = p.ident()
        p.end()
        return Simple("show_tables", {"db": db})
    if p.accept_kw("WARNINGS"):
        p.end()
        return Simple("show_warnings")
    raise p.error()


# ---------------------------------------------------------------------------------------------
# Evaluation (pure)


def _num(v: Any) -> Any:
    if isinstance(v, (int, float, Decimal)):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return Decimal(v)
            except Exception:  # noqa: BLE001
                return 0
    if v is None:
        return None
    return v


def compare(a: Any, b: Any) -> int | None:
    """MySQL-ish comparison: numbers numerically, datetimes vs strings as text."""
    if a is None or b is None:
        return None
    if isinstance(a, (_dt.datetime, _dt.date)):
        a = a.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(a, _dt.datetime) else a.isoformat()
    if isinstance(b, (_dt.datetime, _dt.date)):
        b = b.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(b, _dt.datetime) else b.isoformat()
    if isinstance(a, (int, float, Decimal)) or isinstance(b, (int, float, Decimal)):
        if not (isinstance(a, str) and isinstance(b, str)):
            a, b = _num(a), _num(b)
            if isinstance(a, float) or isinstance(b, float):
                a, b = float(a), float(b)
    elif isinstance(a, bytes):
        a = a.decode(errors="replace")
    if isinstance(b, bytes):
        b = b.decode(errors="replace")
    if isinstance(a, str) and isinstance(b, str):
        a, b = a.lower(), b.lower()  # default collation is case-insensitive for system tables
    try:
        return (a > b) - (a < b)
    except TypeError:
        return (str(a) > str(b)) - (str(a) < str(b))


def like_to_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.S | re.I)


def truthy(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, str):
        n = _num(v)
        return bool(n)
    return bool(v)


class Env:
    """What expression evaluation may look up besides the row."""

    def var(self, name: str, scope: str) -> Any:
        raise SQLError(1193, f"Unknown system variable '{name}'")

    def func(self, name: str, args: list[Any]) -> Any:
        raise SQLError(1305, f"FUNCTION {name.lower()} does not exist", "42000")


def evaluate(expr: Any, row: dict[str, Any], env: Env) -> Any:
    if isinstance(expr, Lit):
        return expr.value
    if isinstance(expr, Col):
        if expr.name in row:
            return row[expr.name]
        raise SQLError(1054, f"Unknown column '{expr.name}' in 'field list'", "42S22")
    if isinstance(expr, Var):
        return env.var(expr.name, expr.scope)
    if isinstance(expr, BinOp):
        if expr.op == "AND":
            left = evaluate(expr.left, row, env)
            if left is not None and not truthy(left):
                return 0
            right = evaluate(expr.right, row, env)
            if right is not None and not truthy(right):
                return 0
            return None if left is None or right is None else 1
        if expr.op == "OR":
            left = evaluate(expr.left, row, env)
            if truthy(left):
                return 1
            right = evaluate(expr.right, row, env)
            if truthy(right):
                return 1
            return None if left is None or right is None else 0
        a = evaluate(expr.left, row, env)
        b = evaluate(expr.right, row, env)
        if expr.op in ("+", "-", "*", "/", "%"):
            if a is None or b is None:
                return None
            a, b = _num(a), _num(b)
            if expr.op == "+":
                return a + b
            if expr.op == "-":
                return a - b
            if expr.op == "*":
                return a * b
            if b == 0:
                return None
            return Decimal(a) / Decimal(b) if expr.op == "/" else a % b
        if expr.op == "<=>" and (a is None or b is None):
            return int(a is None and b is None)
        c = compare(a, b)
        if c is None:
            return None
        return int(
            {
                "=": c == 0,
                "<=>": c == 0,
                "!=": c != 0,
                "<": c < 0,
                "<=": c <= 0,
                ">": c > 0,
                ">=": c >= 0,
            }[expr.op]
        )
    if isinstance(expr, Not):
        v = evaluate(expr.expr, row, env)
        return None if v is None else int(not truthy(v))
    if isinstance(expr, InList):
        v = evaluate(expr.expr, row, env)
        if v is None:
            return None
        hit = any(compare(v, evaluate(i, row, env)) == 0 for i in expr.items)
        return int(hit != expr.negated)
    if isinstance(expr, Between):
        v = evaluate(expr.expr, row, env)
        lo = compare(v, evaluate(expr.low, row, env))
        hi = compare(v, evaluate(expr.high, row, env))
        if lo is None or hi is None:
            return None
        return int((lo >= 0 and hi <= 0) != expr.negated)
    if isinstance(expr, Like):
        v = evaluate(expr.expr, row, env)
        pat = evaluate(expr.pattern, row, env)
        if v is None or pat is None:
            return None
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
        hit = bool(like_to_regex(str(pat)).match(str(v)))
        return int(hit != expr.negated)
    if isinstance(expr, IsNull):
        v = evaluate(expr.expr, row, env)
        return int((v is None) != expr.negated)
    if isinstance(expr, Cast):
        v = evaluate(expr.expr, row, env)
        if v is None:
            return None
        if expr.to in ("CHAR", "VARCHAR", "BINARY"):
            return as_text(v)
        if expr.to in ("SIGNED", "UNSIGNED", "INT", "INTEGER"):
            return int(_num(v) or 0)
        if expr.to in ("DECIMAL",):
            return Decimal(_num(v) or 0)
        raise SQLError(1105, f"CAST AS {expr.to} is not supported by the stand-in")
    if isinstance(expr, Func):
        if expr.name in AGGREGATES:
            key = "\0agg:" + repr(expr)
            if key in row:
                return row[key]
            raise SQLError(1111, "Invalid use of group function")
        args = [evaluate(a, row, env) for a in expr.args]
        if expr.name in ("CONCAT",):
            return None if any(a is None for a in args) else "".join(str(a) for a in args)
        # CRC32 / CONCAT_WS / ISNULL: TiDB's dbutil checksum (QA's crc32Checksum)
        if expr.name == "CONCAT_WS" and args:
            if args[0] is None:
                return None
            return as_text(args[0]).join(as_text(a) for a in args[1:] if a is not None)
        if expr.name == "ISNULL" and len(args) == 1:
            return int(args[0] is None)
        if expr.name == "CRC32" and len(args) == 1:
            return None if args[0] is None else zlib.crc32(as_text(args[0]).encode())
        if expr.name in ("IFNULL", "COALESCE"):
            return next((a for a in args if a is not None), None)
        if expr.name in ("LOWER", "LCASE") and args:
            return None if args[0] is None else str(args[0]).lower()
        if expr.name in ("UPPER", "UCASE") and args:
            return None if args[0] is None else str(args[0]).upper()
        return env.func(expr.name, args)
    raise SQLError(1105, f"cannot evaluate {expr!r}")


def as_text(v: Any) -> str:
    """A value as TiDB prints it in string context (CAST AS CHAR, CONCAT_WS)."""
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, _dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S") + (f".{v.microsecond:06d}" if v.microsecond else "")
    return str(v)


def aggregate(func: Func, rows: list[dict[str, Any]], env: Env) -> Any:
    if func.name == "COUNT":
        if func.star:
            return len(rows)
        vals = [evaluate(func.args[0], r, env) for r in rows]
        vals = [v for v in vals if v is not None]
        return len(set(vals)) if func.distinct else len(vals)
    vals = [evaluate(func.args[0], r, env) for r in rows]
    vals = [v for v in vals if v is not None]
    if func.distinct:
        vals = list(dict.fromkeys(vals))
    if func.name == "BIT_XOR":  # 0 for no rows, like MySQL and TiDB
        out = 0
        for v in vals:
            out ^= int(_num(v) or 0)
        return out
    if not vals:
        return None
    if func.name == "SUM":
        return sum((Decimal(_num(v)) for v in vals), Decimal(0))
    if func.name == "AVG":
        return sum((Decimal(_num(v)) for v in vals), Decimal(0)) / len(vals)
    if func.name == "MIN":
        return min(vals)
    return max(vals)


def collect_aggregates(expr: Any, out: list[Func]) -> None:
    if isinstance(expr, Func):
        if expr.name in AGGREGATES:
            out.append(expr)
            return
        for a in expr.args:
            collect_aggregates(a, out)
    elif isinstance(expr, BinOp):
        collect_aggregates(expr.left, out)
        collect_aggregates(expr.right, out)
    elif isinstance(expr, (Not, Cast)):
        collect_aggregates(expr.expr, out)


def conjuncts(expr: Any) -> list[Any]:
    if expr is None:
        return []
    if isinstance(expr, BinOp) and expr.op == "AND":
        return conjuncts(expr.left) + conjuncts(expr.right)
    return [expr]
