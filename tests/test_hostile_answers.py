"""Portal answers we did not expect (issue 14): each gives a typed error naming the method and the fault.

Two layers: the client alone on the transport seam (`responses` with hand-written bodies), and a
whole sync against the emulator served on a real loopback socket with one fault mode per case,
where the store must stay unchanged, the cursor must not move and the next run must catch up.
The reference notes describe no broken answers (server-behaviour.md is silent): these are what a
proxy, a half-updated portal or a bug could send, so the client takes the stricter reading.
"""

from __future__ import annotations

import io
import json
import os
import select
import sqlite3
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from test_sync_support import MAPPINGS, setup_processes

from connector.crm.items import ProcessMap, list_items
from connector.crm.schema import read_types
from connector.emulator import Emulator, serve
from connector.emulator.faults import FaultSpec, make_fault, reshape
from connector.rest import Client, RetryPolicy, TransportError
from connector.rest.errors import UnexpectedAnswer
from connector.store import Store
from connector.sync import sync
from connector.templates import load_templates

BASE = "https://hostile.bitrix24.test"
HOOK = f"{BASE}/rest/1/hooksecret123/"
CAR = load_templates([str(MAPPINGS / "car_service.toml")])
QUICK = RetryPolicy(max_attempts=2, initial_delay=0.0, max_delay=0.0, jitter=lambda: 0.0)


def client(**options: Any) -> Client:
    return Client.from_webhook(HOOK, retry=QUICK, sleep=lambda _s: None, **options)


def answer(
    rsps: responses.RequestsMock,
    method: str,
    body: bytes | str | dict[str, Any],
    status: int = 200,
    content_type: str = "application/json",
) -> None:
    raw = json.dumps(body) if isinstance(body, dict) else body
    rsps.add(responses.POST, f"{HOOK}{method}", body=raw, status=status, content_type=content_type)


def rows(*ids: Any, **extra: Any) -> dict[str, Any]:
    return {"result": {"items": [{"id": i, "title": f"t{i}", **extra} for i in ids]}, "time": {}}


# -- the client alone, on the transport seam ----------------------------------------------------

BROKEN_BODIES = [
    # (case, body, content type, error class, code, words in the message)
    (
        "truncated",
        b'{"result":{"items":[{"id":1,"ti',
        "application/json",
        TransportError,
        "TRUNCATED",
        "ends early",
    ),
    ("not json", b"Service temporarily unavailable", "text/plain", TransportError, "BAD_BODY", "not JSON"),
    ("empty", b"", "application/json", TransportError, "BAD_BODY", "empty body"),
    (
        "html 200",
        b"<!DOCTYPE html><html><body>Updating</body></html>",
        "text/html",
        TransportError,
        "HTML",
        "HTML page",
    ),
    ("result a string", {"result": "OK"}, "application/json", UnexpectedAnswer, "BAD_PAGE", "got a string"),
    (
        "items missing",
        {"result": {"total": 3}},
        "application/json",
        UnexpectedAnswer,
        "BAD_PAGE",
        "expected rows in result.items",
    ),
    ("items null", {"result": {"items": None}}, "application/json", UnexpectedAnswer, "BAD_PAGE", "is null"),
    ("result null", {"result": None}, "application/json", UnexpectedAnswer, "BAD_PAGE", "result is null"),
    (
        "row not an object",
        {"result": {"items": [1, 2]}},
        "application/json",
        UnexpectedAnswer,
        "BAD_PAGE",
        "result.items[0] is a number",
    ),
    ("ids as strings", rows("1", "2"), "application/json", UnexpectedAnswer, "BAD_ID", "id='1' (a string)"),
    ("ids as floats", rows(1.0, 2.5), "application/json", UnexpectedAnswer, "BAD_ID", "id=1.0 (a number)"),
    ("null ids", rows(None), "application/json", UnexpectedAnswer, "BAD_ID", "id=None (null)"),
    ("duplicate ids", rows(3, 3, 4), "application/json", UnexpectedAnswer, "DUPLICATE_ID", "3 appears twice"),
    ("out of order", rows(5, 4), "application/json", UnexpectedAnswer, "BAD_ORDER", "4 comes after 5"),
    (
        "time a string",
        {"result": {"items": []}, "time": "now"},
        "application/json",
        UnexpectedAnswer,
        "BAD_SHAPE",
        "'time' is a string",
    ),
]


@pytest.mark.parametrize("case,body,ctype,kind,code,words", BROKEN_BODIES, ids=[c[0] for c in BROKEN_BODIES])
def test_a_broken_list_answer_is_a_typed_error_naming_the_method(case, body, ctype, kind, code, words):
    with responses.RequestsMock() as rsps:
        answer(rsps, "crm.item.list", body, content_type=ctype)
        with pytest.raises(kind) as info:
            list(client().iter_list("crm.item.list", {"entityTypeId": 1032}))
    error = info.value
    assert error.code == code and error.method == "crm.item.list"
    assert words in str(error) and "crm.item.list failed" in str(error)
    assert "hooksecret123" not in str(error)


