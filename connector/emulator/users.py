"""user.get and user.current: the portal's employees, so exports can show names for employee fields.

Source: neither reference note (bitrix24-rest.md, server-behaviour.md) nor a doc fixture in
shared/fixtures/bitrix24-docs covers the `user.*` methods. What is emulated here is the documented
shape of the reply that b24sync reads: a list of user objects with `ID` (a string), `ACTIVE`, `NAME`,
`LAST_NAME`, `SECOND_NAME`, `EMAIL`, `TIME_ZONE`; pages of 50 with `total` and `next`, as every
list method (bitrix24-rest.md, "Paging"). Where the notes are silent the stricter choice is made:
a filter key the emulator does not know is an error (a real portal ignores many of them), and an
`ID` filter that is not a number or a list of numbers is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .params import as_dict, is_numeric
from .registry import CallContext, ListPage, method

PAGE = 50  # bitrix24-rest.md, "Paging": list methods return 50 rows a page
FILTER_KEYS = ("ID", "ACTIVE")


@dataclass
class User:
    """An employee of the portal."""

    id: int
    name: str
    last_name: str = ""
    second_name: str = ""
    email: str = ""
    active: bool = True
    time_zone: str = ""

    def json(self) -> dict[str, Any]:
        return {
            "ID": str(self.id), "ACTIVE": self.active, "NAME": self.name, "LAST_NAME": self.last_name,
            "SECOND_NAME": self.second_name, "EMAIL": self.email, "TIME_ZONE": self.time_zone,
        }


def users_of(state: Any) -> dict[int, User]:
    """The portal's users (created on first use: user 1, the administrator whose webhook calls)."""
    users = getattr(state, "users", None)
    if users is None:
        users = {1: User(1, "Администратор", email="admin@example.invalid")}
        state.users = users
    return users  # type: ignore[no-any-return]


def add_user(state: Any, user_id: int, name: str, last_name: str = "", **extra: Any) -> User:
    """Add (or replace) an employee; for tests and seeding."""
    user = User(user_id, name, last_name, **extra)
    users_of(state)[user_id] = user
    return user


def _filter(params: dict[str, Any]) -> dict[str, Any]:
    raw = params.get("FILTER", params.get("filter"))
    flt = {str(k).upper(): v for k, v in as_dict(raw).items()} if raw is not None else {}
    for key in FILTER_KEYS:  # the old form: filter keys at the top level (user.get?ID=1)
        if key in params and key not in flt:
            flt[key] = params[key]
    unknown = [k for k in flt if k not in FILTER_KEYS]
    if unknown:
        raise ApiError("INVALID_FILTER", f"emulator: unsupported user filter {', '.join(unknown)}; "
                       f"supported: {', '.join(FILTER_KEYS)}")
    return flt


def _ids(value: Any) -> set[int]:
    values = value if isinstance(value, list) else list(as_dict(value).values()) if isinstance(value, dict) \
        else [value]
    if not values or not all(is_numeric(v) for v in values):
        raise ApiError("INVALID_FILTER", f"ID filter must be a user id or a list of ids, got {value!r}")
    return {int(v) for v in values}


@method("user.get", scope="user")
def user_get(ctx: CallContext, params: dict[str, Any]) -> ListPage:
    """Users matching the filter, by id, 50 a page."""
    flt = _filter(params)
    rows = sorted(users_of(ctx.portal).values(), key=lambda u: u.id)
    if "ID" in flt:
        wanted = _ids(flt["ID"])
        rows = [u for u in rows if u.id in wanted]
    if "ACTIVE" in flt:
        active = flt["ACTIVE"] in (True, "Y", "y", "true", "1", 1)
        rows = [u for u in rows if u.active == active]
    start = int(ctx.extras.get("start") or 0)
    page = rows[start:start + PAGE]
    more = start + PAGE < len(rows)
    return ListPage([u.json() for u in page], total=len(rows), next=start + PAGE if more else None)


@method("user.current", scope="user")
def user_current(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    """The user whose webhook or token makes the call."""
    user_id = int(getattr(ctx.auth, "user_id", 1) or 1)
    user = users_of(ctx.portal).get(user_id)
    if user is None:
        raise ApiError("NOT_FOUND", f"user {user_id} not found", status=404)
    return user.json()
