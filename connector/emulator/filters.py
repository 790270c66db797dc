"""The list filter language: operator prefixes, nested `logic: OR` groups, order, validated."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timezone
from functools import partial
from typing import Any

from .convert import parse_date, parse_datetime
from .errors import ApiError
from .params import is_numeric, php_int

# longest first, so `!=%` wins over `!=` and `!`
PREFIXES = ("!><", "!=%", "!%=", "><", ">=", "<=", "=%", "%=", "!@", "!=", "!%", ">", "<", "@", "!", "=", "%")
ARRAY_PREFIXES = ("", "=", "!=", "@", "!@")

Row = dict[str, Any]
Predicate = Callable[[Row], bool]
# resolve(name) -> (row key, kind, upper name) or None when the field is not allowed
Resolver = Callable[[str], "tuple[str, str, str] | None"]


@dataclass
class IdBounds:
    """What a top-level AND filter says about `id`, so the table can narrow by bisect."""

    low: int | None = None  # inclusive
    high: int | None = None  # inclusive
    exact: set[int] | None = None


@dataclass
class CompiledFilter:
    """A predicate over stored rows plus id bounds for keyset narrowing.

    `trivial`: the predicate keeps every row whose id is within `bounds` (no filter, or only integer
    `>`/`>=`/`<`/`<=` conditions on the id, which the bounds hold exactly), so a walk over the ids
    within the bounds of a table keyed by id need not call it."""

    predicate: Predicate
    bounds: IdBounds = field(default_factory=IdBounds)
    trivial: bool = True


def split_prefix(key: str) -> tuple[str, str]:
    """`>=createdTime` -> (`>=`, `createdTime`)."""
    for p in PREFIXES:
        if key.startswith(p):
            return p, key[len(p) :]
    return "", key


def _is_sub(key: str) -> bool:
    return key.isdecimal()


def _scalar_ok(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def compile_filter(flt: Any, resolve: Resolver, tz: timezone, id_key: str = "ID") -> CompiledFilter:
    """Validate and compile a filter; raises INVALID_ARG_VALUE with the server's message."""
    if flt is None or flt == "" or flt == [] or flt == {}:
        return CompiledFilter(lambda row: True)
    if isinstance(flt, list):
        flt = {str(i): v for i, v in enumerate(flt)}
    if not isinstance(flt, dict):
        raise ApiError(
            "100",
            "Invalid value {" + str(flt) + "} to match with parameter {filter}. "
            "Should be value of type array.",
        )
    bounds = IdBounds()
    pred = _compile_group(flt, resolve, tz, bounds if _logic(flt) == "AND" else None, id_key)
    return CompiledFilter(pred, bounds, trivial=_bounds_decide(flt, resolve, id_key))


def _bounds_decide(group: dict[str, Any], resolve: Resolver, id_key: str) -> bool:
    """True when every condition of a top-level AND group is `>`, `>=`, `<` or `<=` on the id with an
    integer value: the predicate then compares the integer id with int(value) (`normalize`), and
    `_note_bounds` folded exactly the same comparison into the inclusive bounds."""
    if _logic(group) != "AND":
        return False
    seen = False
    for raw_key, value in group.items():
        key = str(raw_key).replace(".", "")
        if key.lower() == "logic":
            continue
        prefix, name = split_prefix(key)
        if prefix not in (">", ">=", "<", "<=") or isinstance(value, bool) or not is_numeric(value):
            return False
        resolved = resolve(name)
        if resolved is None or resolved[0] != id_key or resolved[1] != "int":
            return False
        if not float(value).is_integer():
            return False
        seen = True
    return seen


def _logic(group: dict[str, Any]) -> str:
    raw = group.get("logic", group.get("LOGIC", "AND"))
    return "OR" if isinstance(raw, str) and raw.strip().upper() == "OR" else "AND"


