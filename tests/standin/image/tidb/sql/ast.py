"""The syntax tree: frozen dataclasses for expressions and statements, and the pure
walks over expressions that both the parser and the executor need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
