"""userfieldconfig.* for smart processes: `CRM_{type id}` owners, `UF_CRM_{id}_` names, enum options."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .common import emit, state_of
from .convert import orm_bool, yn
from .errors import ApiError
from .filters import compile_filter, parse_order, sort_rows
from .params import as_dict, is_numeric, php_int
from .registry import CallContext, ListPage, method
from .state import EnumOption, PortalState, UserField

LANGUAGES = ("en", "ru")
LABEL_KEYS = ("editFormLabel", "listColumnLabel", "listFilterLabel", "errorMessage", "helpMessage")
ADD_KEYS = (
    "editFormLabel",
    "helpMessage",
    "multiple",
    "userTypeId",
    "fieldName",
    "enum",
    "entityId",
    "xmlId",
    "sort",
    "mandatory",
    "showFilter",
    "isSearchable",
    "settings",
    "editInList",
)
UPDATE_KEYS = (
    "xmlId",
    "sort",
    "mandatory",
    "showFilter",
    "isSearchable",
    "editFormLabel",
    "helpMessage",
    "settings",
    "enum",
    "editInList",
)
USER_TYPES = {
    "crm": "CRM item link",
    "crm_status": "CRM directory",
    "money": "Money",
    "employee": "Employee",
    "string": "String",
    "integer": "Integer",
    "double": "Number",
    "datetime": "Date/Time",
    "date": "Date",
    "boolean": "Yes/No",
    "address": "Address",
    "url": "Link",
    "file": "File",
    "enumeration": "List",
    "iblock_section": "Link to information block sections",
    "iblock_element": "Link to information block elements",
}
RESTRICTED_TYPES = (
    "video",
    "vote",
    "url_preview",
    "string_formatted",
    "disk_file",
    "disk_version",
    "snils",
    "resourcebooking",
    "mail_message",
    "hlblock",
)
DEFAULT_SETTINGS: dict[str, dict[str, Any]] = {
    "string": {"SIZE": 20, "ROWS": 1, "REGEXP": "", "MIN_LENGTH": 0, "MAX_LENGTH": 0, "DEFAULT_VALUE": ""},
    "integer": {"SIZE": 20, "MIN_VALUE": 0, "MAX_VALUE": 0, "DEFAULT_VALUE": None},
    "double": {"PRECISION": 2, "SIZE": 20, "MIN_VALUE": 0, "MAX_VALUE": 0, "DEFAULT_VALUE": None},
    "boolean": {"DEFAULT_VALUE": 0, "DISPLAY": "CHECKBOX", "LABEL": ["", ""], "LABEL_CHECKBOX": ""},
    "enumeration": {"DISPLAY": "LIST", "LIST_HEIGHT": 1, "CAPTION_NO_VALUE": "", "SHOW_NO_VALUE": "Y"},
    "datetime": {"DEFAULT_VALUE": {"TYPE": "NONE", "VALUE": ""}, "USE_SECOND": "Y", "USE_TIMEZONE": "N"},
    "date": {"DEFAULT_VALUE": {"TYPE": "NONE", "VALUE": ""}},
}
_NAME_RX = re.compile(r"^[0-9A-Z_]+$")


def _deny(message: str) -> ApiError:
    return ApiError("", message)


def _check_module(params: dict[str, Any]) -> None:
    module = params.get("moduleId")
    if module is None:
        raise ApiError("100", "Could not find value for parameter {moduleId}")
    if module != "crm":
        raise _deny(f"The current method required more scopes. ({module})")


def _labels(value: Any) -> dict[str, str | None]:
    if isinstance(value, dict):
        return {
            lang: (None if value.get(lang) is None else str(value.get(lang)))
            for lang in dict.fromkeys([*LANGUAGES, *[str(k) for k in value]])
        }
    if value is None or value == "":
        return {lang: None for lang in LANGUAGES}
    return {lang: str(value) for lang in LANGUAGES}


def field_json(uf: UserField, *, with_enum: bool = True) -> dict[str, Any]:
    """A user field as userfieldconfig.get returns it (ids and sort as strings)."""
    row: dict[str, Any] = {
        "id": str(uf.id),
        "entityId": uf.entity_id,
        "fieldName": uf.field_name,
        "userTypeId": uf.user_type_id,
        "xmlId": uf.xml_id,
        "sort": str(uf.sort),
        "multiple": yn(uf.multiple),
        "mandatory": yn(uf.mandatory),
        "showFilter": uf.show_filter,
        "showInList": yn(uf.show_in_list),
        "editInList": yn(uf.edit_in_list),
        "isSearchable": yn(uf.is_searchable),
        "settings": uf.settings,
        "languageId": {lang: lang for lang in uf.labels.get("editFormLabel", {}) or LANGUAGES},
    }
    for key in LABEL_KEYS:
        row[key] = uf.labels.get(key)
    if with_enum and uf.user_type_id == "enumeration":
        row["enum"] = [
            {
                "id": str(o.id),
                "userFieldId": str(uf.id),
                "value": o.value,
                "def": yn(o.defaults),
                "sort": str(o.sort),
                "xmlId": o.xml_id,
            }
            for o in sorted(uf.enum, key=lambda o: (o.sort, o.id))
        ]
    return row


def _enum_options(state: PortalState, uf: UserField, raw: Any) -> list[EnumOption]:
    """Apply enum rows: new ones (no id), updates (id), deletions (`del: Y`)."""
    current = {o.id: o for o in uf.enum}
    for item in as_dict(raw).values():
        if not isinstance(item, dict):
            raise _deny("Fail to save enumeration field values")
        oid = php_int(item["id"]) if is_numeric(item.get("id")) else None
        if oid is not None and oid in current and str(item.get("del", "N")).upper() == "Y":
            del current[oid]
            continue
        value = item.get("value", current[oid].value if oid in current else None)
        default = item.get("def", "N")
        if value is None or not str(value).strip() or str(default).upper() not in ("Y", "N"):
            raise _deny("Fail to save enumeration field values")
        sort = php_int(item["sort"]) if is_numeric(item.get("sort")) else 500
        if oid is not None and oid in current:
            opt = current[oid]
            opt.value, opt.defaults = str(value), str(default).upper() == "Y"
            if "sort" in item:
                opt.sort = sort
            if item.get("xmlId"):
                opt.xml_id = str(item["xmlId"])
        else:
            new_id = state.seq.next("enum_id")
            xml_id = str(item.get("xmlId") or hashlib.md5(f"{uf.id}:{new_id}:{value}".encode()).hexdigest())
            current[new_id] = EnumOption(new_id, str(value), str(default).upper() == "Y", sort, xml_id)
    return list(current.values())


def _owner_type_ok(state: PortalState, entity_id: str) -> bool:
    m = re.fullmatch(r"CRM_(\d+)", entity_id)
    return m is not None and int(m.group(1)) in state.types


@method("userfieldconfig.add", write=True, scope="userfieldconfig")
def uf_add(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/userfieldconfig/userfieldconfig-add.html"""
    state = state_of(ctx)
    _check_module(params)
    raw = params.get("field")
    if not isinstance(raw, dict):
        raise ApiError("100", "Could not find value for parameter {field}")
    field = {k: v for k, v in raw.items() if k in ADD_KEYS}  # UPPER_CASE keys are dropped
    entity_id = str(field.get("entityId") or "")
    if not _owner_type_ok(state, entity_id):
        raise _deny("You cannot create custom fields")
    name = field.get("fieldName")
    if not isinstance(name, str) or not name:
        raise _deny("The 'FIELD_NAME' field is not found.")
    user_type = field.get("userTypeId")
    if not isinstance(user_type, str) or not user_type:
        raise _deny("The 'USER_TYPE_ID' field is not found.")
    if not name.startswith(f"UF_{entity_id}_"):
        raise _deny("You cannot create custom fields")
    if not 4 <= len(name) <= 50 or not _NAME_RX.match(name):
        raise ApiError("0", f"Invalid field name {name!r}: 4-50 characters of A-Z, 0-9 and _")
    if any(f.entity_id == entity_id and f.field_name == name for f in state.user_fields.values()):
        raise ApiError("0", f"Field {name} already exists")
    if user_type in RESTRICTED_TYPES or (user_type not in USER_TYPES and not user_type.startswith("rest_")):
        raise _deny("Fail to create new user field")
    settings = {**DEFAULT_SETTINGS.get(user_type, {}), **as_dict(field.get("settings"))}
    labels = {key: _labels(field.get(key)) for key in LABEL_KEYS}
    uf = UserField(
        id=0,
        entity_id=entity_id,
        field_name=name,
        user_type_id=user_type,
        xml_id=str(field["xmlId"]) if field.get("xmlId") not in (None, "") else None,
        sort=php_int(field["sort"]) if is_numeric(field.get("sort")) else 100,
        multiple=bool(orm_bool(field.get("multiple", "N"))),
        mandatory=bool(orm_bool(field.get("mandatory", "N"))),
        show_filter=str(field.get("showFilter", "N")),
        show_in_list=True,
        edit_in_list=orm_bool(field.get("editInList", "Y")) is not False,
        is_searchable=bool(orm_bool(field.get("isSearchable", "N"))),
        settings=settings,
        labels=labels,
    )
    uf.id = state.seq.next("user_field_id")
    if user_type == "enumeration":
        uf.enum = _enum_options(state, uf, field.get("enum"))
    state.user_fields[uf.id] = uf
    state.touch_schema()
    emit(ctx, "ONCRMTYPEUSERFIELDADD", {"ID": uf.id, "ENTITY_ID": entity_id, "FIELD_NAME": name})
    return {"field": field_json(uf)}