def _compile_group(
    group: dict[str, Any], resolve: Resolver, tz: timezone, bounds: IdBounds | None, id_key: str
) -> Predicate:
    preds: list[Predicate] = []
    for raw_key, value in group.items():
        key = str(raw_key).replace(".", "")
        if key.lower() == "logic":
            continue
        if _is_sub(key):
            if isinstance(value, list):
                value = {str(i): v for i, v in enumerate(value)}
            if not isinstance(value, dict):
                raise ApiError("INVALID_ARG_VALUE", f"Invalid filter: field '{key}' has invalid value")
            preds.append(_compile_group(value, resolve, tz, None, id_key))
            continue
        prefix, name = split_prefix(key)
        resolved = resolve(name)
        if resolved is None:
            from .naming import snake_upper

            raise ApiError(
                "INVALID_ARG_VALUE", f"Invalid filter: field '{snake_upper(name)}' is not allowed in filter"
            )
        row_key, kind, upper = resolved
        if isinstance(value, dict | list):
            if prefix not in ARRAY_PREFIXES or any(not _scalar_ok(v) for v in _values(value)):
                raise ApiError("INVALID_ARG_VALUE", f"Invalid filter: field '{upper}' has invalid value")
        elif not _scalar_ok(value):
            raise ApiError("INVALID_ARG_VALUE", f"Invalid filter: field '{upper}' has invalid value")
        if prefix in ("><", "!><"):
            # server-behaviour.md §1 "Filter and order validation": `><` is an allowed prefix and a
            # scalar value passes the validator (arrays were refused above). The references are silent
            # on what a scalar range matches: we take SQL's `BETWEEN v AND NULL`, which is never
            # true, negated or not, so the filter is accepted and matches no row (the stricter reading).
            preds.append(lambda row: False)
            continue
        preds.append(_condition(row_key, kind, prefix, value, tz))
        if bounds is not None and row_key == id_key:
            _note_bounds(bounds, prefix, value)
    if _logic(group) == "OR":
        return (lambda row: any(p(row) for p in preds)) if preds else (lambda row: True)
    if len(preds) == 1:
        return preds[0]
    return lambda row: all(p(row) for p in preds)


def _values(value: Any) -> list[Any]:
    return list(value.values()) if isinstance(value, dict) else list(value)


def _note_bounds(b: IdBounds, prefix: str, value: Any) -> None:
    """Fold an id condition into inclusive integer bounds (or an exact id set)."""
    if isinstance(value, dict | list):
        if prefix in ("", "=", "@"):
            ids = {php_int(v) for v in _values(value) if is_numeric(v) and float(v).is_integer()}
            b.exact = ids if b.exact is None else b.exact & ids
        return
    if not is_numeric(value):
        return
    v = float(php_int(value)) if not math.isfinite(float(value)) else float(value)  # as `normalize` reads it
    low = {">": math.floor(v) + 1, ">=": math.ceil(v)}.get(prefix)
    high = {"<": math.ceil(v) - 1, "<=": math.floor(v)}.get(prefix)
    if low is not None and (b.low is None or low > b.low):
        b.low = low
    if high is not None and (b.high is None or high < b.high):
        b.high = high
    if prefix in ("", "=", "@"):
        b.exact = (
            ({int(v)} if v.is_integer() else set())
            if b.exact is None
            else (b.exact & ({int(v)} if v.is_integer() else set()))
        )


def normalize(kind: str, value: Any, tz: timezone) -> Any:
    """A filter value in the stored form of field `kind`; None when it cannot match."""
    if value is None:
        return None
    if kind in ("int", "float"):
        if isinstance(value, bool):
            return int(value)
        if not is_numeric(value):
            return _NOMATCH
        return float(value) if kind == "float" else (php_int(value))
    if kind == "datetime":
        ts = parse_datetime(value, tz)
        return _NOMATCH if ts is None else ts
    if kind == "date":
        day = parse_date(value, tz)
        return _NOMATCH if day is None else day
    if kind == "bool":
        if isinstance(value, bool):
            return value
        s = str(value).strip().upper()
        return s in ("Y", "1", "TRUE")
    return str(value) if not isinstance(value, bool) else ("1" if value else "")


