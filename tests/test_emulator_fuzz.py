"""Fuzzing the emulator's HTTP surface: it never crashes (no 500 from a Python exception, always a
JSON envelope) and never hangs, whatever method, params, body or encoding a client sends."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.emulator import Emulator, serve
from connector.emulator.events import php_form
from connector.emulator.registry import METHODS
from connector.emulator.server import HttpResponse, route

BASE = "https://emulator.bitrix24.test"
HANG_SECONDS = 10.0

_world: dict[str, Any] = {}


def world() -> dict[str, Any]:
    """One seeded portal shared by all examples (hypothesis forbids function-scoped fixtures)."""
    if not _world:
        emu = Emulator(clock="virtual", seed=3)
        emu.events.deliverer = lambda url, form: None  # never POST anywhere
        smart = emu.call("crm.type.add", {"fields": {"title": "Fuzz", "isCategoriesEnabled": "Y"}})["result"][
            "type"
        ]
        emu.seed_items(smart["entityTypeId"], 60)
        _world.update(emu=emu, etid=smart["entityTypeId"], token=emu.issue_token()["access_token"])
    return _world


PARAM_NAMES = [
    "entityTypeId",
    "id",
    "fields",
    "filter",
    "order",
    "select",
    "start",
    "cmd",
    "halt",
    "data",
    "scope",
    "userId",
    "extras",
    "event",
    "handler",
    "event_type",
    "auth_connector",
    "process_id",
    "message_id",
    "clear",
    "limit",
    "moduleId",
    "field",
    "useOriginalUfNames",
    "entityId",
    "title",
    "stageId",
    "logic",
    ">id",
    "@id",
    "!=title",
    "%title",
    "0",
    "1",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "Y",
            "N",
            "-1",
            "1032",
            "$result[a][item][id]",
            "DT1032_1:NEW",
            "ONCRMDYNAMICITEMADD",
            "2026-01-01T00:00:00+03:00",
            "",
            "[]",
            "{}",
        ]
    ),
)
keys = st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)
params_st = st.dictionaries(keys, values, max_size=6)


def method_names() -> st.SearchStrategy[str]:
    known = sorted(METHODS) + ["batch", "BATCH", "crm.item.list.json"]
    return st.one_of(st.sampled_from(known), st.text(max_size=30))


def _json_default(value: Any) -> str:
    return str(value)


def encode(params: dict[str, Any], how: str) -> tuple[str, bytes, str]:
    """(query, body, content type) for one wire encoding of `params`."""
    if how == "json":
        try:
            body = json.dumps(params, default=_json_default).encode()
        except ValueError:  # NaN etc. are valid for json.dumps; anything else falls back to form
            body = b"{}"
        return "", body, "application/json"
    form = urlencode(php_form(params))
    if how == "form":
        return "", form.encode(), "application/x-www-form-urlencoded"
    return form, b"", ""


def call_route(*args: Any) -> HttpResponse:
    """`route` in a thread, failing the example if it does not answer in time."""
    out: list[HttpResponse] = []
    worker = threading.Thread(target=lambda: out.append(route(*args)), daemon=True)
    worker.start()
    worker.join(HANG_SECONDS)
    assert out, f"the emulator hung on {args[1]} {args[2]}"
    return out[0]


def assert_envelope(resp: HttpResponse) -> dict[str, Any]:
    assert resp.status != 500, resp.body[:300]
    assert resp.content_type.startswith("application/json")
    data = json.loads(resp.body)
    assert isinstance(data, dict)
    if "error" in data:
        assert "error_description" in data and resp.status >= 400
    else:
        assert "result" in data and resp.status == 200, data
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=method_names(),
    params=params_st,
    how=st.sampled_from(["json", "form", "query"]),
    auth=st.sampled_from(["webhook", "oauth", "bad-webhook", "no-auth"]),
    verb=st.sampled_from(["POST", "GET"]),
)
def test_any_request_gets_a_json_envelope_and_never_a_crash(method, params, how, auth, verb):
    w = world()
    emu = w["emu"]
    if auth == "webhook":
        path = f"/rest/1/{emu.webhook_code}/{method}"
    elif auth == "bad-webhook":
        path = f"/rest/1/wrong/{method}"
    else:
        path = f"/rest/{method}"
        if auth == "oauth":
            params = {**params, "auth": w["token"]}
    query, body, ctype = encode(params, how)
    if verb == "GET" and how != "json":  # a GET carries its params in the query string
        query, body = query or body.decode(), b""
    assert_envelope(call_route(emu, verb, path, query, body, ctype, BASE))


@settings(max_examples=80, deadline=None)
@given(
    body=st.binary(max_size=300),
    ctype=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "", "text/plain", "multipart/form-data"]
    ),
    path=st.one_of(st.just("items"), st.text(max_size=40)),
)
def test_garbage_bodies_and_paths_never_crash(body, ctype, path):
    w = world()
    emu = w["emu"]
    url = f"/rest/1/{emu.webhook_code}/crm.item.list" if path == "items" else "/" + path
    resp = call_route(emu, "POST", url, f"entityTypeId={w['etid']}", body, ctype, BASE)
    assert resp.status != 500, resp.body[:300]
    json.loads(resp.body)


@settings(max_examples=30, deadline=None)
@given(
    cmds=st.dictionaries(
        st.text(max_size=6),
        st.one_of(
            st.text(max_size=60),
            st.sampled_from(
                [
                    "crm.item.list?entityTypeId=1032&start=-1",
                    "crm.item.get?entityTypeId=1032&id=$result[a][items][0][id]",
                    "batch?cmd[x]=crm.type.list",
                    "crm.item.add?fields[title]=%ZZ",
                ]
            ),
        ),
        max_size=60,
    ),
    halt=st.sampled_from([0, 1, "false", ""]),
)
def test_batch_of_anything_answers_200_with_the_batch_wrappers(cmds, halt):
    w = world()
    resp = call_route(
        w["emu"],
        "POST",
        f"/rest/1/{w['emu'].webhook_code}/batch",
        "",
        json.dumps({"cmd": cmds, "halt": halt}).encode(),
        "application/json",
        BASE,
    )
    data = assert_envelope(resp)
    if "result" in data:
        assert set(data["result"]) == {"result", "result_error", "result_total", "result_next", "result_time"}


def _raw_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_SECONDS) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"the server hung on {payload[:60]!r}") from None
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_loopback_server_survives_malformed_http():
    """Real sockets: broken request lines, lying Content-Length, bad JSON; then a normal call works."""
    emu = Emulator(clock="virtual")
    server = serve(emu, host="127.0.0.1", port=0)
    try:
        port = int(server.webhook_url.split(":")[2].split("/")[0])
        hook = f"/rest/1/{emu.webhook_code}"
        nasty = [
            b"GARBAGE\r\n\r\n",
            b"POST " + hook.encode() + b'/crm.type.list HTTP/1.1\r\nContent-Length: 50\r\n\r\n{"a":',
            b"POST " + hook.encode() + b"/crm.type.list HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
            b"POST " + hook.encode() + b"/crm.type.list HTTP/1.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 9\r\n\r\n{not json",
            b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n",
            b"PUT " + hook.encode() + b"/crm.type.list HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"",
        ]
        for payload in nasty:
            answer = _raw_exchange(port, payload)
            assert not answer.startswith(b"HTTP/1.1 500") and not answer.startswith(b"HTTP/1.0 500"), answer[
                :200
            ]
        ok = _raw_exchange(
            port, b"GET " + hook.encode() + b"/crm.type.list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert ok.startswith(b"HTTP/1.1 200") or ok.startswith(b"HTTP/1.0 200"), ok[:200]
        assert b'"result"' in ok
    finally:
        server.stop()