@method("userfieldconfig.update", write=True, scope="userfieldconfig")
def uf_update(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/userfieldconfig/userfieldconfig-update.html"""
    state = state_of(ctx)
    _check_module(params)
    uid = params.get("id")
    uf = state.user_fields.get(php_int(uid)) if is_numeric(uid) else None
    raw = params.get("field")
    if uf is None or not isinstance(raw, dict):
        raise _deny("You cannot change the settings of the user field")
    field = {k: v for k, v in raw.items() if k in UPDATE_KEYS}
    if "xmlId" in field:
        uf.xml_id = None if field["xmlId"] in (None, "") else str(field["xmlId"])
    if is_numeric(field.get("sort")):
        uf.sort = php_int(field["sort"])
    for key, attr in (
        ("mandatory", "mandatory"),
        ("isSearchable", "is_searchable"),
        ("editInList", "edit_in_list"),
    ):
        if key in field and orm_bool(field[key]) is not None:
            setattr(uf, attr, bool(orm_bool(field[key])))
    if "showFilter" in field:
        uf.show_filter = str(field["showFilter"])
    if "settings" in field:
        uf.settings = {**uf.settings, **as_dict(field["settings"])}
    for key in ("editFormLabel", "helpMessage"):
        if key in field:
            uf.labels[key] = _labels(field[key])
    if "enum" in field and raw.get("userTypeId") == "enumeration" and uf.user_type_id == "enumeration":
        uf.enum = _enum_options(state, uf, field["enum"])
        emit(
            ctx,
            "ONCRMTYPEUSERFIELDSETENUMVALUES",
            {"ID": uf.id, "ENTITY_ID": uf.entity_id, "FIELD_NAME": uf.field_name},
        )
    state.touch_schema()
    emit(
        ctx, "ONCRMTYPEUSERFIELDUPDATE", {"ID": uf.id, "ENTITY_ID": uf.entity_id, "FIELD_NAME": uf.field_name}
    )
    return {"field": field_json(uf)}


@method("userfieldconfig.get", scope="userfieldconfig")
def uf_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/userfieldconfig/userfieldconfig-get.html"""
    state = state_of(ctx)
    _check_module(params)
    uid = params.get("id")
    uf = state.user_fields.get(php_int(uid)) if is_numeric(uid) else None
    if uf is None:
        raise _deny("You do not have permission to view user field settings")
    return {"field": field_json(uf)}


_UF_KINDS = {
    "id": "int",
    "entityId": "str",
    "fieldName": "str",
    "userTypeId": "str",
    "xmlId": "str",
    "sort": "int",
    "multiple": "bool",
    "mandatory": "bool",
    "showFilter": "str",
    "showInList": "bool",
    "editInList": "bool",
    "isSearchable": "bool",
}


def _resolve(name: str) -> tuple[str, str, str] | None:
    for key in _UF_KINDS:
        if name == key or name.upper() == "".join("_" + c if c.isupper() else c.upper() for c in key):
            return key, _UF_KINDS[key], key
    return None


def _raw(uf: UserField) -> dict[str, Any]:
    return {
        "id": uf.id,
        "entityId": uf.entity_id,
        "fieldName": uf.field_name,
        "userTypeId": uf.user_type_id,
        "xmlId": uf.xml_id,
        "sort": uf.sort,
        "multiple": uf.multiple,
        "mandatory": uf.mandatory,
        "showFilter": uf.show_filter,
        "showInList": uf.show_in_list,
        "editInList": uf.edit_in_list,
        "isSearchable": uf.is_searchable,
        "_uf": uf,
    }


@method("userfieldconfig.list", scope="userfieldconfig")
def uf_list(ctx: CallContext, params: dict[str, Any]) -> ListPage:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/userfieldconfig/userfieldconfig-list.html"""
    state = state_of(ctx)
    _check_module(params)
    flt = compile_filter(params.get("filter"), _resolve, state.tz, id_key="id")
    order = parse_order(params.get("order") or {"sort": "ASC", "id": "ASC"}, _resolve)
    rows = sort_rows([r for r in map(_raw, state.user_fields.values()) if flt.predicate(r)], order)
    language = as_dict(params.get("select")).get("language")
    start = ctx.extras.get("start", 0)
    offset = max(0, start // 50 * 50) if start > 0 else 0
    page = [
        _list_row(r["_uf"], language if isinstance(language, str) else None)
        for r in rows[offset : offset + 50]
    ]
    if start == -1:
        return ListPage({"fields": page})
    nxt = offset + len(page) if offset + len(page) < len(rows) else None
    return ListPage({"fields": page}, total=len(rows), next=nxt)


def _list_row(uf: UserField, language: str | None) -> dict[str, Any]:
    """A list row: no enum, and label maps only for a `select.language` (bitrix24-rest.md §10.2).

    Without a language every label map is null (only `get` returns the full maps; bitrix24-rest.md
    §10.2 "Label maps may be null in list rows"). With one, a label is `{lang: text}` when it has text
    in that language and null otherwise, as the userfieldconfig.list doc example shows
    (`"editFormLabel": {"de": "..."}`, `"listColumnLabel": null`). `languageId` follows the labels
    (the references are silent on it without a language: null, like the maps it describes).
    """
    row = field_json(uf, with_enum=False)
    row["languageId"] = {language: language} if language else None
    for key in LABEL_KEYS:
        text = (uf.labels.get(key) or {}).get(language) if language else None
        row[key] = {language: text} if language and text is not None else None
    return row


@method("userfieldconfig.delete", write=True, scope="userfieldconfig")
def uf_delete(ctx: CallContext, params: dict[str, Any]) -> None:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/userfieldconfig/userfieldconfig-delete.html"""
    state = state_of(ctx)
    _check_module(params)
    uid = params.get("id")
    uf = state.user_fields.get(php_int(uid)) if is_numeric(uid) else None
    if uf is None:
        raise _deny("You cannot delete the user field")
    del state.user_fields[uf.id]
    state.touch_schema()
    emit(
        ctx, "ONCRMTYPEUSERFIELDDELETE", {"ID": uf.id, "ENTITY_ID": uf.entity_id, "FIELD_NAME": uf.field_name}
    )
    return None


@method("userfieldconfig.gettypes", scope="userfieldconfig")
def uf_get_types(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/userfieldconfig/userfieldconfig-get-types.html"""
    _check_module(params)
    return {"types": {k: {"userTypeId": k, "description": v} for k, v in USER_TYPES.items()}}