def test_a_type_list_without_types_is_refused_not_read_as_an_empty_portal():
    with responses.RequestsMock() as rsps:
        answer(rsps, "crm.type.list", {"result": {"total": 2}, "time": {}})
        with pytest.raises(UnexpectedAnswer, match="expected rows in result.types"):
            read_types(client())


def test_string_ids_stay_allowed_where_the_docs_show_them():
    # doc fixture userfieldconfig.list.json: "id": "7095" (a string); crm.item.list.json: integers
    with responses.RequestsMock() as rsps:
        answer(rsps, "userfieldconfig.list", {"result": {"fields": [{"id": "7095"}]}, "time": {}})
        got = list(client().iter_list("userfieldconfig.list", {"moduleId": "crm"}))
    assert got == [{"id": "7095"}]


def test_a_page_repeating_the_previous_one_breaks_the_chain():
    page = [{"id": n} for n in range(1, 51)]
    batch = {
        "result": {
            "result": {
                "p0": {"items": [{"id": n} for n in range(51, 101)]},
                "p1": {"items": [{"id": n} for n in range(51, 101)]},
            },
            "result_error": [],
            "result_total": [],
            "result_next": [],
            "result_time": [],
        },
        "time": {},
    }
    with responses.RequestsMock() as rsps:
        answer(rsps, "crm.item.list", {"result": {"items": page}, "time": {}})
        answer(rsps, "batch", batch)
        with pytest.raises(UnexpectedAnswer) as info:
            list(client().iter_list("crm.item.list", {"entityTypeId": 1032}, pages_per_request=2))
    assert info.value.code == "BROKEN_CHAIN" and "page p1 starts at id 51, not after 100" in str(info.value)


@pytest.mark.parametrize(
    "inner,words",
    [("done", "result is a string"), ({"result": "x", "result_error": []}, "result.result is a string")],
)
def test_a_batch_answer_of_the_wrong_shape_is_refused(inner, words):
    with responses.RequestsMock() as rsps:
        answer(rsps, "batch", {"result": inner, "time": {}})
        with pytest.raises(UnexpectedAnswer) as info:
            client().batch({"a": ("crm.item.get", {"entityTypeId": 1032, "id": 1})})
    assert info.value.method == "batch" and words in str(info.value)


def test_an_unknown_stage_is_refused_where_items_are_read():
    pmap = ProcessMap(
        code="car",
        entity_type_id=1032,
        type_id=1,
        funnels={"main": 7},
        stages={"main": {"NEW": "DT1032_7:NEW"}},
    )
    body = rows(1, 2, categoryId=7, stageId="DT1032_7:NEW")
    body["result"]["items"][1]["stageId"] = "C3:WON"  # a deal stage, not one of this process
    with responses.RequestsMock() as rsps:
        answer(rsps, "crm.item.list", body)
        with pytest.raises(UnexpectedAnswer) as info:
            list(list_items(client(), pmap))
    assert info.value.code == "BAD_STAGE" and "item 2 has stageId 'C3:WON'" in str(info.value)
    assert "starts with 'DT1032_7:'" in str(info.value)


def test_a_stage_added_by_hand_in_the_right_funnel_is_kept():
    pmap = ProcessMap(code="car", entity_type_id=1032, type_id=1, funnels={"main": 7}, stages={"main": {}})
    with responses.RequestsMock() as rsps:
        answer(rsps, "crm.item.list", rows(1, categoryId=7, stageId="DT1032_7:UC_HAND"))
        assert [i["stageId"] for i in list_items(client(), pmap)] == ["DT1032_7:UC_HAND"]


class Stream(io.RawIOBase):
    """`size` bytes produced on demand; counts what was read."""

    def __init__(self, size: int) -> None:
        self.left, self.read_bytes = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = b"x" * n
        self.left -= n
        self.read_bytes += n
        return n


def test_a_200_mb_body_is_refused_after_the_cap_and_memory_stays_bounded():
    stream = Stream(200 * 1024 * 1024)
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{HOOK}crm.item.list",
            body=io.BufferedReader(stream, 1 << 16),
            content_type="application/json",
        )
        tracemalloc.start()
        try:
            with pytest.raises(TransportError) as info:
                client(max_body=1024 * 1024).call("crm.item.list", {"entityTypeId": 1032})
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert info.value.code == "BODY_TOO_LARGE" and info.value.method == "crm.item.list"
    assert "1048576-byte limit (max_body)" in str(info.value)
    assert stream.read_bytes < 2 * 1024 * 1024  # reading stopped at the cap, not after 200 MB
    assert peak < 8 * 1024 * 1024


