"""One statement from its text: `parse` dispatches on the first keyword to the
statement shapes of docs/sql-contract.md, using `Parser` for expressions and tables.
"""

from __future__ import annotations

from typing import Any

from .ast import (
    Delete,
    IndexDef,
    Insert,
    Simple,
    Update,
    Var,
)
from .errors import SQLError
from .parser import Parser


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
            if not isinstance(v, Var):  # a "var" token always parses to one
                raise p.error()
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
        cols = p.col_list()
        p.index_options()
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
        cols = tuple(c.lower() for c in p.col_list())
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
        cols = p.col_list()
        p.index_options()
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
