"""The time rules (connector/times.py): store UTC text, portal ISO-8601 text, offsets, portal dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector import times as t


def test_datetime_examples() -> None:
    assert t.to_utc_text("2021-03-29T02:00:00+02:00") == "2021-03-29T00:00:00Z"
    assert t.to_utc_text("2026-01-02T03:04:05Z") == "2026-01-02T03:04:05Z"
    assert t.to_utc_text("2026-01-02T03:04:05", default_offset="+00:00") == "2026-01-02T03:04:05Z"
    moment = t.parse_moment("2026-01-02T03:04:05Z")
    assert t.portal_text(moment, "+03:00") == "2026-01-02T06:04:05+03:00"
    assert t.portal_text(moment) == "2026-01-02T03:04:05+00:00"
    moscow_midnight = t.parse_moment("2025-10-31 00:00:00", default_offset="+03:00")
    assert moscow_midnight == datetime(2025, 10, 30, 21, tzinfo=UTC)
    with pytest.raises(ValueError, match="no UTC offset"):
        t.parse_moment("2025-10-31T00:00:00")
    with pytest.raises(ValueError, match="ISO-8601"):
        t.parse_moment("31.10.2025")
    with pytest.raises(ValueError, match="offset"):
        t.portal_text(moment, "MSK")
    with pytest.raises(ValueError, match="no time zone"):
        t.utc_text(datetime(2026, 1, 2))


def test_local_moment_keeps_the_portal_offset() -> None:
    # server-behaviour.md §7: `time.date_start` carries the portal's offset (doctor reads it from there).
    local = t.local_moment("2026-01-02T06:04:05+03:00")
    assert t.offset_text(local) == "+03:00" and local.date() == date(2026, 1, 2)
    assert t.offset_text(t.local_moment("2026-01-02T06:04:05-05:30")) == "-05:30"
    assert t.parse_offset("+0300") == timezone(timedelta(hours=3)) and t.parse_offset("Z") == UTC


def test_now_is_utc_text() -> None:
    text = t.utc_now_text()
    assert text.endswith("Z") and len(text) == 20
    assert abs(t.parse_moment(text) - t.utc_now()) < timedelta(seconds=5)


def test_dates_do_not_shift_zone() -> None:
    # server-behaviour.md §1 "Item JSON values": dates are UTC midnight rendered in the portal offset.
    assert t.parse_date("2026-01-02T00:00:00+03:00") == date(2026, 1, 2)
    assert t.parse_date("2025-04-28T19:00:00-05:00") == date(2025, 4, 29)
    assert t.parse_date("2025-04-29") == date(2025, 4, 29)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        t.parse_date("02.01.2026")


_aware = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
_offsets = st.integers(-12 * 60, 14 * 60).map(lambda m: timedelta(minutes=m))


@settings(max_examples=150)
@given(_aware, _offsets)
def test_datetime_round_trip_any_offset(value: datetime, offset: timedelta) -> None:
    portal = t.portal_text(value, offset)
    assert t.parse_moment(portal) == value
    assert t.to_utc_text(portal) == value.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert t.parse_moment(portal).tzinfo == UTC
    assert t.utc_text(t.local_moment(portal)) == t.to_utc_text(portal)
