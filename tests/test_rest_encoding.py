"""PHP bracket encoding: the decided value rule and an encode -> parse round trip."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rest_support import parse_command, parse_php_query

from connector.rest.encoding import command, json_params, php_query
from connector.rest.references import batch_ref


def test_scalar_rule_bool_none_empty() -> None:
    query = php_query({"a": True, "b": False, "c": None, "d": [], "e": {}, "f": 0, "g": 1.5})
    assert query == "a=Y&b=N&c=&d=&e=&f=0&g=1.5"


def test_nested_filter_with_operator_prefixes_and_logic_or() -> None:
    params = {"entityTypeId": 1032, "filter": {
        ">=updatedTime": "2025-10-31T00:00:00+02:00",
        "@id": [3, 5],
        "!@stageId": ["DT1032_5:FAIL"],
        "0": {"logic": "OR", "0": {"%title": "pump"}, "1": {"=opened": True}},
    }}
    parsed = parse_php_query(php_query(params))
    assert parsed == {"entityTypeId": "1032", "filter": {
        ">=updatedTime": "2025-10-31T00:00:00+02:00",
        "@id": {"0": "3", "1": "5"},
        "!@stageId": {"0": "DT1032_5:FAIL"},
        "0": {"logic": "OR", "0": {"%title": "pump"}, "1": {"=opened": "Y"}},
    }}


def test_special_characters_survive_in_values() -> None:
    value = "a&b=c d+e%f#g?h/ü"
    assert parse_php_query(php_query({"fields": {"title": value}})) == {"fields": {"title": value}}


def test_batch_references_pass_unencoded() -> None:
    ref = batch_ref("p0", "items", 49, "id")
    cmd = command("crm.item.list", {"filter": {">id": ref}, "start": -1})
    assert "=$result[p0][items][49][id]" in cmd
    method, params = parse_command(cmd)
    assert method == "crm.item.list"
    assert params == {"filter": {">id": "$result[p0][items][49][id]"}, "start": "-1"}


def test_user_text_that_looks_like_a_reference_is_encoded() -> None:
    # Only a `BatchRef` travels unencoded; encoding alone does not protect user text (PHP decodes it
    # before substituting), which is why the client keeps such commands out of batches.
    assert "$" not in php_query({"title": "cost $result[a][b] total"})
    assert "$" not in php_query({"title": "$result[a][b]"})


def test_dates_are_iso_8601() -> None:
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    assert parse_php_query(php_query({"d": dt.date(2026, 1, 2), "t": moment})) == {
        "d": "2026-01-02", "t": "2026-01-02T03:04:05+03:00"}
    assert json_params({"t": moment}) == {"t": "2026-01-02T03:04:05+03:00"}


def test_json_params_keep_types_but_booleans_become_y_n() -> None:
    assert json_params({"a": True, "b": [False, None, 2], "c": {"d": (1, "x")}, "e": []}) == {
        "a": "Y", "b": ["N", None, 2], "c": {"d": [1, "x"]}, "e": []}


def test_unsupported_value_names_the_parameter() -> None:
    with pytest.raises(TypeError, match=r"fields\[blob\].*bytes"):
        php_query({"fields": {"blob": b"raw"}})


@pytest.mark.parametrize("key", ["a[b", "x]", ""])
def test_bracket_in_key_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="must not contain"):
        php_query({"filter": {key: 1}})


def test_command_without_params_has_no_question_mark() -> None:
    assert command("crm.type.fields", None) == "crm.type.fields"


# -- property: encode -> PHP-style parse round-trips ---------------------------------------------

_PREFIXES = ["", ">=", ">", "<=", "<", "@", "!@", "%", "=%", "!=", "!", "="]
_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1,
                 max_size=8)
_KEYS = st.builds(lambda prefix, name: prefix + name, st.sampled_from(_PREFIXES), _NAMES)
_SCALARS = st.one_of(st.booleans(), st.none(), st.integers(-10**9, 10**9), st.text(max_size=12),
                     st.floats(allow_nan=False, allow_infinity=False, width=32))
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=12,
)


def php_view(value: Any) -> Any:
    """What PHP sees after parse_str, by the documented rule."""
    if isinstance(value, dict):
        return {str(k): php_view(v) for k, v in value.items()} if value else ""
    if isinstance(value, list):
        return {str(i): php_view(v) for i, v in enumerate(value)} if value else ""
    if value is True:
        return "Y"
    if value is False:
        return "N"
    if value is None:
        return ""
    return str(value)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=5))
def test_encode_then_php_parse_round_trips(params: dict[str, Any]) -> None:
    assert parse_php_query(php_query(params)) == php_view(params)
