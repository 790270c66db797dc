"""A plain reference of the portal's JSON encoder, for tests of the emulator's fast one.

`Main\\Web\\Json::encode` (server-behaviour.md §7): compact, unescaped unicode, JSON_HEX_QUOT,
JSON_HEX_TAG, JSON_HEX_AMP, JSON_HEX_APOS, and `/` written `\\/`.
"""

from __future__ import annotations

import json
from typing import Any

PHP_ESCAPES = (("<", "\\u003C"), (">", "\\u003E"), ("&", "\\u0026"), ("'", "\\u0027"), ("/", "\\/"))


def hex_quot(text: str) -> str:
    """JSON_HEX_QUOT over compact JSON: every escape `\\"` becomes `\\u0022` (a backslash only occurs in
    strings, always as the start of a two-character escape or of `\\uXXXX`)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\":
            out.append("\\u0022" if text[i + 1] == '"' else text[i:i + 2])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def php_json(data: Any) -> bytes:
    """json.dumps (compact, unescaped unicode, `str()` of other values), then PHP's escapes one by one."""
    text = hex_quot(json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str))
    for ch, esc in PHP_ESCAPES:
        text = text.replace(ch, esc)
    return text.encode("utf-8")
