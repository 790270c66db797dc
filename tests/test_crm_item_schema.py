"""connector.crm.schema scan_types + fill_item_schema: what sync maps read, in three HTTP requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses
from test_sync_support import MAPPINGS, setup_processes

from connector.crm.naming import stage_id
from connector.crm.schema import fill_item_schema, scan_types
from connector.emulator import Emulator
from connector.rest import Client
from connector.templates import load_templates

CAR = load_templates([str(MAPPINGS / "car_service.toml")])


@pytest.fixture
def client_and_etid() -> Iterator[tuple[Client, int]]:
    emu = Emulator(limits="off", clock="virtual")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        webhook = emu.register(rsps)
        etid = setup_processes(emu, CAR)["car"]
        yield Client.from_webhook(webhook), etid


def test_fields_options_funnels_and_stages_in_three_requests(client_and_etid: tuple[Client, int]) -> None:
    client, etid = client_and_etid
    types = scan_types(client)
    car = next(t for t in types if t.entity_type_id == etid)
    assert car.code == "car" and car.fields == [] and car.funnels == []
    fill_item_schema(client, [car, car])  # the same type twice is read once
    assert client.stats.requests == 3
    assert client.stats.per_method["batch"] == 2 and client.stats.per_method["crm.type.list"] == 1
    by_code = {f.field_name.split(f"UF_CRM_{car.id}_", 1)[-1]: f for f in car.fields}
    template_fields = {f.code: f for f in CAR[0].fields}
    assert set(by_code) == {c.upper() for c in template_fields}
    make = template_fields["make"]
    assert {o.xml_id for o in by_code["MAKE"].options} == {o.code for o in make.options}
    assert car.funnels and all(f.stages for f in car.funnels)
    for funnel in car.funnels:
        assert all(s.status_id == stage_id(etid, funnel.id or 0, s.code) for s in funnel.stages)


def test_no_types_means_no_requests(client_and_etid: tuple[Client, int]) -> None:
    client, _ = client_and_etid
    fill_item_schema(client, [])
    assert client.stats.requests == 0
