"""Recursive descent over the tokens: expressions, SELECT and CREATE TABLE's column and
index definitions (`Parser`); the statement dispatch that uses it is `statements.py`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .ast import (
    Between,
    BinOp,
    Cast,
    Col,
    ColumnDef,
    CreateTable,
    Func,
    IndexDef,
    InList,
    IsNull,
    Like,
    Lit,
    Not,
    Select,
    SelectItem,
    TableRef,
    Var,
    expr_name,
)
from .errors import SQLError, syntax_error
from .lexer import Tok, tokenize


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
                idxs.append(IndexDef("PRIMARY", self.col_list(), True, True))
                self.index_options()
            elif self.tok.kw("KEY", "INDEX", "UNIQUE"):
                unique = self.accept_kw("UNIQUE")
                if unique:
                    self.accept_kw("KEY", "INDEX")
                else:
                    self.next()
                name = self.ident() if self.tok.kind in ("id", "qid") else ""
                columns = self.col_list()
                idxs.append(IndexDef(name or columns[0], columns, unique))
                self.index_options()
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

    def col_list(self) -> tuple[str, ...]:
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

    def index_options(self) -> None:
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
