"""The method table: every REST method the emulator serves is a handler registered here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth import Auth
    from .state import PortalState

Handler = Callable[["CallContext", dict[str, Any]], Any]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its handler, whether it writes, and whether it is a list method."""

    name: str
    handler: Handler
    write: bool = False
    scope: str = "crm"
    app_only: bool = False  # event.* methods work only with OAuth application auth


@dataclass
class ListPage:
    """What a list handler returns: the `result` payload plus top-level `total` / `next`."""

    result: Any
    total: int | None = None
    next: int | None = None


@dataclass
class CallContext:
    """Everything a handler may use: the portal state, who is calling, and the time."""

    portal: PortalState
    auth: Auth
    now: float
    extras: dict[str, Any] = field(default_factory=dict)


METHODS: dict[str, MethodSpec] = {}


def method(
    name: str, *, write: bool = False, scope: str = "crm", app_only: bool = False
) -> Callable[[Handler], Handler]:
    """Register `handler` as REST method `name` (lower-case, as the server looks it up)."""

    def decorate(handler: Handler) -> Handler:
        METHODS[name.lower()] = MethodSpec(name.lower(), handler, write, scope, app_only)
        return handler

    return decorate
