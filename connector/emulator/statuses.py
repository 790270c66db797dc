"""crm.status.* for smart-process stage directories `DYNAMIC_{etid}_STAGE_{cat}`."""

from __future__ import annotations

from functools import partial
from typing import Any

from .common import field_desc, state_of
from .errors import ApiError
from .naming import parse_stage_entity_id, stage_prefix
from .params import as_dict, is_numeric, php_int
from .registry import CallContext, ListPage, method
from .state import PortalState, Stage

_BAD_ID = ApiError("Invalid identifier.", "An invalid identifier was passed.")


def stage_json(stage: Stage, state: PortalState | None = None) -> dict[str, Any]:
    """A stage row; numbers come back as strings; lead/deal stages add `EXTRA` (system.py)."""
    row: dict[str, Any] = {
        "ID": str(stage.id),
        "ENTITY_ID": stage.entity_id,
        "STATUS_ID": stage.status_id,
        "NAME": stage.name,
        "NAME_INIT": stage.name_init,  # the default stages' first name; "" for added stages
        "SORT": str(stage.sort),
        "SYSTEM": "Y" if stage.system else "N",
        "CATEGORY_ID": str(stage.category_id),
        "COLOR": stage.color,
        "SEMANTICS": stage.semantics,
    }
    if state is not None:
        from .system import stage_extra

        extra = stage_extra(state, stage)
        if extra is not None:
            # crm.status.list.deal.json: funnel 0 stages have CATEGORY_ID null
            row["EXTRA"] = extra
            if stage.entity_id == "DEAL_STAGE" or stage.entity_id == "STATUS":
                row["CATEGORY_ID"] = None
    return row


def _stage(state: PortalState, params: dict[str, Any], *, missing_error: ApiError) -> Stage:
    raw = params.get("id")
    if raw is None or not is_numeric(raw) or php_int(raw) <= 0:
        raise missing_error
    stage = state.stages.get(php_int(raw))
    if stage is None:
        raise ApiError("Status is not found.", "Directory item not found.")
    return stage


def _directory(state: PortalState, entity_id: str) -> tuple[int, int] | None:
    """(etid, category id) of an existing SPA funnel directory."""
    parsed = parse_stage_entity_id(entity_id)
    if parsed is None:
        return None
    etid, cid = parsed
    if etid in (1, 2):
        from .system import ensure

        ensure(state)
        if etid == 1:
            return parsed  # the lead STATUS directory has no funnel
    cat = state.categories.get(cid)
    if cat is None or cat.entity_type_id != etid:
        return None
    return parsed


@method("crm.status.list")
def status_list(ctx: CallContext, params: dict[str, Any]) -> ListPage:
    """https://apidocs.bitrix24.com/api-reference/crm/status/crm-status-list.html"""
    state = state_of(ctx)
    flt = params.get("filter", {})
    if flt == "":
        flt = {}
    order = params.get("order", {})
    if not isinstance(flt, dict) or (order not in ("", None) and not isinstance(order, dict)):
        raise ApiError("Invalid parameters.", "Incorrect parameters passed.")
    flt = {str(k).upper(): v for k, v in flt.items()}
    rows = sorted(state.stages.values(), key=lambda s: (s.sort, s.id))
    if "ENTITY_ID" in flt:
        if not isinstance(flt["ENTITY_ID"], str):
            raise ApiError("", "Filter by ENTITY_ID must be a string")
        if flt["ENTITY_ID"] == "STATUS" or flt["ENTITY_ID"].startswith("DEAL_STAGE"):
            from .system import ensure

            ensure(state)
            rows = sorted(state.stages.values(), key=lambda s: (s.sort, s.id))
        rows = [s for s in rows if s.entity_id == flt["ENTITY_ID"]]
    out = [stage_json(s, state) for s in rows]
    for key, value in flt.items():
        if key == "ENTITY_ID" or key not in (out[0] if out else {}):
            continue
        out = [r for r in out if str(r[key]) == str(value)]
    for key, direction in reversed(list(as_dict(order).items())):
        k = str(key).upper()
        if out and k in out[0]:
            num = k in ("ID", "SORT", "CATEGORY_ID")
            out.sort(key=partial(_order_key, k, num), reverse=str(direction).upper() == "DESC")
    return ListPage(out, total=len(out))


