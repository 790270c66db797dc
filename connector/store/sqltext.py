"""Small helpers to build SQL text safely from known names."""

from __future__ import annotations

import re

PROCESS_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
COLUMN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
NOW_SQL = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"


def ident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """Quote an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
