"""Column types of template fields in a process table, and a clear error for an unknown type."""

from __future__ import annotations

import pytest

from connector.store import StoreError
from connector.store.values import SQL_TYPES, column_types
from connector.templates import FIELD_TYPES


class F:
    def __init__(self, type_: str, multiple: bool = False, code: str = "f") -> None:
        self.code, self.type, self.multiple = code, type_, multiple


def test_every_field_type_has_a_column_type() -> None:
    assert set(SQL_TYPES) == set(FIELD_TYPES)
    for field_type in FIELD_TYPES:
        assert column_types(F(field_type)) == (
            {"f": "REAL", "f_currency": "TEXT"} if field_type == "money" else {"f": SQL_TYPES[field_type]})
        assert column_types(F(field_type, True)) == {"f": "TEXT"}  # a JSON array


def test_money_takes_two_columns_unless_multiple() -> None:
    assert column_types(F("money", code="p")) == {"p": "REAL", "p_currency": "TEXT"}
    assert column_types(F("money", True, code="p")) == {"p": "TEXT"}


def test_an_unknown_type_names_the_allowed_ones() -> None:
    with pytest.raises(StoreError, match="unknown field type 'color'; allowed: string"):
        column_types(F("color"))
