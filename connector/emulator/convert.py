"""Value conversions: portal-offset datetimes, Y/N booleans, the write-side boolean rule."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def parse_offset(tz: str) -> timezone:
    """`+03:00` -> a fixed timezone; raises ValueError naming the allowed form."""
    m = _OFFSET.match(tz.strip())
    if not m:
        raise ValueError(f"portal time zone {tz!r} is not an offset like '+03:00'")
    sign = 1 if m.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))


def iso(ts: float | None, tz: timezone) -> str | None:
    """Unix seconds -> `2026-01-01T03:00:00+03:00` (whole seconds, portal offset)."""
    if ts is None:
        return None
    return _iso(int(ts), tz)


@lru_cache(maxsize=8192)
def _iso(ts: int, tz: timezone) -> str:
    return datetime.fromtimestamp(ts, tz).isoformat()


def iso_date(day: str | None, tz: timezone) -> str | None:
    """A stored `YYYY-MM-DD` as portals return dates: UTC midnight rendered in the portal offset.

    server-behaviour.md §1 "Item JSON values" and bitrix24-rest.md §9.5 / §14 item 13:
    `2025-04-29` is `2025-04-29T03:00:00+03:00` on a +03:00 portal and
    `2025-04-28T19:00:00-05:00` on a -05:00 one (observation wins over the source reading).
    """
    if not day:
        return None
    return _iso_date(day, tz)


@lru_cache(maxsize=8192)
def _iso_date(day: str, tz: timezone) -> str:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).astimezone(tz).isoformat()


def parse_datetime(value: Any, tz: timezone) -> float | None:
    """strtotime-like: ISO 8601 (with or without offset; naive = portal time), or `dd.mm.yyyy`."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        m = re.fullmatch(r"(\d{2})[./](\d{2})[./](\d{4})(?:\s+(\d{2}):(\d{2})(?::(\d{2}))?)?", text)
        if not m:
            return None
        d, mo, y, hh, mi, ss = m.groups()
        try:
            dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0))
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


def parse_date(value: Any, tz: timezone) -> str | None:
    """A date field's stored form `YYYY-MM-DD`; the time part is discarded. None if unparsable."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            return None
    ts = parse_datetime(value, tz)
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz).date().isoformat()


def day_of(ts: float, tz: timezone) -> str:
    """The portal-local date of a timestamp."""
    return datetime.fromtimestamp(ts, tz).date().isoformat()


def write_bool(value: Any) -> bool | None:
    """The server's write rule: true/'true'/'y'/'Y' are true; 0/'0'/''/None empty; anything else false."""
    if value is None or value == "" or value == 0 or value == "0":
        if value is not False:
            return None
    if value is True or (isinstance(value, str) and value.strip().lower() in ("true", "y")):
        return True
    return False


def orm_bool(value: Any) -> bool | None:
    """ORM BooleanField normalisation used by crm.type: Y/N, true/false, 1/0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("y", "true", "1"):
            return True
        if v in ("n", "false", "0", ""):
            return False
    return None


def yn(value: bool | None) -> str | None:
    """True -> 'Y', False -> 'N', None stays None."""
    return None if value is None else ("Y" if value else "N")


def utc_now_iso(ts: float) -> str:
    """UTC ISO, for logs."""
    return datetime.fromtimestamp(ts, UTC).isoformat()
