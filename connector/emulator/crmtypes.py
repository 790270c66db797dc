"""crm.type.*: smart-process types, their flags, relations and the default funnel."""

from __future__ import annotations

from typing import Any

from connector.constants import READ_ONLY_TYPE_FLAGS as READ_ONLY_FLAGS
from connector.constants import SYSTEM_ENTITY_TYPES
from connector.constants import TYPE_FLAGS as WRITABLE_FLAGS

from .categories import DEFAULT_CATEGORY_NAME, create_category
from .common import emit, field_desc, is_possible_dynamic, require_crm_admin, state_of
from .convert import iso, orm_bool, yn
from .errors import ApiError
from .filters import compile_filter, parse_order, sort_rows
from .params import as_dict, is_numeric, php_int, req_array, req_int
from .registry import CallContext, ListPage, method
from .state import LINKED_USER_FIELDS, PortalState, Relation, SmartType

TYPE_FLAGS = WRITABLE_FLAGS + READ_ONLY_FLAGS  # every flag the type object carries

TYPE_NOT_FOUND = ApiError("0", "Smart Process Automation was not found")
# server-behaviour.md §3: a missing title is the ORM's BX_EMPTY_REQUIRED, MAIN_ENTITY_FIELD_REQUIRED
# for the field "Name" (the TITLE column's ORM title), not "Title"
TITLE_REQUIRED = ApiError("BX_EMPTY_REQUIRED", 'Field "Name" is required.')
RESERVED_ENTITY_TYPE_IDS = (31, 36, 39)
CLIENT_TYPES = (SYSTEM_ENTITY_TYPES["contact"], SYSTEM_ENTITY_TYPES["company"])
RELATABLE_SYSTEM = (1, 2, 3, 4, 7, 31)


def type_json(state: PortalState, smart: SmartType, *, full: bool = True) -> dict[str, Any]:
    """A type as crm.type.get returns it; list rows (`full=False`) omit relations and friends."""
    row: dict[str, Any] = {
        "id": smart.id,
        "title": smart.title,
        "code": smart.code,
        "createdBy": smart.created_by,
        "entityTypeId": smart.entity_type_id,
        "customSectionId": smart.custom_section_id,
    }
    for flag in TYPE_FLAGS:
        row[flag] = yn(smart.flag(flag))
    row["createdTime"] = iso(smart.created_time, state.tz)
    row["updatedTime"] = iso(smart.updated_time, state.tz)
    row["updatedBy"] = smart.updated_by
    if full:

        def rel(etid: int, r: Relation) -> dict[str, Any]:
            return {
                "entityTypeId": etid,
                "isChildrenListEnabled": yn(r.children_list),
                "isPredefined": yn(r.predefined),
            }

        row["relations"] = {
            "parent": [rel(r.parent, r) for r in state.parents_of(smart.entity_type_id)],
            "child": [rel(r.child, r) for r in state.children_of(smart.entity_type_id)],
        }
        row["linkedUserFields"] = {k: yn(smart.linked_user_fields.get(k, False)) for k in LINKED_USER_FIELDS}
        row["customSections"] = []
    return row


def _find(state: PortalState, type_id: int) -> SmartType:
    smart = state.types.get(type_id)
    if smart is None:
        raise TYPE_NOT_FOUND
    return smart


def _allocate_entity_type_id(state: PortalState, fields: dict[str, Any]) -> int:
    """The controller's range check first; then the sequence moves (burned even if the add fails).

    server-behaviour.md §3: 31/36/39 -> INVALID_ARG_VALUE before anything else; any other explicit
    value that is not 128..191 or an even number >= 1030 (0, negative, odd, text) -> BX_INVALID_VALUE
    from the ORM validator, after the sequence has moved.
    """
    raw = fields.get("entityTypeId")
    explicit = raw is not None and raw != ""
    wanted = php_int(raw) if explicit and is_numeric(raw) else 0  # ORM integer: text becomes 0
    if explicit and wanted in RESERVED_ENTITY_TYPE_IDS:
        raise ApiError("INVALID_ARG_VALUE", "entityTypeId is out of allowed range")
    auto = state.seq.next("entity_type_id", 2)
    used = {t.entity_type_id for t in state.types.values()}
    if not explicit:
        while auto in used:
            auto = state.seq.next("entity_type_id", 2)
        return auto
    if not is_possible_dynamic(wanted):
        raise ApiError("BX_INVALID_VALUE", "EntityTypeId should be more or equal than 128 and less than 192")
    if wanted in used:
        raise ApiError("BX_INVALID_VALUE", f"Entity type id {wanted} is already used")
    return wanted


