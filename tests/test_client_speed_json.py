"""`decode_json` (orjson first, `json.loads` after) gives exactly what `json.loads` gives, or its error.

Property tests over the JSON a portal sends: PHP's `json_encode` escapes `/` as `\\/` and, by default,
every non-ASCII character as `\\uXXXX` (surrogate pairs for astral ones); PHP writes floats as
`1.0e+25`; plus what orjson treats differently from the standard library: integers beyond 64 bits
(orjson would make them floats), `NaN`/`Infinity`, `1e400`, lone surrogates, a byte-order mark.
Values are compared by type and `repr` (so `1`, `1.0` and `True` differ, `-0.0` is not `0.0`, and a
NaN equals a NaN), dict keys in order. Then through the client, over mocked HTTP: such answers are
accepted, and bad bodies keep their one-line errors.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st
from support.php_json import PHP_ESCAPES, hex_quot
from test_rest_support import BASE

from connector.rest import Client, RetryPolicy, TransportError
from connector.rest.decoding import decode_json

NUMBER_TEXT = st.from_regex(r"\A-?(0|[1-9][0-9]{0,45})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?\Z")
EDGE_INTEGERS = st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**19, 10**30])
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)  # surrogates included
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), EDGE_INTEGERS, st.floats(), TEXT,
    st.sampled_from(["2026-01-02T06:04:05+03:00", "https://x.bitrix24.ru/a/b", "Ёлка/ü €", "a\\/b"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(TEXT, inner, max_size=4)),
                      max_leaves=20)


def canonical(value: Any) -> Any:
    """A form that compares type and exact value (and dict key order)."""
    if isinstance(value, dict):
        return ("dict", [(key, canonical(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [canonical(item) for item in value])
    return (type(value).__name__, repr(value))


def outcome(decode: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "ok", canonical(decode(body))
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return "error", type(exc).__name__


def php_json(value: Any, ascii_only: bool = True) -> bytes:
    """`json_encode` as PHP writes it: `\\uXXXX` (unless JSON_UNESCAPED_UNICODE), and the portal's
    JSON_HEX_QUOT|TAG|AMP|APOS and `\\/` escapes (`tests/support/php_json.py`, server-behaviour.md §7)."""
    text = hex_quot(json.dumps(value, ensure_ascii=ascii_only))
    for ch, esc in PHP_ESCAPES:
        text = text.replace(ch, esc)
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None)
@given(value=VALUES, ascii_only=st.booleans())
def test_same_value_as_json_loads_for_php_answers(value: Any, ascii_only: bool) -> None:
    body = php_json({"result": value, "time": {"start": 1.5}}, ascii_only)
    assert outcome(decode_json, body) == outcome(json.loads, body)


@settings(max_examples=150, deadline=None)
@given(numbers=st.lists(NUMBER_TEXT, min_size=1, max_size=6))
def test_same_value_for_any_number_text(numbers: list[str]) -> None:
    """PHP float text (`1.0e+25`), huge exponents (inf in json.loads), integers of any length."""
    body = ('{"result":[' + ",".join(numbers) + "]}").encode()
    assert outcome(decode_json, body) == outcome(json.loads, body)


@settings(max_examples=300, deadline=None)
@given(value=VALUES, cut=st.integers(0, 400), junk=st.sampled_from([b"", b"<", b"\xff", b"}", b",", b"\x00"]))
def test_same_error_or_value_for_broken_bodies(value: Any, cut: int, junk: bytes) -> None:
    """A cut-off or spoiled body: refused by both with the same error type (or, rarely, read alike)."""
    body = php_json({"result": value})
    broken = body[:cut] + junk
    assert outcome(decode_json, broken) == outcome(json.loads, broken)


@pytest.mark.parametrize("body", [
    b'{"result": NaN, "b": Infinity, "c": -Infinity}',
    b'{"result": 18446744073709551616}',  # 2**64: orjson would give a float
    b'{"result": -9223372036854775809}',  # below int64
    b'{"result": 12345678901234567890123}',
    b'{"result": 1e400}',
    b'{"result": "\\ud800"}',  # a lone surrogate escape
    b'{"result": "\xed\xa0\x80"}',  # a surrogate in (CESU-style) UTF-8: json.loads passes it through
    b'\xef\xbb\xbf{"result": 1}',  # a UTF-8 byte-order mark
    '{"result": "ü"}'.encode("utf-16"),  # UTF-16 with its byte-order mark: json.loads detects it
    b'{"result": "\\/\\u00fc\\u20ac\\ud83d\\ude00", "a": 1, "a": 2}',
])
def test_bodies_orjson_reads_differently_or_refuses(body: bytes) -> None:
    assert outcome(decode_json, body) == outcome(json.loads, body)
    assert outcome(decode_json, body)[0] == "ok"


def test_a_huge_integer_keeps_every_digit() -> None:
    assert decode_json(b'{"result": [18446744073709551617, -99999999999999999999]}') == {
        "result": [2**64 + 1, -99999999999999999999]}


@pytest.mark.parametrize("body", [b"", b"<html>", b'{"result": [1, 2', b"\xa0{}", b"{}\x00", b'"\t"'])
def test_bad_bodies_raise_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        decode_json(body)


# -- through the client ---------------------------------------------------------------------------


@responses.activate
def test_client_accepts_answers_only_json_loads_reads() -> None:
    body = b'{"result": {"big": 18446744073709551616, "nan": NaN, "url": "https:\\/\\/x\\/y"}, "time": {}}'
    responses.post(BASE + "profile", body=body, content_type="application/json")
    result = Client.from_webhook(BASE).call("profile").result
    assert result["big"] == 2**64 and isinstance(result["big"], int)
    assert result["nan"] != result["nan"] and result["url"] == "https://x/y"


@pytest.mark.parametrize(("body", "code", "words"), [
    (b'{"result": {"items": [1, 2', "TRUNCATED", "ends early"),
    (b"<html><body>502</body></html>", "HTML", "HTML page"),
    (b"", "BAD_BODY", "empty body"),
    (b"\xa0 nonsense", "BAD_BODY", "not JSON"),
])
@responses.activate
def test_client_bad_bodies_keep_their_errors(body: bytes, code: str, words: str) -> None:
    responses.post(BASE + "profile", body=body, status=200, content_type="text/plain")
    client = Client.from_webhook(BASE, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(TransportError) as caught:
        client.call("profile")
    assert caught.value.code == code and words in str(caught.value)
