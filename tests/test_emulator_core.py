"""Emulator core: crm.type.*, crm.category.*, crm.status.*, the envelope and errors."""

from __future__ import annotations

from typing import Any

import pytest

from connector.emulator import Emulator


def ok(body: dict[str, Any]) -> Any:
    assert "error" not in body, body
    return body["result"]


def add_type(emu: Emulator, **fields: Any) -> dict[str, Any]:
    return ok(emu.call("crm.type.add", {"fields": {"title": "Cars", **fields}}))["type"]


def test_type_ids_allocate_even_from_1032_and_are_never_reused(emulator: Emulator) -> None:
    a, b = add_type(emulator), add_type(emulator, title="B")
    assert (a["entityTypeId"], b["entityTypeId"]) == (1032, 1034)
    assert b["id"] == a["id"] + 1 and a["id"] < 10
    ok(emulator.call("crm.type.delete", {"id": b["id"]}))
    c = add_type(emulator, title="C")
    assert c["entityTypeId"] == 1036 and c["id"] == b["id"] + 1


def test_explicit_entity_type_id_is_validated(emulator: Emulator) -> None:
    assert add_type(emulator, entityTypeId=150)["entityTypeId"] == 150
    assert emulator.call("crm.type.add", {"fields": {"title": "x", "entityTypeId": 31}}) == {
        "error": "INVALID_ARG_VALUE",
        "error_description": "entityTypeId is out of allowed range",
    }
    assert emulator.call("crm.type.add", {"fields": {"title": "x", "entityTypeId": 1033}})["error"] == (
        "BX_INVALID_VALUE"
    )
    assert emulator.call("crm.type.add", {"fields": {"title": "x", "entityTypeId": 150}})["error"] == (
        "BX_INVALID_VALUE"
    )
    # every add past the 31/36/39 check burns a sequence value, even with an explicit or bad id
    assert add_type(emulator, title="auto")["entityTypeId"] == 1038


@pytest.mark.parametrize("bad", [100, 0, -2, 192, 1031, "abc", 12.5])
def test_other_invalid_entity_type_ids_are_bx_invalid_value_and_burn_an_id(
    emulator: Emulator, bad: Any
) -> None:
    # server-behaviour.md §3: only 31/36/39 get INVALID_ARG_VALUE; the ORM validator answers the rest
    assert emulator.call("crm.type.add", {"fields": {"title": "x", "entityTypeId": bad}}) == {
        "error": "BX_INVALID_VALUE",
        "error_description": "EntityTypeId should be more or equal than 128 and less than 192",
    }
    assert add_type(emulator)["entityTypeId"] == 1034  # 1032 was burned by the failed add
    assert emulator.call("crm.type.list", {})["total"] == 1


@pytest.mark.parametrize("reserved", [31, 36, 39, "36"])
def test_system_entity_type_ids_are_refused_before_an_id_is_burned(emulator: Emulator, reserved: Any) -> None:
    body = emulator.call("crm.type.add", {"fields": {"title": "x", "entityTypeId": reserved}})
    assert body["error"] == "INVALID_ARG_VALUE"
    assert add_type(emulator)["entityTypeId"] == 1032


def test_crm_type_and_funnel_writes_need_a_crm_admin(emulator: Emulator) -> None:
    from connector.emulator.auth import Auth

    t = add_type(emulator)
    user = Auth("oauth", 2, "app:x", client_id="x", is_admin=False)
    for method, params in (
        ("crm.type.list", {}),
        ("crm.type.get", {"id": t["id"]}),
        ("crm.type.getByEntityTypeId", {"entityTypeId": 1032}),
        ("crm.type.add", {"fields": {"title": "No"}}),
        ("crm.type.update", {"id": t["id"], "fields": {"title": "No"}}),
        ("crm.type.delete", {"id": t["id"]}),
        ("crm.category.add", {"entityTypeId": 1032, "fields": {"name": "No"}}),
    ):
        assert emulator.call(method, params, auth=user) == {
            "error": "ACCESS_DENIED",
            "error_description": "Access denied",
        }, method
    assert emulator.call("crm.type.fields", {}, auth=user)["error_description"] == "Access Denied"
    # nothing changed; items stay open to the non-admin user
    assert emulator.call("crm.type.get", {"id": t["id"]})["result"]["type"]["title"] == "Cars"
    assert (
        len(emulator.call("crm.category.list", {"entityTypeId": 1032}, auth=user)["result"]["categories"])
        == 1
    )
    assert "item" in emulator.call("crm.item.add", {"entityTypeId": 1032, "fields": {}}, auth=user)["result"]


