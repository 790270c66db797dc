"""Column types of template fields in a process table (docs/CONTRACTS.md "Local store layout").

TEXT / INTEGER / REAL per field type; money takes two columns, `<code>` REAL amount and
`<code>_currency` TEXT; any multiple field is one TEXT column holding a JSON array.
"""

from __future__ import annotations

from typing import Protocol

from connector.store.errors import StoreError
from connector.templates import FIELD_TYPES

SQL_TYPES: dict[str, str] = {
    "string": "TEXT", "url": "TEXT", "address": "TEXT", "enumeration": "TEXT",
    "integer": "INTEGER", "employee": "INTEGER", "boolean": "INTEGER",
    "double": "REAL", "money": "REAL",
    "date": "TEXT", "datetime": "TEXT", "file": "TEXT", "crm": "TEXT",
}


class FieldLike(Protocol):
    """What the column types need from a template field."""

    @property
    def code(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def multiple(self) -> bool: ...


def check_type(field_type: str) -> str:
    """Return the field type or raise naming the allowed ones."""
    if field_type not in SQL_TYPES:
        raise StoreError(f"unknown field type {field_type!r}; allowed: {', '.join(FIELD_TYPES)}")
    return field_type


def column_types(field: FieldLike) -> dict[str, str]:
    """Column names and SQL types a field occupies in its process table."""
    check_type(field.type)
    if field.multiple:
        return {field.code: "TEXT"}
    if field.type == "money":
        return {field.code: "REAL", f"{field.code}_currency": "TEXT"}
    return {field.code: SQL_TYPES[field.type]}
