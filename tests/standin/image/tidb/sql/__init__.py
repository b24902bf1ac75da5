"""The stand-in TiDB's SQL front end for the statement shapes of docs/sql-contract.md.

Text -> tokens (`lexer`) -> a tree of frozen dataclasses (`ast`) by recursive descent
(`parser` for expressions, SELECT and table definitions; `statements` for the dispatch on
the first keyword) -> values over a row (`evaluator`). Anything outside the supported
shapes raises ``SQLError(1064, ...)`` like TiDB's parser does. This module re-exports
the pieces so the executor reads them as ``sql.X``.
"""

from __future__ import annotations

from .ast import (
    AGGREGATES,
    Between,
    BinOp,
    Cast,
    Col,
    ColumnDef,
    CreateTable,
    Delete,
    Func,
    IndexDef,
    InList,
    Insert,
    IsNull,
    Like,
    Lit,
    Not,
    Select,
    SelectItem,
    Simple,
    TableRef,
    Update,
    Var,
    collect_aggregates,
    conjuncts,
    expr_name,
    has_aggregate,
)
from .errors import (
    SQLError,
    syntax_error,
)
from .evaluator import (
    Env,
    aggregate,
    as_text,
    compare,
    evaluate,
    like_to_regex,
    to_number,
    truthy,
)
from .lexer import (
    Tok,
    tokenize,
)
from .parser import (
    Parser,
)
from .statements import (
    parse,
)

__all__ = [
    "AGGREGATES",
    "Between",
    "BinOp",
    "Cast",
    "Col",
    "ColumnDef",
    "CreateTable",
    "Delete",
    "Env",
    "Func",
    "InList",
    "IndexDef",
    "Insert",
    "IsNull",
    "Like",
    "Lit",
    "Not",
    "Parser",
    "SQLError",
    "Select",
    "SelectItem",
    "Simple",
    "TableRef",
    "Tok",
    "Update",
    "Var",
    "aggregate",
    "as_text",
    "collect_aggregates",
    "compare",
    "conjuncts",
    "evaluate",
    "expr_name",
    "has_aggregate",
    "like_to_regex",
    "parse",
    "syntax_error",
    "to_number",
    "tokenize",
    "truthy",
]
