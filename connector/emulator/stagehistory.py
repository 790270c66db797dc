"""Emulator `crm.stagehistory.list` for smart processes, over rows the core appends to `stage_history`.

https://apidocs.bitrix24.com/api-reference/crm/crm-stage-history-list.html
Rows in `portal.stage_history` are dicts with camelCase keys (id, typeId, createdTime, ownerId,
categoryId, stageSemanticId, stageId, entityTypeId); the method answers with UPPER_SNAKE keys.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, timezone
from typing import Any

from connector.constants import PAGE_SIZE, SYSTEM_ENTITY_TYPES

from .convert import iso, parse_datetime
from .errors import ApiError
from .filters import compile_filter, parse_order, sort_rows
from .params import is_numeric, php_int, req_int
from .php import as_list
from .registry import CallContext, ListPage, method

# UPPER name -> (row key, filter kind)
FIELDS: dict[str, tuple[str, str]] = {
    "ID": ("id", "int"),
    "TYPE_ID": ("typeId", "int"),
    "OWNER_ID": ("ownerId", "int"),
    "CREATED_TIME": ("createdTime", "datetime"),
    "CATEGORY_ID": ("categoryId", "int"),
    "STAGE_SEMANTIC_ID": ("stageSemanticId", "string"),
    "STAGE_ID": ("stageId", "string"),
}
_BY_CAMEL = {row_key.lower(): upper for upper, (row_key, _) in FIELDS.items()}
# types whose history the method serves besides smart processes: lead, deal, old and new invoice
SUPPORTED_SYSTEM_TYPES = {1, 2, 5, 31}
_OTHER_NAMES = {5: "INVOICE", 8: "REQUISITE", 14: "ORDER", 33: "SHIPMENT_DOCUMENT", 36: "SMART_DOCUMENT"}


def _resolve(name: str) -> tuple[str, str, str] | None:
    upper = name.strip().upper()
    if upper not in FIELDS:
        upper = _BY_CAMEL.get(name.strip().lower(), "")
    if not upper:
        return None
    row_key, kind = FIELDS[upper]
    return row_key, kind, upper


def _type_name(entity_type_id: int) -> str:
    for name, etid in SYSTEM_ENTITY_TYPES.items():
        if etid == entity_type_id:
            return name.upper()
    return _OTHER_NAMES.get(entity_type_id, f"DYNAMIC_{entity_type_id}")


def _require_supported(state: Any, entity_type_id: int) -> None:
    if entity_type_id in SUPPORTED_SYSTEM_TYPES:
        return
    finder = getattr(state, "type_by_etid", None)
    if finder is not None and finder(entity_type_id) is not None:
        return
    raise ApiError("0", f"{_type_name(entity_type_id)} entity is not supported")  # a string, as sent


def _tz(state: Any) -> timezone:
    tz = getattr(state, "tz", None)
    return tz if isinstance(tz, timezone) else UTC


def _stored(row: dict[str, Any], tz: timezone) -> dict[str, Any]:
    """A history row as the filter sees it: numbers as ints, createdTime as Unix seconds."""
    out = dict(row)
    created = row.get("createdTime")
    out["createdTime"] = parse_datetime(created, tz) if created is not None else None
    return out


def _public(row: dict[str, Any], select: list[str], tz: timezone) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for upper in select:
        row_key, kind = FIELDS[upper]
        value = row.get(row_key)
        if kind == "datetime" and isinstance(value, int | float):
            value = iso(value, tz)
        elif kind == "int" and is_numeric(value):
            value = php_int(value)
        out[upper] = value
    return out


def _select(raw: Any) -> list[str]:
    names = [str(v).strip().upper() for v in as_list(raw)] if raw not in (None, "", []) else ["*"]
    if "*" in names:
        return list(FIELDS)
    chosen = [n for n in FIELDS if n in names]  # unknown names are ignored, order is the table's
    return chosen or list(FIELDS)


@method("crm.stagehistory.list")
def stagehistory_list(ctx: CallContext, params: dict[str, Any]) -> ListPage:
    """https://apidocs.bitrix24.com/api-reference/crm/crm-stage-history-list.html"""
    state = ctx.portal
    entity_type_id = req_int(params, "entityTypeId")
    _require_supported(state, entity_type_id)
    tz = _tz(state)
    flt = compile_filter(params.get("filter"), _resolve, tz, id_key="id")
    order = parse_order(params.get("order"), _resolve) or [("id", False)]
    select = _select(params.get("select"))
    lock = getattr(state, "lock", None)
    with lock if lock is not None else nullcontext():
        history = list(getattr(state, "stage_history", []))
    rows = [
        r for r in (_stored(h, tz) for h in history if h.get("entityTypeId") == entity_type_id)
        if flt.predicate(r)
    ]
    rows = sort_rows(rows, order)
    start = ctx.extras.get("start", params.get("start", 0))
    start = php_int(start) if is_numeric(start) else 0
    offset = max(0, start // PAGE_SIZE * PAGE_SIZE) if start > 0 else 0
    page = [_public(r, select, tz) for r in rows[offset:offset + PAGE_SIZE]]
    if start == -1:
        return ListPage({"items": page})
    nxt = offset + len(page) if offset + len(page) < len(rows) else None
    return ListPage({"items": page}, total=len(rows), next=nxt)

