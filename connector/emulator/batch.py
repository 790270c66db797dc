"""`batch`: up to 50 sub-calls, `halt`, `$result[...]` references, PHP-array shaped result maps."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from connector.constants import BATCH_MAX

from .errors import ApiError
from .php import parse_query

REFERENCE = re.compile(r"\$(result|next|total|time|error)((?:\[[^\]\s]*\])*)", re.IGNORECASE)
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
        query = parse_query(parts.query)
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


def _substitute(value: Any, maps: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, maps) for k, v in value.items()}
    if not isinstance(value, str) or "$" not in value:
        return value
    whole = REFERENCE.fullmatch(value)
    if whole:
        return _lookup(maps, whole.group(1).lower(), whole.group(2))

    def scalar(m: re.Match[str]) -> str:
        found = _lookup(maps, m.group(1).lower(), m.group(2))
        if isinstance(found, bool):
            return "1" if found else ""
        if isinstance(found, int | float | str):
            return str(found)
        return m.group(0)

    return REFERENCE.sub(scalar, value)


def _lookup(maps: dict[str, dict[str, Any]], name: str, path: str) -> Any:
    """Walk `[k1][k2]...`; descent stops at the last level found (like CRestUtil)."""
    node: Any = maps[name]
    for key in re.findall(r"\[([^\]]*)\]", path):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdecimal() and int(key) < len(node):
            node = node[int(key)]
        else:
            break
    return node
