"""The portal's offline event queue, as an OAuth app sees it: bind the item-delete event, reserve, clear.

Offline events are kept by the portal until the app reads them; `clear=0` reserves a batch under a
`process_id` so a reader killed before `event.offline.clear` reads the same records again.
https://apidocs.bitrix24.com/api-reference/events/offline-events/index.html
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from connector.rest import Client
from connector.rest.errors import B24Error

ITEM_DELETE_EVENT = "ONCRMDYNAMICITEMDELETE"
OFFLINE_LIMIT = 1000
ALREADY_BOUND = "ERROR_HANDLER_ALREADY_EXIST"
BIND_REFUSED = ("ACCESS_DENIED", "insufficient_scope", "WRONG_AUTH_TYPE")


class DeletedItem(BaseModel):
    """An item deleted on the portal, from one `ONCRMDYNAMICITEMDELETE` record."""

    entity_type_id: int
    id: int


class OfflineReservation(BaseModel):
    """Records reserved from the offline queue (`clear=0`): how many, and the item deletions among them."""

    process_id: str | None = None
    records: int = 0
    deleted: list[DeletedItem] = Field(default_factory=list)


def bind_item_delete_offline(client: Client) -> bool:
    """Bind the smart-process item-delete event to the offline queue; False when the portal refuses the app.

    Already bound counts as bound. Any other error is raised.
    https://apidocs.bitrix24.com/api-reference/events/event-bind.html
    """
    try:
        client.call("event.bind", {"event": ITEM_DELETE_EVENT, "event_type": "offline"})
    except B24Error as exc:
        code = str(exc.code or "")
        if code == ALREADY_BOUND:
            return True
        if code in BIND_REFUSED:
            return False
        raise
    return True


def reserve_offline_events(
    client: Client, process_id: str | None = None, limit: int = OFFLINE_LIMIT
) -> OfflineReservation:
    """Reserve up to `limit` queue records (`clear=0`); with `process_id`, re-read an earlier reservation.

    https://apidocs.bitrix24.com/api-reference/events/offline-events/event-offline-get.html
    """
    params: dict[str, Any] = {"clear": 0, "limit": limit}
    if process_id:
        params["process_id"] = process_id
    result = client.call("event.offline.get", params).result or {}
    events = list(result.get("events") or [])
    got = result.get("process_id") or process_id
    return OfflineReservation(
        process_id=str(got) if got else None, records=len(events), deleted=deleted_items(events)
    )


def clear_offline_events(client: Client, process_id: str) -> None:
    """Remove the records of a reservation from the queue.

    https://apidocs.bitrix24.com/api-reference/events/offline-events/event-offline-clear.html
    """
    client.call("event.offline.clear", {"process_id": process_id})


def deleted_items(events: list[Any]) -> list[DeletedItem]:
    """Item deletions in offline queue records (other events and malformed records are skipped)."""
    out: list[DeletedItem] = []
    for ev in events:
        if not isinstance(ev, dict):
            continue
        name = str(ev.get("EVENT_NAME", "")).upper()
        if not name.startswith(ITEM_DELETE_EVENT):
            continue
        data = ev.get("EVENT_DATA") or {}
        fields = (data.get("FIELDS") if isinstance(data, dict) else None) or {}
        suffix = name[len(ITEM_DELETE_EVENT) + 1 :]
        raw_etid = fields.get("ENTITY_TYPE_ID") or (suffix if suffix.isdecimal() else None)
        raw_id = fields.get("ID")
        if raw_etid is None or raw_id is None or not str(raw_etid).isdecimal() or not str(raw_id).isdecimal():
            continue
        out.append(DeletedItem(entity_type_id=int(raw_etid), id=int(raw_id)))
    return out
