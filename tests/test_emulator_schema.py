"""Emulator userfieldconfig.* and the naming/parameter rules it shares with crm.item."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.emulator import Emulator
from connector.emulator.naming import snake_upper, uf_camel
from connector.emulator.php import parse_query


def ok(body: dict[str, Any]) -> Any:
    assert "error" not in body, body
    return body["result"]


def new_type(emu: Emulator) -> int:
    return int(ok(emu.call("crm.type.add", {"fields": {"title": "HR"}}))["type"]["id"])


def add_field(emu: Emulator, **field: Any) -> dict[str, Any]:
    return emu.call("userfieldconfig.add", {"moduleId": "crm", "field": field})


def test_add_field_uses_type_id_owner_and_returns_strings(emulator: Emulator) -> None:
    tid = new_type(emulator)
    body = add_field(
        emulator,
        entityId=f"CRM_{tid}",
        fieldName=f"UF_CRM_{tid}_SOURCE",
        userTypeId="enumeration",
        multiple="Y",
        editFormLabel={"en": "Source", "ru": "Источник"},
        xmlId="b24sync:source",
        enum=[{"value": "Site", "xmlId": "site", "sort": 10}, {"value": "Call", "def": "Y"}],
    )
    field = ok(body)["field"]
    assert field["entityId"] == f"CRM_{tid}" and isinstance(field["id"], str) and field["sort"] == "100"
    assert field["multiple"] == "Y" and field["xmlId"] == "b24sync:source"
    assert field["editFormLabel"] == {"en": "Source", "ru": "Источник"}
    site, call = field["enum"]
    assert site["xmlId"] == "site" and site["sort"] == "10" and site["userFieldId"] == field["id"]
    assert call["def"] == "Y" and len(call["xmlId"]) == 32 and isinstance(call["id"], str)
    assert field["settings"]["DISPLAY"] == "LIST"


def test_add_field_refusals(emulator: Emulator) -> None:
    tid = new_type(emulator)
    etid_owner = add_field(emulator, entityId="CRM_1032", fieldName="UF_CRM_1032_X", userTypeId="string")
    assert etid_owner == {"error": "", "error_description": "You cannot create custom fields"}
    wrong_prefix = add_field(emulator, entityId=f"CRM_{tid}", fieldName="UF_CRM_X", userTypeId="string")
    assert wrong_prefix["error_description"] == "You cannot create custom fields"
    upper_keys = emulator.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {"ENTITY_ID": f"CRM_{tid}", "FIELD_NAME": f"UF_CRM_{tid}_X", "USER_TYPE_ID": "string"},
        },
    )
    assert upper_keys["error_description"] == "You cannot create custom fields"
    no_name = add_field(emulator, entityId=f"CRM_{tid}", userTypeId="string")
    assert no_name["error_description"] == "The 'FIELD_NAME' field is not found."
    lower = add_field(emulator, entityId=f"CRM_{tid}", fieldName=f"UF_CRM_{tid}_lower", userTypeId="string")
    assert lower["error"] == "0"
    ok(add_field(emulator, entityId=f"CRM_{tid}", fieldName=f"UF_CRM_{tid}_X", userTypeId="string"))
    dup = add_field(emulator, entityId=f"CRM_{tid}", fieldName=f"UF_CRM_{tid}_X", userTypeId="string")
    assert "already exists" in dup["error_description"]
    bad_enum = add_field(
        emulator,
        entityId=f"CRM_{tid}",
        fieldName=f"UF_CRM_{tid}_E",
        userTypeId="enumeration",
        enum=[{"value": ""}],
    )
    assert bad_enum["error_description"] == "Fail to save enumeration field values"
    scope = emulator.call("userfieldconfig.add", {"moduleId": "tasks", "field": {}})
    assert scope["error_description"] == "The current method required more scopes. (tasks)"


def test_update_enum_options_and_labels(emulator: Emulator) -> None:
    tid = new_type(emulator)
    field = ok(
        add_field(
            emulator,
            entityId=f"CRM_{tid}",
            fieldName=f"UF_CRM_{tid}_S",
            userTypeId="enumeration",
            enum=[{"value": "A"}, {"value": "B"}],
        )
    )["field"]
    a, b = field["enum"]
    upd = ok(
        emulator.call(
            "userfieldconfig.update",
            {
                "moduleId": "crm",
                "id": field["id"],
                "field": {
                    "userTypeId": "enumeration",
                    "multiple": "Y",
                    "editFormLabel": "Stage",
                    "enum": [{"id": a["id"], "value": "A2"}, {"id": b["id"], "del": "Y"}, {"value": "C"}],
                },
            },
        )
    )["field"]
    assert [o["value"] for o in upd["enum"]] == ["A2", "C"] and upd["enum"][0]["id"] == a["id"]
    assert upd["multiple"] == "N"  # immutable after creation
    assert upd["editFormLabel"] == {"en": "Stage", "ru": "Stage"}
    got = ok(emulator.call("userfieldconfig.get", {"moduleId": "crm", "id": field["id"]}))["field"]
    assert got == upd
    missing = emulator.call("userfieldconfig.update", {"moduleId": "crm", "id": 999, "field": {}})
    assert missing["error_description"] == "You cannot change the settings of the user field"


def test_list_filters_by_entity_and_pages(emulator: Emulator) -> None:
    t1, t2 = new_type(emulator), new_type(emulator)
    for i in range(3):
        ok(add_field(emulator, entityId=f"CRM_{t1}", fieldName=f"UF_CRM_{t1}_F{i}", userTypeId="string"))
    ok(add_field(emulator, entityId=f"CRM_{t2}", fieldName=f"UF_CRM_{t2}_F", userTypeId="string"))
    body = emulator.call("userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": f"CRM_{t1}"}})
    assert body["total"] == 3 and [f["fieldName"] for f in body["result"]["fields"]] == [
        f"UF_CRM_{t1}_F{i}" for i in range(3)
    ]
    assert "enum" not in body["result"]["fields"][0]
    one_lang = emulator.call(
        "userfieldconfig.list", {"moduleId": "crm", "select": {"0": "*", "language": "en"}}
    )
    # the userfieldconfig.list doc example: with `language`, maps of that one language
    assert one_lang["result"]["fields"][0]["languageId"] == {"en": "en"}


def test_delete_and_get_missing(emulator: Emulator) -> None:
    tid = new_type(emulator)
    field = ok(add_field(emulator, entityId=f"CRM_{tid}", fieldName=f"UF_CRM_{tid}_X", userTypeId="string"))[
        "field"
    ]
    assert emulator.call("userfieldconfig.delete", {"moduleId": "crm", "id": field["id"]})["result"] is None
    assert emulator.call("userfieldconfig.get", {"moduleId": "crm", "id": field["id"]})["error"] == ""
    fields = ok(emulator.call("crm.item.fields", {"entityTypeId": 1032}))["fields"]
    assert not any(k.startswith("ufCrm") for k in fields)


def test_get_types(emulator: Emulator) -> None:
    types = ok(emulator.call("userfieldconfig.getTypes", {"moduleId": "crm"}))["types"]
    assert types["enumeration"]["userTypeId"] == "enumeration" and "video" not in types


def test_uf_camel_names_follow_the_server() -> None:
    assert uf_camel("UF_CRM_5_1700000000000") == "ufCrm5_1700000000000"
    assert uf_camel("UF_CRM_5_MY_FIELD") == "ufCrm5MyField"
    assert uf_camel("UF_CRM_CLIENT_INDUSTRY") == "ufCrmClientIndustry"
    assert uf_camel("UF_CRM_1721244707107") == "ufCrm_1721244707107"
    assert uf_camel("UF_CRM_5_FIELD1") == "ufCrm_5_FIELD1"
    assert uf_camel("UF_CRM_3_DIGIT_10") == "ufCrm_3_DIGIT_10"
    assert snake_upper("parentId1220") == "PARENT_ID_1220"
    assert snake_upper("UF_CRM_5_X") == "UF__CRM_5_X"


@settings(max_examples=60, deadline=None)
@given(
    type_id=st.integers(1, 9999),
    suffix=st.from_regex(r"[A-Z]{1,8}(_[A-Z]{1,8}){0,2}|[0-9]{1,13}", fullmatch=True),
)
def test_generic_uf_names_round_trip(type_id: int, suffix: str) -> None:
    upper = f"UF_CRM_{type_id}_{suffix}"
    assert snake_upper(uf_camel(upper)) == upper


def test_php_bracket_parsing() -> None:
    parsed = parse_query(
        "fields[title]=A%26B&select[]=id&select[]=title&filter[>id]=5&filter[0][logic]=OR"
        "&a[b][c]=1&novalue=&weird]=x"
    )
    assert parsed["fields"] == {"title": "A&B"}
    assert parsed["select"] == {"0": "id", "1": "title"}
    assert parsed["filter"] == {">id": "5", "0": {"logic": "OR"}}
    assert parsed["a"] == {"b": {"c": "1"}} and parsed["novalue"] == ""


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_php_parsing_never_crashes(query: str) -> None:
    assert isinstance(parse_query(query), dict)
