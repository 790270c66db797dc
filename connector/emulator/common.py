"""Helpers shared by the method modules: type resolution, field descriptions, hooks."""

from __future__ import annotations

from typing import Any

from connector.constants import SYSTEM_ENTITY_TYPES

from .errors import ApiError
from .registry import CallContext
from .state import PortalState, SmartType

SPA_NOT_FOUND = "Smart Process Automation was not found"


def state_of(ctx: CallContext) -> PortalState:
    """The portal state behind a call."""
    return ctx.portal


def is_possible_dynamic(entity_type_id: int) -> bool:
    """CCrmOwnerType::isPossibleDynamicTypeId: 128..191, or even and >= 1030."""
    return 128 <= entity_type_id < 192 or (entity_type_id >= 1030 and entity_type_id % 2 == 0)


def require_type(state: PortalState, entity_type_id: int) -> SmartType:
    """The smart process with this entityTypeId, or the server's error for it."""
    from .system import is_system, system_type

    if is_system(entity_type_id):
        return system_type(state, entity_type_id)
    if not is_possible_dynamic(entity_type_id):
        raise ApiError(
            "ENTITY_TYPE_NOT_SUPPORTED", f"Entity type {_type_name(entity_type_id)} is not supported"
        )
    smart = state.type_by_etid(entity_type_id)
    if smart is None:
        raise ApiError("NOT_FOUND", SPA_NOT_FOUND)
    return smart


def require_crm_admin(ctx: CallContext, message: str = "Access denied") -> None:
    """crm.type.* and funnel writes need a CRM administrator (400 ACCESS_DENIED otherwise).

    Webhooks and the local app act as user 1, an administrator; a non-admin caller exists only
    in-process (`Auth(..., is_admin=False)`), which is how tests reach this refusal.
    """
    if not getattr(ctx.auth, "is_admin", True):
        raise ApiError("ACCESS_DENIED", message)


def _type_name(entity_type_id: int) -> str:
    for name, etid in SYSTEM_ENTITY_TYPES.items():
        if etid == entity_type_id:
            return name.upper()
    return str(entity_type_id)


def field_desc(
    kind: str,
    title: str,
    upper: str,
    *,
    required: bool = False,
    read_only: bool = False,
    immutable: bool = False,
    multiple: bool = False,
    dynamic: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A `crm_rest_field_description`."""
    return {
        "type": kind,
        "isRequired": required,
        "isReadOnly": read_only,
        "isImmutable": immutable,
        "isMultiple": multiple,
        "isDynamic": dynamic,
        "title": title,
        "upperName": upper,
        **extra,
    }


def emit(ctx: CallContext, event_name: str, fields: dict[str, Any]) -> None:
    """Tell the events hook about a successful change (no-op when none is installed)."""
    events = getattr(state_of(ctx), "events", None)
    if events is not None and hasattr(events, "emit"):
        connector = ctx.extras.get("auth_connector")
        events.emit(
            event_name, fields, ctx.auth, auth_connector=str(connector) if connector else None, now=ctx.now
        )