def _known_etid(state: PortalState, etid: int) -> bool:
    return etid in RELATABLE_SYSTEM or state.type_by_etid(etid) is not None


def _apply_relations(state: PortalState, smart: SmartType, relations: Any) -> None:
    """Replace the non-predefined relations wholesale; bad rows are dropped silently like the server."""
    etid = smart.entity_type_id
    rel = as_dict(relations)
    for key in [k for k, r in state.relations.items() if etid in k and not r.predefined]:
        del state.relations[key]
    for side in ("parent", "child"):
        for raw in as_dict(rel.get(side)).values():
            if not isinstance(raw, dict) or not is_numeric(raw.get("entityTypeId")):
                continue
            other = php_int(raw["entityTypeId"])
            if not _known_etid(state, other) or other == etid:
                continue
            children_list = str(raw.get("isChildrenListEnabled", "true")).lower() == "true"
            key = (other, etid) if side == "parent" else (etid, other)
            if key in state.relations and state.relations[key].predefined:
                continue
            state.relations[key] = Relation(key[0], key[1], children_list, False)


def _sync_client_relations(state: PortalState, smart: SmartType) -> None:
    etid = smart.entity_type_id
    for client in CLIENT_TYPES:
        key = (client, etid)
        if smart.flag("isClientEnabled"):
            state.relations[key] = Relation(client, etid, True, True)
        elif key in state.relations and state.relations[key].predefined:
            del state.relations[key]


def _apply_fields(state: PortalState, smart: SmartType, fields: dict[str, Any], *, creating: bool) -> None:
    if "title" in fields:
        title = fields["title"]
        if not isinstance(title, str | int | float) or not str(title).strip():
            raise TITLE_REQUIRED
        smart.title = str(title)
    if "code" in fields and isinstance(fields["code"], str | int):
        smart.code = str(fields["code"])
    for flag in TYPE_FLAGS:
        if flag in fields and flag not in READ_ONLY_FLAGS:
            value = orm_bool(fields[flag])
            if value is None:
                raise ApiError("BX_INVALID_VALUE", f'Field "{flag}" must be Y or N')
            if (
                not creating
                and flag == "isCategoriesEnabled"
                and not value
                and len(state.categories_of(smart.entity_type_id)) > 1
            ):
                raise ApiError("0", "You cannot disable pipelines if there more than one of them.")
            smart.flags[flag] = value
    if "linkedUserFields" in fields:
        for key, value in as_dict(fields["linkedUserFields"]).items():
            if key in LINKED_USER_FIELDS:
                smart.linked_user_fields[key] = str(value).lower() in ("true", "y", "1")
    _sync_client_relations(state, smart)
    if "relations" in fields:
        _apply_relations(state, smart, fields["relations"])


