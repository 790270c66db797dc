"""Value conversions between Python field values and store columns (round trips, bad input)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.store import CrmRef, FileRef, Money, StoreError
from connector.store.values import FIELD_TYPES, column_types, from_columns, to_columns

SETTINGS = settings(max_examples=60, deadline=None)


class F:
    def __init__(self, type_: str, multiple: bool = False, code: str = "f") -> None:
        self.code, self.type, self.multiple = code, type_, multiple


text = st.text(max_size=30)
zones = st.sampled_from([UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-5))])
aware = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "string": text, "url": text, "address": text,
    "enumeration": st.from_regex(r"^[a-z0-9][a-z0-9_]{0,10}$", fullmatch=True),
    "integer": st.integers(-(2**62), 2**62), "employee": st.integers(1, 10**9),
    "double": finite, "boolean": st.booleans(),
    "date": st.dates(min_value=date(1, 1, 1)),
    "datetime": aware.map(lambda d: d.replace(microsecond=0)),
    "money": st.builds(Money, amount=finite, currency=st.one_of(st.none(), st.sampled_from(["RUB", "USD"]))),
    "file": st.builds(FileRef, id=st.integers(1, 10**9), name=st.one_of(st.none(), text),
                      url=st.one_of(st.none(), text)),
    "crm": st.builds(CrmRef, type_code=st.sampled_from(["deal", "car", "work_order"]),
                     id=st.integers(0, 10**9)),
}


def _same(field_type: str, a: Any, b: Any) -> bool:
    if field_type == "datetime" and a is not None:
        return a == b and b.tzinfo is not None and b.utcoffset() == timedelta(0)
    return a == b


@st.composite
def typed_value(draw: st.DrawFn) -> tuple[str, bool, Any]:
    field_type = draw(st.sampled_from(FIELD_TYPES))
    multiple = draw(st.booleans()) if field_type != "boolean" else False
    scalar = st.one_of(st.none(), SCALARS[field_type])
    value = draw(st.lists(SCALARS[field_type], max_size=4) | st.none()) if multiple else draw(scalar)
    return field_type, multiple, value


@SETTINGS
@given(typed_value())
def test_round_trip_every_type(case: tuple[str, bool, Any]) -> None:
    field_type, multiple, value = case
    field = F(field_type, multiple)
    columns = to_columns(field, value)
    assert set(columns) == set(column_types(field))
    for v in columns.values():
        assert v is None or isinstance(v, int | float | str)
    back = from_columns(field, columns)
    if multiple and value is not None:
        assert len(back) == len(value)
        assert all(_same(field_type, a, b) for a, b in zip(value, back, strict=True))
        assert isinstance(json.loads(columns["f"]), list)
    else:
        assert _same(field_type, value, back)


@SETTINGS
@given(aware)
def test_datetime_column_is_utc_text(value: datetime) -> None:
    col = to_columns(F("datetime"), value)["f"]
    assert col.endswith("Z") and len(col) == 20
    assert col == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_column_shapes() -> None:
    assert to_columns(F("money", code="price"), Money(amount=300, currency="RUB")) == {
        "price": 300.0, "price_currency": "RUB"}
    assert to_columns(F("money", code="price"), None) == {"price": None, "price_currency": None}
    assert to_columns(F("boolean"), True) == {"f": 1}
    assert to_columns(F("boolean"), False) == {"f": 0}
    assert to_columns(F("crm"), CrmRef(type_code="deal", id=12)) == {"f": "deal:12"}
    assert json.loads(to_columns(F("file"), FileRef(id=5, name="a.pdf"))["f"]) == {
        "id": 5, "name": "a.pdf", "url": None}
    assert to_columns(F("integer", True), []) == {"f": "[]"}
    assert to_columns(F("enumeration", True), ["a", "b"]) == {"f": '["a","b"]'}
    assert to_columns(F("string", True), ["ё"]) == {"f": '["ё"]'}
    assert to_columns(F("money", True), [Money(amount=1.5, currency="USD")]) == {
        "f": '[{"amount":1.5,"currency":"USD"}]'}
    assert to_columns(F("date"), date(2026, 1, 2)) == {"f": "2026-01-02"}
    assert column_types(F("money", code="p")) == {"p": "REAL", "p_currency": "TEXT"}
    assert column_types(F("money", True, code="p")) == {"p": "TEXT"}


@pytest.mark.parametrize(("field_type", "value", "expected"), [
    ("integer", "5", "an integer"),
    ("integer", True, "an integer"),
    ("boolean", 1, "True or False"),
    ("double", "1.0", "a number"),
    ("date", datetime(2026, 1, 1, tzinfo=UTC), "a datetime.date"),
    ("datetime", datetime(2026, 1, 1), "no time zone"),
    ("money", "300|RUB", "Money"),
    ("crm", "deal:1", "CrmRef"),
    ("string", 5, "a string"),
])
def test_bad_values_name_type_and_allowed(field_type: str, value: Any, expected: str) -> None:
    with pytest.raises(StoreError, match=expected):
        to_columns(F(field_type), value)


def test_bad_type_and_bad_multiple() -> None:
    with pytest.raises(StoreError, match="unknown field type 'color'; allowed: string"):
        to_columns(F("color"), "x")
    with pytest.raises(StoreError, match="a list"):
        to_columns(F("string", True), "x")
    with pytest.raises(StoreError, match="expected a JSON array"):
        from_columns(F("string", True), {"f": '"x"'})
    with pytest.raises(StoreError, match="'<type code>:<id>'"):
        from_columns(F("crm"), {"f": "deal-12"})
    with pytest.raises(StoreError, match="no offset"):
        from_columns(F("datetime"), {"f": "2026-01-01T00:00:00"})