def _order_key(key: str, numeric: bool, row: dict[str, Any]) -> tuple[int, str]:
    """Sort value of one row: the number for ID / SORT / CATEGORY_ID, the text otherwise."""
    return (int(row[key]), "") if numeric else (0, str(row[key] or ""))


@method("crm.status.get")
def status_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/status/crm-status-get.html"""
    state = state_of(ctx)
    return stage_json(_stage(state, params, missing_error=_BAD_ID), state)


@method("crm.status.add", write=True)
def status_add(ctx: CallContext, params: dict[str, Any]) -> int:
    """https://apidocs.bitrix24.com/api-reference/crm/status/crm-status-add.html"""
    state = state_of(ctx)
    fields = params.get("fields")
    if not isinstance(fields, dict):
        raise ApiError("", "Parameter 'fields' must be array.")
    entity_id = fields.get("ENTITY_ID")
    status_id = fields.get("STATUS_ID")
    missing = [
        f"The field {k} is required."
        for k, v in (("ENTITY_ID", entity_id), ("STATUS_ID", status_id))
        if not isinstance(v, str | int) or not str(v).strip()
    ]
    if missing:
        raise ApiError("", " ".join(missing))
    directory = _directory(state, str(entity_id))
    if directory is None:
        raise ApiError("", "Specified entity type is not supported.")
    name = fields.get("NAME")
    if not isinstance(name, str | int | float) or not str(name).strip():
        raise ApiError("", "The field Title is required.")
    etid, cid = directory
    prefix = stage_prefix(etid, cid)
    code = str(status_id)
    full_id = code if not prefix or code.startswith(prefix + ":") else f"{prefix}:{code}"
    if len(full_id) > 50:
        raise ApiError("", "Error on creating status.")
    existing = state.stages_of(str(entity_id))
    if any(s.status_id == full_id for s in existing):
        raise ApiError("ERROR_CORE", "The specified status ID already exists.")
    sort = php_int(fields["SORT"]) if is_numeric(fields.get("SORT")) else 10
    semantics = _semantics(fields.get("SEMANTICS"), sort, existing)
    color = str(fields.get("COLOR") or "#ACE9FB")
    sid = state.seq.next("status_id")
    state.stages[sid] = Stage(sid, str(entity_id), full_id, str(name), sort, False, cid, color, semantics)
    state.touch_schema()
    return sid


def _semantics(raw: Any, sort: int, existing: list[Stage]) -> str | None:
    """StatusTable::onBeforeAdd: P -> null; no semantics after the success stage -> F; one S only."""
    value = str(raw).strip().upper() if raw not in (None, False) else ""
    success = next((s for s in existing if s.semantics == "S"), None)
    if value == "S":
        if success is not None:
            raise ApiError("", "Error on creating status.")
        return "S"
    if value == "F":
        return "F"
    if value in ("", "P") and success is not None and sort > success.sort:
        return "F"
    return None


@method("crm.status.update", write=True)
def status_update(ctx: CallContext, params: dict[str, Any]) -> bool:
    """https://apidocs.bitrix24.com/api-reference/crm/status/crm-status-update.html"""
    state = state_of(ctx)
    stage = _stage(
        state, params, missing_error=ApiError("Invalid identifier.", "An incorrect identifier was passed.")
    )
    fields = params.get("fields")
    if not isinstance(fields, dict):
        raise ApiError("", "Parameter 'fields' must be array.")
    if "NAME" in fields and str(fields["NAME"]).strip():
        stage.name = str(fields["NAME"])
    if "SORT" in fields and is_numeric(fields["SORT"]):
        stage.sort = php_int(fields["SORT"])
    if "COLOR" in fields and isinstance(fields["COLOR"], str):
        stage.color = fields["COLOR"]
    state.touch_schema()
    return True


