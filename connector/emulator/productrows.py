"""crm.item.productrow.*: product rows of deals, leads and smart processes with products enabled.

The owner is named by `ownerType` (bitrix24-rest.md §1: the short code — `D` deal, `L` lead, and
`T` + lowercase hex of the entityTypeId for a smart process, e.g. `T9c`) and `ownerId`. The
references have no doc fixture for these methods; the row keys below are the method's documented
field names, and where the references are silent we refuse rather than guess: an unknown owner
type, an owner item that does not exist, or a smart process without `isLinkWithProductsEnabled`.
"""

from __future__ import annotations

from typing import Any

from .common import require_type, state_of
from .errors import ApiError
from .params import as_dict, finite_float, is_numeric, php_int, req_array, req_int
from .php import as_list
from .registry import CallContext, method
from .state import PortalState

_SHORT = {"L": 1, "D": 2}
ROW_NOT_FOUND = ApiError("NOT_FOUND", "Product row was not found")
# field -> (kind, default)
FIELDS: dict[str, tuple[str, Any]] = {
    "productId": ("int", 0),
    "productName": ("str", ""),
    "price": ("float", 0.0),
    "quantity": ("float", 1.0),
    "discountTypeId": ("int", 2),
    "discountRate": ("float", 0.0),
    "discountSum": ("float", 0.0),
    "taxRate": ("float", None),
    "taxIncluded": ("yn", "N"),
    "measureCode": ("int", 796),
    "measureName": ("str", "pcs"),
    "sort": ("int", 10),
}


def owner_type_of(entity_type_id: int) -> str:
    """The short owner code of an entity type (`D`, `L`, `T9c`)."""
    for short, etid in _SHORT.items():
        if etid == entity_type_id:
            return short
    return f"T{entity_type_id:x}"


def _owner_etid(raw: Any) -> int:
    text = str(raw or "")
    if text in _SHORT:
        return _SHORT[text]
    if len(text) > 1 and text[0] == "T":
        try:
            return int(text[1:], 16)
        except ValueError:
            pass
    raise ApiError("INVALID_ARG_VALUE", f"Unknown ownerType {text!r}: use D, L or T{{hex entityTypeId}}")


def _owner(state: PortalState, owner_type: Any, owner_id: Any) -> tuple[int, int]:
    """(entityTypeId, item id) of an existing owner that can have products."""
    etid = _owner_etid(owner_type)
    smart = require_type(state, etid)
    if not smart.flag("isLinkWithProductsEnabled"):
        raise ApiError("INVALID_ARG_VALUE", f"Entity type {etid} has no product rows")
    if not is_numeric(owner_id) or php_int(owner_id) not in state.table(etid).rows:
        raise ApiError("NOT_FOUND", f"Owner {owner_type}_{owner_id} was not found")
    return etid, php_int(owner_id)


def _value(kind: str, raw: Any, name: str) -> Any:
    if kind == "str":
        return "" if raw is None else str(raw)
    if kind == "yn":
        return "Y" if str(raw).upper() in ("Y", "1", "TRUE") else "N"
    if raw in (None, "") and name == "taxRate":  # no tax rate; a batch sends null as ""
        return None
    number = finite_float(raw) if is_numeric(raw) else None
    if number is None:
        raise ApiError("INVALID_ARG_VALUE", f"Field {name!r} must be a number, got {raw!r}")
    return php_int(raw) if kind == "int" else number


def _row(
    state: PortalState, etid: int, owner_id: int, fields: dict[str, Any], old: dict[str, Any] | None
) -> dict[str, Any]:
    row = dict(old) if old else {name: default for name, (_, default) in FIELDS.items()}
    for name, raw in fields.items():
        if name in FIELDS:
            row[name] = _value(FIELDS[name][0], raw, name)
    row["ownerType"], row["ownerId"] = owner_type_of(etid), owner_id
    return row


def rows_of(state: PortalState, etid: int, owner_id: int) -> list[dict[str, Any]]:
    """The product rows of one owner, in sort order."""
    owner = owner_type_of(etid)
    mine = [r for r in state.product_rows.values() if r["ownerType"] == owner and r["ownerId"] == owner_id]
    return sorted(mine, key=lambda r: (r["sort"], r["id"]))