def test_type_fields_follow_the_docs_example(emulator: Emulator) -> None:
    fields = ok(emulator.call("crm.type.fields", {}))["fields"]
    assert "relations" not in fields and "linkedUserFields" not in fields
    assert fields["isClientEnabled"]["title"] == "Field 'Client'"
    assert fields["entityTypeId"]["isImmutable"] is True and fields["title"]["isRequired"] is True
    assert "isPaymentsEnabled" not in fields


def test_type_flags_defaults_and_client_relations(emulator: Emulator) -> None:
    plain = add_type(emulator)
    assert plain["isSetOpenPermissions"] == "Y" and plain["isClientEnabled"] == "N"
    assert plain["relations"] == {"parent": [], "child": []}
    assert plain["linkedUserFields"] == {
        "CALENDAR_EVENT|UF_CRM_CAL_EVENT": "N",
        "TASKS_TASK|UF_CRM_TASK": "N",
        "TASKS_TASK_TEMPLATE|UF_CRM_TASK": "N",
    }
    client = add_type(
        emulator,
        isClientEnabled="Y",
        isUseInUserfieldEnabled=True,
        linkedUserFields={"TASKS_TASK|UF_CRM_TASK": "true"},
        relations={"parent": [{"entityTypeId": 2, "isChildrenListEnabled": "false"}]},
    )
    parents = {r["entityTypeId"]: r for r in client["relations"]["parent"]}
    assert parents[3]["isPredefined"] == "Y" and parents[4]["isPredefined"] == "Y"
    assert parents[2] == {"entityTypeId": 2, "isChildrenListEnabled": "N", "isPredefined": "N"}
    assert client["isUseInUserfieldEnabled"] == "Y"
    assert client["linkedUserFields"]["TASKS_TASK|UF_CRM_TASK"] == "Y"
    child_side = ok(emulator.call("crm.type.get", {"id": plain["id"]}))["type"]["relations"]
    assert child_side["child"] == []


def test_type_relation_between_two_processes_adds_parent_field(emulator: Emulator) -> None:
    car = add_type(emulator)
    order = add_type(emulator, title="Order", relations={"parent": [{"entityTypeId": car["entityTypeId"]}]})
    car_rel = ok(emulator.call("crm.type.get", {"id": car["id"]}))["type"]["relations"]
    assert car_rel["child"][0]["entityTypeId"] == order["entityTypeId"]
    fields = ok(emulator.call("crm.item.fields", {"entityTypeId": order["entityTypeId"]}))["fields"]
    assert fields[f"parentId{car['entityTypeId']}"]["type"] == "crm_entity"


def test_type_list_rows_are_abbreviated_and_paged(emulator: Emulator) -> None:
    for i in range(3):
        add_type(emulator, title=f"T{i}")
    body = emulator.call("crm.type.list", {"filter": {"%title": "t1"}})
    assert body["total"] == 1 and "next" not in body
    row = body["result"]["types"][0]
    assert row["title"] == "T1"
    assert not {"relations", "linkedUserFields", "customSections"} & set(row)
    assert emulator.call("crm.type.list", {"order": {"id": "DESC"}})["result"]["types"][0]["title"] == "T2"
    bad = emulator.call("crm.type.list", {"filter": {"nope": 1}})
    assert bad["error"] == "INVALID_ARG_VALUE"


def test_type_get_update_and_errors(emulator: Emulator) -> None:
    t = add_type(emulator)
    assert ok(emulator.call("crm.type.getByEntityTypeId", {"entityTypeId": 1032}))["type"]["id"] == t["id"]
    upd = ok(
        emulator.call("crm.type.update", {"id": t["id"], "fields": {"title": "Autos", "entityTypeId": 5}})
    )
    assert upd["type"]["title"] == "Autos" and upd["type"]["entityTypeId"] == 1032
    assert emulator.call("crm.type.get", {"id": 999}) == {
        "error": "0",
        "error_description": "Smart Process Automation was not found",
    }
    assert emulator.call("crm.type.add", {}) == {
        "error": "100",
        "error_description": "Could not find value for parameter {fields}",
    }
    assert emulator.call("crm.type.get", {"id": "abc"})["error"] == "100"
    assert emulator.call("crm.type.add", {"fields": {"code": "x"}})["error"] == "BX_EMPTY_REQUIRED"


