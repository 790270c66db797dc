"""The emulator's JSON encoder: `Main\\Web\\Json::encode` as server-behaviour.md §7 has it.

Flags (§7): JSON_HEX_TAG, JSON_HEX_AMP, JSON_HEX_APOS, JSON_HEX_QUOT, JSON_UNESCAPED_UNICODE; `/` is
written `\\/`. Compact output. The encoder makes its bytes with orjson where it can and must give
exactly what the plain reference gives (`tests/support/php_json.py`: json.dumps, then PHP's escapes),
for any value the emulator can hold. NaN and infinities are not among them: PHP's json_decode refuses
them, and so does the emulator's body decoding (tested here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from support.php_json import php_json

from connector.emulator.server import decode_params, encode_json


@dataclass
class Stored:
    name: str


ODD_TEXTS = [
    '"', '\\', '\\"', '"\\', 'a\\\\"b', "</script>", "&'", "x/y", "1e-5", "0.00001", "\u2028", "\x00\x7f",
]
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(ODD_TEXTS)
FLOATS = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [1e-5, 1.5e-7, 0.0001, 1e16, 1e22, -0.0, 5e-324, 1e300, 123456789012345.0])
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | FLOATS | TEXT
           | st.datetimes(timezones=st.just(UTC)) | st.dates() | st.builds(Stored, TEXT))
KEYS = TEXT | st.integers(min_value=-5, max_value=5)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                      | st.dictionaries(KEYS, inner, max_size=4), max_leaves=12)


@settings(max_examples=500, deadline=None)
@given(VALUES)
def test_the_encoder_writes_the_reference_bytes(value: Any) -> None:
    assert encode_json(value) == php_json(value)


def test_hex_escapes_on_a_known_answer() -> None:
    body = {"title": 'Say "hi" </b> & \'bye\' a\\b', "url": "https://x.test/a", "n": 1e-5, "big": 2**65}
    assert encode_json(body) == (
        b'{"title":"Say \\u0022hi\\u0022 \\u003C\\/b\\u003E \\u0026 \\u0027bye\\u0027 '
        b'a\\\\b","url":"https:\\/\\/x.test\\/a","n":1e-05,"big":36893488147419103232}'
    )
    assert json.loads(encode_json(body)) == body


def test_a_body_with_nan_or_infinity_is_not_json_to_the_portal() -> None:
    """PHP's json_decode refuses the constants; the body's params are then as if it had none.

    The reference notes are silent on request bodies with these constants: the stricter behaviour."""
    assert decode_params("", b'{"id": NaN}', "application/json") == {}
    assert decode_params("start=5", b'{"x": Infinity, "y": 1}', "application/json") == {"start": "5"}
    assert decode_params("", b'{"id": 1.5}', "application/json") == {"id": 1.5}


def test_dates_go_through_str_as_before() -> None:
    value = {"d": date(2026, 1, 2), "t": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}
    assert encode_json(value) == b'{"d":"2026-01-02","t":"2026-01-02 03:04:05+00:00"}'
