"""Keyset batches sent ahead (`connector/rest/ahead.py`): batch k+1 leaves before batch k is decoded.

The guess of the next `>id` comes from the raw answer: the portal encodes with PHP's `json_encode`
(`Main\\Web\\Json::encode`, server-behaviour.md §7), compact, with every `"` inside a string written
as `\\u0022` (JSON_HEX_QUOT), so `"p49":{"items":[` can only be the last page's rows. The guess only
decides when a batch leaves, never which rows a scan yields: every test checks the rows too.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.crm.items import ProcessMap
from connector.emulator import Emulator, serve
from connector.rest import Client, TransportError
from connector.rest import ahead as ahead_module
from connector.rest.ahead import AHEAD, last_id_in
from connector.rest.models import BatchResult
from connector.rest.paging import iter_list_pages


def _body(pages: list[list[dict[str, Any]]], *, indent: int | None = None) -> bytes:
    """A batch answer as the portal writes it (compact unless `indent`), with `result_time` after it."""
    result = {f"p{i}": {"items": rows} for i, rows in enumerate(pages)}
    times = {f"p{i}": {"start": 1.0} for i in range(len(pages))}
    envelope = {"result": {"result": result, "result_error": [], "result_time": times}, "time": {"start": 1}}
    separators = (",", ":") if indent is None else None
    return json.dumps(envelope, separators=separators, indent=indent, ensure_ascii=False).encode()


def _rows(first: int, count: int, text: str = "x") -> list[dict[str, Any]]:
    return [{"id": first + i, "title": text} for i in range(count)]


# ---------------------------------------------------------------------------- reading the raw answer

DECOYS = ['"p1":{"items":[', '\\"p1\\":{\\"items\\":[', "}]},", "p1", '"p0":{"items":[{"id":999}]}']


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=3), st.integers(min_value=0, max_value=50),
       st.sampled_from(DECOYS), st.integers(min_value=1, max_value=10**12))
def test_the_last_id_of_a_full_last_page_and_nothing_else(pages: int, last_count: int, decoy: str,
                                                          start: int) -> None:
    """Whatever the items' text holds, the guess is the true last id of a full last page, or None."""
    full = [_rows(start + 50 * i, 50, decoy) for i in range(pages - 1)]
    last = _rows(start + 50 * (pages - 1), last_count, decoy)
    body = _body([*full, last])
    expected = last[-1]["id"] if last_count == 50 else None
    assert last_id_in(body, f"p{pages - 1}", "items", "id") == expected


@pytest.mark.parametrize(("body", "why"), [
    (_body([_rows(1, 50)], indent=1), "pretty-printed: no compact marker"),
    (_body([_rows(1, 50)])[:400], "cut inside the page"),
    (_body([_rows(1, 49)]), "short page"),
    (_body([[{"id": True, "title": "x"}] * 50]), "an id that is not a number or text"),
    (_body([_rows(1, 50)]).replace(b'"result_time":{', b'"result_time":{"p0":{"items":[1],"x":', 1),
     "the marker twice"),
    (b"\xff\xfe" + _body([_rows(1, 50)])[2:], "not UTF-8 after the marker is irrelevant, before it too"),
])
def test_no_guess_when_the_answer_is_not_plainly_a_full_page(body: bytes, why: str) -> None:
    if why.startswith("not UTF-8"):  # the bytes before the marker are never decoded: the guess stands
        assert last_id_in(body, "p0", "items", "id") == 50
        return
    assert last_id_in(body, "p0", "items", "id") is None, why


def test_plain_array_methods_are_read_too() -> None:
    body = json.dumps({"result": {"result": {"p0": _rows(1, 50)}}}, separators=(",", ":")).encode()
    assert last_id_in(body, "p0", None, "id") == 50
    assert last_id_in(body.replace(b'"p0":[', b'"p0": ['), "p0", None, "id") is None


# ---------------------------------------------------------------------------- the chain