class _NoMatch:
    def __repr__(self) -> str:
        return "<no match>"


_NOMATCH = _NoMatch()


def _like_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    for ch in pattern:
        out += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
    return re.compile(f"^{out}$", re.IGNORECASE | re.DOTALL)


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


def _condition(key: str, kind: str, prefix: str, raw: Any, tz: timezone) -> Predicate:
    multiple = kind.startswith("multi:")
    base = kind[6:] if multiple else kind
    if isinstance(raw, dict | list):
        wanted = [normalize(base, v, tz) for v in _values(raw)]
        negate = prefix in ("!=", "!@")
        test: Callable[[Any], bool] = lambda v: any(_eq(v, w) for w in wanted)  # noqa: E731
        empty_ok = any(w is None or w == "" for w in wanted)
    else:
        want = normalize(base, raw, tz)
        negate = prefix.startswith("!")
        op = prefix.lstrip("!") or "="
        empty_ok = want is None or want == ""
        test = _scalar_test(op, want)

    def check(row: Row) -> bool:
        value = row.get(key)
        values = value if multiple and isinstance(value, list) else [value]
        if not values:
            values = [None]
        hit = False
        for v in values:
            if v is None or v == "":
                if empty_ok:
                    hit = True
                    break
                continue
            if test(v):
                hit = True
                break
        return not hit if negate else hit

    return check


def _scalar_test(op: str, want: Any) -> Callable[[Any], bool]:
    if want is _NOMATCH:
        return lambda v: False
    if want is None or want == "":
        return lambda v: False  # only empty values match, handled by the caller
    if op in ("=", "@"):
        return lambda v: _eq(v, want)
    if op in (">", ">=", "<", "<="):

        def cmp(v: Any) -> bool:
            try:
                if op == ">":
                    return bool(v > want)
                if op == ">=":
                    return bool(v >= want)
                if op == "<":
                    return bool(v < want)
                return bool(v <= want)
            except TypeError:
                return False

        return cmp
    text = str(want)
    if op == "%":
        low = text.lower()
        return lambda v: low in str(v).lower()
    rx = _like_regex(text)  # =% and %= take explicit wildcards
    return lambda v: bool(rx.match(str(v)))


def parse_order(order: Any, resolve: Resolver) -> list[tuple[str, bool]]:
    """`{field: ASC|DESC}` -> [(row key, descending)], validated like Validator\\Order."""
    if order is None or order == "" or order == [] or order == {}:
        return []
    if not isinstance(order, dict):
        raise ApiError(
            "100", "Invalid value {Array} to match with parameter {order}. Should be value of type array."
        )
    out: list[tuple[str, bool]] = []
    from .naming import snake_upper

    for name, direction in order.items():
        resolved = resolve(str(name))
        if resolved is None:
            raise ApiError(
                "INVALID_ARG_VALUE",
                f"Invalid order: field '{snake_upper(str(name))}' is not allowed in order",
            )
        d = str(direction).upper() if isinstance(direction, str) else direction
        if d not in ("ASC", "DESC"):
            raise ApiError(
                "INVALID_ARG_VALUE",
                "Invalid order: allowed sort directions are ASC, DESC. "
                f"But got '{direction}' for field '{resolved[2]}'",
            )
        out.append((resolved[0], d == "DESC"))
    return out


def sort_rows(rows: list[Row], order: list[tuple[str, bool]]) -> list[Row]:
    """Sort rows like MySQL: NULLs first ascending, last descending; stable by the later keys."""
    for key, desc in reversed(order):
        present = [r for r in rows if r.get(key) is not None]
        missing = [r for r in rows if r.get(key) is None]
        present.sort(key=partial(_row_sort_key, key), reverse=desc)
        rows = present + missing if desc else missing + present
    return rows


def _row_sort_key(key: str, row: Row) -> Any:
    return _sort_key(row[key])


def _sort_key(v: Any) -> Any:
    if isinstance(v, list):
        return (2, str(v))
    if isinstance(v, str):
        return (1, v.lower())
    return (0, v)
