"""`batch`: up to 50 sub-calls, `halt`, `$result[...]` references, PHP-array shaped result maps."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from connector.constants import BATCH_MAX

from .errors import ApiError
from .php import parse_query

# PCRE without the u flag: \s is ASCII whitespace only (Python's \s would also stop at U+00A0).
REFERENCE = re.compile(r"\$(result|next|total|time|error)([^ \t\n\v\f\r]*)", re.IGNORECASE)
PATH_KEY = re.compile(r"\[([^\]]+)\]")
NOT_IN_BATCH = ("batch", "download", "upload")
LENGTH_EXCEEDED = {"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}
NOT_ALLOWED = {
    "error": "ERROR_BATCH_METHOD_NOT_ALLOWED",
    "error_description": "Method is not allowed for batch usage",
}

# run(method, params) -> (result, total, next, time) or raises ApiError
SubCall = Callable[[str, dict[str, Any]], tuple[Any, int | None, int | None, dict[str, Any]]]


def php_truthy(value: Any) -> bool:
    """PHP truthiness of a request value: '0', '', 0, false, empty arrays are false."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def php_map(entries: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """A PHP array as json_encode prints it: [] when empty, a list when keyed 0..n-1."""
    if not entries:
        return []
    keys = list(entries)
    if all(str(k).isdecimal() for k in keys) and [int(k) for k in keys] == list(range(len(keys))):
        return [entries[k] for k in keys]
    return entries


def run_batch(params: dict[str, Any], sub_call: SubCall) -> dict[str, Any]:
    """Execute a batch; per-command failures land in `result_error`, the batch itself succeeds."""
    cmd = params.get("cmd")
    if cmd is None:
        raise ApiError("ERROR_BATCH_CMD_EMPTY", "Batch command list is empty")  # no cmd at all
    if isinstance(cmd, list):
        cmd = {str(i): v for i, v in enumerate(cmd)}
    if not isinstance(cmd, dict):
        raise ApiError("INVALID_ARG_VALUE", "Parameter 'cmd' must be an array of 'method?query' strings")
    halt = php_truthy(params.get("halt", False))
    maps: dict[str, dict[str, Any]] = {"result": {}, "error": {}, "total": {}, "next": {}, "time": {}}
    for counter, (key, command) in enumerate(cmd.items(), start=1):
        key = str(key)
        if counter > BATCH_MAX:
            maps["error"][key] = dict(LENGTH_EXCEEDED)
            continue
        if not isinstance(command, str):
            continue  # skipped silently, but counted
        parts = urlsplit(command)
        method_name = parts.path.strip()
        query = _parsed(parts.query)
        if method_name.lower() in NOT_IN_BATCH:
            maps["error"][key] = dict(NOT_ALLOWED)
            if halt:
                break
            continue
        query = _substitute(query, maps)
        try:
            result, total, nxt, timing = sub_call(method_name, query)
        except ApiError as err:
            maps["error"][key] = {"error": err.code, "error_description": err.description}
            if halt:
                break
            continue
        maps["result"][key] = result
        if total is not None:
            maps["total"][key] = total
        if nxt is not None:
            maps["next"][key] = nxt
        maps["time"][key] = timing
    return {
        "result": php_map(maps["result"]),
        "result_error": php_map(maps["error"]),
        "result_total": php_map(maps["total"]),
        "result_next": php_map(maps["next"]),
        "result_time": php_map(maps["time"]),
    }


_PARSED: dict[str, dict[str, Any]] = {}  # decoded command queries by query text


def _parsed(query: str) -> dict[str, Any]:
    """`parse_query` of a command's query, cached by its text: a chained scan sends 49 of its 50
    commands with one text (`filter[>id]=$result[...]`). The cached structure is never handed out:
    `_substitute` (always run next) builds fresh dicts and lists, sharing only immutable strings."""
    found = _PARSED.get(query)
    if found is None:
        if len(_PARSED) >= 256:
            _PARSED.clear()
        found = _PARSED[query] = parse_query(query)
    return found


def _substitute(value: Any, maps: dict[str, dict[str, Any]]) -> Any:
    """`CRestUtil::processBatchStructure`: every parsed value of the command, at any depth; the
    result shares no dict or list with `value` (`_parsed` relies on that)."""
    if isinstance(value, dict):
        return {k: _substitute(v, maps) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, maps) for v in value]
    if not isinstance(value, str) or "$" not in value:
        return value
    return _process_element(value, maps)


def _process_element(query: str, maps: dict[str, dict[str, Any]]) -> Any:
    """`CRestUtil::processBatchElement` (server-behaviour.md §6).

    All matches of `/\\$(result|next|total|time|error)([^\\s]*)/i` are found first; a match's path is
    every `[key]` inside it (text glued after the reference is part of the match); the descent stops at
    the last key found; a match equal to the whole (current) value is replaced by the raw value, else
    the match text is replaced by the value when it is a number or a string, and left alone otherwise.
    """
    value: Any = query
    for name, tail in REFERENCE.findall(query):
        keys = PATH_KEY.findall(tail)
        if not keys:
            continue  # preg_match_all on the path found no [key]: nothing happens
        found = _descend(maps.get(name), keys)  # `$arResult[$arMatch[1]]`: the name as written
        whole = "$" + name + tail
        if whole == value:
            value = found
        elif isinstance(value, str) and not isinstance(found, bool) and isinstance(found, int | float | str):
            value = value.replace(whole, _php_string(found))
    return value


def _php_string(value: int | float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # PHP prints 7.0 as "7"
    return str(value)


def _descend(node: Any, keys: list[str]) -> Any:
    """`while (count($path)) { if (isset($r[$key])) $r = $r[$key]; else break; }`."""
    for key in keys:
        if isinstance(node, dict) and node.get(key) is not None:
            node = node[key]
        elif isinstance(node, list | str) and key.isdecimal() and int(key) < len(node):
            if node[int(key)] is None:
                break
            node = node[int(key)]  # isset() on a string offset holds too
        else:
            break
    return node
