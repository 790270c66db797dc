"""Batch references: the deliberate ones we send, and user text the batch server would rewrite.

The server (`CRestUtil::processBatchElement`) scans *every* parameter value of a batch command with
``/\\$(result|next|total|time|error)([^\\s]*)/i``. The match runs to the next whitespace; the keys of
its path are every ``[key]`` inside the match; the descent stops at the last key found. A match that
is the whole value is replaced by the raw value found (array, number, ...); inside a longer value the
whole match is replaced by the value if it is a number or a string, else left alone.

So a reference is usable only as a whole value, or followed by whitespace or the end of the value:
``UF_CRM_$result[c0][type][id]_SOURCE`` reaches the method as ``UF_CRM_7``. And user text that holds
such a token (``"see $result[w0][item][id]"``) is rewritten. This module gives the two sides:

* `BatchRef` marks a value that *is* meant to be substituted; everything else is user text.
* `rewritten_in_batch` tells whether user text would be rewritten; the client then sends that
  command as a plain call (no substitution happens outside `batch`).
* `resolve` applies the server's rule on the client side, for a command that leaves its batch
  but refers to results that are already known.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

# PCRE's \s without the u flag is ASCII whitespace only; Python's \s would also stop at U+00A0 etc.
_WS = " \t\n\v\f\r"
SERVER_REFERENCE = re.compile(rf"\$(result|next|total|time|error)([^{_WS}]*)", re.IGNORECASE)
_PATH_KEY = re.compile(r"\[([^\]]+)\]")
MAPS = ("result", "next", "total", "time", "error")


class BatchRef(str):
    """Text meant for the batch server's substitution: `$result[label][path]`, alone or in a pattern."""

    __slots__ = ()


def batch_ref(label: str, *path: str | int, before: str = "") -> BatchRef:
    """`{before}$result[label][p1][p2]...`: safe because nothing is glued after the reference."""
    return BatchRef(before + "$result[" + label + "]" + "".join(f"[{p}]" for p in path))


def glued(pattern: str) -> bool:
    """Whether text follows `{}` in `pattern` without whitespace (the server would swallow it)."""
    after = pattern.split("{}", 1)[1] if "{}" in pattern else ""
    return bool(after) and after[0] not in _WS


def rewritten_in_batch(text: str) -> bool:
    """Whether the batch server would rewrite this text (a `$result[...]`-like token with a path)."""
    return any(_PATH_KEY.search(m.group(2)) for m in SERVER_REFERENCE.finditer(text))


def has_user_reference(value: Any) -> bool:
    """Whether any plain (non-`BatchRef`) text in nested params would be rewritten inside a batch."""
    if isinstance(value, BatchRef):
        return False
    if isinstance(value, str):
        return "$" in value and rewritten_in_batch(value)
    if isinstance(value, Mapping):
        return any(has_user_reference(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_user_reference(v) for v in value)
    return False


def resolve(value: Any, maps: Mapping[str, Mapping[str, Any]], keep: Collection[str] = ()) -> Any:
    """Replace `BatchRef`s in nested params by the server's rule, from known `result`/`next`/... maps.

    A `BatchRef` that refers only to labels in `keep` (answered inside the same batch) stays as it is.
    """
    if isinstance(value, BatchRef):
        if keep and labels(value) <= set(keep):
            return value
        return substitute(str(value), maps)
    if isinstance(value, Mapping):
        return {k: resolve(v, maps, keep) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(v, maps, keep) for v in value]
    return value


def labels(text: str) -> set[str]:
    """The batch labels a reference text points at (the first key of each path)."""
    found = set()
    for _, tail in SERVER_REFERENCE.findall(text):
        keys = _PATH_KEY.findall(tail)
        if keys:
            found.add(keys[0])
    return found


def substitute(text: str, maps: Mapping[str, Mapping[str, Any]]) -> Any:
    """One value through the server's rule (`CRestUtil::processBatchElement`)."""
    value: Any = text
    for match in SERVER_REFERENCE.findall(text):
        name, tail = match
        keys = _PATH_KEY.findall(tail)
        if not keys:
            continue
        whole = "$" + name + tail
        found = descend(maps.get(name), keys)  # the map name is looked up as written (case-sensitive)
        if whole == value:
            value = found
        elif isinstance(value, str):
            if isinstance(found, bool) or not isinstance(found, int | float | str):
                continue
            value = value.replace(whole, str(found))
    return value


def descend(node: Any, keys: list[str]) -> Any:
    """Walk `keys` with PHP `isset` semantics; stop at the last level found."""
    for key in keys:
        if isinstance(node, Mapping) and key in node and node[key] is not None:
            node = node[key]
        elif isinstance(node, list | tuple | str) and key.isdecimal() and int(key) < len(node):
            if node[int(key)] is None:
                break
            node = node[int(key)]  # PHP `isset($s[0])` also holds for a string offset
        else:
            break
    return node
