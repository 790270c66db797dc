"""Small helpers to build SQL text safely from known names."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

PROCESS_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}\Z")  # \Z: `$` would let "car\\n" through
COLUMN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
NOW_SQL = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"


def ident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def where_equal(**filters: object) -> tuple[str, list[object]]:
    """` WHERE a = ? AND b = ?` (or nothing) for the filters that are not None, with their values."""
    given = {name: value for name, value in filters.items() if value is not None}
    clause = " AND ".join(f"{ident(name)} = ?" for name in given)
    return (f" WHERE {clause}" if clause else ""), list(given.values())


def literal(text: str) -> str:
    """Quote an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def json_object_sql(columns: Sequence[str], *, drop_nulls: bool = False, row: str = "") -> str:
    """SQL building a JSON object of the named columns (chained: SQLite caps function arguments).

    With `drop_nulls`, NULL columns are left out (a merge patch onto `{}`): readers take an absent
    column as NULL, and sparse rows make a third of the JSON text. `row` qualifies the column
    references (`OLD` in a trigger).
    """
    at = f"{row}." if row else ""
    pairs = [f"'{c}', {at}\"{c}\"" for c in columns]
    expr = "json_object(" + ", ".join(pairs[:60]) + ")"
    for start in range(60, len(pairs), 60):
        more = [f"'$.\"{c}\"', {at}\"{c}\"" for c in columns[start : start + 60]]
        expr = f"json_insert({expr}, " + ", ".join(more) + ")"
    return f"json_patch('{{}}', {expr})" if drop_nulls else expr


def to_json(value: Any) -> str:
    """JSON text as the internal tables keep it (sorted keys, UTF-8 as is)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