def drop_owner(state: PortalState, etid: int, owner_id: int) -> None:
    """A deleted item takes its product rows with it (references silent; stricter: no orphan rows)."""
    for row in rows_of(state, etid, owner_id):
        del state.product_rows[row["id"]]


def _recalculate(state: PortalState, etid: int, owner_id: int) -> None:
    """An owner with `isManualOpportunity` N gets `opportunity` = the sum of its rows
    (crm-item-add doc: isManualOpportunity N = the amount is calculated from the products)."""
    row = state.table(etid).rows.get(owner_id)
    if row is None or row.get("IS_MANUAL_OPPORTUNITY"):
        return
    total = sum(r["price"] * r["quantity"] for r in rows_of(state, etid, owner_id))
    if row.get("OPPORTUNITY") != round(total, 2):
        new = dict(row)
        new["OPPORTUNITY"] = round(total, 2)
        state.table(etid).put(owner_id, new)
        state.dirty_items.add((etid, owner_id))


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return dict(row)


@method("crm.item.productrow.list")
def productrow_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """The rows of one owner: filter `=ownerType` and `=ownerId` are required."""
    state = state_of(ctx)
    flt = {str(k).lstrip("="): v for k, v in as_dict(params.get("filter")).items()}
    if "ownerType" not in flt or "ownerId" not in flt:
        raise ApiError("INVALID_ARG_VALUE", "filter needs =ownerType and =ownerId")
    etid, owner_id = _owner(state, flt["ownerType"], flt["ownerId"])
    return {"productRows": [_out(r) for r in rows_of(state, etid, owner_id)]}


@method("crm.item.productrow.get")
def productrow_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    row = state_of(ctx).product_rows.get(req_int(params, "id"))
    if row is None:
        raise ROW_NOT_FOUND
    return {"productRow": _out(row)}


@method("crm.item.productrow.add", write=True)
def productrow_add(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    state = state_of(ctx)
    fields = as_dict(req_array(params, "fields"))
    etid, owner_id = _owner(state, fields.get("ownerType"), fields.get("ownerId"))
    row = _row(state, etid, owner_id, fields, None)
    row["id"] = state.seq.next("product_row_id")
    state.product_rows[row["id"]] = row
    _recalculate(state, etid, owner_id)
    return {"productRow": _out(row)}


@method("crm.item.productrow.update", write=True)
def productrow_update(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    state = state_of(ctx)
    old = state.product_rows.get(req_int(params, "id"))
    if old is None:
        raise ROW_NOT_FOUND
    fields = as_dict(req_array(params, "fields"))
    etid = _owner_etid(old["ownerType"])
    row = _row(state, etid, old["ownerId"], fields, old)
    state.product_rows[row["id"]] = row
    _recalculate(state, etid, old["ownerId"])
    return {"productRow": _out(row)}


@method("crm.item.productrow.delete", write=True)
def productrow_delete(ctx: CallContext, params: dict[str, Any]) -> None:
    state = state_of(ctx)
    old = state.product_rows.pop(req_int(params, "id"), None)
    if old is None:
        raise ROW_NOT_FOUND
    _recalculate(state, _owner_etid(old["ownerType"]), old["ownerId"])
    return None


@method("crm.item.productrow.set", write=True)
def productrow_set(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """Replace all rows of one owner with `productRows` (an empty list clears them)."""
    state = state_of(ctx)
    etid, owner_id = _owner(state, params.get("ownerType"), params.get("ownerId"))
    raw = params.get("productRows", [])
    new_rows = [_row(state, etid, owner_id, as_dict(r), None) for r in as_list(raw)] if raw else []
    for old in rows_of(state, etid, owner_id):
        del state.product_rows[old["id"]]
    for row in new_rows:
        row["id"] = state.seq.next("product_row_id")
        state.product_rows[row["id"]] = row
    _recalculate(state, etid, owner_id)
    return {"productRows": [_out(r) for r in rows_of(state, etid, owner_id)]}
