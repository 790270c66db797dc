"""Emulator crm.item.*: naming, values, stages, no-op updates, filters, paging, batch."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.emulator import Emulator

ETID = 1032


def ok(body: dict[str, Any]) -> Any:
    assert "error" not in body, body
    return body["result"]


@pytest.fixture()
def emu(emulator: Emulator) -> Emulator:
    """A portal with one process (clients, dates, products on) and a few user fields."""
    t = ok(
        emulator.call(
            "crm.type.add",
            {
                "fields": {
                    "title": "Car",
                    "isClientEnabled": "Y",
                    "isBeginCloseDatesEnabled": "Y",
                    "isCategoriesEnabled": "Y",
                }
            },
        )
    )
    type_id = t["type"]["id"]

    def uf(name: str, kind: str, **extra: Any) -> dict[str, Any]:
        field = {
            "entityId": f"CRM_{type_id}",
            "fieldName": f"UF_CRM_{type_id}_{name}",
            "userTypeId": kind,
            **extra,
        }
        return ok(emulator.call("userfieldconfig.add", {"moduleId": "crm", "field": field}))["field"]

    uf("PLATE", "string")
    uf("VIP", "boolean")
    uf("BORN", "date")
    uf("MILEAGE", "integer")
    uf("1700000000", "string")
    uf("TAGS", "string", multiple="Y")
    uf("COLOR", "enumeration", enum=[{"value": "Red"}, {"value": "Blue"}])
    return emulator


def add(emu: Emulator, **fields: Any) -> dict[str, Any]:
    return ok(emu.call("crm.item.add", {"entityTypeId": ETID, "fields": fields}))["item"]


def test_item_add_defaults_and_camel_names(emu: Emulator) -> None:
    item = add(emu, ufCrm3Plate="A123", ufCrm3_1700000000="x")
    assert item["title"] == "Car #1" and item["opened"] == "Y" and item["assignedById"] == 1
    assert item["stageId"] == "DT1032_1:NEW" and item["categoryId"] == 1
    assert item["createdTime"] == item["updatedTime"] == "2026-01-01T03:00:00+03:00"
    # dates: UTC midnight rendered in the portal offset (bitrix24-rest.md §9.5 and §14 item 13)
    assert (
        item["begindate"] == "2026-01-01T03:00:00+03:00" and item["closedate"] == "2026-01-08T03:00:00+03:00"
    )
    assert item["ufCrm3Plate"] == "A123" and item["ufCrm3_1700000000"] == "x"
    assert item["contactIds"] == [] and item["entityTypeId"] == ETID
    assert item["ufCrm3Tags"] == [] and item["xmlId"] is None


def test_uf_upper_names_need_use_original_uf_names(emu: Emulator) -> None:
    ignored = add(emu, UF_CRM_3_PLATE="A1")
    assert ignored["ufCrm3Plate"] is None
    body = emu.call(
        "crm.item.add",
        {
            "entityTypeId": ETID,
            "useOriginalUfNames": "Y",
            "fields": {"UF_CRM_3_PLATE": "B2", "TITLE": "upper system names work"},
        },
    )
    item = ok(body)["item"]
    assert item["UF_CRM_3_PLATE"] == "B2" and item["title"] == "upper system names work"
    assert "ufCrm3Plate" not in item
    wrong = emu.call("crm.item.get", {"entityTypeId": ETID, "id": 1, "useOriginalUfNames": True})
    assert wrong["error"] == "100" and "useOriginalUfNames" in wrong["error_description"]


def test_boolean_write_rule_and_dates(emu: Emulator) -> None:
    results = {}
    for raw in (True, "true", "y", "Y", 1, "1", "N", 0, ""):
        results[repr(raw)] = add(emu, ufCrm3Vip=raw)["ufCrm3Vip"]
    assert results == {
        "True": "Y",
        "'true'": "Y",
        "'y'": "Y",
        "'Y'": "Y",
        "1": "N",
        "'1'": "N",
        "'N'": "N",
        "0": None,
        "''": None,
    }
    item = add(emu, ufCrm3Born="2025-04-29T22:30:00+03:00", begindate="not a date")
    assert item["ufCrm3Born"] == "2025-04-29T03:00:00+03:00"  # bitrix24-rest.md §9.5: UTC midnight
    assert item["begindate"] == "2026-01-01T03:00:00+03:00"  # unparsable: silently not set


def test_multiple_field_needs_an_array_and_enum_ids_are_checked(emu: Emulator) -> None:
    assert add(emu, ufCrm3Tags=["a", "b"])["ufCrm3Tags"] == ["a", "b"]
    bad = emu.call("crm.item.add", {"entityTypeId": ETID, "fields": {"ufCrm3Tags": "a"}})
    assert bad == {
        "error": "100",
        "error_description": "Expected iterable value for multiple field, but got `string` instead",
    }
    assert emu.call("crm.item.add", {"entityTypeId": ETID, "fields": {"ufCrm3Color": 999}})["error"] == (
        "CRM_FIELD_ERROR_VALUE_NOT_VALID"
    )


def test_unknown_and_read_only_fields_are_ignored(emu: Emulator) -> None:
    item = add(emu, id=77, createdTime="2020-01-01T00:00:00+00:00", nonsense="x")
    assert item["id"] == 1 and item["createdTime"] == "2026-01-01T03:00:00+03:00" and "nonsense" not in item


def test_stage_is_corrected_silently(emu: Emulator) -> None:
    assert add(emu, stageId="DT1032_1:NOPE")["stageId"] == "DT1032_1:NEW"
    cat = ok(emu.call("crm.category.add", {"entityTypeId": ETID, "fields": {"name": "B"}}))["category"]["id"]
    moved = add(emu, categoryId=cat)
    assert moved["stageId"] == f"DT1032_{cat}:NEW"
    item = add(emu, stageId="DT1032_1:SUCCESS")
    upd = ok(
        emu.call(
            "crm.item.update",
            {"entityTypeId": ETID, "id": item["id"], "fields": {"stageId": f"DT1032_{cat}:CLIENT"}},
        )
    )["item"]
    assert upd["stageId"] == "DT1032_1:SUCCESS"  # reverted: not a stage of this funnel
    cross = ok(
        emu.call("crm.item.update", {"entityTypeId": ETID, "id": item["id"], "fields": {"categoryId": cat}})
    )["item"]
    assert cross["categoryId"] == cat and cross["stageId"] == f"DT1032_{cat}:SUCCESS"  # same semantics
    bad = emu.call("crm.item.add", {"entityTypeId": ETID, "fields": {"categoryId": 999}})
    assert bad["error"] == "CRM_FIELD_ERROR_VALUE_NOT_VALID"


def test_no_op_update_keeps_updated_time_and_fires_nothing(emu: Emulator) -> None:
    fired: list[str] = []
    emu.events.emit = lambda name, fields, auth=None, **kw: fired.append(name) or 0  # type: ignore[method-assign]
    item = add(emu, title="Same", ufCrm3Plate="P")
    emu.clock.advance(60)  # type: ignore[attr-defined]
    same = ok(
        emu.call(
            "crm.item.update",
            {"entityTypeId": ETID, "id": item["id"], "fields": {"title": "Same", "ufCrm3Plate": "P"}},
        )
    )["item"]
    assert same["updatedTime"] == item["updatedTime"]
    assert fired == ["ONCRMDYNAMICITEMADD"]
    changed = ok(
        emu.call(
            "crm.item.update",
            {"entityTypeId": ETID, "id": item["id"], "fields": {"stageId": "DT1032_1:CLIENT"}},
        )
    )["item"]
    assert (
        changed["updatedTime"] == "2026-01-01T03:01:00+03:00"
        and changed["movedTime"] == changed["updatedTime"]
    )
    assert changed["previousStageId"] == "DT1032_1:NEW"
    assert fired == ["ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE"]
    history = [h["typeId"] for h in emu.stage_history if h["ownerId"] == item["id"]]
    assert history == [1, 2]


def test_item_errors(emu: Emulator) -> None:
    assert emu.call("crm.item.get", {"entityTypeId": ETID, "id": 5}) == {
        "error": "NOT_FOUND",
        "error_description": "Item was not found.",
    }
    assert emu.call("crm.item.get", {"entityTypeId": 1040, "id": 5})["error_description"] == (
        "Smart Process Automation was not found"
    )
    assert (
        emu.call("crm.item.list", {})["error_description"]
        == "Could not find value for parameter {entityTypeId}"
    )
    assert emu.call("crm.item.update", {"entityTypeId": ETID, "id": 1})["error"] == "100"
    assert emu.call("crm.item.delete", {"entityTypeId": ETID, "id": 3})["error"] == "NOT_FOUND"


def test_contact_ids_and_company(emu: Emulator) -> None:
    emu.seed_items(3, 7)  # client ids must name existing contacts / companies (system.py)
    emu.seed_items(4, 9)
    item = add(emu, contactIds=[5, 6], companyId=9)
    assert item["contactIds"] == [5, 6] and item["contactId"] == 5 and item["companyId"] == 9
    assert add(emu, contactId=7)["contactIds"] == [7]


def test_fields_lists_camel_keys_with_upper_names(emu: Emulator) -> None:
    fields = ok(emu.call("crm.item.fields", {"entityTypeId": ETID}))["fields"]
    assert fields["ufCrm3Plate"]["upperName"] == "UF_CRM_3_PLATE" and fields["ufCrm3Plate"]["isDynamic"]
    assert fields["stageId"]["statusType"] == "DYNAMIC_1032_STAGE_1"
    assert [o["VALUE"] for o in fields["ufCrm3Color"]["items"]] == ["Red", "Blue"]
    assert fields["ufCrm3Tags"]["isMultiple"] is True
    original = ok(emu.call("crm.item.fields", {"entityTypeId": ETID, "useOriginalUfNames": "Y"}))["fields"]
    assert "UF_CRM_3_PLATE" in original and "ufCrm3Plate" not in original


def list_ids(emu: Emulator, **params: Any) -> list[int]:
    return [
        r["id"]
        for r in ok(emu.call("crm.item.list", {"entityTypeId": ETID, "select": ["id"], **params}))["items"]
    ]


def test_filter_operators(emu: Emulator) -> None:
    for i in range(1, 7):
        add(
            emu,
            title=f"Car {i}",
            ufCrm3Mileage=i * 100,
            ufCrm3Plate=None if i == 6 else f"AB{i}",
            ufCrm3Vip="Y" if i % 2 else "N",
            xmlId=f"key-{i}",
        )
    assert list_ids(emu, filter={">ufCrm3Mileage": 300}) == [4, 5, 6]
    assert list_ids(emu, filter={">=id": 2, "<id": 4}) == [2, 3]
    assert list_ids(emu, filter={"<=id": 2}) == [1, 2]
    assert list_ids(emu, filter={"@id": [1, 3, 99]}) == [1, 3]
    assert list_ids(emu, filter={"!@id": [1, 3]}) == [2, 4, 5, 6]
    assert list_ids(emu, filter={"%title": "car 2"}) == [2]
    assert list_ids(emu, filter={"=%ufCrm3Plate": "ab%"}) == [1, 2, 3, 4, 5]
    assert list_ids(emu, filter={"!%title": "2"}) == [1, 3, 4, 5, 6]
    assert list_ids(emu, filter={"!=id": 1, "!id": 2}) == [3, 4, 5, 6]
    assert list_ids(emu, filter={"ufCrm3Plate": ""}) == [6]
    assert list_ids(emu, filter={"ufCrm3Vip": 1}) == [1, 3, 5]
    assert list_ids(emu, filter={"xmlId": "key-4"}) == [4]
    assert list_ids(emu, filter={">=createdTime": "2026-01-01T00:00:00+00:00"}) == [1, 2, 3, 4, 5, 6]
    assert list_ids(emu, filter={"<createdTime": "2026-01-01T00:00:00+00:00"}) == []
    nested = {
        "0": {"logic": "OR", "0": {"id": 1}, "1": {"logic": "AND", "0": {">id": 4}, "1": {"ufCrm3Vip": 0}}}
    }
    assert list_ids(emu, filter=nested) == [1, 6]
    assert list_ids(emu, filter=[{"logic": "OR", "0": {"id": 2}, "1": {"id": 3}}]) == [2, 3]
    # the remaining prefixes of Validator\Filter: =, =% / %= (LIKE as given), !=% / !%= (NOT LIKE)
    assert list_ids(emu, filter={"=title": "Car 3"}) == [3]
    assert list_ids(emu, filter={"title": ["Car 1", "Car 4"]}) == [1, 4]
    assert list_ids(emu, filter={"!=title": ["Car 1", "Car 4"]}) == [2, 3, 5, 6]
    assert list_ids(emu, filter={"%=title": "car 1%"}) == [1]
    assert list_ids(emu, filter={"!=%title": "car%", "!%=title": "x%"}) == []
    # server-behaviour.md §1 "Filter and order validation": `><` with an array is refused; a scalar
    # passes the validator (tests/test_emulator_fidelity.py covers what it matches)
    for between in ({"><id": [2, 4]}, {"!><id": ["2", "3"]}):
        assert (
            emu.call("crm.item.list", {"entityTypeId": ETID, "filter": between})["error"]
            == "INVALID_ARG_VALUE"
        )


def test_filter_and_order_validation(emu: Emulator) -> None:
    add(emu)
    bad = emu.call("crm.item.list", {"entityTypeId": ETID, "filter": {"fooBar": 1}})
    assert bad["error_description"] == "Invalid filter: field 'FOO_BAR' is not allowed in filter"
    assert (
        "UF__CRM_3_PLATE"
        in emu.call("crm.item.list", {"entityTypeId": ETID, "filter": {"UF_CRM_3_PLATE": 1}})[
            "error_description"
        ]
    )
    assert emu.call("crm.item.list", {"entityTypeId": ETID, "filter": {">id": [1, 2]}})[
        "error_description"
    ] == ("Invalid filter: field 'ID' has invalid value")
    assert emu.call("crm.item.list", {"entityTypeId": ETID, "order": {"nope": "ASC"}})[
        "error_description"
    ] == ("Invalid order: field 'NOPE' is not allowed in order")
    assert (
        "But got 'up'"
        in emu.call("crm.item.list", {"entityTypeId": ETID, "order": {"id": "up"}})["error_description"]
    )
    assert list_ids(emu, order={"id": "desc"}) == [1]


def test_order_and_select(emu: Emulator) -> None:
    for mileage in (300, 100, 200):
        add(emu, ufCrm3Mileage=mileage)
    add(emu)
    assert list_ids(emu, order={"ufCrm3Mileage": "ASC"}) == [4, 2, 3, 1]
    assert list_ids(emu, order={"ufCrm3Mileage": "DESC"}) == [1, 3, 2, 4]
    rows = ok(emu.call("crm.item.list", {"entityTypeId": ETID, "select": ["id", "title", "bogus"]}))["items"]
    assert set(rows[0]) == {"id", "title"}
    rows = ok(emu.call("crm.item.list", {"entityTypeId": ETID, "select": ["bogus"]}))["items"]
    assert rows[0] == []
    uf_only = ok(emu.call("crm.item.list", {"entityTypeId": ETID, "select": ["UF_*"]}))["items"][0]
    assert set(uf_only) == {
        "ufCrm3Plate",
        "ufCrm3Vip",
        "ufCrm3Born",
        "ufCrm3Mileage",
        "ufCrm3_1700000000",
        "ufCrm3Tags",
        "ufCrm3Color",
    }


def test_paging_start_next_total_and_start_minus_one(emu: Emulator) -> None:
    emu.seed_items(ETID, 120)
    first = emu.call("crm.item.list", {"entityTypeId": ETID, "select": ["id"]})
    assert first["total"] == 120 and first["next"] == 50 and len(first["result"]["items"]) == 50
    rounded = emu.call("crm.item.list", {"entityTypeId": ETID, "select": ["id"], "start": 75})
    assert rounded["result"]["items"][0]["id"] == 51 and rounded["next"] == 100
    last = emu.call("crm.item.list", {"entityTypeId": ETID, "select": ["id"], "start": 100})
    assert "next" not in last and last["total"] == 120 and len(last["result"]["items"]) == 20
    past = emu.call("crm.item.list", {"entityTypeId": ETID, "start": 500})
    assert past["result"]["items"] == [] and past["total"] == 120
    keyset = emu.call(
        "crm.item.list",
        {"entityTypeId": ETID, "select": ["id"], "start": -1, "order": {"id": "ASC"}, "filter": {">id": 100}},
    )
    assert "next" not in keyset and "total" not in keyset
    assert [r["id"] for r in keyset["result"]["items"]] == list(range(101, 121))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    low=st.integers(-5, 130),
    high=st.integers(-5, 130),
    op_low=st.sampled_from([">", ">="]),
    op_high=st.sampled_from(["<", "<="]),
    start=st.sampled_from([-1, 0]),
)
def test_keyset_ranges_match_a_scan(
    emulator: Emulator, low: int, high: int, op_low: str, op_high: str, start: int
) -> None:
    if not emulator.state.types:
        ok(emulator.call("crm.type.add", {"fields": {"title": "P"}}))
        emulator.seed_items(ETID, 120)
        for gone in (7, 8, 60):
            ok(emulator.call("crm.item.delete", {"entityTypeId": ETID, "id": gone}))
    body = emulator.call(
        "crm.item.list",
        {
            "entityTypeId": ETID,
            "select": ["id"],
            "start": start,
            "order": {"id": "ASC"},
            "filter": {f"{op_low}id": low, f"{op_high}id": high},
        },
    )
    alive = [i for i in range(1, 121) if i not in (7, 8, 60)]
    lo_ok = (lambda i: i > low) if op_low == ">" else (lambda i: i >= low)
    hi_ok = (lambda i: i < high) if op_high == "<" else (lambda i: i <= high)
    expected = [i for i in alive if lo_ok(i) and hi_ok(i)]
    assert [r["id"] for r in body["result"]["items"]] == expected[:50]
    if start == 0:
        assert body["total"] == len(expected)


@settings(max_examples=15, deadline=None)
@given(
    deletes=st.lists(st.integers(1, 1500), max_size=400),
    low_run=st.integers(0, 700),
    descending=st.booleans(),
    start=st.sampled_from([-1, 0, 50]),
)
def test_pages_after_many_deletes_match_a_scan(
    deletes: list[int], low_run: int, descending: bool, start: int
) -> None:
    """Deleted ids stay out of every page and count (the id list drops them lazily)."""
    emulator = Emulator(clock="virtual")  # fresh per example: every example starts from 1,500 items
    ok(emulator.call("crm.type.add", {"fields": {"title": "P"}}))
    emulator.seed_items(ETID, 1500)
    table = emulator.state.table(ETID)
    for item_id in [*range(1, low_run + 1), *deletes]:  # a run from the low end, then scattered ids
        if item_id in table.rows:
            ok(emulator.call("crm.item.delete", {"entityTypeId": ETID, "id": item_id}))
    alive = sorted(table.rows)
    direction = "DESC" if descending else "ASC"
    seen: list[int] = []
    last: int | None = None
    while True:  # a full keyset walk
        flt = {} if last is None else {("<id" if descending else ">id"): last}
        params = {
            "entityTypeId": ETID,
            "start": -1,
            "order": {"id": direction},
            "filter": flt,
            "select": ["id"],
        }
        page = [r["id"] for r in ok(emulator.call("crm.item.list", params))["items"]]
        if not page:
            break
        seen += page
        last = page[-1]
    assert seen == (alive[::-1] if descending else alive)
    body = emulator.call("crm.item.list", {"entityTypeId": ETID, "start": start, "select": ["id"]})
    offset = max(start, 0)
    assert [r["id"] for r in body["result"]["items"]] == alive[offset : offset + 50]
    if start >= 0:
        assert body["total"] == len(alive)
    assert table.ids == alive  # the compacted list is exact
    assert ok(emulator.call("crm.item.get", {"entityTypeId": ETID, "id": alive[0]}))["item"]["id"] == alive[0]


def test_batch_references_halt_and_shapes(emu: Emulator) -> None:
    body = emu.call(
        "batch",
        {
            "halt": 0,
            "cmd": {
                "a": f"crm.item.add?entityTypeId={ETID}&fields[title]=A%26B",
                "b": f"crm.item.get?entityTypeId={ETID}&id=$result[a][item][id]",
                "c": f"crm.item.list?entityTypeId={ETID}&select[]=id&filter[>id]=0",
                "d": f"crm.item.get?entityTypeId={ETID}&id=99",
                "e": f"crm.item.update?entityTypeId={ETID}&id=$result[a][item][id]"
                "&fields[title]=total $total[c]",
            },
        },
    )
    res = ok(body)
    assert res["result"]["b"]["item"]["title"] == "A&B"
    assert res["result_total"] == {"c": 1} and res["result_next"] == []
    assert res["result_error"] == {"d": {"error": "NOT_FOUND", "error_description": "Item was not found."}}
    assert res["result"]["e"]["item"]["title"] == "total 1"
    assert set(res["result_time"]) == {"a", "b", "c", "e"}
    assert "operating" not in res["result_time"]["a"]
    halted = ok(
        emu.call(
            "batch",
            {
                "halt": "1",
                "cmd": [f"crm.item.get?entityTypeId={ETID}&id=99", f"crm.item.get?entityTypeId={ETID}&id=1"],
            },
        )
    )
    assert halted["result"] == [] and halted["result_time"] == []
    assert halted["result_error"] == [{"error": "NOT_FOUND", "error_description": "Item was not found."}]


def test_batch_limits_nesting_and_unknown_methods(emu: Emulator) -> None:
    cmd = {f"k{i}": f"crm.item.list?entityTypeId={ETID}&start=-1" for i in range(52)}
    cmd["k3"] = "batch?cmd[x]=crm.type.list"
    cmd["k4"] = "crm.unknown"
    res = ok(emu.call("batch", {"cmd": cmd}))
    assert res["result_error"]["k50"]["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    assert res["result_error"]["k51"]["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"
    assert res["result_error"]["k3"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    assert res["result_error"]["k4"]["error"] == "ERROR_METHOD_NOT_FOUND"
    assert len(res["result"]) == 48 and res["result_total"] == []


def test_batch_keyset_chain_with_result_references(emu: Emulator) -> None:
    emu.seed_items(ETID, 130)
    cmd = {"p0": f"crm.item.list?entityTypeId={ETID}&start=-1&order[id]=ASC&filter[>id]=0&select[]=id"}
    for n in range(1, 3):
        cmd[f"p{n}"] = (
            f"crm.item.list?entityTypeId={ETID}&start=-1&order[id]=ASC"
            f"&filter[>id]=$result[p{n - 1}][items][49][id]&select[]=id"
        )
    res = ok(emu.call("batch", {"cmd": cmd}))
    ids = [r["id"] for k in ("p0", "p1", "p2") for r in res["result"][k]["items"]]
    assert ids == list(range(1, 131))


def test_seed_items_with_callable_fields(emu: Emulator) -> None:
    ids = emu.seed_items(ETID, 5, fields={"ufCrm3Mileage": lambda i: i * 10, "title": "Seeded"})
    assert ids == [1, 2, 3, 4, 5]
    rows = ok(emu.call("crm.item.list", {"entityTypeId": ETID, "filter": {">=ufCrm3Mileage": 30}}))["items"]
    assert [(r["id"], r["title"]) for r in rows] == [(4, "Seeded"), (5, "Seeded")]
    with pytest.raises(ValueError, match="n must be"):
        emu.seed_items(ETID, -1)
