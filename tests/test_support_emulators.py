"""The emulator factory behind the `emulator`, `emu_url`, `live_emulator` and `make_emulator` fixtures."""

from __future__ import annotations

import pytest
import requests
from support.emulators import EmulatorFactory

from connector.emulator import Emulator
from connector.rest import Client


def test_factory_makes_independent_portals_and_stops_what_it_started() -> None:
    factory = EmulatorFactory()
    first, second = factory(), factory(webhook_code="fixedcode")
    assert first is not second and second.webhook_code == "fixedcode"
    server = factory.serve(first)
    Client.from_webhook(server.webhook_url).call("crm.type.add", {"fields": {"title": "A"}})
    assert len(Client.from_webhook(server.webhook_url).call("crm.type.list").result["types"]) == 1
    url = factory.on_responses(second)  # a `responses` mock answers every request from here on
    assert Client.from_webhook(url).call("crm.type.list").result == {"types": []}  # separate state
    factory.close()
    with pytest.raises(requests.ConnectionError) as refused:
        requests.post(server.webhook_url + "crm.type.list", timeout=2)
    assert "Responses" not in str(refused.value)  # refused by the closed socket, not by a leftover mock


def test_fixtures_share_one_emulator(emulator: Emulator, emu_url: str, live_emulator: object,
                                     make_emulator: EmulatorFactory) -> None:
    Client.from_webhook(emu_url).call("crm.type.add", {"fields": {"title": "B"}})
    assert [t["title"] for t in emulator.call("crm.type.list")["result"]["types"]] == ["B"]
    assert make_emulator() is not emulator
