"""`Memo`: a per-value converter applied to a column of a chunk, remembering its answers.

Exports repeat values (dates, amounts, stage codes, user ids), so most of a column is converted by
C-level dict lookups. The answers are kept per value type: 1, 1.0 and "1" are never mixed up. A
float zero is never remembered (0.0 and -0.0 are one dict key but may convert differently), and a
column whose values are mostly new each chunk (ids, unique amounts) stops being remembered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

LIMIT = 50_000  # remembered values per type, then forgotten (memory stays flat)
_MISS = object()


class Memo:
    """`convert` applied to every non-None value of a column; None becomes `empty`."""

    def __init__(self, convert: Callable[[Any], Any], empty: Any = None) -> None:
        self.convert = convert
        self.empty = empty
        self.remember = True
        self.seen: dict[type, dict[Any, Any]] = {}

    def column(self, values: Sequence[Any], kinds: set[type] | None = None) -> list[Any]:
        """The converted column; `kinds`: the values' types, when known."""
        kinds = set(map(type, values)) if kinds is None else set(kinds)
        kinds.discard(type(None))
        if len(kinds) != 1 or not self.remember:
            return self._each(values)
        kind = kinds.pop()
        seen = self.seen.get(kind)
        if seen is None or len(seen) > LIMIT:
            seen = self.seen[kind] = {None: self.empty}
        out = list(map(seen.get, values, repeat(_MISS)))
        if _MISS not in out:
            return out
        convert, misses = self.convert, 0
        for i, got in enumerate(out):
            if got is _MISS:
                value = values[i]
                got = seen.get(value, _MISS)  # met earlier in this chunk
                if got is _MISS:
                    got = convert(value)
                    misses += 1
                    if kind is not float or value:
                        seen[value] = got
                out[i] = got
        if misses > len(values) // 2:  # mostly new values: looking them up first only costs
            self.remember = False
            self.seen.clear()
        return out

    def _each(self, values: Sequence[Any]) -> list[Any]:
        if None not in values:
            return list(map(self.convert, values))
        convert, empty = self.convert, self.empty
        return [empty if v is None else convert(v) for v in values]
