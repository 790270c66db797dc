"""Test-only helpers for the REST client tests: a PHP `parse_str` and a small fake list portal.

The fake serves `crm.item.list`-shaped (`result.items`, key `id`) and plain-array (`key `ID`)
list methods, and `batch` with `$result[...]` substitution that, like the real server, stops
descending at the last key it found when a path key is missing.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_plus

import responses

BASE = "https://portal.bitrix24.test/rest/1/s3cretcode/"
CODE = "s3cretcode"

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def parse_php_query(query: str) -> dict[str, Any]:
    """A tiny PHP `parse_str`: `a[b][0]=x&c=` -> {"a": {"b": {"0": "x"}}, "c": ""}."""
    out: dict[str, Any] = {}
    if not query:
        return out
    for pair in query.split("&"):
        raw_key, _, raw_value = pair.partition("=")
        key, value = unquote_plus(raw_key), unquote_plus(raw_value)
        head = key.split("[", 1)[0]
        path = [head, *_SEGMENT.findall(key[len(head):])]
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return out


def parse_command(cmd: str) -> tuple[str, dict[str, Any]]:
    method, _, query = cmd.partition("?")
    return method, parse_php_query(query)


def time_info(**extra: Any) -> dict[str, Any]:
    return {"start": 1.0, "finish": 1.01, "duration": 0.01, "processing": 0.01,
            "date_start": "2026-01-01T00:00:00+03:00", "date_finish": "2026-01-01T00:00:00+03:00", **extra}


class FakeListPortal:
    """Serves list methods over `responses`: rows by id, `>id` keyset, `start=-1`, batch chaining."""

    def __init__(self, ids: list[int], page_size: int = 50) -> None:
        self.ids = sorted(ids)
        self.page_size = page_size
        self.http_requests = 0
        self.sub_calls = 0
        self.seen_filters: list[Any] = []

    def install(self, rsps: responses.RequestsMock) -> None:
        rsps.add_callback(responses.POST, re.compile(re.escape(BASE) + r"[\w.]+"), callback=self._http)

    def _http(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.http_requests += 1
        method = request.url[len(BASE):]
        body = json.loads(request.body or b"{}")
        if method == "batch":
            envelope = {"result": self._batch(body), "time": time_info()}
            return 200, {}, json.dumps(envelope)
        status, envelope = self._run(method, body)
        return status, {}, json.dumps(envelope)

    def _run(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.sub_calls += 1
        filter_ = params.get("filter") or {}
        self.seen_filters.append(filter_)
        upper = method == "demo.list"
        ident = "ID" if upper else "id"
        after = filter_.get(f">{ident}", 0)
        if isinstance(after, dict | list):
            return 400, {"error": "INVALID_ARG_VALUE",
                         "error_description": f"Invalid filter: field '{ident.upper()}' has invalid value"}
        extra = {k: v for k, v in filter_.items() if k != f">{ident}"}
        rows = [i for i in self.ids if i > int(after) and self._matches(i, extra)]
        page = rows[: self.page_size]
        if upper:
            result: Any = [{"ID": str(i), "NAME": f"row {i}"} for i in page]
        else:
            result = {"items": [{"id": i, "title": f"item {i}"} for i in page]}
        envelope: dict[str, Any] = {"result": result, "time": time_info()}
        if str(params.get("start")) != "-1":
            envelope["total"] = len(rows)
        return 200, envelope

    def _matches(self, ident: int, extra: dict[str, Any]) -> bool:
        for key, value in extra.items():
            if key == "<=id" and not ident <= int(value):
                return False
            if key == "0" and isinstance(value, dict):
                if not self._matches(ident, value):
                    return False
            if key == ">id" and not ident > int(value):
                return False
        return True

    def _batch(self, body: dict[str, Any]) -> dict[str, Any]:
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        times: dict[str, Any] = {}
        halt = bool(int(body.get("halt", 0)))
        for label, cmd in body["cmd"].items():
            method, params = parse_command(cmd)
            params = substitute(params, results)
            status, envelope = self._run(method, params)
            if status != 200:
                errors[label] = envelope
                if halt:
                    break
                continue
            results[label] = envelope["result"]
            times[label] = envelope["time"]
        return {"result": results or [], "result_error": errors or [], "result_total": [],
                "result_next": [], "result_time": times or []}


_REF = re.compile(r"^\$result((?:\[[^\[\]]+\])+)$")


def resolve(reference: str, results: dict[str, Any]) -> Any:
    """`$result[a][items][49][id]` like the portal: a missing key stops descent at the last level."""
    match = _REF.match(reference)
    if not match:
        return reference
    node: Any = results
    for key in _SEGMENT.findall(match.group(1)):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            break
    return node


def substitute(value: Any, results: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: substitute(v, results) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("$result"):
        return resolve(value, results)
    return value
