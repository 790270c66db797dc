"""Emulator `crm.item.details.configuration.*`: card layouts per type, funnel, scope and user.

https://apidocs.bitrix24.com/api-reference/crm/universal/item-details-configuration/index.html
Layouts live in `portal.details_config` (plain JSON data, so the state file keeps them), keyed
by entity type, category, scope (`P` personal / `C` common) and user. All errors use the
code `""`, as the documented examples do.
"""

from __future__ import annotations

from typing import Any

from connector.constants import SYSTEM_ENTITY_TYPES

from .errors import ApiError
from .params import is_numeric, php_int
from .php import as_list, is_list_like
from .registry import CallContext, method

SCOPES = ("P", "C")
# system types whose cards have a layout besides smart processes (lead, deal, contact, company, quote,
# smart invoice)
SYSTEM_CARD_TYPES = {*SYSTEM_ENTITY_TYPES.values()}


def _error(text: str) -> ApiError:
    return ApiError("", text)


def _config_store(state: Any) -> dict[str, Any]:
    store = getattr(state, "details_config", None)
    if store is None:
        store = {}
        state.details_config = store
    return store  # type: ignore[no-any-return]


def _entity_type_id(state: Any, params: dict[str, Any]) -> int:
    raw = params.get("entityTypeId")
    if raw is None or raw == "" or not is_numeric(raw):
        raise _error("Parameter 'entityTypeId' is not defined")
    etid = php_int(raw)
    finder = getattr(state, "type_by_etid", None)
    known = etid in SYSTEM_CARD_TYPES or (finder is not None and finder(etid) is not None)
    if not known:
        raise _error(f"The entity type '{etid}' is not supported in current context.")
    return etid


def _category_id(state: Any, etid: int, params: dict[str, Any]) -> int | None:
    """extras.categoryId (SPA) or extras.dealCategoryId (deal); omitted = the default funnel."""
    extras = params.get("extras")
    extras = extras if isinstance(extras, dict) else {}
    raw = extras.get("categoryId", extras.get("dealCategoryId"))
    if raw not in (None, ""):
        if not is_numeric(raw):
            raise _error(f"Parameter 'extras[categoryId]' must be an integer, got '{raw}'.")
        return php_int(raw)
    finder = getattr(state, "default_category", None)
    default = finder(etid) if finder is not None and etid not in SYSTEM_CARD_TYPES else None
    return int(default.id) if default is not None else None


def _scope_and_user(ctx: CallContext, params: dict[str, Any]) -> tuple[str, int | None]:
    scope = str(params.get("scope") or "P").upper()
    if scope not in SCOPES:
        raise _error(f"Scope '{params.get('scope')}' is not defined. Allowed: P (personal), C (common).")
    caller = getattr(ctx.auth, "user_id", None)
    caller = int(caller) if is_numeric(caller) else 1
    admin = bool(getattr(ctx.auth, "is_admin", True))
    if scope == "C":
        if not admin:
            raise _error("Access denied.")
        return scope, None
    raw = params.get("userId")
    user = php_int(raw) if raw not in (None, "") and is_numeric(raw) else caller
    if user != caller and not admin:
        raise _error("Access denied.")
    return scope, user


def _key(etid: int, category: int | None, scope: str, user: int | None) -> str:
    return f"{etid}|{'' if category is None else category}|{scope}|{'' if user is None else user}"


def _target(ctx: CallContext, params: dict[str, Any]) -> str:
    state = ctx.portal
    etid = _entity_type_id(state, params)
    category = _category_id(state, etid, params)
    scope, user = _scope_and_user(ctx, params)
    return _key(etid, category, scope, user)


def _text(value: Any) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value)


def normalize_sections(data: Any) -> list[dict[str, Any]]:
    """Validate `data` like the server and return it in stored form (optionFlags as strings)."""
    if data is None or isinstance(data, str | int | float | bool):
        raise _error("Parameter 'data' must be array.")
    if isinstance(data, dict) and data and not is_list_like(data):
        raise _error("The data must be indexed array.")
    sections = as_list(data) if data else []
    if not sections:
        raise _error("There are no data to write.")
    out: list[dict[str, Any]] = []
    for i, section in enumerate(sections):
        if not isinstance(section, dict):
            raise _error(f"Section at index {i} have type {_text(section)}. The expected type is 'section'.")
        kind = _text(section.get("type"))
        if kind != "section":
            raise _error(f"Section at index {i} have type {kind}. The expected type is 'section'.")
        if not _text(section.get("name")):
            raise _error(f"Section at index {i} does not have name.")
        if not _text(section.get("title")):
            raise _error(f"Section at index {i} does not have title.")
        raw_elements = section.get("elements")
        elements = as_list(raw_elements) if raw_elements not in (None, "") else []
        stored: list[dict[str, Any]] = []
        for j, element in enumerate(elements):
            name = _text(element.get("name")) if isinstance(element, dict) else ""
            if not name:
                raise _error(f"Element at index {j} in section at index {i} does not have name.")
            flags = element.get("optionFlags", "0")
            row: dict[str, Any] = {"name": name, "optionFlags": "1" if str(flags).strip() == "1" else "0"}
            options = element.get("options")
            if isinstance(options, dict) and options:
                row["options"] = {str(k): _option_value(v) for k, v in options.items()}
            stored.append(row)
        out.append({"name": _text(section["name"]), "title": _text(section["title"]), "type": "section",
                    "elements": stored})
    return out


def _option_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@method("crm.item.details.configuration.get")
def details_get(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]] | None:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/item-details-configuration/crm-item-details-configuration-get.html"""
    key = _target(ctx, params)
    config = _config_store(ctx.portal).get(key)
    return [dict(s, elements=[dict(e) for e in s["elements"]]) for s in config] if config else None


@method("crm.item.details.configuration.set", write=True)
def details_set(ctx: CallContext, params: dict[str, Any]) -> bool:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/item-details-configuration/crm-item-details-configuration-set.html"""
    key = _target(ctx, params)
    sections = normalize_sections(params.get("data"))
    _config_store(ctx.portal)[key] = sections
    return True


@method("crm.item.details.configuration.reset", write=True)
def details_reset(ctx: CallContext, params: dict[str, Any]) -> bool:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/item-details-configuration/crm-item-details-configuration-reset.html"""
    key = _target(ctx, params)
    _config_store(ctx.portal).pop(key, None)
    return True


@method("crm.item.details.configuration.forceCommonScopeForAll", write=True)
def details_force_common(ctx: CallContext, params: dict[str, Any]) -> bool:
    """https://apidocs.bitrix24.com/api-reference/crm/universal/item-details-configuration/crm-item-details-configuration-forceCommonScopeForAll.html"""
    state = ctx.portal
    etid = _entity_type_id(state, params)
    category = _category_id(state, etid, params)
    if not bool(getattr(ctx.auth, "is_admin", True)):
        raise _error("Access denied.")
    prefix = _key(etid, category, "P", None)[: -len("|")]  # "etid|cat|P"
    store = _config_store(state)
    for key in [k for k in store if k.rsplit("|", 1)[0] == prefix]:
        del store[key]
    return True