class FakePortal:
    """A `Client` stand-in for `iter_list_pages`: ids 1..n, 50 a page, answers with peeks and delays."""

    def __init__(self, n: int, *, decode_seconds: float = 0.0, wire_seconds: float = 0.0,
                 lie_after: Any = None, fail_after: Any = None) -> None:
        self.n, self.decode_seconds, self.wire_seconds = n, decode_seconds, wire_seconds
        self.lie_after, self.fail_after = lie_after, fail_after
        self.lock = threading.Lock()
        self.sent: list[Any] = []
        self.spans: dict[Any, tuple[float, float]] = {}
        self.running = 0

    def batch(self, commands: Mapping[str, Any], halt: bool = False, *, peek: Any = None) -> BatchResult:
        after = commands["p0"][1]["filter"][">id"]
        started = time.monotonic()
        with self.lock:
            self.sent.append(after)
            self.running += 1
        try:
            if after == self.fail_after:
                raise TransportError("HTTP_502", "bad gateway", 502, "batch")
            pages, first = [], after + 1
            for _ in commands:
                rows = _rows(first, max(0, min(50, self.n - first + 1)))
                pages.append(rows)
                if len(rows) < 50:
                    break
                first += 50
            time.sleep(self.wire_seconds)  # the answer on its way
            if peek is not None:
                shown = pages
                if after == self.lie_after:  # the raw answer disagrees with the decoded one
                    shown = [*pages[:-1], _rows(900_000, 50)]
                peek(_body(shown))
            time.sleep(self.decode_seconds)  # "decoding" this answer
            return BatchResult(results={f"p{i}": {"items": rows} for i, rows in enumerate(pages)})
        finally:
            with self.lock:
                self.running -= 1
                self.spans[after] = (started, time.monotonic())


def _scan(portal: FakePortal, pages: int = 2) -> Iterator[Any]:
    return iter_list_pages(portal, "crm.item.list", {"entityTypeId": 1032}, "items", "id", pages,  # type: ignore[arg-type]
                           batch_first=True)


@pytest.mark.parametrize("n", [0, 1, 99, 100, 101, 1000])
def test_every_row_once_in_order_and_no_extra_request(n: int) -> None:
    portal = FakePortal(n)
    assert [row["id"] for row in _scan(portal)] == list(range(1, n + 1))
    assert sorted(portal.sent) == list(range(0, n + 1, 100))  # one batch per 100 ids, plus the empty end
    assert len(set(portal.sent)) == len(portal.sent)


def test_the_next_batch_leaves_before_this_one_is_decoded() -> None:
    portal = FakePortal(300, decode_seconds=0.2)
    assert len(list(_scan(portal))) == 300
    first_done = portal.spans[0][1]
    assert portal.spans[100][0] < first_done  # batch 2 started while batch 1 was still being decoded
    assert portal.spans[200][0] < portal.spans[100][1]


