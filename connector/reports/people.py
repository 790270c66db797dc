"""Names for employee fields and the portal's time zone, asked from the portal at report time.

The store keeps employees as user ids. When an export or report runs with a portal it can reach,
`portal_people` reads the names of just the users that occur in the process (`user.get`, 50 ids a
call) and takes the portal's UTC offset from the `time.date_start` of that reply (server-behaviour.md:
`date_start` is `date('c')` in the server time zone). Nothing is written to the store: names are
always current, and a read-only store still exports. Without a portal, ids show as `#<id>` and
times in UTC (or in `--tz`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from connector.reports.columns import describe
from connector.reports.formats import user_ids
from connector.reports.readonly import open_store, require_process
from connector.store.reader import StoreReader
from connector.times import local_moment, offset_text

if TYPE_CHECKING:
    from connector.rest import Client


PAGE = 50  # user.get returns at most 50 users a call


class PortalPeople(BaseModel):
    """What the portal told: user id -> display name, and its UTC offset (`+03:00`) if known."""

    users: dict[int, str] = {}
    tz: str | None = None


def employee_ids(db_path: str | Path, type_code: str) -> set[int]:
    """The user ids that occur in the process's employee columns (responsible, employee fields)."""
    with open_store(db_path) as store:
        require_process(store, type_code)
        return _employee_ids(store, type_code)


def _employee_ids(store: StoreReader, tbl: str) -> set[int]:
    columns = [c for c in describe(store, tbl, store.columns(tbl)) if c.kind == "employee"]
    found: set[int] = set()
    for column in columns:
        for value in store.distinct_values(tbl, column.code):
            found.update(user_ids(value))
    return found


def display_name(user: dict[str, Any]) -> str:
    """`Name Last-name` (else the e-mail, else `#id`)."""
    parts = [str(user.get(k) or "").strip() for k in ("NAME", "LAST_NAME")]
    name = " ".join(p for p in parts if p)
    return name or str(user.get("EMAIL") or "").strip() or f"#{user.get('ID')}"


def portal_people(client: Client, ids: Iterable[int]) -> PortalPeople:
    """Ask the portal (`user.get`, or `user.current` when no ids) for names and its time zone."""
    wanted = sorted(set(ids))
    users: dict[int, str] = {}
    offset: str | None = None
    batches = [wanted[i:i + PAGE] for i in range(0, len(wanted), PAGE)] or [[]]
    for batch in batches:
        if batch:
            reply = client.call("user.get", {"FILTER": {"ID": batch}})
            for user in reply.result or []:
                if isinstance(user, dict) and str(user.get("ID", "")).isdigit():
                    users[int(user["ID"])] = display_name(user)
        else:
            reply = client.call("user.current", {})
        offset = offset or _offset(reply.time.get("date_start"))
    return PortalPeople(users=users, tz=offset)


def _offset(date_start: Any) -> str | None:
    """`+03:00` from `2026-12-02T12:25:45+03:00`; None when the reply had no usable time."""
    if not isinstance(date_start, str):
        return None
    try:
        return offset_text(local_moment(date_start))
    except ValueError:  # not a datetime, or one without an offset
        return None
