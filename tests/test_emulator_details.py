"""crm.item.details.configuration.* of the emulator: card layouts per type, funnel, scope and user."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from connector.emulator import details  # noqa: F401  (registers the methods)
from connector.emulator.errors import ApiError
from connector.emulator.registry import METHODS, CallContext

SECTIONS = [
    {"name": "main", "title": "About", "type": "section",
     "elements": [{"name": "TITLE", "optionFlags": 1}, {"name": "UF_CRM_5_SOURCE", "optionFlags": "0"},
                  {"name": "CLIENT", "optionFlags": "1", "options": {"defaultCountry": "RU"}}]},
    {"name": "more", "title": "More", "type": "section", "elements": [{"name": "OPPORTUNITY_WITH_CURRENCY",
     "options": {"isPayButtonVisible": False}}]},
]


@pytest.fixture()
def portal() -> SimpleNamespace:
    cats = {1032: SimpleNamespace(id=7)}
    return SimpleNamespace(details_config={},
                           type_by_etid=lambda etid: object() if etid in (1032, 1034) else None,
                           default_category=lambda etid: cats.get(etid))


def call(portal: SimpleNamespace, name: str, params: dict[str, Any], user: int = 1,
         admin: bool = True) -> Any:
    ctx = CallContext(portal=portal, auth=SimpleNamespace(user_id=user, is_admin=admin), now=0.0)
    return METHODS[f"crm.item.details.configuration.{name}".lower()].handler(ctx, params)


def test_get_is_null_until_set_then_returns_the_stored_layout(portal):
    assert call(portal, "get", {"entityTypeId": 1032}) is None
    assert call(portal, "set", {"entityTypeId": 1032, "data": SECTIONS}) is True
    got = call(portal, "get", {"entityTypeId": 1032})
    assert [s["name"] for s in got] == ["main", "more"]
    assert got[0]["elements"][0] == {"name": "TITLE", "optionFlags": "1"}
    assert got[0]["elements"][1] == {"name": "UF_CRM_5_SOURCE", "optionFlags": "0"}
    assert got[0]["elements"][2]["options"] == {"defaultCountry": "RU"}
    assert got[1]["elements"][0] == {"name": "OPPORTUNITY_WITH_CURRENCY", "optionFlags": "0",
                                     "options": {"isPayButtonVisible": "false"}}
    got[0]["name"] = "changed by the caller"
    assert call(portal, "get", {"entityTypeId": 1032})[0]["name"] == "main"


def test_form_encoded_php_arrays_are_accepted(portal):
    data = {"0": {"name": "main", "title": "T", "type": "section",
                  "elements": {"0": {"name": "TITLE", "optionFlags": "1"}}}}
    call(portal, "set", {"entityTypeId": "1032", "data": data})
    got = call(portal, "get", {"entityTypeId": 1032})
    assert got[0]["elements"] == [{"name": "TITLE", "optionFlags": "1"}]


def test_scopes_users_and_categories_are_separate(portal):
    call(portal, "set", {"entityTypeId": 1032, "data": SECTIONS, "scope": "C"})
    assert call(portal, "get", {"entityTypeId": 1032}) is None  # personal of user 1: none
    assert call(portal, "get", {"entityTypeId": 1032, "scope": "c"}) is not None
    call(portal, "set", {"entityTypeId": 1032, "data": SECTIONS[:1], "userId": 5})
    assert len(call(portal, "get", {"entityTypeId": 1032, "userId": 5})) == 1
    assert call(portal, "get", {"entityTypeId": 1032, "extras": {"categoryId": 9}, "scope": "C"}) is None
    # omitted category = the default funnel (7)
    assert call(portal, "get", {"entityTypeId": 1032, "extras": {"categoryId": 7}, "scope": "C"}) is not None


def test_reset_and_force_common_scope_for_all(portal):
    for user in (1, 2, 3):
        call(portal, "set", {"entityTypeId": 1032, "data": SECTIONS, "userId": user})
    call(portal, "set", {"entityTypeId": 1032, "data": SECTIONS, "scope": "C"})
    call(portal, "set", {"entityTypeId": 1034, "data": SECTIONS, "userId": 2})
    assert call(portal, "reset", {"entityTypeId": 1032, "userId": 1}) is True
    assert call(portal, "get", {"entityTypeId": 1032, "userId": 1}) is None
    assert call(portal, "get", {"entityTypeId": 1032, "userId": 2}) is not None
    assert call(portal, "forceCommonScopeForAll", {"entityTypeId": 1032}) is True
    assert call(portal, "get", {"entityTypeId": 1032, "userId": 2}) is None
    assert call(portal, "get", {"entityTypeId": 1032, "scope": "C"}) is not None
    assert call(portal, "get", {"entityTypeId": 1034, "userId": 2}) is not None  # other type untouched


def test_deal_layouts_are_supported(portal):
    call(portal, "set", {"entityTypeId": 2, "data": SECTIONS, "extras": {"dealCategoryId": 0}})
    assert call(portal, "get", {"entityTypeId": 2, "extras": {"dealCategoryId": 0}}) is not None


def S(**kw: Any) -> dict[str, Any]:  # noqa: N802
    return {"name": "s", "title": "T", "type": "section", "elements": []} | kw


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Parameter 'entityTypeId' is not defined"),
        ({"entityTypeId": "abc"}, "Parameter 'entityTypeId' is not defined"),
        ({"entityTypeId": 1036, "data": [S()]},
         "The entity type '1036' is not supported in current context."),
        ({"entityTypeId": 1032, "data": "text"}, "Parameter 'data' must be array."),
        ({"entityTypeId": 1032}, "Parameter 'data' must be array."),
        ({"entityTypeId": 1032, "data": {"a": S()}}, "The data must be indexed array."),
        ({"entityTypeId": 1032, "data": []}, "There are no data to write."),
        ({"entityTypeId": 1032, "data": [S(), S(type="tab")]},
         "Section at index 1 have type tab. The expected type is 'section'."),
        ({"entityTypeId": 1032, "data": [S(name="")]}, "Section at index 0 does not have name."),
        ({"entityTypeId": 1032, "data": [S(title=None)]}, "Section at index 0 does not have title."),
        ({"entityTypeId": 1032, "data": [S(), S(elements=[{"optionFlags": "1"}])]},
         "Element at index 0 in section at index 1 does not have name."),
        ({"entityTypeId": 1032, "data": [S()], "scope": "X"},
         "Scope 'X' is not defined. Allowed: P (personal)"),
    ],
)
def test_set_validation_errors_use_empty_code(portal, params, message):
    with pytest.raises(ApiError) as info:
        call(portal, "set", params)
    assert info.value.code == "" and info.value.status == 400
    assert info.value.description.startswith(message)
    assert portal.details_config == {}


def test_non_admin_may_edit_only_own_personal_layout(portal):
    assert call(portal, "set", {"entityTypeId": 1032, "data": [S()]}, user=4, admin=False) is True
    for params in ({"scope": "C"}, {"userId": 5}):
        with pytest.raises(ApiError, match="Access denied."):
            call(portal, "set", {"entityTypeId": 1032, "data": [S()], **params}, user=4, admin=False)
    with pytest.raises(ApiError, match="Access denied."):
        call(portal, "forceCommonScopeForAll", {"entityTypeId": 1032}, user=4, admin=False)