@method("crm.type.add", write=True)
def type_add(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/user-defined-object-types/crm-type-add.html"""
    require_crm_admin(ctx)
    state = state_of(ctx)
    fields = as_dict(req_array(params, "fields"))
    if "title" not in fields:
        raise TITLE_REQUIRED
    etid = _allocate_entity_type_id(state, fields)
    user = getattr(ctx.auth, "user_id", 1)
    flags = {f: False for f in TYPE_FLAGS}
    flags["isSetOpenPermissions"] = True
    smart = SmartType(0, etid, "", "", flags, user, user, ctx.now, ctx.now)
    _apply_fields(state, smart, fields, creating=True)
    smart.id = state.seq.next("type_id")
    state.types[smart.id] = smart
    state.table(etid)
    create_category(state, etid, DEFAULT_CATEGORY_NAME, 500, True)
    state.touch_schema()
    emit(ctx, "ONCRMTYPEADD", {"ID": smart.id})  # server-behaviour.md §8: FIELDS[ID] is the type id
    return {"type": type_json(state, smart)}


@method("crm.type.update", write=True)
def type_update(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/user-defined-object-types/crm-type-update.html"""
    require_crm_admin(ctx)
    state = state_of(ctx)
    type_id = req_int(params, "id")
    fields = as_dict(req_array(params, "fields"))
    smart = _find(state, type_id)
    fields = {k: v for k, v in fields.items() if k not in ("entityTypeId", "customSectionId", "id")}
    _apply_fields(state, smart, fields, creating=False)
    smart.updated_time = ctx.now
    smart.updated_by = getattr(ctx.auth, "user_id", 1)
    state.touch_schema()
    emit(ctx, "ONCRMTYPEUPDATE", {"ID": smart.id})
    return {"type": type_json(state, smart)}


@method("crm.type.get")
def type_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/user-defined-object-types/crm-type-get.html"""
    require_crm_admin(ctx)
    state = state_of(ctx)
    return {"type": type_json(state, _find(state, req_int(params, "id")))}


@method("crm.type.getbyentitytypeid")
def type_get_by_etid(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/user-defined-object-types/crm-type-get-by-entity-type-id.html"""
    require_crm_admin(ctx)
    state = state_of(ctx)
    smart = state.type_by_etid(req_int(params, "entityTypeId"))
    if smart is None:
        raise TYPE_NOT_FOUND
    return {"type": type_json(state, smart)}


_TYPE_KINDS = {
    "id": "int",
    "entityTypeId": "int",
    "createdBy": "int",
    "updatedBy": "int",
    "customSectionId": "int",
    "title": "str",
    "code": "str",
    "createdTime": "datetime",
    "updatedTime": "datetime",
    **{f: "bool" for f in TYPE_FLAGS},
}
_TYPE_UPPER = {k: "".join("_" + c if c.isupper() else c.upper() for c in k) for k in _TYPE_KINDS}
_TYPE_BY_UPPER = {v: k for k, v in _TYPE_UPPER.items()}


def _resolve_type_field(name: str) -> tuple[str, str, str] | None:
    key = name if name in _TYPE_KINDS else _TYPE_BY_UPPER.get(name)
    if key is None:
        return None
    return key, _TYPE_KINDS[key], _TYPE_UPPER[key]


@method("crm.type.list")
def type_list(ctx: CallContext, params: dict[str, Any]) -> ListPage:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/user-defined-object-types/crm-type-list.html"""
    require_crm_admin(ctx)
    state = state_of(ctx)
    flt = compile_filter(params.get("filter"), _resolve_type_field, state.tz, id_key="id")
    order = parse_order(params.get("order"), _resolve_type_field)
    rows = []
    for smart in sorted(state.types.values(), key=lambda t: t.id):
        raw = {k: getattr(smart, attr) if (attr := _attr(k)) else smart.flag(k) for k in _TYPE_KINDS}
        if flt.predicate(raw):
            rows.append((raw, smart))
    if order:
        by_id = {id(r): s for r, s in rows}
        ordered = sort_rows([r for r, _ in rows], order)
        rows = [(r, by_id[id(r)]) for r in ordered]
    start = ctx.extras.get("start", 0)
    offset = max(0, start // 50 * 50) if start > 0 else 0
    page = [type_json(state, s, full=False) for _, s in rows[offset : offset + 50]]
    if start == -1:
        return ListPage({"types": page})
    nxt = offset + len(page) if offset + len(page) < len(rows) else None
    return ListPage({"types": page}, total=len(rows), next=nxt)


def _attr(key: str) -> str | None:
    return {
        "id": "id",
        "entityTypeId": "entity_type_id",
        "createdBy": "created_by",
        "updatedBy": "updated_by",
        "customSectionId": "custom_section_id",
        "title": "title",
        "code": "code",
        "createdTime": "created_time",
        "updatedTime": "updated_time",
    }.get(key)


@method("crm.type.delete", write=True)
def type_delete(ctx: CallContext, params: dict[str, Any]) -> list[Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/user-defined-object-types/crm-type-delete.html"""
    require_crm_admin(ctx)
    state = state_of(ctx)
    smart = _find(state, req_int(params, "id"))
    etid = smart.entity_type_id
    if len(state.items.get(etid, ())) > 0:
        raise ApiError("BX_ERROR", "Cannot delete entity type because there are still items of this type.")
    for cat in state.categories_of(etid):
        del state.categories[cat.id]
    prefix = f"DYNAMIC_{etid}_STAGE_"
    for sid in [s.id for s in state.stages.values() if s.entity_id.startswith(prefix)]:
        del state.stages[sid]
    entity_id = f"CRM_{smart.id}"
    for fid in [f.id for f in state.user_fields.values() if f.entity_id == entity_id]:
        del state.user_fields[fid]
    for key in [k for k in state.relations if etid in k]:
        del state.relations[key]
    state.items.pop(etid, None)
    del state.types[smart.id]
    state.touch_schema()
    events = getattr(state, "events", None)
    if events is not None and hasattr(events, "forget_entity_type"):
        events.forget_entity_type(etid)  # the type-specific bindings go with the type
    emit(ctx, "ONCRMTYPEDELETE", {"ID": smart.id})
    return []


# titles as the docs example of crm.type.fields shows them (the portal's EN lang)
_FLAG_TITLES = {
    "isCategoriesEnabled": "Use custom funnels and sales tunnels in the smart process",
    "isStagesEnabled": "Use custom stages and Kanban in the smart process",
    "isBeginCloseDatesEnabled": "Fields 'Start Date' and 'End Date'",
    "isClientEnabled": "Field 'Client'",
    "isUseInUserfieldEnabled": "Use in user field",
    "isLinkWithProductsEnabled": "Link with catalog products",
    "isMycompanyEnabled": "Field 'Your Company Details'",
    "isDocumentsEnabled": "Document Printing",
    "isSourceEnabled": "Fields 'Source' and 'Additional Information about Source'",
    "isObserversEnabled": "Field 'Observers'",
    "isRecyclebinEnabled": "Use Recycle Bin",
    "isAutomationEnabled": "Use Automation rules and triggers in the smart process",
    "isBizProcEnabled": "Use business process designer in the smart process",
    "isSetOpenPermissions": "Make new funnels available to everyone",
}


@method("crm.type.fields")
def type_fields(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/user-defined-object-types/crm-type-fields.html

    The docs example is followed exactly: no `relations`/`linkedUserFields` entries (they are
    accepted by add/update all the same), and the two time fields are not flagged read-only.
    """
    require_crm_admin(ctx, "Access Denied")
    fields = {
        "id": field_desc("integer", "ID", "ID", read_only=True),
        "title": field_desc("string", "Title", "TITLE", required=True),
        "code": field_desc("string", "Symbolic Code", "CODE"),
        "createdBy": field_desc("user", "Created By", "CREATED_BY", read_only=True),
        "entityTypeId": field_desc(
            "integer", "Type Identifier", "ENTITY_TYPE_ID", required=True, immutable=True
        ),
        "customSectionId": field_desc("integer", "Digital Workspace", "CUSTOM_SECTION_ID", immutable=True),
    }
    for flag in TYPE_FLAGS:
        if flag not in READ_ONLY_FLAGS:
            fields[flag] = field_desc("boolean", _FLAG_TITLES.get(flag, flag), _TYPE_UPPER[flag])
    fields["createdTime"] = field_desc("datetime", "Creation Date", "CREATED_TIME")
    fields["updatedTime"] = field_desc("datetime", "Modification Date", "UPDATED_TIME")
    fields["updatedBy"] = field_desc("user", "Modified By", "UPDATED_BY", read_only=True)
    return {"fields": fields}