@method("crm.status.delete", write=True)
def status_delete(ctx: CallContext, params: dict[str, Any]) -> bool:
    """https://apidocs.bitrix24.com/api-reference/crm/status/crm-status-delete.html"""
    state = state_of(ctx)
    stage = _stage(state, params, missing_error=_BAD_ID)
    opts = as_dict(params.get("params"))
    if stage.system and str(opts.get("FORCED", "")).upper() != "Y":
        raise ApiError(
            "", 'CRM System Status can be deleted only if parameter FORCED is specified and equal to "Y".'
        )
    directory = parse_stage_entity_id(stage.entity_id)
    if directory is not None:
        table = state.items.get(directory[0])
        if table is not None and any(r.get("STAGE_ID") == stage.status_id for r in table.rows.values()):
            raise ApiError("", "There are active items in this status.")
    del state.stages[stage.id]
    state.touch_schema()
    return True


@method("crm.status.entity.items")
def status_entity_items(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    """https://apidocs.bitrix24.com/api-reference/crm/status/crm-status-entity-items.html"""
    entity_id = params.get("entityId")
    if not isinstance(entity_id, str) or not entity_id:
        raise ApiError(
            "The parameter entityId is not defined or invalid.",
            "The directory ID is not specified or is incorrect.",
        )
    stages = state_of(ctx).stages_of(entity_id)
    return [{"NAME": s.name, "SORT": s.sort, "STATUS_ID": s.status_id} for s in stages]


@method("crm.status.entity.types")
def status_entity_types(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    """https://apidocs.bitrix24.com/api-reference/crm/status/crm-status-entity-types.html"""
    state = state_of(ctx)
    out = []
    for smart in sorted(state.types.values(), key=lambda t: t.id):
        for cat in state.categories_of(smart.entity_type_id):
            out.append(
                {
                    "ID": f"DYNAMIC_{smart.entity_type_id}_STAGE_{cat.id}",
                    "NAME": f"{smart.title} ({cat.name})",
                    "SEMANTIC_INFO": [],
                    "PREFIX": stage_prefix(smart.entity_type_id, cat.id),
                    "FIELD_ATTRIBUTE_SCOPE": f"category_{cat.id}",
                    "ENTITY_TYPE_ID": smart.entity_type_id,
                    "IS_ENABLED": True,
                    "CATEGORY_ID": cat.id,
                    "CATEGORY_NAME": cat.name,
                    "CATEGORY_SORT": cat.sort,
                    "IS_DEFAULT_CATEGORY": cat.is_default,
                }
            )
    return out


@method("crm.status.fields")
def status_fields(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/status/crm-status-fields.html"""

    def d(kind: str, title: str, **kw: Any) -> dict[str, Any]:
        desc = field_desc(kind, title, title, **kw)
        desc.pop("upperName")
        return desc

    return {
        "ID": d("integer", "ID", read_only=True),
        "ENTITY_ID": d("string", "ENTITY_ID", required=True, immutable=True),
        "STATUS_ID": d("string", "STATUS_ID", required=True, immutable=True),
        "SORT": d("integer", "SORT"),
        "NAME": d("string", "NAME", required=True),
        "NAME_INIT": d("string", "NAME_INIT", read_only=True),
        "SYSTEM": d("char", "SYSTEM", read_only=True),
        "CATEGORY_ID": d("integer", "CATEGORY_ID", read_only=True),
        "COLOR": d("string", "COLOR"),
        "SEMANTICS": d("string", "SEMANTICS", immutable=True),
        "EXTRA": d("crm_status_extra", "EXTRA"),
    }
