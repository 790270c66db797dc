"""The legacy UPPER_CASE methods: crm.deal.fields/list/get/add/update/delete, crm.contact.list/get,
crm.company.list/get — a second face over the same items `crm.item.*` serves (system.py).

The references give no fixture for these methods. What we follow: keys are the items' UPPER names
(`upperName` in crm.item.fields), `add` answers the new id, `update`/`delete` answer `true`, lists are
pages of 50 with `total`/`next`. Where the references are silent we choose the stricter behaviour:
values come back as the legacy API prints them (ids and numbers as strings, `Y`/`N` flags), an
unknown id is refused with "Not found", and unknown field names are dropped (as `crm.item.*` does).
"""

from __future__ import annotations

from typing import Any

from .common import require_type, state_of
from .errors import ApiError
from .items import item_add, item_delete, item_get, item_list, item_update
from .itemschema import ItemSchema, describe, item_schema
from .params import as_dict, req_array, req_int
from .registry import CallContext, ListPage, method

NOT_FOUND = ApiError("", "Not found")
_MONEY = {"OPPORTUNITY", "TAX_VALUE", "REVENUE"}


def _schema(ctx: CallContext, etid: int) -> ItemSchema:
    state = state_of(ctx)
    return item_schema(state, require_type(state, etid))


def _to_camel(schema: ItemSchema, fields: dict[str, Any]) -> dict[str, Any]:
    """UPPER request keys as crm.item keys; CONTACT_ID (a single contact) becomes contactIds."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        upper = str(key).upper()
        if upper == "CONTACT_ID" and "CONTACT_IDS" in schema.by_upper and "CONTACT_IDS" not in fields:
            out["contactIds"] = [] if value in (None, "", 0, "0") else [value]
            continue
        spec = schema.by_upper.get(upper)
        if spec is not None:
            out[spec.camel] = value
    return out


def _legacy_value(upper: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_legacy_value(upper, v) for v in value]
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, float) and upper in _MONEY:
        return f"{value:.2f}"
    if isinstance(value, int | float):
        return str(value)
    return value


def _to_legacy(schema: ItemSchema, item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for camel, value in item.items():
        spec = schema.by_camel.get(camel)
        if spec is not None:
            out[spec.upper] = _legacy_value(spec.upper, value)
    return out


def _fields(ctx: CallContext, etid: int) -> dict[str, Any]:
    schema = _schema(ctx, etid)
    out = {}
    for spec in schema.fields:
        desc = describe(spec)
        desc.pop("upperName", None)
        out[spec.upper] = desc
    return out


def _get(ctx: CallContext, etid: int, params: dict[str, Any]) -> dict[str, Any]:
    item_id = req_int(params, "id")
    try:
        item = item_get(ctx, {"entityTypeId": etid, "id": item_id})["item"]
    except ApiError as err:
        if err.code == "NOT_FOUND":
            raise NOT_FOUND from None
        raise
    return _to_legacy(_schema(ctx, etid), item)


def _list(ctx: CallContext, etid: int, params: dict[str, Any]) -> ListPage:
    schema = _schema(ctx, etid)
    select = params.get("select") or ["*"]
    page = item_list(
        ctx,
        {
            "entityTypeId": etid,
            "filter": as_dict(params.get("filter")),
            "order": as_dict(params.get("order")),
            "select": select,
        },
    )
    rows = [_to_legacy(schema, item) for item in page.result["items"]]
    return ListPage(rows, total=page.total, next=page.next)


def _add(ctx: CallContext, etid: int, params: dict[str, Any]) -> int:
    fields = as_dict(req_array(params, "fields"))
    item = item_add(ctx, {"entityTypeId": etid, "fields": _to_camel(_schema(ctx, etid), fields)})["item"]
    return int(item["id"])


def _update(ctx: CallContext, etid: int, params: dict[str, Any]) -> bool:
    item_id = req_int(params, "id")
    fields = as_dict(req_array(params, "fields"))
    try:
        item_update(
            ctx, {"entityTypeId": etid, "id": item_id, "fields": _to_camel(_schema(ctx, etid), fields)}
        )
    except ApiError as err:
        if err.code == "NOT_FOUND":
            raise NOT_FOUND from None
        raise
    return True


def _delete(ctx: CallContext, etid: int, params: dict[str, Any]) -> bool:
    try:
        item_delete(ctx, {"entityTypeId": etid, "id": req_int(params, "id")})
    except ApiError as err:
        if err.code == "NOT_FOUND":
            raise NOT_FOUND from None
        raise
    return True


@method("crm.deal.fields")
def deal_fields(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/deals/crm-deal-fields.html"""
    return _fields(ctx, 2)


@method("crm.deal.get")
def deal_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/deals/crm-deal-get.html"""
    return _get(ctx, 2, params)


@method("crm.deal.list")
def deal_list(ctx: CallContext, params: dict[str, Any]) -> ListPage:
    """https://apidocs.bitrix24.com/api-reference/crm/deals/crm-deal-list.html"""
    return _list(ctx, 2, params)


@method("crm.deal.add", write=True)
def deal_add(ctx: CallContext, params: dict[str, Any]) -> int:
    """https://apidocs.bitrix24.com/api-reference/crm/deals/crm-deal-add.html"""
    return _add(ctx, 2, params)


@method("crm.deal.update", write=True)
def deal_update(ctx: CallContext, params: dict[str, Any]) -> bool:
    """https://apidocs.bitrix24.com/api-reference/crm/deals/crm-deal-update.html"""
    return _update(ctx, 2, params)


@method("crm.deal.delete", write=True)
def deal_delete(ctx: CallContext, params: dict[str, Any]) -> bool:
    """https://apidocs.bitrix24.com/api-reference/crm/deals/crm-deal-delete.html"""
    return _delete(ctx, 2, params)


@method("crm.contact.get")
def contact_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/contacts/crm-contact-get.html"""
    return _get(ctx, 3, params)


@method("crm.contact.list")
def contact_list(ctx: CallContext, params: dict[str, Any]) -> ListPage:
    """https://apidocs.bitrix24.com/api-reference/crm/contacts/crm-contact-list.html"""
    return _list(ctx, 3, params)


@method("crm.company.get")
def company_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/companies/crm-company-get.html"""
    return _get(ctx, 4, params)


@method("crm.company.list")
def company_list(ctx: CallContext, params: dict[str, Any]) -> ListPage:
    """https://apidocs.bitrix24.com/api-reference/crm/companies/crm-company-list.html"""
    return _list(ctx, 4, params)
