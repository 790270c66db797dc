"""The REST client against the emulator over a real 127.0.0.1 socket (always stopped)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from connector.emulator import Emulator, serve
from connector.rest import (
    AuthError,
    Client,
    LeakyBucket,
    NotFound,
    OAuthAuth,
    OAuthTokens,
    OutcomeUnknown,
    RetryPolicy,
)


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


# -- list methods of other shapes ------------------------------------------------------------------

def test_iter_list_crm_type_list_chains_pages_in_one_batch(portal: Portal) -> None:
    emu, _, client, first = portal
    for n in range(119):
        emu.call("crm.type.add", {"fields": {"title": f"Type {n}"}})
    before = client.stats.requests
    types = list(client.iter_list("crm.type.list", {"select": ["id", "entityTypeId", "title"]}))
    assert len(types) == 120 and [t["id"] for t in types] == sorted(t["id"] for t in types)
    assert types[0]["entityTypeId"] == first and types[-1]["title"] == "Type 118"
    assert client.stats.requests - before == 2  # the first page, then one batch for the other 70


def test_iter_list_categories_and_statuses_come_whole_in_one_call(portal: Portal) -> None:
    emu, _, client, etid = portal
    for n in range(60):
        emu.call("crm.category.add", {"entityTypeId": etid, "fields": {"name": f"Funnel {n}"}})
    before = client.stats.requests
    categories = list(client.iter_list("crm.category.list", {"entityTypeId": etid}))
    assert len(categories) == 61 and sorted(c["name"] for c in categories)[0] == "Funnel 0"
    statuses = list(client.iter_list("crm.status.list"))  # plain array, 5 stages per funnel
    assert len(statuses) == 305 and len({s["ID"] for s in statuses}) == 305
    stage_entity = f"DYNAMIC_{etid}_STAGE_{categories[-1]['id']}"
    funnel = list(client.iter_list("crm.status.list", {"filter": {"ENTITY_ID": stage_entity}}))
    codes = [s["STATUS_ID"].split(":")[1] for s in funnel]
    assert codes == ["NEW", "PREPARATION", "CLIENT", "SUCCESS", "FAIL"]
    assert client.stats.requests - before == 3


# -- OAuth against the emulator's token endpoint -----------------------------------------------------

def test_oauth_refresh_against_the_emulator_token_endpoint(portal: Portal) -> None:
    emu, server, _, etid = portal
    pair = emu.issue_token(base=server.base_url)
    saved: list[OAuthTokens] = []
    auth = OAuthAuth(server.base_url + "/rest/", pair["access_token"], pair["refresh_token"],
                     emu.oauth.client_id, emu.oauth.client_secret,
                     token_url=server.base_url + "/oauth/token/", on_tokens=saved.append)
    client = Client(auth, bucket=LeakyBucket(1000, 1000))
    assert client.call("crm.item.list", {"entityTypeId": etid}).result == {"items": []}
    emu.oauth.expire_all()
    item = client.call("crm.item.add", {"entityTypeId": etid, "fields": {"title": "after refresh"}})
    assert item.result["item"]["title"] == "after refresh"
    assert client.stats.refreshes == 1 and len(saved) == 1
    assert saved[0].access_token != pair["access_token"] and saved[0].refresh_token != pair["refresh_token"]
    assert auth.base_url == server.base_url + "/rest/"  # client_endpoint from the token answer
    # the old refresh token died with the refresh: a client still holding it fails once, no loop
    stale = Client(OAuthAuth(server.base_url + "/rest/", pair["access_token"], pair["refresh_token"],
                             emu.oauth.client_id, emu.oauth.client_secret,
                             token_url=server.base_url + "/oauth/token/"), bucket=LeakyBucket(1000, 1000))
    emu.oauth.expire_all()
    with pytest.raises(AuthError) as caught:
        stale.call("crm.item.list", {"entityTypeId": etid})
    assert caught.value.code == "invalid_grant" and caught.value.method == "oauth.token"
    assert pair["refresh_token"] not in str(caught.value) and stale.stats.requests == 1


def test_oauth_wrong_client_secret_is_an_auth_error_naming_no_secret(portal: Portal) -> None:
    emu, server, _, _ = portal
    pair = emu.issue_token(base=server.base_url)
    auth = OAuthAuth(server.base_url + "/rest/", pair["access_token"], pair["refresh_token"],
                     emu.oauth.client_id, "wrong-secret-123", token_url=server.base_url + "/oauth/token/")
    client = Client(auth, bucket=LeakyBucket(1000, 1000))
    emu.oauth.expire_all()
    with pytest.raises(AuthError) as caught:
        client.call("crm.type.list")
    assert caught.value.code == "invalid_client" and "wrong-secret-123" not in str(caught.value)
