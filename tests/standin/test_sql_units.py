"""The stand-in TiDB's SQL front end in process (no Docker): lexer, parser, evaluator.

The answers the executor builds on these are compared with a real tidb-server by
tests/realbin; here each piece is pinned on its own, so a change that moves a token, a
precedence or a NULL rule fails next to its cause. The round trip renders a parsed
expression back to SQL (fully parenthesized) and parses it again: the tree must survive.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import standin_helpers  # noqa: F401  (puts the image's modules on sys.path)
from tidb import sql as q
from tidb.sql.lexer import tokenize

# -- lexer ------------------------------------------------------------------------------------


def test_tokens_kinds_and_values() -> None:
    toks = tokenize("SELECT `a``b`, 'it''s\\n', \"q\", 12, 1.5, .5, 1e3, @@global.x, @u -- c\n"
                    "FROM t /* c */ # c\n WHERE a<=>b;;")
    assert [(t.kind, t.text) for t in toks if t.kind not in ("str", "num")][:4] == [
        ("id", "SELECT"), ("qid", "a`b"), ("op", ","), ("op", ",")]
    strs = [t.value for t in toks if t.kind == "str"]
    assert strs == ["it's\n", "q"]
    nums = [t.value for t in toks if t.kind == "num"]
    assert nums == [12, Decimal("1.5"), Decimal(".5"), Decimal("1e3")]
    assert isinstance(nums[0], int)
    assert [t.text for t in toks if t.kind == "var"] == ["@@global.x", "@u"]
    assert [t.text for t in toks[-4:]] == ["a", "<=>", "b", ""]  # trailing ';' dropped
    assert toks[-1].kind == "eof"


def test_like_escapes_keep_their_backslash() -> None:
    """'\\%' and '\\_' stay escaped in the string value: LIKE still sees them as literals."""
    assert tokenize(r"'a\_b\%'")[0].value == "a\\_b\\%"


def test_an_unknown_character_is_tidbs_syntax_error() -> None:
    with pytest.raises(q.SQLError) as err:
        tokenize("select ~1")
    assert (err.value.code, err.value.state) == (1064, "42000")
    assert err.value.message.endswith('near "~1"')


# -- parser -----------------------------------------------------------------------------------


def where(sql: str) -> Any:
    stmt = q.parse(f"select * from t where {sql}")
    assert isinstance(stmt, q.Select)
    return stmt.where


def test_precedence() -> None:
    one, two, three = q.Lit(1), q.Lit(2), q.Lit(3)
    assert where("1 + 2 * 3") == q.BinOp("+", one, q.BinOp("*", two, three))
    assert where("1 - 2 - 3") == q.BinOp("-", q.BinOp("-", one, two), three)
    a, b, c = q.Col("a"), q.Col("b"), q.Col("c")
    assert where("a or b and c") == q.BinOp("OR", a, q.BinOp("AND", b, c))
    assert where("not a = 1 || b") == q.BinOp("OR", q.Not(q.BinOp("=", a, one)), b)
    assert where("a <> -2") == q.BinOp("!=", a, q.Lit(-2))  # '<>' is '!=', -2 a literal
    assert where("a not between 1 and 2 and b") == q.BinOp(
        "AND", q.Between(a, one, two, negated=True), b)
    assert where("t.a not in (1, 2)") == q.InList(q.Col("a", "t"), (one, two), negated=True)
    assert where("a is not null") == q.IsNull(a, negated=True)


def test_select_shape_and_column_names() -> None:
    stmt = q.parse("SELECT DISTINCT a, COUNT(*), b AS `x y`, c 'z', 1 + 1 FROM d.t USE INDEX (i) "
                   "WHERE a > 1 GROUP BY a ORDER BY a DESC, b LIMIT 2, 3 FOR UPDATE")
    assert isinstance(stmt, q.Select)
    assert [i.name for i in stmt.items] == ["a", "COUNT(*)", "x y", "z", "1 + 1"]
    assert stmt.items[1].expr == q.Func("COUNT", (), star=True)
    assert stmt.table == q.TableRef("d", "t", "USE", "i")
    assert stmt.group_by == (q.Col("a"),)
    assert stmt.order_by == ((q.Col("a"), True), (q.Col("b"), False))
    assert (stmt.limit, stmt.offset, stmt.distinct) == (3, 2, True)


@pytest.mark.xfail(strict=True, reason="known divergence: the stand-in names an un-aliased "
                   "expression by its tokens re-spaced; TiDB shows the original text ('1+1')")
def test_unaliased_expression_is_named_by_its_original_text() -> None:
    stmt = q.parse("select 1+1, lower( 'A' )")
    assert isinstance(stmt, q.Select)
    assert [i.name for i in stmt.items] == ["1+1", "lower( 'A' )"]


def test_statement_shapes() -> None:
    admin = q.parse("ADMIN SHOW DDL JOBS 5 WHERE state != 'synced'")
    assert admin == q.Simple("admin_show_ddl_jobs", {
        "n": 5, "where": q.BinOp("!=", q.Col("state"), q.Lit("synced"))})
    assert q.parse("admin cancel ddl jobs 7, 8") == q.Simple("admin_cancel", {"ids": [7, 8]})
    assert q.parse("SET GLOBAL tidb_ddl_enable_fast_reorg = OFF, @@session.x = 2") == q.Simple(
        "set", {"assigns": [("global", "tidb_ddl_enable_fast_reorg", "OFF"), ("session", "x", 2)]})
    assert q.parse("cancel import job 3") == q.Simple("cancel_import", {"id": 3})
    ins = q.parse("INSERT IGNORE INTO d.t (id, C) VALUES (1, 'a'), (2, NULL)")
    assert ins == q.Insert(q.TableRef("d", "t"), ("id", "c"),
                           ((q.Lit(1), q.Lit("a")), (q.Lit(2), q.Lit(None))), ignore=True)
    create = q.parse("CREATE TABLE IF NOT EXISTS t (id BIGINT NOT NULL AUTO_INCREMENT, "
                     "c VARCHAR(20) DEFAULT 'x', PRIMARY KEY (id), UNIQUE KEY uc (c))")
    assert isinstance(create, q.CreateTable)
    assert create.if_not_exists
    assert [(c.name, c.kind, c.not_null, c.default, c.auto_inc) for c in create.columns] == [
        ("id", "int", True, None, True), ("c", "str", False, "x", False)]
    assert create.indexes == (q.IndexDef("PRIMARY", ("id",), True, True),
                              q.IndexDef("uc", ("c",), unique=True))


@pytest.mark.parametrize("sql", [
    "selct 1", "select", "select 1 from", "admin cancel ddl jobs", "select (1", "update t",
])
def test_unsupported_or_broken_is_1064(sql: str) -> None:
    with pytest.raises(q.SQLError) as err:
        q.parse(sql)
    assert err.value.code == 1064
    assert err.value.state == "42000"
    assert "You have an error in your SQL syntax" in err.value.message


def render(e: Any) -> str:
    """An expression as SQL, every operator parenthesized (the round trip's other half)."""
    if isinstance(e, q.Lit):
        v = e.value
        if v is None:
            return "NULL"
        return "'" + v.replace("\\", "\\\\").replace("'", "''") + "'" if isinstance(v, str) else str(v)
    if isinstance(e, q.Col):
        return f"`{e.table}`.`{e.name}`" if e.table else f"`{e.name}`"
    if isinstance(e, q.Var):
        return f"@{e.name}" if e.scope == "user" else f"@@{e.scope}.{e.name}"
    if isinstance(e, q.Func):
        inner = "*" if e.star else ", ".join(render(a) for a in e.args)
        return f"{e.name}({'DISTINCT ' if e.distinct else ''}{inner})"
    if isinstance(e, q.BinOp):
        return f"({render(e.left)} {e.op} {render(e.right)})"
    if isinstance(e, q.Not):
        return f"(NOT {render(e.expr)})"
    neg = "NOT " if getattr(e, "negated", False) else ""
    if isinstance(e, q.InList):
        return f"({render(e.expr)} {neg}IN ({', '.join(render(i) for i in e.items)}))"
    if isinstance(e, q.Between):
        return f"({render(e.expr)} {neg}BETWEEN {render(e.low)} AND {render(e.high)})"
    if isinstance(e, q.Like):
        return f"({render(e.expr)} {neg}LIKE {render(e.pattern)})"
    if isinstance(e, q.IsNull):
        return f"({render(e.expr)} IS {neg}NULL)"
    if isinstance(e, q.Cast):
        return f"CAST({render(e.expr)} AS {e.to})"
    raise AssertionError(f"cannot render {e!r}")


@pytest.mark.parametrize("sql", [
    "a = 1 and b != 'x' or not c <=> null",
    "job_type like 'add index%' and state not in ('synced', 'rollback done', 'cancelled')",
    "-a * (b + 2) / 3 % 4 - @@global.tidb_ddl_reorg_worker_cnt between 1 and @x",
    "bit_xor(cast(crc32(concat_ws(',', id, c, concat(isnull(c)))) as unsigned)) > 0",
    "count(distinct t.a) >= 1.5 and lower(b) is not null and 'it''s' = b",
])
def test_round_trip(sql: str) -> None:
    tree = where(sql)
    assert where(render(tree)) == tree
    assert where(render(tree)) != where(f"({sql}) and 1")  # the comparison can tell apart


# -- evaluator --------------------------------------------------------------------------------


class Vars(q.Env):
    def var(self, name: str, scope: str) -> Any:
        return {("global", "w"): 4, ("user", "u"): "7"}.get((scope, name)) or super().var(name, scope)


def value(sql: str, **row: Any) -> Any:
    stmt = q.parse(f"select {sql}")
    assert isinstance(stmt, q.Select)
    return q.evaluate(stmt.items[0].expr, row, Vars())


@pytest.mark.parametrize(("sql", "expected"), [
    ("null and 0", 0), ("null and 1", None), ("null or 1", 1), ("null or 0", None),
    ("null = null", None), ("null <=> null", 1), ("1 <=> null", 0), ("not null", None),
    ("'10' = 10", 1), ("'abc' = 'ABC'", 1), ("'b' > 'A'", 1), ("2 < '10'", 1), ("'2' < '10'", 0),
    ("7 / 2", Decimal("3.5")), ("7 / 0", None), ("7 % 0", None), ("7 % 4", 3), ("1 + null", None),
    ("'a_c' like 'a\\_c'", 1), ("'abc' like 'a\\_c'", 0), ("'ABC' like 'a%'", 1),
    ("null like 'a'", None), ("3 between 1 and 3", 1), ("3 not between 1 and 2", 1),
    ("2 in (1, '2')", 1), ("null in (1)", None), ("5 not in (1, 2)", 1),
    ("cast('12abc' as signed)", 0), ("cast('12' as signed)", 12), ("cast(3 as char)", "3"),
    ("concat('a', null)", None), ("concat_ws(',', 'a', null, 2)", "a,2"), ("isnull(null)", 1),
    ("crc32('hello')", 907060870), ("ifnull(null, 'x')", "x"), ("upper('a')", "A"),
    ("@@global.w * 2", 8), ("@u + 1", 8),
])
def test_values(sql: str, expected: Any) -> None:
    got = value(sql)
    assert got == expected, (sql, got)
    assert type(got) is type(expected), (sql, got)


def test_row_values_and_datetime_text() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5)
    assert value("cast(ts as char)", ts=when) == "2024-01-02 03:04:05"
    assert value("cast(ts as char)", ts=when.replace(microsecond=7)) == "2024-01-02 03:04:05.000007"
    assert value("ts > '2024-01-01'", ts=when) == 1
    assert value("b like 'x%'", b=b"xyz") == 1