def test_type_delete_refused_while_items_exist(emulator: Emulator) -> None:
    t = add_type(emulator)
    item = ok(emulator.call("crm.item.add", {"entityTypeId": 1032, "fields": {}}))["item"]
    assert emulator.call("crm.type.delete", {"id": t["id"]})["error"] == "BX_ERROR"
    ok(emulator.call("crm.item.delete", {"entityTypeId": 1032, "id": item["id"]}))
    assert emulator.call("crm.type.delete", {"id": t["id"]})["result"] == []


def test_new_type_and_every_new_category_get_five_default_stages(emulator: Emulator) -> None:
    add_type(emulator, isCategoriesEnabled="Y")
    cats = ok(emulator.call("crm.category.list", {"entityTypeId": 1032}))["categories"]
    assert len(cats) == 1 and cats[0]["isDefault"] == "Y" and cats[0]["sort"] == 500
    second = ok(emulator.call("crm.category.add", {"entityTypeId": 1032, "fields": {"name": "Second"}}))
    cid = second["category"]["id"]
    stages = ok(emulator.call("crm.status.list", {"filter": {"ENTITY_ID": f"DYNAMIC_1032_STAGE_{cid}"}}))
    assert [s["STATUS_ID"] for s in stages] == [
        f"DT1032_{cid}:{c}" for c in ("NEW", "PREPARATION", "CLIENT", "SUCCESS", "FAIL")
    ]
    assert [s["SEMANTICS"] for s in stages] == [None, None, None, "S", "F"]
    assert [s["SYSTEM"] for s in stages] == ["Y", "N", "N", "Y", "Y"]
    assert all(isinstance(s["SORT"], str) and isinstance(s["ID"], str) for s in stages)


def test_category_is_default_moves_and_refusals(emulator: Emulator) -> None:
    add_type(emulator)
    first = ok(emulator.call("crm.category.list", {"entityTypeId": 1032}))["categories"][0]
    new = ok(
        emulator.call("crm.category.add", {"entityTypeId": 1032, "fields": {"name": "B", "isDefault": "Y"}})
    )
    cats = {c["id"]: c for c in ok(emulator.call("crm.category.list", {"entityTypeId": 1032}))["categories"]}
    assert cats[first["id"]]["isDefault"] == "N" and cats[new["category"]["id"]]["isDefault"] == "Y"
    assert emulator.call("crm.category.delete", {"entityTypeId": 1032, "id": new["category"]["id"]})[
        "error"
    ] == ("BX_ERROR")
    item = {"entityTypeId": 1032, "fields": {"categoryId": first["id"]}}
    ok(emulator.call("crm.item.add", item))
    assert (
        emulator.call("crm.category.delete", {"entityTypeId": 1032, "id": first["id"]})["error"] == "BX_ERROR"
    )
    assert emulator.call("crm.category.get", {"entityTypeId": 1032, "id": 999})["error"] == "NOT_FOUND"
    assert emulator.call("crm.category.list", {"entityTypeId": 1040})["error"] == "NOT_FOUND"
    assert emulator.call("crm.category.list", {"entityTypeId": 5})["error"] == "ENTITY_TYPE_NOT_SUPPORTED"
    extra = ok(emulator.call("crm.category.add", {"entityTypeId": 1032, "fields": {"name": "C"}}))
    gone = emulator.call("crm.category.delete", {"entityTypeId": 1032, "id": extra["category"]["id"]})
    assert gone["result"] is None
    stages = emulator.call(
        "crm.status.list", {"filter": {"ENTITY_ID": f"DYNAMIC_1032_STAGE_{extra['category']['id']}"}}
    )
    assert stages["result"] == []


