"""PHP-style parameter decoding: `fields[TITLE]=X&select[]=id` -> nested dicts, as `$_REQUEST` sees it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[]*)((?:\[[^\]]*\])*)(.*)$")
MAX_DEPTH = 32


def parse_query(query: str) -> dict[str, Any]:
    """Decode a query string or form body the way PHP does (`a[b][]=1`); later keys win."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(query, keep_blank_values=True):
        _assign(root, raw_key, value)
    return root


def _assign(root: dict[str, Any], raw_key: str, value: str) -> None:
    m = _KEY.match(raw_key)
    if not m or not m.group(1):
        return
    head, brackets, _rest = m.groups()  # PHP drops whatever follows an unclosed bracket
    path = [head] + re.findall(r"\[([^\]]*)\]", brackets)[:MAX_DEPTH]
    node: dict[str, Any] = root
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if part == "":
            part = str(_next_index(node))
        if last:
            node[part] = value
            return
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child


def _next_index(node: dict[str, Any]) -> int:
    ints = [int(k) for k in node if k.lstrip("-").isdecimal()]
    return max(ints) + 1 if ints else 0


def is_list_like(value: Any) -> bool:
    """A list, or a dict whose keys are 0..n-1 (how PHP arrays arrive from a form)."""
    if isinstance(value, list):
        return True
    if not isinstance(value, dict) or not value:
        return False
    return all(isinstance(k, str) and k.isdecimal() for k in value)


def as_list(value: Any) -> list[Any]:
    """A PHP array's values in key order."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (0, int(k)) if str(k).isdecimal() else (1, str(k)))
        return [value[k] for k in keys]
    return [value]