def test_a_declared_length_over_the_cap_is_refused_before_reading():
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{HOOK}crm.item.get",
            body=b"{}" * 600,
            content_type="application/json",
            headers={"Content-Length": "1200"},
        )
        with pytest.raises(TransportError) as info:
            client(max_body=1000).call("crm.item.get", {"entityTypeId": 1032, "id": 1})
    assert info.value.code == "BODY_TOO_LARGE" and "1200 bytes, over the 1000-byte limit" in str(info.value)
    with pytest.raises(ValueError, match="max_body must be a positive"):
        client(max_body=0)


def test_an_answer_that_never_finishes_is_a_timeout_naming_the_method():
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{HOOK}crm.item.list", body=requests.ReadTimeout("Read timed out."))
        with pytest.raises(TransportError) as info:
            client().call("crm.item.list", {"entityTypeId": 1032})
    assert info.value.method == "crm.item.list" and "ReadTimeout" in str(info.value)


# -- the emulator's fault modes -------------------------------------------------------------------


def test_fault_spec_takes_the_hostile_kinds_with_a_method_and_an_argument():
    spec = FaultSpec.parse("ids_string=crm.item.list:1.0,huge=0.5:4096,hang=crm.item.list:1:3,nulls=0.2")
    kinds = {(r.kind, r.method, r.rate, r.arg) for r in spec.hostile}
    assert kinds == {
        ("ids_string", "crm.item.list", 1.0, None),
        ("huge", None, 0.5, 4096.0),
        ("hang", "crm.item.list", 1.0, 3.0),
        ("nulls", None, 0.2, None),
    }
    with pytest.raises(ValueError, match="dup_ids method 'crm item' is not a REST method name"):
        FaultSpec.parse("dup_ids=crm item:1")
    with pytest.raises(ValueError, match="write huge=\\[method:\\]rate"):
        FaultSpec.parse("huge=1:2:3")


def test_shape_faults_rewrite_a_copy_of_the_answer():
    body = rows(1, 2, stageId="DT1032_7:NEW")
    assert reshape("ids_string", body, None)["result"]["items"][0]["id"] == "1"
    assert reshape("ids_float", body, None)["result"]["items"][1]["id"] == 2.5
    assert reshape("unknown_stage", body, None)["result"]["items"][0]["stageId"] == "DT1_999:GHOST"
    assert reshape("items_missing", body, None)["result"] == {}
    assert reshape("nulls", body, None)["result"]["items"][0] == {"id": None, "title": None, "stageId": None}
    assert [r["id"] for r in reshape("dup_ids", body, None)["result"]["items"]] == [1, 1, 2]
    assert reshape("repeat_page", body, {"result": {"items": []}}) == {"result": {"items": []}}
    assert body == rows(1, 2, stageId="DT1032_7:NEW")  # the emulator's own answer is untouched


def test_a_huge_fault_streams_its_body_without_building_it():
    fault = make_fault("huge", size=10 * 1024 * 1024)
    stream = fault.stream()
    assert stream is not None and not stream.stalls
    first = next(iter(stream))
    assert first.startswith(b'{"result"') and len(first) < 100
    assert sum(len(c) for c in stream) + len(first) == 10 * 1024 * 1024


# -- a whole sync against `emulator serve`, one fault at a time -----------------------------------


def snapshot(db: Path) -> dict[str, list[str]]:
    """Every table, sorted: what a failed run must leave as it was. Not compared: the run log
    (`_runs`, its sequence) and when the same template was last handed to sync (`_sync_templates`)."""
    conn = sqlite3.connect(db)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = {
            n: sorted(map(repr, conn.execute(f'SELECT * FROM "{n}"')))
            for n in names
            if n not in ("_runs", "sqlite_sequence", "_sync_templates")
        }
        out["_sync_templates"] = sorted(map(repr, conn.execute('SELECT code, data FROM "_sync_templates"')))
        return out
    finally:
        conn.close()


@pytest.fixture()
def portal(tmp_path: Path) -> Iterator[tuple[Emulator, Any, int]]:
    emu = Emulator(limits="off", clock="virtual")
    etid = setup_processes(emu, CAR)["car"]
    server = serve(emu, "127.0.0.1", 0)
    try:
        yield emu, server, etid
    finally:
        server.stop()


