"""Controller argument binding: required params and their declared types, with the server's errors."""

from __future__ import annotations

import math
import re
from typing import Any, TypeGuard

from .errors import ApiError

_MISSING = object()
_NUMERIC_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t\n\r\v\f]*")


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, dict | list):
        return "Array"
    return str(value)


def _missing(name: str) -> ApiError:
    return ApiError("100", f"Could not find value for parameter {{{name}}}")


def _mistyped(name: str, value: Any, kind: str) -> ApiError:
    return ApiError(
        "100",
        f"Invalid value {{{_value_text(value)}}} to match with parameter {{{name}}}. "
        f"Should be value of type {kind}.",
    )


def is_numeric(value: Any) -> TypeGuard[int | float | str]:
    """PHP is_numeric for what JSON or a form can carry.

    Text: decimal digits with an optional sign, point and exponent, trailing whitespace allowed; not
    what Python's float() reads besides (`nan`, `inf`, `1_000`, non-ASCII digits), which PHP refuses.
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        return _NUMERIC_TEXT.fullmatch(value) is not None
    return False


def finite_float(value: int | float | str) -> float | None:
    """`float` of a numeric value, or None for one past the double range (`1e999`).

    PHP makes that INF, which `Json::encode` cannot write (server-behaviour.md §7 names the encoder;
    the notes are silent on such values): the stricter behaviour keeps it out of stored data, so an
    answer never holds NaN or an infinity.
    """
    number = float(value)
    return number if math.isfinite(number) else None


def php_int(value: int | float | str) -> int:
    """`(int)` of a numeric value: truncated toward zero; NaN and infinities are 0, as PHP casts them."""
    number = float(value)
    return int(number) if math.isfinite(number) else 0


def req_int(params: dict[str, Any], name: str, default: Any = _MISSING) -> int:
    """An `int` controller parameter (any numeric value is accepted and truncated)."""
    value = params.get(name, _MISSING)
    if value is _MISSING or value is None:
        if default is _MISSING:
            raise _missing(name)
        return default
    if not is_numeric(value):
        raise _mistyped(name, value, "int")
    return php_int(value)


def req_array(params: dict[str, Any], name: str, default: Any = _MISSING) -> Any:
    """An `array` parameter: a JSON object/array or PHP bracket array."""
    value = params.get(name, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise _missing(name)
        return default
    if value == "" and default is not _MISSING:  # an empty PHP array arrives as ""
        return default
    if not isinstance(value, dict | list):
        raise _mistyped(name, value, "array")
    return value


def opt_string(params: dict[str, Any], name: str, default: str) -> str:
    """A `string` parameter with a default."""
    value = params.get(name, _MISSING)
    if value is _MISSING:
        return default
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _mistyped(name, value, "string")
    return value


def use_original(params: dict[str, Any]) -> bool:
    """`useOriginalUfNames`: only the exact string 'Y' turns it on."""
    return opt_string(params, "useOriginalUfNames", "N") == "Y"


def as_dict(value: Any) -> dict[str, Any]:
    """A PHP array as a dict (a JSON list becomes '0','1',... keys)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}