def test_status_add_prefixes_and_applies_semantics_rules(emulator: Emulator) -> None:
    add_type(emulator)
    entity = "DYNAMIC_1032_STAGE_1"
    sid = ok(
        emulator.call(
            "crm.status.add", {"fields": {"ENTITY_ID": entity, "STATUS_ID": "LATE", "NAME": "L", "SORT": 60}}
        )
    )
    assert isinstance(sid, int)
    row = ok(emulator.call("crm.status.get", {"id": sid}))
    assert row["STATUS_ID"] == "DT1032_1:LATE" and row["SEMANTICS"] == "F" and row["SYSTEM"] == "N"
    mid = ok(
        emulator.call(
            "crm.status.add",
            {
                "fields": {
                    "ENTITY_ID": entity,
                    "STATUS_ID": "DT1032_1:MID",
                    "NAME": "M",
                    "SORT": 25,
                    "SEMANTICS": "P",
                }
            },
        )
    )
    assert ok(emulator.call("crm.status.get", {"id": mid}))["SEMANTICS"] is None
    dup = emulator.call("crm.status.add", {"fields": {"ENTITY_ID": entity, "STATUS_ID": "MID", "NAME": "x"}})
    assert dup == {"error": "ERROR_CORE", "error_description": "The specified status ID already exists."}
    missing = emulator.call("crm.status.add", {"fields": {"NAME": "x"}})
    assert missing["error"] == "" and "ENTITY_ID" in missing["error_description"]
    assert ok(emulator.call("crm.status.list", {"filter": {"ENTITY_ID": "DYNAMIC_7_STAGE_7"}})) == []
    assert emulator.call("crm.status.list", {"filter": {"ENTITY_ID": 5}})["error_description"] == (
        "Filter by ENTITY_ID must be a string"
    )


def test_status_update_delete_and_system_stage_protection(emulator: Emulator) -> None:
    add_type(emulator)
    stages = ok(emulator.call("crm.status.list", {"filter": {"ENTITY_ID": "DYNAMIC_1032_STAGE_1"}}))
    new, prep = stages[0], stages[1]
    assert ok(emulator.call("crm.status.update", {"id": new["ID"], "fields": {"NAME": "Intake"}})) is True
    assert ok(emulator.call("crm.status.get", {"id": new["ID"]}))["NAME"] == "Intake"
    refused = emulator.call("crm.status.delete", {"id": new["ID"]})
    assert "FORCED" in refused["error_description"]
    ok(emulator.call("crm.item.add", {"entityTypeId": 1032, "fields": {"stageId": prep["STATUS_ID"]}}))
    busy = emulator.call("crm.status.delete", {"id": prep["ID"]})
    assert busy["error_description"] == "There are active items in this status."
    assert emulator.call("crm.status.get", {"id": 9999}) == {
        "error": "Status is not found.",
        "error_description": "Directory item not found.",
    }


def test_envelope_time_object(emulator: Emulator) -> None:
    body = emulator.call("crm.type.list", {})
    t = body["time"]
    assert isinstance(t["start"], int) and isinstance(t["processing"], int)
    assert isinstance(t["finish"], float) and isinstance(t["duration"], float)
    assert t["date_start"] == "2026-01-01T03:00:00+03:00"
    assert "operating" not in t  # limits off
    assert body["total"] == 0 and body["result"] == {"types": []}


def test_envelope_operating_keys_when_limits_on() -> None:
    emu = Emulator(limits="standard", clock="virtual")
    t = emu.call("crm.type.list", {})["time"]
    assert {"operating", "operating_reset_at"} <= set(t)


def test_unknown_method_404_and_errors_have_no_time(emulator: Emulator) -> None:
    assert emulator.call("crm.nothing.here", {}) == {
        "error": "ERROR_METHOD_NOT_FOUND",
        "error_description": "Method not found!",
    }
    assert emulator.request_log[-1].status == 404


def test_request_log_records_cost_and_errors(emulator: Emulator) -> None:
    add_type(emulator)
    emulator.call("crm.item.list", {"entityTypeId": 1032})
    emulator.call("crm.item.get", {"entityTypeId": 1032, "id": 5})
    listing, failed = emulator.request_log[-2:]
    assert listing.method == "crm.item.list" and listing.status == 200 and listing.cost > 0
    assert failed.error == "NOT_FOUND" and failed.status == 400 and not failed.http


@pytest.mark.parametrize("tz", ["+05:30", "-02:00"])
def test_portal_offset_is_used_for_dates(tz: str) -> None:
    emu = Emulator(clock="virtual", tz=tz)
    assert emu.call("crm.type.add", {"fields": {"title": "x"}})["result"]["type"]["createdTime"].endswith(tz)


def test_bad_portal_offset_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="offset like"):
        Emulator(tz="Moscow")


def test_batch_labels_that_look_numeric_but_are_not_ascii_digits() -> None:
    """Found by the fuzz test: '¹'.isdigit() is true but int('¹') fails; the server must not crash."""
    emu = Emulator(limits="off", clock="virtual")
    body = emu.call("batch", {"cmd": {"¹": "crm.type.list", "0": "crm.type.list"}})
    assert set(body["result"]["result"]) == {"¹", "0"}
