"""Bounds on template files we did not write: size, nesting, counts, numbers, text, look-alike codes.

The reference notes give no limits for counts or label lengths (server-behaviour.md is silent), so
these are the stricter choice: far above any real process, far below what would hurt the store
(SQLite allows 2,000 columns per table by default; MySQL InnoDB, where the portal keeps one column
per custom field, allows 1,017), the portal or the memory of a run. Each check names the TOML path.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

from connector.templates.errors import Problem

MAX_TEMPLATE_BYTES = 1024 * 1024  # a 500-field template is about 60 KB
MAX_DEPTH = 6  # deepest real path: funnels[i].stages[j].name.ru
MAX_FIELDS = 500
MAX_COUNTS: dict[str, int] = {"fields": MAX_FIELDS, "funnels": 50, "card_sections": 50, "access": 100}
MAX_NESTED_COUNTS: dict[str, int] = {
    "options": 500, "stages": 50, "targets": 50, "parents": 50, "children": 50,
}
MAX_TEXT = 1000  # characters of any string (a note); labels are shorter
MAX_LABEL = 255  # characters of a label, a help text, a stage or funnel name
LABEL_KEYS = frozenset({"label", "title", "name", "help"})
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # SORT and similar columns are 32-bit integers on the portal


def check_limits(file: str, data: Any) -> list[Problem]:
    """Depth, list sizes, text lengths and integer ranges of raw template data; every problem found."""
    problems: list[Problem] = []
    too_deep: set[str] = set()  # one problem per top-level key is enough
    for path, value, depth in _walk(data, "", 0):
        if depth > MAX_DEPTH:
            top = path.split(".", 1)[0].split("[", 1)[0]
            if top not in too_deep:
                too_deep.add(top)
                problems.append(Problem(file, path, f"nested deeper than {MAX_DEPTH} levels; templates "
                                                    f"nest at most {MAX_DEPTH}"))
            continue
        key = path.rsplit(".", 1)[-1].split("[", 1)[0]
        if isinstance(value, list):
            limit = MAX_COUNTS.get(path) or MAX_NESTED_COUNTS.get(key)
            if limit is not None and len(value) > limit:
                problems.append(Problem(file, path, f"{len(value)} entries; at most {limit} are allowed"))
        elif isinstance(value, str):
            parent = path.rsplit(".", 2)[-2] if path.count(".") >= 1 else ""
            limit = MAX_LABEL if parent.split("[", 1)[0] in LABEL_KEYS else MAX_TEXT
            if len(value) > limit:
                problems.append(Problem(file, path, f"text of {len(value)} characters; at most {limit}"))
        elif isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
            problems.append(Problem(file, path, f"{value} is out of range; allowed {INT_MIN}..{INT_MAX}"))
    return problems


def _walk(value: Any, path: str, depth: int) -> Iterator[tuple[str, Any, int]]:
    """(TOML path, value, depth) of every value; stops descending past MAX_DEPTH."""
    yield path, value, depth
    if depth > MAX_DEPTH:
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _walk(inner, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _walk(inner, f"{path}[{index}]", depth + 1)


def depth_of(value: Any, limit: int = MAX_DEPTH + 1) -> int:
    """How deep `value` nests, counted up to `limit` (cheap on hostile input)."""
    if limit <= 0 or not isinstance(value, dict | list):
        return 0
    inner = value.values() if isinstance(value, dict) else value
    return 1 + max((depth_of(v, limit - 1) for v in inner), default=0)


def non_ascii_note(value: str) -> str:
    """` ('а' at position 2 is U+0430 CYRILLIC SMALL LETTER A, not a Latin letter)` or ``."""
    for index, char in enumerate(value):
        if not char.isascii():
            name = unicodedata.name(char, "an unnamed character")
            return f" ({char!r} at position {index + 1} is U+{ord(char):04X} {name}, not ASCII)"
    return ""


def folded(text: str) -> str:
    """The form two names share when a reader (or a case-insensitive file system) cannot tell them apart."""
    return unicodedata.normalize("NFKC", text).casefold().strip()
