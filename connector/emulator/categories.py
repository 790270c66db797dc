"""crm.category.* for smart processes; every new funnel gets the five default stages."""

from __future__ import annotations

from typing import Any

from .common import field_desc, require_crm_admin, require_type, state_of
from .convert import orm_bool, yn
from .errors import ApiError
from .naming import stage_entity_id, stage_prefix
from .params import as_dict, is_numeric, php_int, req_array, req_int
from .registry import CallContext, ListPage, method
from .state import Category, PortalState, Stage

DEFAULT_CATEGORY_NAME = "New pipeline"
# code, name, sort, color, semantics, system (server-behaviour.md §4)
DEFAULT_STAGES = (
    ("NEW", "Start", 10, "#22B9FF", None, True),
    ("PREPARATION", "Preparation", 20, "#88B9FF", None, False),
    ("CLIENT", "Approval", 30, "#10e5fc", None, False),
    ("SUCCESS", "Success", 40, "#00ff00", "S", True),
    ("FAIL", "Failure", 50, "#ff0000", "F", True),
)


def create_category(
    state: PortalState, entity_type_id: int, name: str, sort: int, is_default: bool
) -> Category:
    """Add a funnel with its default stages; a new default takes the flag from the old one."""
    if is_default:
        for c in state.categories.values():
            if c.entity_type_id == entity_type_id:
                c.is_default = False
    cat = Category(state.seq.next("category_id"), entity_type_id, name, sort, is_default)
    state.categories[cat.id] = cat
    if entity_type_id == 2:
        from .system import add_deal_funnel_stages

        add_deal_funnel_stages(state, cat.id)
        state.touch_schema()
        return cat
    entity_id = stage_entity_id(entity_type_id, cat.id)
    prefix = stage_prefix(entity_type_id, cat.id)
    for code, stage_name, stage_sort, color, semantics, system in DEFAULT_STAGES:
        sid = state.seq.next("status_id")
        # server-behaviour.md §4 "Default stages": `NAME_INIT` = `NAME`
        state.stages[sid] = Stage(
            sid,
            entity_id,
            f"{prefix}:{code}",
            stage_name,
            stage_sort,
            system,
            cat.id,
            color,
            semantics,
            name_init=stage_name,
        )
    state.touch_schema()
    return cat


def category_json(cat: Category) -> dict[str, Any]:
    """A category as crm.category.* returns it."""
    return {
        "id": cat.id,
        "name": cat.name,
        "sort": cat.sort,
        "entityTypeId": cat.entity_type_id,
        "isDefault": yn(cat.is_default),
    }


def _find(state: PortalState, entity_type_id: int, category_id: int) -> Category:
    cat = state.categories.get(category_id)
    if cat is None or cat.entity_type_id != entity_type_id:
        raise ApiError("NOT_FOUND", "Element not found")
    return cat


def _name(fields: dict[str, Any], default: str | None) -> str | None:
    if "name" not in fields:
        return default
    name = fields["name"]
    if not isinstance(name, str | int | float) or not str(name).strip():
        raise ApiError("0", "Field 'NAME' is required")
    if len(str(name)) > 255:
        raise ApiError("0", "Field 'NAME' must be at most 255 characters long")
    return str(name)


def _sort(fields: dict[str, Any], default: int) -> int:
    if "sort" not in fields:
        return default
    if not is_numeric(fields["sort"]):
        raise ApiError("0", "Field 'SORT' must be an integer")
    return max(0, php_int(fields["sort"]))


@method("crm.category.add", write=True)
def category_add(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/category/crm-category-add.html"""
    require_crm_admin(ctx)
    state = state_of(ctx)
    etid = req_int(params, "entityTypeId")
    fields = as_dict(req_array(params, "fields"))
    require_type(state, etid)
    if orm_bool(fields.get("isSystem")):
        raise ApiError("ADDING_DISABLED", "Adding a system category is not allowed")
    name = _name(fields, DEFAULT_CATEGORY_NAME) or DEFAULT_CATEGORY_NAME
    cat = create_category(state, etid, name, _sort(fields, 500), bool(orm_bool(fields.get("isDefault"))))
    return {"category": category_json(cat)}


@method("crm.category.update", write=True)
def category_update(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/category/crm-category-update.html"""
    require_crm_admin(ctx)
    state = state_of(ctx)
    etid = req_int(params, "entityTypeId")
    cid = req_int(params, "id")
    fields = as_dict(req_array(params, "fields"))
    require_type(state, etid)
    cat = _find(state, etid, cid)
    cat.name = _name(fields, cat.name) or cat.name
    cat.sort = _sort(fields, cat.sort)
    if orm_bool(fields.get("isDefault")) and not cat.is_default:
        for other in state.categories.values():
            if other.entity_type_id == etid:
                other.is_default = False
        cat.is_default = True
    state.touch_schema()
    return {"category": category_json(cat)}


@method("crm.category.get")
def category_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/category/crm-category-get.html"""
    state = state_of(ctx)
    etid = req_int(params, "entityTypeId")
    cid = req_int(params, "id")
    require_type(state, etid)
    return {"category": category_json(_find(state, etid, cid))}


@method("crm.category.list")
def category_list(ctx: CallContext, params: dict[str, Any]) -> ListPage:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/category/crm-category-list.html"""
    state = state_of(ctx)
    etid = req_int(params, "entityTypeId")
    require_type(state, etid)
    cats = [category_json(c) for c in state.categories_of(etid)]
    return ListPage({"categories": cats}, total=len(cats))


@method("crm.category.delete", write=True)
def category_delete(ctx: CallContext, params: dict[str, Any]) -> None:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/category/crm-category-delete.html"""
    require_crm_admin(ctx)
    state = state_of(ctx)
    etid = req_int(params, "entityTypeId")
    cid = req_int(params, "id")
    require_type(state, etid)
    cat = _find(state, etid, cid)
    if cat.is_default:
        raise ApiError("BX_ERROR", "This funnel is the default funnel")
    table = state.items.get(etid)
    if table is not None and any(row.get("CATEGORY_ID") == cid for row in table.rows.values()):
        raise ApiError("BX_ERROR", "Elements related to the funnel found")
    del state.categories[cid]
    entity_id = stage_entity_id(etid, cid)
    for sid in [s.id for s in state.stages.values() if s.entity_id == entity_id]:
        del state.stages[sid]
    state.touch_schema()
    return None


@method("crm.category.fields")
def category_fields(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/category/crm-category-fields.html"""
    state = state_of(ctx)
    require_type(state, req_int(params, "entityTypeId"))
    return {
        "fields": {
            "id": field_desc("integer", "ID", "ID", read_only=True),
            "name": field_desc("string", "NAME", "NAME"),
            "sort": field_desc("integer", "SORT", "SORT"),
            "entityTypeId": field_desc(
                "integer", "ENTITY_TYPE_ID", "ENTITY_TYPE_ID", required=True, read_only=True
            ),
            "isDefault": field_desc("boolean", "IS_DEFAULT", "IS_DEFAULT", read_only=True),
        }
    }
