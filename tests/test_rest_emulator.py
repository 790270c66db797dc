"""The REST client against the emulator over a real 127.0.0.1 socket (always stopped)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from connector.emulator import Emulator, serve
from connector.rest import Client, LeakyBucket, NotFound, OutcomeUnknown, RetryPolicy


@pytest.fixture()
def portal() -> Iterator[tuple[Emulator, Any, Client, int]]:
    emu = Emulator(limits="off")
    created = emu.call("crm.type.add", {"fields": {"title": "Rest tests"}})
    entity_type_id = created["result"]["type"]["entityTypeId"]
    server = serve(emu, host="127.0.0.1", port=0)
    try:
        client = Client.from_webhook(server.webhook_url, bucket=LeakyBucket(1000, 1000),
                                     retry=RetryPolicy(initial_delay=0.01, max_delay=0.05))
        yield emu, server, client, entity_type_id
    finally:
        server.stop()


def test_iter_list_reads_seeded_items_with_gaps(portal: tuple[Emulator, Any, Client, int]) -> None:
    emu, _, client, etid = portal
    ids = emu.seed_items(etid, 3000)
    deleted = set(ids[100:2000:3])
    batch = {f"d{n}": ("crm.item.delete", {"entityTypeId": etid, "id": i})
             for n, i in enumerate(sorted(deleted))}
    assert client.batch_all(batch).ok
    rows = list(client.iter_list("crm.item.list", {"entityTypeId": etid, "select": ["id", "title"]}))
    assert [row["id"] for row in rows] == [i for i in ids if i not in deleted]
    assert [t["entityTypeId"] for t in client.iter_list("crm.type.list")] == [etid]
    assert len(list(client.iter_list("crm.category.list", {"entityTypeId": etid}))) >= 1


def test_errors_and_writes_through_the_socket(portal: tuple[Emulator, Any, Client, int]) -> None:
    _, _, client, etid = portal
    fields = {"title": "a & b = c?", "opened": False}
    item = client.call("crm.item.add", {"entityTypeId": etid, "fields": fields})
    got = client.call("crm.item.get", {"entityTypeId": etid, "id": item.result["item"]["id"]})
    assert got.result["item"]["title"] == "a & b = c?" and got.result["item"]["opened"] == "N"
    with pytest.raises(NotFound):
        client.call("crm.item.get", {"entityTypeId": etid, "id": 999_999})


Portal = tuple[Emulator, Any, Client, int]


def test_lost_write_response_is_outcome_unknown_and_applied_once(portal: Portal) -> None:
    emu, _, client, etid = portal
    emu.faults.drop_next("crm.item.add")
    with pytest.raises(OutcomeUnknown):
        client.call("crm.item.add", {"entityTypeId": etid, "fields": {"title": "once", "xmlId": "k1"}})
    found = client.call("crm.item.list", {"entityTypeId": etid, "filter": {"xmlId": "k1"}, "start": -1})
    assert len(found.result["items"]) == 1


def test_injected_html_and_5xx_are_retried_for_reads(portal: tuple[Emulator, Any, Client, int]) -> None:
    emu, _, client, etid = portal
    emu.faults.inject_next("html", "crm.item.list")
    emu.faults.inject_next("502", "crm.item.list")
    assert client.call("crm.item.list", {"entityTypeId": etid}).result == {"items": []}
    assert client.stats.retries == 2


def test_urllib3_debug_logs_never_show_the_webhook_code(portal: tuple[Emulator, Any, Client, int],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    emu, _, client, etid = portal
    with caplog.at_level(logging.DEBUG):
        client.call("crm.item.list", {"entityTypeId": etid})
    ours = [r for r in caplog.records if not r.name.startswith("connector.emulator")]
    assert any(r.name == "urllib3.connectionpool" and "crm.item.list" in r.getMessage() for r in ours)
    assert all(emu.webhook_code not in r.getMessage() for r in ours)
