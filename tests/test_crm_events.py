"""connector.crm.events: the offline queue of item deletions, read through the emulator as an OAuth app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses
from test_sync_support import MAPPINGS, setup_processes

from connector.crm import events
from connector.emulator import Emulator
from connector.rest import B24Error, Client, OAuthAuth
from connector.rest.models import ApiResponse
from connector.templates import load_templates

CAR = load_templates([str(MAPPINGS / "car_service.toml")])


class Portal:
    """The emulator with the car process, reached by an OAuth app and by a webhook."""

    def __init__(self, emu: Emulator, webhook: str) -> None:
        self.emu, self.webhook = emu, webhook
        self.base = webhook.split("/rest/")[0]
        self.etid = setup_processes(emu, CAR)["car"]
        pair = emu.issue_token(base=self.base)
        self.app = Client(OAuthAuth(f"{self.base}/rest/", pair["access_token"], pair["refresh_token"],
                                    emu.oauth.client_id, emu.oauth.client_secret,
                                    token_url=f"{self.base}/oauth/token/"))

    def add_and_delete(self, title: str) -> int:
        item = self.emu.call("crm.item.add", {"entityTypeId": self.etid, "fields": {"title": title}})
        item_id = int(item["result"]["item"]["id"])
        self.emu.call("crm.item.delete", {"entityTypeId": self.etid, "id": item_id})
        return item_id


@pytest.fixture
def portal() -> Iterator[Portal]:
    emu = Emulator(limits="off", clock="virtual")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield Portal(emu, emu.register(rsps))


def test_is_app_tells_an_oauth_application_from_a_webhook(portal: Portal) -> None:
    assert portal.app.is_app and portal.app.auth.kind == "oauth"
    hook = Client.from_webhook(portal.webhook)
    assert not hook.is_app and hook.auth.kind == "webhook"


def test_bound_deletions_are_reserved_reread_by_process_id_and_cleared(portal: Portal) -> None:
    assert events.bind_item_delete_offline(portal.app) is True
    assert events.bind_item_delete_offline(portal.app) is True  # already bound counts as bound
    gone = [portal.add_and_delete(f"car {n}") for n in range(2)]
    first = events.reserve_offline_events(portal.app)
    assert first.process_id and first.records == 2
    assert [(d.entity_type_id, d.id) for d in first.deleted] == [(portal.etid, i) for i in gone]
    assert events.reserve_offline_events(portal.app).records == 0  # reserved records are hidden
    again = events.reserve_offline_events(portal.app, first.process_id)
    assert again.process_id == first.process_id and [d.id for d in again.deleted] == gone
    events.clear_offline_events(portal.app, first.process_id)
    assert events.reserve_offline_events(portal.app, first.process_id).records == 0
    assert list(portal.emu.events.offline.values()) == []


class Refusing:
    """A client whose every call fails with one error code."""

    def __init__(self, code: str) -> None:
        self.code = code

    def call(self, method: str, params: Any = None) -> ApiResponse:
        raise B24Error(self.code, "refused", 403, method)


@pytest.mark.parametrize("code", events.BIND_REFUSED)
def test_a_refused_bind_is_false(code: str) -> None:
    assert events.bind_item_delete_offline(Refusing(code)) is False


def test_other_bind_errors_are_raised() -> None:
    with pytest.raises(B24Error) as info:
        events.bind_item_delete_offline(Refusing("INTERNAL_SERVER_ERROR"))
    assert info.value.code == "INTERNAL_SERVER_ERROR"


def test_deleted_items_skip_other_events_and_malformed_records() -> None:
    records: list[Any] = [
        {"EVENT_NAME": "ONCRMDYNAMICITEMDELETE", "EVENT_DATA": {"FIELDS": {"ID": 5, "ENTITY_TYPE_ID": 1032}}},
        {"EVENT_NAME": "onCrmDynamicItemDelete_1040", "EVENT_DATA": {"FIELDS": {"ID": "7"}}},
        {"EVENT_NAME": "ONCRMDYNAMICITEMUPDATE", "EVENT_DATA": {"FIELDS": {"ID": 9, "ENTITY_TYPE_ID": 1032}}},
        {"EVENT_NAME": "ONCRMDYNAMICITEMDELETE", "EVENT_DATA": {"FIELDS": {"ID": "x", "ENTITY_TYPE_ID": 2}}},
        {"EVENT_NAME": "ONCRMDYNAMICITEMDELETE", "EVENT_DATA": "not a dict"},
        "not a record",
    ]
    assert [(d.entity_type_id, d.id) for d in events.deleted_items(records)] == [(1032, 5), (1040, 7)]
