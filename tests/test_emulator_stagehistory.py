"""crm.stagehistory.list of the emulator over the portal's stage history rows."""

from __future__ import annotations

import threading
from datetime import timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from connector.emulator import stagehistory  # noqa: F401  (registers the method)
from connector.emulator.errors import ApiError
from connector.emulator.registry import METHODS, CallContext, ListPage

TZ = timezone(timedelta(hours=3))
T0 = 1_767_225_600  # 2026-01-01T03:00:00+03:00


def history_row(i: int, owner: int, stage: str, type_id: int = 2, etid: int = 1032,
                semantic: str = "P", category: int = 1) -> dict[str, Any]:
    return {"id": i, "typeId": type_id, "createdTime": T0 + i * 60, "ownerId": owner, "categoryId": category,
            "stageSemanticId": semantic, "stageId": f"DT{etid}_{category}:{stage}", "entityTypeId": etid}


@pytest.fixture()
def portal() -> SimpleNamespace:
    rows = [history_row(1, 10, "NEW", type_id=1), history_row(2, 10, "PREPARATION"),
            history_row(3, 11, "NEW", type_id=1), history_row(4, 10, "SUCCESS", semantic="S"),
            history_row(5, 99, "NEW", type_id=1, etid=1034)]
    return SimpleNamespace(tz=TZ, lock=threading.RLock(), stage_history=rows,
                           type_by_etid=lambda etid: object() if etid in (1032, 1034, 1036) else None)


def call(portal: SimpleNamespace, params: dict[str, Any], start: int | None = None) -> ListPage:
    extras = {} if start is None else {"start": start}
    ctx = CallContext(portal=portal, auth=None, now=float(T0), extras=extras)
    return METHODS["crm.stagehistory.list"].handler(ctx, params)


def test_rows_of_one_type_with_documented_keys(portal):
    page = call(portal, {"entityTypeId": 1032})
    items = page.result["items"]
    assert page.total == 4 and page.next is None
    assert [r["ID"] for r in items] == [1, 2, 3, 4]
    assert items[0] == {"ID": 1, "TYPE_ID": 1, "OWNER_ID": 10, "CREATED_TIME": "2026-01-01T03:01:00+03:00",
                        "CATEGORY_ID": 1, "STAGE_SEMANTIC_ID": "P", "STAGE_ID": "DT1032_1:NEW"}


def test_iso_created_time_rows_are_accepted(portal):
    portal.stage_history = [history_row(1, 1, "NEW") | {"createdTime": "2026-01-01T05:00:00+03:00"}]
    items = call(portal, {"entityTypeId": 1032, "filter": {">=CREATED_TIME": "2026-01-01T02:00:00Z"}}).result
    assert items["items"][0]["CREATED_TIME"] == "2026-01-01T05:00:00+03:00"


def test_filter_order_select(portal):
    page = call(portal, {"entityTypeId": 1032, "filter": {"OWNER_ID": 10, ">TYPE_ID": 1},
                         "order": {"ID": "DESC"}, "select": ["ID", "STAGE_ID"]})
    assert page.result["items"] == [{"ID": 4, "STAGE_ID": "DT1032_1:SUCCESS"},
                                    {"ID": 2, "STAGE_ID": "DT1032_1:PREPARATION"}]
    page = call(portal, {"entityTypeId": 1032, "filter": {"@STAGE_SEMANTIC_ID": ["S", "F"]}})
    assert [r["ID"] for r in page.result["items"]] == [4]
    page = call(portal, {"entityTypeId": 1032, "filter": {">=CREATED_TIME": "2026-01-01T03:03:00+03:00"}})
    assert [r["ID"] for r in page.result["items"]] == [3, 4]


def test_nested_or_filter(portal):
    flt = {"0": {"logic": "OR", "0": {"OWNER_ID": 11}, "1": {"STAGE_SEMANTIC_ID": "S"}}}
    page = call(portal, {"entityTypeId": 1032, "filter": flt})
    assert [r["ID"] for r in page.result["items"]] == [3, 4]


def test_paging_by_50_and_keyset_without_total(portal):
    portal.stage_history = [history_row(i, i, "NEW") for i in range(1, 121)]
    first = call(portal, {"entityTypeId": 1032}, start=0)
    assert (first.total, first.next, len(first.result["items"])) == (120, 50, 50)
    last = call(portal, {"entityTypeId": 1032}, start=110)
    assert (last.next, last.result["items"][0]["ID"]) == (None, 101)
    keyset = call(portal, {"entityTypeId": 1032, "filter": {">ID": 100}, "order": {"ID": "ASC"}}, start=-1)
    assert keyset.total is None and keyset.next is None
    assert [r["ID"] for r in keyset.result["items"]] == list(range(101, 121))


def test_empty_history_for_a_type_without_moves(portal):
    page = call(portal, {"entityTypeId": 1036})
    assert page.result == {"items": []} and page.total == 0


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"entityTypeId": 3}, "0", "CONTACT entity is not supported"),
        ({"entityTypeId": 33}, "0", "SHIPMENT_DOCUMENT entity is not supported"),
        ({"entityTypeId": 1040}, "0", "DYNAMIC_1040 entity is not supported"),
        ({}, "100", "Could not find value for parameter {entityTypeId}"),
        ({"entityTypeId": 1032, "filter": {"TITLE": "x"}}, "INVALID_ARG_VALUE",
         "Invalid filter: field 'TITLE' is not allowed in filter"),
        ({"entityTypeId": 1032, "order": {"ID": "UP"}}, "INVALID_ARG_VALUE",
         "Invalid order: allowed sort directions are ASC, DESC. But got 'UP' for field 'ID'"),
        ({"entityTypeId": 1032, "order": {"NAME": "ASC"}}, "INVALID_ARG_VALUE",
         "Invalid order: field 'NAME' is not allowed in order"),
    ],
)
def test_errors(portal, params, code, message):
    with pytest.raises(ApiError) as info:
        call(portal, params)
    assert (info.value.code, info.value.description, info.value.status) == (code, message, 400)


def test_deal_history_is_supported_even_when_empty(portal):
    assert call(portal, {"entityTypeId": 2}).result == {"items": []}
