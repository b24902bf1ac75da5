"""Tokens of one SQL statement: identifiers, quoted names, strings (MySQL escapes),
numbers (int or Decimal), operators and variables; comments and whitespace dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import syntax_error


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