def test_without_the_raw_guess_the_next_batch_still_leaves_before_rows_are_handed_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ahead_module, "last_id_in", lambda *args: None)
    portal = FakePortal(300)
    scan = _scan(portal)
    next(scan)  # the first row of batch 1 is handed on: batch 2 has already been submitted
    deadline = time.monotonic() + 2
    while len(portal.sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert portal.sent[:2] == [0, 100]
    assert [row["id"] for row in scan] == list(range(2, 301))


def test_a_wrong_guess_is_dropped_and_the_right_batch_sent() -> None:
    portal = FakePortal(500, lie_after=100)
    assert [row["id"] for row in _scan(portal)] == list(range(1, 501))
    assert 900_049 in portal.sent  # the batch sent on the wrong guess...
    assert sorted(a for a in portal.sent if a != 900_049) == [0, 100, 200, 300, 400, 500]  # ...and the right
    assert portal.running == 0


def test_after_a_wrong_guess_batches_are_sent_ahead_again() -> None:
    portal = FakePortal(800, lie_after=100, decode_seconds=0.05)
    assert [row["id"] for row in _scan(portal)] == list(range(1, 801))
    # the first batch after the wrong guess left while the one before it was still being decoded (the
    # wrong one no longer holds a place among the AHEAD batches out)
    assert portal.spans[400][0] < portal.spans[300][1]


def test_an_error_of_a_batch_sent_ahead_comes_after_the_rows_before_it() -> None:
    portal = FakePortal(1000, fail_after=200)
    seen: list[int] = []
    with pytest.raises(TransportError, match="bad gateway"):
        for row in _scan(portal):
            seen.append(row["id"])
    assert seen == list(range(1, 201))
    assert portal.running == 0


def test_a_scan_left_early_waits_for_its_batches_and_sends_no_more() -> None:
    portal = FakePortal(100_000, decode_seconds=0.02)
    scan = _scan(portal)
    next(scan)
    time.sleep(0.2)
    assert len(portal.sent) <= 2 + AHEAD  # the batch read, the one after it, and at most AHEAD sent ahead
    scan.close()
    assert portal.running == 0
    count = len(portal.sent)
    time.sleep(0.2)
    assert len(portal.sent) == count
    assert not [t for t in threading.enumerate() if t.name.startswith("keyset")]


def test_an_answer_that_arrives_after_the_scan_was_left_sends_nothing() -> None:
    portal = FakePortal(100_000, wire_seconds=0.1)
    scan = _scan(portal)
    next(scan)  # batch 1 read; batch 2 is on its way and will show its last id after we leave
    scan.close()
    assert portal.sent == [0, 100]
    assert portal.running == 0


@pytest.mark.parametrize("junk", [[1], {"a": 1}, None, True, 1.5])
def test_a_junk_last_id_sends_nothing_and_leaves_the_refusal_to_the_page_checks(junk: Any) -> None:
    sent: list[Any] = []

    class Client:
        def batch(self, commands: Any, *args: Any, **kwargs: Any) -> BatchResult:
            sent.append(commands)
            return BatchResult()

    chain = ahead_module.BatchChain(Client(), lambda after: {"after": after}, "p0", "items", "id")  # type: ignore[arg-type]
    rows = [{"id": n} for n in range(1, 50)] + [{"id": junk}]
    chain.send_after(BatchResult(results={"p0": {"items": rows}}), 0)
    chain.close()
    assert sent == []
    good = [{"id": n} for n in range(1, 51)]  # the same call with a good id does send
    chain = ahead_module.BatchChain(Client(), lambda after: {"after": after}, "p0", "items", "id")  # type: ignore[arg-type]
    chain.send_after(BatchResult(results={"p0": {"items": good}}), 0)
    chain.close()
    assert sent == [{"after": 50}]


def test_the_emulators_answers_over_loopback_give_the_guess_for_every_full_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    emu = Emulator(limits="off")
    created = emu.call("crm.type.add", {"fields": {"title": "Ahead"}})["result"]["type"]
    emu.seed_items(created["entityTypeId"], 7600)
    pmap = ProcessMap(code="ahead", entity_type_id=created["entityTypeId"], type_id=created["id"],
                      stages_enabled=False)
    guesses: list[Any] = []
    real = ahead_module.last_id_in

    def recording(*args: Any) -> Any:
        guesses.append(real(*args))
        return guesses[-1]

    monkeypatch.setattr(ahead_module, "last_id_in", recording)
    with serve(emu, host="127.0.0.1", port=0) as server:
        client = Client.from_webhook(server.webhook_url, allow_http=True)
        ids = [row["id"] for row in iter_list_pages(client, "crm.item.list",
                                                    {"entityTypeId": pmap.entity_type_id, "select": ["id"]},
                                                    "items", "id", 50, batch_first=True)]
    assert ids == list(range(1, 7601))
    assert guesses == [2500, 5000, 7500, None]
    assert client.stats.requests == 4
