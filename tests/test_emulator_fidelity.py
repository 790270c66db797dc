"""Issue 9 §2: emulator deviations found by differential testing, each held to its reference line.

References: ../shared/reference/server-behaviour.md (SB), ../shared/reference/bitrix24-rest.md (REST),
and the doc fixtures vendored in tests/fixtures/bitrix24-docs/ (named by file).
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from hypothesis import given, settings
from hypothesis import strategies as st
from support import DOCS_FIXTURES

from connector.crm.items import to_date_text
from connector.emulator import Emulator, serve
from connector.emulator.convert import iso_date
from connector.emulator.userfields import LABEL_KEYS
from connector.times import parse_date


def ok(body: dict[str, Any]) -> Any:
    assert "error" not in body, body
    return body["result"]


def new_type(emu: Emulator, title: str = "Car", **flags: str) -> dict[str, Any]:
    return ok(emu.call("crm.type.add", {"fields": {"title": title, **flags}}))["type"]  # type: ignore[no-any-return]


def add_item(emu: Emulator, etid: int, **fields: Any) -> dict[str, Any]:
    return ok(emu.call("crm.item.add", {"entityTypeId": etid, "fields": fields}))["item"]  # type: ignore[no-any-return]


def add_uf(emu: Emulator, type_id: int, name: str, kind: str, **extra: Any) -> dict[str, Any]:
    field = {
        "entityId": f"CRM_{type_id}",
        "fieldName": f"UF_CRM_{type_id}_{name}",
        "userTypeId": kind,
        **extra,
    }
    return ok(emu.call("userfieldconfig.add", {"moduleId": "crm", "field": field}))["field"]  # type: ignore[no-any-return]


# -- stages --------------------------------------------------------------------------------------
def test_stage_of_another_funnel_becomes_the_first_stage_with_the_same_semantics(emulator: Emulator) -> None:
    # SB §2 "categoryId / stageId validation": a stage not in the item's category is replaced by the
    # first stage of that category with the same semantics; an unknown stage counts as PROCESS.
    t = new_type(emulator, isCategoriesEnabled="Y", isStagesEnabled="Y")
    etid = t["entityTypeId"]
    first = ok(emulator.call("crm.category.list", {"entityTypeId": etid}))["categories"][0]["id"]
    second = ok(emulator.call("crm.category.add", {"entityTypeId": etid, "fields": {"name": "B"}}))[
        "category"
    ]["id"]
    a, b = f"DT{etid}_{first}", f"DT{etid}_{second}"
    cases = {
        f"{a}:SUCCESS": f"{b}:SUCCESS",  # success stays success
        f"{a}:FAIL": f"{b}:FAIL",  # failure stays failure
        f"{a}:CLIENT": f"{b}:NEW",  # process -> the first process stage
        f"DT{etid}_999:NOPE": f"{b}:NEW",  # unknown -> process
    }
    for given_stage, expected in cases.items():
        item = add_item(emulator, etid, categoryId=second, stageId=given_stage)
        assert (item["categoryId"], item["stageId"]) == (second, expected), given_stage
    # a funnel change picks the stage with the semantics of the requested stage
    item = add_item(emulator, etid, categoryId=first, stageId=f"{a}:NEW")
    moved = ok(
        emulator.call(
            "crm.item.update",
            {
                "entityTypeId": etid,
                "id": item["id"],
                "fields": {"categoryId": second, "stageId": f"{a}:FAIL"},
            },
        )
    )["item"]
    assert moved["stageId"] == f"{b}:FAIL"
    # ... and without a requested stage, the stored stage's semantics
    won = add_item(emulator, etid, categoryId=first, stageId=f"{a}:SUCCESS")
    body = {"entityTypeId": etid, "id": won["id"], "fields": {"categoryId": second}}
    assert ok(emulator.call("crm.item.update", body))["item"]["stageId"] == f"{b}:SUCCESS"


def test_no_stage_of_that_semantics_is_the_servers_error(emulator: Emulator) -> None:
    # SB §2: "Stage in new category is not found" (code "0") only when no matching stage exists
    t = new_type(emulator, isCategoriesEnabled="Y", isStagesEnabled="Y")
    etid = t["entityTypeId"]
    first = ok(emulator.call("crm.category.list", {"entityTypeId": etid}))["categories"][0]["id"]
    second = ok(emulator.call("crm.category.add", {"entityTypeId": etid, "fields": {"name": "B"}}))[
        "category"
    ]["id"]
    fail = next(
        s
        for s in ok(
            emulator.call("crm.status.list", {"filter": {"ENTITY_ID": f"DYNAMIC_{etid}_STAGE_{second}"}})
        )
        if s["SEMANTICS"] == "F"
    )
    ok(emulator.call("crm.status.delete", {"id": fail["ID"], "params": {"FORCED": "Y"}}))
    body = emulator.call(
        "crm.item.add",
        {"entityTypeId": etid, "fields": {"categoryId": second, "stageId": f"DT{etid}_{first}:FAIL"}},
    )
    assert (body["error"], body["error_description"]) == ("0", "Stage in new category is not found")


# -- parents ---------------------------------------------------------------------------------------
def test_client_enabled_type_gets_client_fields_not_parent_3_or_4(emulator: Emulator) -> None:
    # crm.item.fields.json (doc example of a client-enabled SPA): companyId/contactIds, no parentId3/4;
    # crm.type.get.json: contacts (3) and companies (4) are listed as predefined parents all the same.
    t = new_type(emulator, isClientEnabled="Y")
    etid = t["entityTypeId"]
    fields = ok(emulator.call("crm.item.fields", {"entityTypeId": etid}))["fields"]
    assert {"companyId", "contactIds"} <= set(fields)
    assert not [k for k in fields if k.startswith("parentId")]
    parents = {r["entityTypeId"]: r["isPredefined"] for r in t["relations"]["parent"]}
    assert parents == {3: "Y", 4: "Y"}
    emulator.seed_items(4, 5)  # companyId must name an existing company (system.py)
    item = add_item(emulator, etid, companyId=5)
    assert "parentId3" not in item and "parentId4" not in item and item["companyId"] == 5
    # only a relation creates parentId{N}
    other = new_type(emulator, "Owner")
    rel = {"parent": [{"entityTypeId": other["entityTypeId"], "isChildrenListEnabled": "true"}]}
    ok(emulator.call("crm.type.update", {"id": t["id"], "fields": {"relations": rel}}))
    fields = ok(emulator.call("crm.item.fields", {"entityTypeId": etid}))["fields"]
    assert [k for k in fields if k.startswith("parentId")] == [f"parentId{other['entityTypeId']}"]


@pytest.fixture()
def linked(emulator: Emulator) -> tuple[Emulator, int, int]:
    """A parent process and a child process with the relation parent -> child."""
    parent = new_type(emulator, "Owner")
    child = new_type(emulator, "Car")
    rel = {"parent": [{"entityTypeId": parent["entityTypeId"], "isChildrenListEnabled": "true"}]}
    ok(emulator.call("crm.type.update", {"id": child["id"], "fields": {"relations": rel}}))
    return emulator, parent["entityTypeId"], child["entityTypeId"]


def test_an_empty_parent_is_stored_and_returned_as_null(linked: tuple[Emulator, int, int]) -> None:
    # REST §9.1 / crm.item.get.json: unset parents print as null; SB §2 "Unknown and read-only fields":
    # a value that counts as empty sets the field to null
    emu, p, c = linked
    owner = add_item(emu, p)["id"]
    key, upper = f"parentId{p}", f"PARENT_ID_{p}"
    for empty in (0, "0", "", None):
        item = add_item(emu, c, **{key: empty})
        assert item[key] is None, empty
        assert next(r for r in emu.items(c) if r["ID"] == item["id"])[upper] is None
    item = add_item(emu, c, **{key: owner})
    assert item[key] == owner
    cleared = ok(emu.call("crm.item.update", {"entityTypeId": c, "id": item["id"], "fields": {key: 0}}))[
        "item"
    ]
    assert cleared[key] is None
    listed = ok(emu.call("crm.item.list", {"entityTypeId": c, "filter": {"id": item["id"]}}))["items"][0]
    assert listed[key] is None


def test_a_parent_must_be_an_existing_item_of_that_type(linked: tuple[Emulator, int, int]) -> None:
    # The references are silent on a parentId naming no item: the emulator takes the stricter reading
    # and refuses, naming the field and the value (items.py `_parents`).
    emu, p, c = linked
    key = f"parentId{p}"
    other_type_item = add_item(emu, c)["id"] + 40  # an id no Owner item has
    for bad in (999, other_type_item):
        body = emu.call("crm.item.add", {"entityTypeId": c, "fields": {key: bad}})
        assert body["error"] == "CRM_FIELD_ERROR_VALUE_NOT_VALID"
        assert key in body["error_description"] and str(bad) in body["error_description"]
    owner = add_item(emu, p)["id"]
    item = add_item(emu, c, **{key: owner})
    body = emu.call("crm.item.update", {"entityTypeId": c, "id": item["id"], "fields": {key: 12345}})
    assert body["error"] == "CRM_FIELD_ERROR_VALUE_NOT_VALID" and "12345" in body["error_description"]
    # nothing was saved by the refused update
    assert ok(emu.call("crm.item.get", {"entityTypeId": c, "id": item["id"]}))["item"][key] == owner


def test_a_parent_of_a_system_type_cannot_point_anywhere_in_the_emulator(emulator: Emulator) -> None:
    # the emulator keeps no deals, so no deal id exists: the strict rule refuses every one
    t = new_type(emulator)
    rel = {"parent": [{"entityTypeId": 2, "isChildrenListEnabled": "true"}]}
    ok(emulator.call("crm.type.update", {"id": t["id"], "fields": {"relations": rel}}))
    body = emulator.call("crm.item.add", {"entityTypeId": t["entityTypeId"], "fields": {"parentId2": 7}})
    assert body["error"] == "CRM_FIELD_ERROR_VALUE_NOT_VALID" and "parentId2" in body["error_description"]
    assert add_item(emulator, t["entityTypeId"], parentId2=0)["parentId2"] is None


# -- userfieldconfig.list, stages, crm.type.add ----------------------------------------------------
def test_userfieldconfig_list_rows_carry_null_label_maps(emulator: Emulator) -> None:
    # REST §10.2: "Label maps may be null in list rows"; only get returns the full maps
    # (userfieldconfig.get.json). With select.language: the userfieldconfig.list.json doc example.
    t = new_type(emulator)
    made = add_uf(emulator, t["id"], "PLATE", "string", editFormLabel={"en": "Plate", "de": "Kennzeichen"})
    rows = ok(
        emulator.call("userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{t['id']}"}})
    )
    row = rows["fields"][0]
    assert all(row[k] is None for k in LABEL_KEYS) and row["languageId"] is None
    full = ok(emulator.call("userfieldconfig.get", {"moduleId": "crm", "id": made["id"]}))["field"]
    assert full["editFormLabel"]["en"] == "Plate" and full["editFormLabel"]["de"] == "Kennzeichen"
    assert isinstance(full["listColumnLabel"], dict)
    one = ok(
        emulator.call("userfieldconfig.list", {"moduleId": "crm", "select": {"0": "*", "language": "de"}})
    )
    row = one["fields"][0]
    assert row["languageId"] == {"de": "de"} and row["editFormLabel"] == {"de": "Kennzeichen"}
    assert row["listColumnLabel"] is None and row["helpMessage"] is None


def test_userfieldconfig_list_row_has_the_doc_examples_keys(emulator: Emulator) -> None:
    t = new_type(emulator)
    add_uf(emulator, t["id"], "TAGS", "enumeration", multiple="Y", enum=[{"value": "a"}])
    one = ok(
        emulator.call("userfieldconfig.list", {"moduleId": "crm", "select": {"0": "*", "language": "de"}})
    )
    fixture_row = _fixture("userfieldconfig.list.json")["result"]["fields"][0]
    assert set(one["fields"][0]) == set(fixture_row)


def test_default_stages_have_name_init_equal_to_name(emulator: Emulator) -> None:
    # SB §4 "Default stages": NAME_INIT = NAME; crm.status.list.dynamic.json shows the same
    t = new_type(emulator, isStagesEnabled="Y")
    etid = t["entityTypeId"]
    cat = ok(emulator.call("crm.category.list", {"entityTypeId": etid}))["categories"][0]["id"]
    directory = f"DYNAMIC_{etid}_STAGE_{cat}"
    stages = ok(emulator.call("crm.status.list", {"filter": {"ENTITY_ID": directory}}))
    assert len(stages) == 5 and all(s["NAME_INIT"] == s["NAME"] for s in stages)
    # NAME_INIT is the initial name: a rename keeps it; an added stage has none (crm.status.list.deal.json)
    ok(emulator.call("crm.status.update", {"id": stages[0]["ID"], "fields": {"NAME": "Intake"}}))
    added = ok(
        emulator.call(
            "crm.status.add",
            {"fields": {"ENTITY_ID": directory, "STATUS_ID": "MINE", "NAME": "Mine", "SORT": 35}},
        )
    )
    again = {s["ID"]: s for s in ok(emulator.call("crm.status.list", {"filter": {"ENTITY_ID": directory}}))}
    assert (
        again[stages[0]["ID"]]["NAME"] == "Intake"
        and again[stages[0]["ID"]]["NAME_INIT"] == stages[0]["NAME"]
    )
    assert again[str(added)]["NAME_INIT"] == ""


def test_default_stage_names_match_the_doc_example(emulator: Emulator) -> None:
    t = new_type(emulator, isStagesEnabled="Y")
    etid = t["entityTypeId"]
    cat = ok(emulator.call("crm.category.list", {"entityTypeId": etid}))["categories"][0]["id"]
    stages = ok(emulator.call("crm.status.list", {"filter": {"ENTITY_ID": f"DYNAMIC_{etid}_STAGE_{cat}"}}))
    doc = _fixture("crm.status.list.dynamic.json")["result"]
    assert [(s["NAME"], s["NAME_INIT"]) for s in stages] == [(s["NAME"], s["NAME_INIT"]) for s in doc]


def test_type_add_without_title_names_the_field_name(emulator: Emulator) -> None:
    # SB §3 "Parameters and required fields": BX_EMPTY_REQUIRED, MAIN_ENTITY_FIELD_REQUIRED for "Name"
    for fields in ({"isStagesEnabled": "Y"}, {"title": ""}, {"title": "   "}):
        body = emulator.call("crm.type.add", {"fields": fields})
        assert body["error"] == "BX_EMPTY_REQUIRED" and '"Name"' in body["error_description"], fields
    t = new_type(emulator)
    body = emulator.call("crm.type.update", {"id": t["id"], "fields": {"title": ""}})
    assert body["error"] == "BX_EMPTY_REQUIRED" and '"Name"' in body["error_description"]


# -- the `><` filter prefix ----------------------------------------------------------------------
def test_between_prefix_accepts_a_scalar_and_refuses_an_array(emulator: Emulator) -> None:
    # SB §1 "Filter and order validation": `><` is an allowed prefix; array values are accepted only
    # for '', =, !=, @, !@, so `><` with an array is INVALID_ARG_VALUE and a scalar passes. What a
    # scalar range matches is not in the references: the emulator matches no row (filters.py).
    t = new_type(emulator)
    etid = t["entityTypeId"]
    for _ in range(3):
        add_item(emulator, etid)
    for flt in ({"><id": 2}, {"><id": "2"}, {"!><id": 2}, {"><createdTime": "2026-01-01T03:00:00+03:00"}):
        body = emulator.call("crm.item.list", {"entityTypeId": etid, "filter": flt})
        assert ok(body)["items"] == [] and body["total"] == 0, flt
    for flt in ({"><id": [1, 3]}, {"!><id": {"0": 1, "1": 3}}):
        body = emulator.call("crm.item.list", {"entityTypeId": etid, "filter": flt})
        assert body["error"] == "INVALID_ARG_VALUE" and "'ID'" in body["error_description"], flt


# -- files ---------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture()
def with_files(emulator: Emulator) -> tuple[Emulator, int, str]:
    t = new_type(emulator)
    add_uf(emulator, t["id"], "SCAN", "file")
    add_uf(emulator, t["id"], "DOCS", "file", multiple="Y")
    return emulator, t["entityTypeId"], f"ufCrm{t['id']}Scan"


def test_file_values_are_id_url_url_machine_and_download_in_process(
    with_files: tuple[Emulator, int, str],
) -> None:
    # REST §9.3: written as [name, base64], read as {"id", "url", "urlMachine"}; `{id}` keeps a file
    emu, etid, key = with_files
    docs = key.replace("Scan", "Docs")
    payload = b"%PDF-1.4 scan \x00\xff bytes"
    item = add_item(
        emu, etid, **{key: ["scan.pdf", _b64(payload)], docs: [["a.txt", _b64(b"A")], ["b.txt", _b64(b"B")]]}
    )
    value = item[key]
    assert set(value) == {"id", "url", "urlMachine"}
    assert value["url"].startswith("https://emulator.bitrix24.test/") and "auth=" in value["urlMachine"]
    assert len(item[docs]) == 2 and all(set(v) == {"id", "url", "urlMachine"} for v in item[docs])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        emu.register(rsps)
        assert requests.get(value["url"], timeout=5).content == payload
        assert requests.get(value["urlMachine"], timeout=5).content == payload
        assert [requests.get(v["url"], timeout=5).content for v in item[docs]] == [b"A", b"B"]
        wrong = requests.get(value["urlMachine"].rsplit("auth=", 1)[0] + "auth=nope", timeout=5)
        assert wrong.status_code == 403
        missing = requests.get(value["url"].replace(f"fileId={value['id']}", "fileId=9999"), timeout=5)
        assert missing.status_code == 404 and b"9999" in missing.content
    # {id} of a stored file keeps it; an unknown id resets the field (REST §9.3 update rules)
    body = {"entityTypeId": etid, "id": item["id"], "fields": {key: {"id": value["id"]}}}
    assert ok(emu.call("crm.item.update", body))["item"][key]["id"] == value["id"]
    body["fields"] = {key: {"id": 424242}}
    assert ok(emu.call("crm.item.update", body))["item"][key] is None


def test_file_url_downloads_over_the_loopback_server(emulator: Emulator, tmp_path: Path) -> None:
    t = new_type(emulator)
    add_uf(emulator, t["id"], "SCAN", "file")
    payload = bytes(range(256)) * 4
    server = serve(emulator, "127.0.0.1", 0)
    try:
        hook = server.webhook_url
        fields = {f"ufCrm{t['id']}Scan": ["scan.bin", _b64(payload)]}
        reply = requests.post(
            hook + "crm.item.add", json={"entityTypeId": t["entityTypeId"], "fields": fields}, timeout=5
        )
        value = reply.json()["result"]["item"][f"ufCrm{t['id']}Scan"]
        assert value["url"].startswith(server.base_url + "/")
        got = requests.get(value["urlMachine"], timeout=5)
        assert got.status_code == 200 and got.content == payload
        assert requests.get(value["url"], timeout=5).content == payload
    finally:
        server.stop()


def test_the_download_token_is_masked_in_the_servers_log(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    # working rules: secrets never appear in logs; urlMachine carries a token (REST §9.3)
    t = new_type(emulator)
    add_uf(emulator, t["id"], "SCAN", "file")
    key = f"ufCrm{t['id']}Scan"
    value = add_item(emulator, t["entityTypeId"], **{key: ["x.txt", _b64(b"x")]})[key]
    token = value["urlMachine"].rsplit("auth=", 1)[1]
    server = serve(emulator, "127.0.0.1", 0)
    try:
        with caplog.at_level(logging.DEBUG, logger="connector.emulator.server"):
            url = f"{server.base_url}/bitrix/tools/crm_show_file.php?fileId={value['id']}&auth={token}"
            assert requests.get(url, timeout=5).content == b"x"
    finally:
        server.stop()
    assert "crm_show_file.php" in caplog.text and token not in caplog.text


def test_file_bytes_survive_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "portal.db"
    emu = Emulator(clock="virtual", state_file=str(path))
    t = new_type(emu)
    add_uf(emu, t["id"], "SCAN", "file")
    item = add_item(emu, t["entityTypeId"], **{f"ufCrm{t['id']}Scan": ["x.txt", _b64(b"kept")]})
    emu.close()
    again = Emulator(clock="virtual", state_file=str(path))
    try:
        value = ok(again.call("crm.item.get", {"entityTypeId": t["entityTypeId"], "id": item["id"]}))["item"]
        url = value[f"ufCrm{t['id']}Scan"]["urlMachine"]
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            again.register(rsps)
            assert requests.get(url, timeout=5).content == b"kept"
    finally:
        again.close()


# -- dates -----------------------------------------------------------------------------------------
def test_dates_are_utc_midnight_in_the_portal_offset() -> None:
    # SB §1 "Item JSON values" (observation wins), REST §9.5 and §14 item 13:
    # `2025-04-29T03:00:00+03:00` on a +03:00 portal
    for tz, expected in (("+03:00", "2025-04-29T03:00:00+03:00"), ("-05:00", "2025-04-28T19:00:00-05:00")):
        emu = Emulator(clock="virtual", tz=tz)
        t = new_type(emu, isBeginCloseDatesEnabled="Y")
        add_uf(emu, t["id"], "BORN", "date")
        item = add_item(
            emu,
            t["entityTypeId"],
            begindate="2025-04-29",
            closedate="2025-04-29",
            **{f"ufCrm{t['id']}Born": "2025-04-29"},
        )
        assert item["begindate"] == item["closedate"] == item[f"ufCrm{t['id']}Born"] == expected, tz
        listed = ok(emu.call("crm.item.list", {"entityTypeId": t["entityTypeId"]}))["items"][0]
        assert listed["begindate"] == expected
        # a date filter still compares dates
        got = ok(
            emu.call(
                "crm.item.list", {"entityTypeId": t["entityTypeId"], "filter": {"begindate": "2025-04-29"}}
            )
        )
        assert [i["id"] for i in got["items"]] == [item["id"]]


def test_the_default_begindate_is_todays_date_in_the_portal_offset() -> None:
    # REST §14 item 12: begindate = today, closedate = +7 d (virtual clock: 2026-01-01T00:00:00Z)
    emu = Emulator(clock="virtual", tz="-05:00")
    t = new_type(emu, isBeginCloseDatesEnabled="Y")
    item = add_item(emu, t["entityTypeId"])
    # the portal's today is 2025-12-31, rendered as its UTC midnight in -05:00
    assert item["begindate"] == "2025-12-30T19:00:00-05:00"
    assert to_date_text(item["begindate"]) == "2025-12-31" and to_date_text(item["closedate"]) == "2026-01-07"


_OFFSETS = st.integers(min_value=-12 * 4, max_value=14 * 4).map(lambda q: timezone(timedelta(minutes=15 * q)))
_DATES = st.dates(min_value=date(1901, 1, 1), max_value=date(2199, 12, 31))


@given(_OFFSETS, _DATES)
def test_the_client_reads_date_values_for_every_portal_offset(tz: timezone, day: date) -> None:
    # the portal's form (UTC midnight in its offset) and local midnight both read back as the date
    portal_form = iso_date(day.isoformat(), tz)
    assert portal_form is not None
    assert to_date_text(portal_form) == day.isoformat()
    assert parse_date(portal_form) == day
    local_midnight = f"{day.isoformat()}T00:00:00{_offset_text(tz)}"
    assert to_date_text(local_midnight) == day.isoformat() and parse_date(local_midnight) == day
    assert to_date_text(day.isoformat()) == day.isoformat()


@settings(max_examples=30)
@given(_OFFSETS, _DATES)
def test_emulator_round_trip_of_a_date_field_for_every_offset(tz: timezone, day: date) -> None:
    # through a whole portal: written as YYYY-MM-DD, read as UTC midnight in the portal offset
    emu = Emulator(clock="virtual", tz=_offset_text(tz))
    t = new_type(emu, isBeginCloseDatesEnabled="Y")
    item = add_item(emu, t["entityTypeId"], begindate=day.isoformat())
    rendered = datetime.fromisoformat(item["begindate"])
    assert rendered.utcoffset() == tz.utcoffset(None)
    assert rendered.astimezone(UTC).replace(tzinfo=None) == datetime(day.year, day.month, day.day)
    assert to_date_text(item["begindate"]) == day.isoformat()


def test_negative_offsets_are_where_the_naive_date_part_is_wrong() -> None:
    value = iso_date("2025-04-29", timezone(timedelta(hours=-5)))
    assert value == "2025-04-28T19:00:00-05:00" and value[:10] == "2025-04-28"
    assert to_date_text(value) == "2025-04-29" and parse_date(value) == date(2025, 4, 29)
    assert to_date_text("2025-04-29T00:00:00Z") == "2025-04-29"
    with pytest.raises(ValueError, match="not a portal date"):
        parse_date("29.04.2025")


def test_the_rest_client_reads_a_date_field_on_a_negative_offset_portal() -> None:
    from connector.rest import Client

    emu = Emulator(clock="virtual", tz="-05:00")
    t = new_type(emu)
    add_uf(emu, t["id"], "BORN", "date")
    key = f"ufCrm{t['id']}Born"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        client = Client.from_webhook(emu.register(rsps))
        made = client.call(
            "crm.item.add", {"entityTypeId": t["entityTypeId"], "fields": {key: "2025-04-29"}}
        ).result
        got = client.call(
            "crm.item.get", {"entityTypeId": t["entityTypeId"], "id": made["item"]["id"]}
        ).result
    assert got["item"][key] == "2025-04-28T19:00:00-05:00"
    assert to_date_text(got["item"][key]) == "2025-04-29"


# -- helpers -----------------------------------------------------------------------------------------
def _fixture(name: str) -> dict[str, Any]:
    """A doc fixture vendored under tests/fixtures/bitrix24-docs (never skipped: it must be there)."""
    return json.loads((DOCS_FIXTURES / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _offset_text(tz: timezone) -> str:
    offset = tz.utcoffset(None)
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
