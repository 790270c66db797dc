"""`export --where`: one condition on the exported columns, checked token by token before use.

The condition may hold the export's own column names, literals, operators, parentheses and a short
list of scalar functions. Anything else is refused with the reason, before SQLite sees it: a
subquery, `UNION`, a table name, a comment, a `;`, a stray `)` that would close the export's own
parenthesis. So `--where` can only filter the process's own rows; it cannot read other tables.
(The query also runs under an authorizer that allows reads of the process's tables only.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from connector.reports.errors import ReportError

FUNCTIONS = frozenset({
    "abs", "coalesce", "date", "datetime", "glob", "ifnull", "instr", "julianday", "json_array_length",
    "json_extract", "length", "like", "lower", "ltrim", "max", "min", "nullif", "printf", "replace",
    "round", "rtrim", "strftime", "substr", "time", "trim", "typeof", "unicode", "upper",
})
KEYWORDS = frozenset({
    "and", "or", "not", "is", "null", "in", "like", "glob", "between", "escape", "case", "when", "then",
    "else", "end", "collate", "nocase", "rtrim", "binary", "true", "false", "cast", "as", "integer", "text",
    "real", "numeric", "isnull", "notnull",
})
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>--|/\*)
  | (?P<string>'(?:[^']|'')*')
  | (?P<blob>[xX]'[0-9A-Fa-f]*')
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<quoted>"(?:[^"]|"")+")
  | (?P<op><>|!=|==|<=|>=|\|\||[=<>+\-*/%(),])
""", re.VERBOSE)


def check_where(where: str, columns: Iterable[str]) -> str:
    """Return the condition if it only filters on `columns`; else raise a ReportError saying why."""
    allowed_columns = {c.lower() for c in columns}
    tokens = _tokens(where)
    depth = 0
    for i, (kind, text) in enumerate(tokens):
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "comment":
            raise ReportError("--where cannot hold a comment ('--' or '/*'): it is one condition")
        if kind == "op" and text == "(":
            depth += 1
        elif kind == "op" and text == ")":
            depth -= 1
            if depth < 0:
                raise ReportError("--where has a ')' without its '(': the condition must stand on its own")
        elif kind == "quoted":
            name = text[1:-1].replace('""', '"')
            if name.lower() not in allowed_columns:
                raise _unknown(name, allowed_columns)
        elif kind == "name":
            word = text.lower()
            if following == "(" and word in FUNCTIONS:
                continue
            if word in KEYWORDS or word in allowed_columns:
                continue
            raise _unknown(text, allowed_columns)
    if depth:
        raise ReportError("--where has a '(' that is never closed")
    if not tokens:
        raise ReportError("--where is empty; give a condition such as \"stage_name = 'Оффер'\"")
    return where


def _tokens(where: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(where):
        match = _TOKEN.match(where, pos)
        if match is None:
            raise ReportError(
                f"--where cannot use {where[pos]!r} (at character {pos + 1}); allowed: column names, "
                "'text', numbers, = <> < > <= >= + - * / % ||, AND OR NOT IN LIKE BETWEEN IS NULL, "
                "parentheses and functions"
            )
        kind = match.lastgroup or ""
        if kind == "comment":  # refused in the main loop, in reading order; nothing after it counts
            tokens.append((kind, match.group()))
            break
        if kind != "space":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


def _unknown(name: str, columns: set[str]) -> ReportError:
    if name.lower() in ("select", "union", "with", "values", "exists", "join", "where", "limit"):
        return ReportError(
            f"--where is one condition on the exported columns; {name.upper()!s} (a second query) is "
            "not allowed: it could read other tables"
        )
    return ReportError(
        f"--where may use the exported columns and the functions {', '.join(sorted(FUNCTIONS))}; "
        f"{name!r} is neither (columns: {', '.join(sorted(columns))})"
    )
