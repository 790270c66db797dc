"""Pure conversions between Python field values and store column values.

Python side, per field type:
  string, url, address -> str; integer, employee -> int; double -> float; boolean -> bool;
  date -> datetime.date; datetime -> timezone-aware datetime; enumeration -> option code (str);
  money -> Money; file -> FileRef; crm -> CrmRef.
Column side (see docs/CONTRACTS.md "Local store layout"):
  TEXT / INTEGER / REAL; booleans 0/1; dates `YYYY-MM-DD`; datetimes UTC `YYYY-MM-DDTHH:MM:SSZ`;
  money split into `<code>` REAL amount and `<code>_currency` TEXT; file -> JSON metadata;
  crm link -> `"<type code>:<id>"`; any multiple field -> one TEXT column holding a JSON array
  (money inside an array is `{"amount": .., "currency": ..}`, a file is its metadata object).
`None` is NULL both ways; an empty multiple value is `"[]"`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from connector.store.errors import StoreError
from connector.templates import FIELD_TYPES

SQL_TYPES: dict[str, str] = {
    "string": "TEXT", "url": "TEXT", "address": "TEXT", "enumeration": "TEXT",
    "integer": "INTEGER", "employee": "INTEGER", "boolean": "INTEGER",
    "double": "REAL", "money": "REAL",
    "date": "TEXT", "datetime": "TEXT", "file": "TEXT", "crm": "TEXT",
}
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_CRM_REF = re.compile(r"^([a-z][a-z0-9_]*):([0-9]+)$")


class FieldLike(Protocol):
    """What the conversions need from a template field (read-only, so a Literal `type` fits)."""

    @property
    def code(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def multiple(self) -> bool: ...


class Money(BaseModel):
    """An amount with its currency (Bitrix24 sends `"300|RUB"`)."""

    model_config = ConfigDict(frozen=True)
    amount: float
    currency: str | None = None


class FileRef(BaseModel):
    """Metadata of a file field value; the content itself is never stored."""

    model_config = ConfigDict(frozen=True)
    id: int
    name: str | None = None
    url: str | None = None


class CrmRef(BaseModel):
    """A link to a CRM item by type code and portal id, e.g. `deal:12` or `car:7`."""

    model_config = ConfigDict(frozen=True)
    type_code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    id: int = Field(ge=0)

    def __str__(self) -> str:
        return f"{self.type_code}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> CrmRef:
        """Parse `"<type code>:<id>"`."""
        m = _CRM_REF.match(text)
        if not m:
            raise StoreError(f"crm link {text!r} is not '<type code>:<id>' (for example 'deal:12')")
        return cls(type_code=m.group(1), id=int(m.group(2)))


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


def format_utc(value: datetime) -> str:
    """Aware datetime -> UTC ISO text `2026-01-02T03:04:05Z` (sub-seconds dropped)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"datetime {value.isoformat()} has no time zone; give an aware datetime")
    return value.astimezone(UTC).strftime(UTC_FORMAT)


def parse_utc(text: str) -> datetime:
    """UTC ISO text (or any ISO text with an offset) -> aware datetime in UTC."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise StoreError(f"datetime {text!r} is not ISO-8601 like 2026-01-02T03:04:05Z") from exc
    if parsed.tzinfo is None:
        raise StoreError(f"datetime {text!r} has no offset; expected UTC like 2026-01-02T03:04:05Z")
    return parsed.astimezone(UTC)


def _bad(field_type: str, value: Any, allowed: str) -> StoreError:
    return StoreError(f"value {value!r} is not valid for a {field_type} field; expected {allowed}")


def to_scalar(field_type: str, value: Any) -> Any:
    """One Python value -> its column value (money -> Money kept whole; see to_columns)."""
    if value is None:
        return None
    t = check_type(field_type)
    if t in ("string", "url", "address", "enumeration"):
        if not isinstance(value, str):
            raise _bad(t, value, "a string")
        return value
    if t in ("integer", "employee"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(t, value, "an integer")
        return value
    if t == "double":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(t, value, "a number")
        return float(value)
    if t == "boolean":
        if not isinstance(value, bool):
            raise _bad(t, value, "True or False")
        return 1 if value else 0
    if t == "datetime":
        if not isinstance(value, datetime):
            raise _bad(t, value, "a timezone-aware datetime")
        return format_utc(value)
    if t == "date":
        if isinstance(value, datetime) or not isinstance(value, date):
            raise _bad(t, value, "a datetime.date")
        return value.isoformat()
    if t == "money":
        if not isinstance(value, Money):
            raise _bad(t, value, "a Money(amount, currency)")
        return value
    if t == "file":
        if not isinstance(value, FileRef):
            raise _bad(t, value, "a FileRef(id, name, url)")
        return value.model_dump()
    if not isinstance(value, CrmRef):
        raise _bad(t, value, "a CrmRef(type_code, id)")
    return str(value)


def from_scalar(field_type: str, raw: Any) -> Any:
    """One column value (or JSON array element) -> Python value."""
    if raw is None:
        return None
    t = check_type(field_type)
    if t in ("string", "url", "address", "enumeration"):
        return str(raw)
    if t in ("integer", "employee"):
        return int(raw)
    if t == "double":
        return float(raw)
    if t == "boolean":
        return bool(int(raw))
    if t == "datetime":
        return parse_utc(raw)
    if t == "date":
        return date.fromisoformat(raw)
    if t == "money":
        if isinstance(raw, Mapping):
            return Money(amount=float(raw["amount"]), currency=raw.get("currency"))
        return Money(amount=float(raw))
    if t == "file":
        data = json.loads(raw) if isinstance(raw, str) else raw
        return FileRef.model_validate(data)
    return CrmRef.parse(raw)


def dump_json(value: Any) -> str:
    """Compact JSON text as stored in TEXT columns."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def to_columns(field: FieldLike, value: Any) -> dict[str, Any]:
    """Python value of a field -> {column name: column value} (money fills two columns)."""
    if field.multiple:
        if value is None:
            return {field.code: None}
        if not isinstance(value, list | tuple):
            raise _bad(field.type, value, "a list (the field is multiple)")
        items = [to_scalar(field.type, v) for v in value]
        if field.type == "money":
            items = [None if m is None else m.model_dump() for m in items]
        return {field.code: dump_json(items)}
    scalar = to_scalar(field.type, value)
    if field.type == "money":
        if scalar is None:
            return {field.code: None, f"{field.code}_currency": None}
        return {field.code: scalar.amount, f"{field.code}_currency": scalar.currency}
    if field.type == "file" and scalar is not None:
        return {field.code: dump_json(scalar)}
    return {field.code: scalar}


def from_columns(field: FieldLike, row: Mapping[str, Any]) -> Any:
    """Row of a process table -> Python value of the field."""
    raw = row.get(field.code)
    if field.multiple:
        if raw is None:
            return None
        items = json.loads(raw)
        if not isinstance(items, list):
            raise StoreError(f"column {field.code!r} holds {raw!r}, expected a JSON array")
        return [from_scalar(field.type, v) for v in items]
    if field.type == "money":
        if raw is None:
            return None
        return Money(amount=float(raw), currency=row.get(f"{field.code}_currency"))
    return from_scalar(field.type, raw)