SYNC_FAULTS = [
    # (fault kind, method the error names, error class, code, words). The pull reads through chained
    # batches from its first request on, so every fault hits `batch`: a broken body names `batch`, a
    # broken page inside it names its own method.
    ("truncate", "batch", TransportError, "TRUNCATED", "ends early"),
    ("notjson", "batch", TransportError, "BAD_BODY", "not JSON"),
    ("html", "batch", TransportError, "HTML", "HTML page"),
    ("result_string", "batch", UnexpectedAnswer, "BAD_SHAPE", "result is a string"),
    ("items_missing", "crm.item.list", UnexpectedAnswer, "BAD_PAGE", "expected rows in result.items"),
    ("ids_string", "crm.item.list", UnexpectedAnswer, "BAD_ID", "(a string)"),
    ("ids_float", "crm.item.list", UnexpectedAnswer, "BAD_ID", "(a number)"),
    ("unknown_stage", "crm.item.list", UnexpectedAnswer, "BAD_STAGE", "'DT1_999:GHOST'"),
    ("nulls", "crm.item.list", UnexpectedAnswer, "BAD_ID", "id=None"),
    ("dup_ids", "crm.item.list", UnexpectedAnswer, "DUPLICATE_ID", "appears twice"),
    ("repeat_page", "crm.item.list", UnexpectedAnswer, "BROKEN_CHAIN", "the portal ignored the >id filter"),
    ("huge", "batch", TransportError, "BODY_TOO_LARGE", "limit (max_body)"),
    ("hang", "batch", TransportError, "TRANSPORT", "Read timed out"),
]


@pytest.mark.parametrize(
    "kind,method,error,code,words", SYNC_FAULTS, ids=[f"{c[0]}@{c[1]}" for c in SYNC_FAULTS]
)
def test_a_sync_meeting_a_broken_answer_changes_nothing_and_the_next_run_catches_up(
    portal, tmp_path, kind, method, error, code, words
):
    emu, server, etid = portal
    for n in range(160):  # > 150 items: more than three chained pages
        emu.call("crm.item.add", {"entityTypeId": etid, "fields": {"title": f"car {n}"}})
    store = Store.open(tmp_path / "s.db")
    hook = server.webhook_url

    def run() -> Any:
        api = Client.from_webhook(
            hook,
            allow_http=True,
            retry=QUICK,
            sleep=lambda _s: None,
            timeout=(2.0, 0.5),
            max_body=2 * 1024 * 1024,
        )
        return sync(api, store, CAR, portal_key="p")

    run()
    emu.clock.advance(5)
    for n in range(160):  # portal-side edits the failing run must not half-apply
        emu.call("crm.item.update", {"entityTypeId": etid, "id": n + 1, "fields": {"title": f"edited {n}"}})
    before = snapshot(tmp_path / "s.db")
    cursor = store.cursor_get("p", "car")
    emu.faults.inject_next(kind, "batch", n=QUICK.max_attempts, delay=1.0, size=50 * 1024 * 1024)
    with pytest.raises(error) as info:
        run()
    assert info.value.code == code and info.value.method == method and words in str(info.value)
    assert snapshot(tmp_path / "s.db") == before and store.cursor_get("p", "car") == cursor
    emu.faults.clear()
    report = run()
    titles = {r[0] for r in sqlite3.connect(tmp_path / "s.db").execute('SELECT title FROM "car"')}
    assert titles == {f"edited {n}" for n in range(160)}
    assert report.pulled == 160


# -- `b24sync emulator serve --faults ...` from the command line ---------------------------------


def served(spec: str) -> tuple[subprocess.Popen[str], str]:
    """`b24sync emulator serve --port 0 --faults SPEC`; returns the process and its webhook URL."""
    exe = Path(sys.executable).with_name("b24sync")
    if not exe.exists():
        pytest.skip("the b24sync console script is not installed (pip install -e .)")
    proc = subprocess.Popen(
        [str(exe), "emulator", "serve", "--port", "0", "--faults", spec],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    url = proc.stdout.readline().strip() if ready else ""
    assert url.startswith("http://127.0.0.1:"), url
    return proc, url


@pytest.mark.parametrize(
    "spec,words",
    [
        (
            "huge=crm.type.list:1:100000000",
            "crm.type.list failed (HTTP 200): BODY_TOO_LARGE: the answer passed the 67108864-byte limit",
        ),
    ],
)
def test_emulator_serve_takes_hostile_faults_on_the_command_line(tmp_path, spec, words):
    proc, url = served(spec)
    try:
        exe = Path(sys.executable).with_name("b24sync")
        env = {k: v for k, v in os.environ.items() if not k.startswith("B24SYNC_")}
        done = subprocess.run(
            [str(exe), "plan", str(MAPPINGS / "car_service.toml"), "--portal", url],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stdout:
            proc.stdout.close()
    assert done.returncode != 0 and words in done.stderr, done.stderr
    assert url.rstrip("/").rsplit("/", 1)[-1] not in done.stdout + done.stderr