@pytest.mark.parametrize(("sql", "code", "state"), [
    ("nope", 1054, "42S22"), ("no_such_fn(1)", 1305, "42000"), ("count(*) + 1", 1111, "HY000"),
    ("@@session.unknown", 1193, "HY000"), ("cast(1 as json)", 1105, "HY000"),
])
def test_evaluation_errors(sql: str, code: int, state: str) -> None:
    with pytest.raises(q.SQLError) as err:
        value(sql)
    assert (err.value.code, err.value.state) == (code, state)


def test_aggregates() -> None:
    rows = [{"a": i % 3, "b": None if i == 0 else i} for i in range(7)]

    def agg(sql: str, rs: list[dict[str, Any]] = rows) -> Any:
        stmt = q.parse(f"select {sql} from t")
        assert isinstance(stmt, q.Select)
        found: list[q.Func] = []
        q.collect_aggregates(stmt.items[0].expr, found)
        assert len(found) == 1
        return q.aggregate(found[0], rs, q.Env())

    assert agg("count(*)") == 7
    assert agg("count(b)") == 6  # NULLs not counted
    assert agg("count(distinct a)") == 3
    assert agg("sum(b)") == Decimal(21)
    assert agg("avg(b)") == Decimal("3.5")
    assert (agg("min(b)"), agg("max(b)")) == (1, 6)
    assert agg("bit_xor(b)") == 1 ^ 2 ^ 3 ^ 4 ^ 5 ^ 6
    assert (agg("sum(b)", []), agg("bit_xor(b)", []), agg("count(*)", [])) == (None, 0, 0)


def test_tree_walks() -> None:
    cond = where("a = 1 and (b = 2 and c > 3) and (d = 4 or e = 5)")
    assert [type(c).__name__ for c in q.conjuncts(cond)] == ["BinOp"] * 4
    assert q.conjuncts(cond)[3] == where("d = 4 or e = 5")
    assert q.conjuncts(None) == []
    assert q.has_aggregate(where("1 + sum(a) > 2"))
    assert not q.has_aggregate(where("lower(a) = 'x'"))
