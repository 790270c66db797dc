"""The one home of the time rules: the store's UTC text, portal ISO-8601 text, offsets and portal dates.

Layer 0 (like `constants`): imports nothing from the connector. The store keeps every moment as
UTC text `2026-01-02T03:04:05Z` (whole seconds); portals send and accept ISO-8601 with an offset
(`2026-01-02T06:04:05+03:00`, server-behaviour.md §1 "Item JSON values").
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_OFFSET_RE = re.compile(r"^([+-])(\d{2}):?(\d{2})$")

Offset = str | timedelta | timezone


def utc_now() -> datetime:
    """The current moment, aware, in UTC."""
    return datetime.now(UTC)


def utc_now_text() -> str:
    """The current moment as the store's UTC text (`2026-01-02T03:04:05Z`)."""
    return datetime.now(UTC).strftime(UTC_FORMAT)


def utc_text(moment: datetime) -> str:
    """Aware datetime -> the store's UTC text `2026-01-02T03:04:05Z` (sub-seconds dropped)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime {moment.isoformat()} has no time zone; give an aware datetime")
    return moment.astimezone(UTC).strftime(UTC_FORMAT)


def parse_offset(offset: Offset) -> timezone:
    """`+03:00` / `+0300` / `Z` / timedelta / timezone -> a fixed timezone."""
    if isinstance(offset, timezone):
        return offset
    if isinstance(offset, timedelta):
        return timezone(offset)
    if offset in ("Z", "z"):
        return UTC
    m = _OFFSET_RE.match(offset)
    if not m:
        raise ValueError(f"bad UTC offset {offset!r}; use +HH:MM, e.g. +03:00")
    sign = -1 if m.group(1) == "-" else 1
    return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))


def offset_text(moment: datetime) -> str:
    """The UTC offset of an aware datetime as `+03:00` (`+00:00` for UTC or a naive value)."""
    raw = moment.strftime("%z") or "+0000"
    return f"{raw[:3]}:{raw[3:5]}"


def parse_moment(value: str, default_offset: Offset | None = None) -> datetime:
    """ISO-8601 datetime (`2021-03-29T02:00:00+02:00`, `...Z`) -> aware datetime in UTC.

    A value without an offset is an error unless `default_offset` says which zone it is in.
    """
    return local_moment(value, default_offset).astimezone(UTC)


def local_moment(value: str, default_offset: Offset | None = None) -> datetime:
    """ISO-8601 datetime -> aware datetime that keeps the offset it was written in (a portal's local time)."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected an ISO-8601 datetime string, got {value!r}")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 datetime (e.g. 2026-01-02T03:04:05+03:00)") from None
    if moment.tzinfo is None:
        if default_offset is None:
            raise ValueError(f"datetime {value!r} has no UTC offset; give one, e.g. {value}+03:00")
        moment = moment.replace(tzinfo=parse_offset(default_offset))
    return moment


def to_utc_text(value: str, default_offset: Offset | None = None) -> str:
    """Portal datetime text -> the store's UTC text (`...+03:00` -> `...Z`)."""
    return utc_text(parse_moment(value, default_offset))


def portal_text(moment: datetime, offset: Offset = UTC) -> str:
    """Aware datetime -> ISO-8601 with an explicit offset for the portal (`2026-01-02T06:04:05+03:00`)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime {moment.isoformat()} has no time zone; give an aware datetime")
    return moment.astimezone(parse_offset(offset)).isoformat(timespec="seconds")


def parse_date(value: str) -> date:
    """A portal date value -> date, for any portal offset.

    Portals return date fields as UTC midnight rendered in the portal offset (server-behaviour.md §1
    "Item JSON values"; bitrix24-rest.md §9.5): `2025-04-29T03:00:00+03:00`, and on a -05:00 portal
    `2025-04-28T19:00:00-05:00`, whose naive date part is the previous day. So: `YYYY-MM-DD` is the
    date; a datetime at UTC midnight means its UTC date; local midnight (`...T00:00:00+03:00`, the
    source's reading) its local date; any other datetime its local date (the server drops the time).
    """
    text = value.strip() if isinstance(value, str) else ""
    try:
        return _portal_date(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a portal date (YYYY-MM-DD or an ISO datetime like 2025-04-29T03:00:00+03:00)"
        ) from None


@lru_cache(maxsize=65536)
def _portal_date(text: str) -> date:
    if len(text) == 10:
        return date.fromisoformat(text)
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    if moment.tzinfo is not None:
        utc = moment.astimezone(UTC)
        if (utc.hour, utc.minute, utc.second, utc.microsecond) == (0, 0, 0, 0):
            return utc.date()
    return moment.date()
