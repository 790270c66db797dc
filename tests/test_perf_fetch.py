"""`ItemStream` (connector/sync/fetch.py): items read on a thread and handed over in bounded chunks.

Against the emulator in-process (`responses`) and over a real loopback socket. The paging itself
(`start=-1`, `>id`, chained pages) follows server-behaviour.md §1 (start=-1: no COUNT, no next/total)
and §6 (batch references; halt stops after the first failing command).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from connector.crm.items import ProcessMap
from connector.emulator import Emulator, serve
from connector.rest import Client
from connector.rest.ahead import AHEAD
from connector.rest.errors import TransportError
from connector.sync.fetch import ItemStream


def smart_process(emu: Emulator, n: int) -> ProcessMap:
    """A smart process with n seeded items and a map without custom fields."""
    created = emu.call("crm.type.add", {"fields": {"title": "Fetch"}})["result"]["type"]
    emu.seed_items(created["entityTypeId"], n)
    return ProcessMap(code="fetch", entity_type_id=created["entityTypeId"], type_id=created["id"],
                      stages_enabled=False)


@pytest.fixture()
def emu() -> Emulator:
    return Emulator(limits="off")


@pytest.fixture()
def url(emu: Emulator) -> Iterator[str]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield emu.register(rsps)


@pytest.mark.parametrize("n", [0, 1, 2500, 5001])
def test_chunks_carry_every_item_once_in_id_order_and_only_the_final_one_is_last(
    emu: Emulator, url: str, n: int
) -> None:
    pmap = smart_process(emu, n)
    client = Client.from_webhook(url)
    with ItemStream(client, pmap, {}, chunk=1000, collect_ids=True) as stream:
        server, _ = stream.first_response()
        chunks = list(stream)
    ids = [int(item["id"]) for c in chunks for item in c.items]
    assert ids == sorted(ids) and len(ids) == n == len(set(ids))
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(len(c.items) == 1000 for c in chunks[:-1])
    assert stream.seen_ids == set(ids)
    assert server.get("date_start")  # the first answer's time: the pull's cursor
    # the first request is already a chained batch: no separate head page (server-behaviour.md §6)
    assert client.stats.requests == n // 2500 + 1
    assert client.stats.per_method.get("crm.item.list", 0) == 0


def test_the_time_is_the_first_answers_and_comes_before_its_items(emu: Emulator, url: str) -> None:
    pmap = smart_process(emu, 3000)
    client = Client.from_webhook(url)
    with ItemStream(client, pmap, {}, chunk=500) as stream:
        server, local = stream.first_response()
        first_batch = next(e for e in emu.request_log if e.method == "batch")
        # `start` is the whole second the request began; the log stamps the moment it ended (the
        # same second, or the next when the answer crossed a second boundary)
        assert int(first_batch.at) - 2 <= server["start"] <= first_batch.at
        assert abs(local - time.time()) < 60
        assert sum(len(c.items) for c in stream) == 3000


def test_a_filter_limits_the_scan_and_a_short_scan_is_one_request(emu: Emulator, url: str) -> None:
    pmap = smart_process(emu, 300)
    client = Client.from_webhook(url)
    with ItemStream(client, pmap, {">id": 200}) as stream:
        ids = [int(i["id"]) for c in stream for i in c.items]
    assert ids == list(range(201, 301))
    assert client.stats.requests == 1


def test_an_error_on_the_thread_reaches_the_caller_after_the_chunks_before_it(
    emu: Emulator, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pmap = smart_process(emu, 6000)
    client = Client.from_webhook(url)
    real_batch = client.batch
    calls = {"n": 0}

    def failing_batch(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise TransportError("HTTP_502", "bad gateway", 502, "batch")
        return real_batch(*args, **kwargs)

    monkeypatch.setattr(client, "batch", failing_batch)
    got: list[int] = []
    stream = ItemStream(client, pmap, {}, chunk=1000)
    with pytest.raises(TransportError, match="bad gateway"), stream:
        for chunk in stream:
            got.extend(int(i["id"]) for i in chunk.items)
    assert got == list(range(1, 2001))  # the 2,500 of the first request, whole chunks only
    assert not stream._thread.is_alive()


def test_a_caller_that_leaves_early_stops_the_thread(emu: Emulator, url: str) -> None:
    pmap = smart_process(emu, 8000)
    client = Client.from_webhook(url)
    with ItemStream(client, pmap, {}, chunk=100, depth=1) as stream:
        first = next(iter(stream))
    assert len(first.items) == 100
    assert not stream._thread.is_alive()
    assert client.stats.requests < math.ceil(8000 / 2500)  # it did not read on to the end


def test_the_queue_is_bounded_so_memory_stays_flat(emu: Emulator, url: str) -> None:
    """A caller that does not take chunks holds the thread after `depth` chunks (plus the one it builds
    and the batch it iterates, and at most `AHEAD` batches sent ahead of it): the producer never reads far
    ahead."""
    pmap = smart_process(emu, 12_500)
    client = Client.from_webhook(url)
    with ItemStream(client, pmap, {}, chunk=500, depth=2) as stream:
        deadline = time.monotonic() + 10
        while not stream._queue.full() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # give a runaway producer the chance to show itself
        assert stream._queue.full()
        # 2,500 items: 2 chunks queued, a third being built; 2 more batches sent ahead (5 batches exist)
        assert client.stats.requests == 1 + AHEAD
    assert not stream._thread.is_alive()


def test_bad_sizes_are_refused_with_a_clear_message(emu: Emulator) -> None:
    pmap = ProcessMap(code="x", entity_type_id=1032, type_id=1)
    with pytest.raises(ValueError, match="chunk and depth must be at least 1; got chunk=0"):
        ItemStream(object(), pmap, {}, chunk=0)


def test_over_a_real_loopback_socket(emu: Emulator) -> None:
    pmap = smart_process(emu, 2600)
    with serve(emu, host="127.0.0.1", port=0) as server:
        client = Client.from_webhook(server.webhook_url, allow_http=True)
        with ItemStream(client, pmap, {}, chunk=1000, collect_ids=True) as stream:
            names = {threading.current_thread().name}
            chunks = list(stream)
        assert sum(len(c.items) for c in chunks) == 2600
        assert stream.seen_ids == set(range(1, 2601))
        assert stream._thread.name not in names  # fetched on its own thread
        assert client.stats.requests == 2


def test_a_thread_that_ends_without_its_items_is_an_error_not_a_hang(
    emu: Emulator, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pmap = smart_process(emu, 10)
    monkeypatch.setattr(ItemStream, "_produce", lambda self: None)
    with pytest.raises(RuntimeError, match="fetch thread ended without handing over all items"), \
            ItemStream(Client.from_webhook(url), pmap, {}) as stream:
        list(stream)


def test_the_first_chunk_is_the_first_requests_items(emu: Emulator, url: str) -> None:
    """The writer starts after one request (2,500 items), not after two."""
    pmap = smart_process(emu, 12_000)
    client = Client.from_webhook(url)
    with ItemStream(client, pmap, {}) as stream:
        sizes = [len(chunk.items) for chunk in stream]
    assert sizes == [2500, 5000, 4500]
