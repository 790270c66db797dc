"""How values look to people: the portal's time zone, dates, money, user names, CSV formula guard.

The store keeps datetimes in UTC (`2026-11-25T06:16:48Z`), dates as `YYYY-MM-DD`, money as an amount
plus a currency column, employees as user ids. Exports show them in the portal's time zone, with the
template language's number style, and with the users' names (from `user.get`, see people.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.reports.errors import ReportError
from connector.times import local_moment

_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")
CURRENCY_SIGNS = {"RUB": "₽", "USD": "$", "EUR": "€", "KZT": "₸", "UAH": "₴", "BYN": "Br", "CNY": "¥"}
# OWASP CSV injection: a cell starting with one of these is taken for a formula by spreadsheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_CACHE_LIMIT = 50_000


def parse_tz(text: str) -> tzinfo:
    """`+03:00`, `-0530`, `UTC`, `Z` or an IANA name such as `Europe/Moscow`; a clear error otherwise."""
    value = text.strip()
    if value.upper() in ("UTC", "Z", "GMT"):
        return UTC
    match = _OFFSET.match(value)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        hours, minutes = int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes > 59:
            raise ReportError(f"time zone {text!r} is out of range; use an offset from -12:00 to +14:00")
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError(
            f"unknown time zone {text!r}; use an offset such as +03:00 or a name such as Europe/Moscow"
        ) from None


def tz_name(tz: tzinfo) -> str:
    """A short name for headers: `UTC`, `UTC+03:00` or the IANA name."""
    if isinstance(tz, ZoneInfo):
        return tz.key
    offset = tz.utcoffset(None) or timedelta(0)
    if not offset:
        return "UTC"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def stored_datetime(value: Any) -> datetime | None:
    """A store datetime (UTC ISO-8601) as an aware datetime; None when empty or not a datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return local_moment(value, UTC)
    except ValueError:
        return None


def stored_date(value: Any) -> date | None:
    """A store date (`YYYY-MM-DD`, or a datetime whose date part is taken); None when not a date."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


@dataclass(frozen=True)
class Style:
    """How a language writes numbers and dates in text (CSV, HTML)."""

    decimal: str
    thousands: str
    date: str
    datetime: str
    yes: str
    no: str


STYLES = {
    "ru": Style(",", "\u202f", "%d.%m.%Y", "%d.%m.%Y %H:%M", "да", "нет"),
    "en": Style(".", ",", "%Y-%m-%d", "%Y-%m-%d %H:%M", "yes", "no"),
}


def style_for(lang: str) -> Style:
    return STYLES.get(lang, STYLES["en"])


@dataclass
class Display:
    """The context that turns stored values into what people read: time zone, language, user names."""

    tz: tzinfo = UTC
    lang: str = "ru"
    users: Mapping[int, str] = field(default_factory=dict)
    _local: dict[str, datetime | None] = field(default_factory=dict, repr=False)

    def local(self, value: Any) -> datetime | None:
        """A stored UTC datetime in the portal's time zone, naive (cached: exports repeat values)."""
        if not isinstance(value, str):
            return None
        found = self._local.get(value, False)
        if found is not False:
            return found  # type: ignore[return-value]
        parsed = stored_datetime(value)
        result = parsed.astimezone(self.tz).replace(tzinfo=None) if parsed else None
        if len(self._local) > _CACHE_LIMIT:
            self._local.clear()
        self._local[value] = result
        return result

    def user(self, value: Any) -> str | None:
        """An employee value (a user id, or a JSON array of ids) as names; unknown ids as `#<id>`."""
        if value is None or value == "":
            return None
        ids = _ids(value)
        return ", ".join(self.users.get(i) or f"#{i}" for i in ids) if ids else str(value)

    def number(self, value: float | int, digits: int | None = None) -> str:
        """A number in the language's style (`109 000,5` / `109,000.5`)."""
        style = style_for(self.lang)
        if isinstance(value, int) or (digits is None and float(value).is_integer()):
            text = f"{int(value):,}"
        else:
            text = f"{value:,.{digits if digits is not None else 2}f}"
            if digits is None:
                text = text.rstrip("0").rstrip(".")
        return text.translate({ord(","): style.thousands, ord("."): style.decimal})

    def money(self, amount: Any, currency: Any) -> str | None:
        """`109 000,00 ₽` / `1,500.00 USD`."""
        if not isinstance(amount, int | float) or isinstance(amount, bool):
            return None if amount is None else str(amount)
        sign = CURRENCY_SIGNS.get(str(currency or ""), str(currency or "")) if self.lang == "ru" else currency
        whole = float(amount).is_integer()
        return f"{self.number(int(amount) if whole else float(amount), 2)} {sign or ''}".rstrip()

    def when(self, value: Any) -> str | None:
        """A stored datetime as local text, e.g. `25.11.2026 09:16`."""
        moment = self.local(value)
        if moment is None:
            return None if value is None else str(value)
        return moment.strftime(style_for(self.lang).datetime)

    def day(self, value: Any) -> str | None:
        """A stored date as text, e.g. `25.11.2026`."""
        found = stored_date(value)
        if found is None:
            return None if value is None else str(value)
        return found.strftime(style_for(self.lang).date)

    def yes_no(self, value: Any) -> str | None:
        if value is None:
            return None
        style = style_for(self.lang)
        return style.yes if value in (1, True, "1", "Y") else style.no


def _ids(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return []
        if isinstance(parsed, int) and not isinstance(parsed, bool):
            return [parsed]
        if isinstance(parsed, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in parsed):
            return list(parsed)
    return []


def user_ids(value: Any) -> list[int]:
    """The user ids in an employee value (an id, or a JSON array of ids)."""
    return _ids(value)


def neutralise(value: str) -> str:
    """OWASP: a text cell that a spreadsheet would run as a formula gets a leading `'`.

    Plain numbers such as `-5` or `+7,5` are left alone: they are data, not formulas.
    """
    if value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def finite(value: Any) -> bool:
    """True for an int or a finite float (what a spreadsheet number cell can hold)."""
    cls = value.__class__
    return cls is int or (cls is float and math.isfinite(value))


Converter = Callable[[Any], Any]
