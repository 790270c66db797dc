"""Removing sandbox smart processes: the current run's, and leftovers of an interrupted run.

A sandbox type is recognised by its code prefix `b24sync_doctor_` and its title "b24sync doctor
<stamp>"; by the exact title pattern alone when a portal did not keep the code (the docs note that
`crm.type.add` answers lack `code`). Nothing else on the portal is ever touched.
"""

from __future__ import annotations

import re
from typing import Any

from connector.rest import B24Error, NotFound

from .side import Side

CODE_PREFIX = "b24sync_doctor_"
TITLE_PREFIX = "b24sync doctor"
STAMPED_TITLE = re.compile(r"^b24sync doctor \d{14}[0-9a-f]{4}$")  # run.py: UTC time + 4 hex digits


def is_sandbox(type_row: dict[str, Any]) -> bool:
    """Whether a `crm.type.list` row is a doctor sandbox (code prefix and title, or the stamped title)."""
    title = str(type_row.get("title") or "")
    coded = str(type_row.get("code") or "").startswith(CODE_PREFIX) and title.startswith(TITLE_PREFIX)
    return coded or bool(STAMPED_TITLE.match(title))


def find_leftovers(side: Side) -> list[dict[str, Any]]:
    """Sandbox types still on the portal (an interrupted earlier run)."""
    return [row for row in side.client.iter_list("crm.type.list", {}) if is_sandbox(row)]


def remove_type(side: Side, type_id: int, entity_type_id: int) -> None:
    """Delete every item of the type, then the type (its fields, funnels and stages go with it:
    bitrix24-rest.md §5.3 "Deleting a type also deletes its user fields"; server-behaviour.md §3
    crm.type.delete "deletes categories, stages, relations")."""
    ids = [int(row["id"]) for row in side.client.iter_list(
        "crm.item.list", {"entityTypeId": entity_type_id, "select": ["id"]})]
    if ids:
        result = side.client.batch_all(
            {f"d{i}": ("crm.item.delete", {"entityTypeId": entity_type_id, "id": i}) for i in ids})
        failed = {label: err for label, err in result.errors.items() if not isinstance(err, NotFound)}
        if failed:
            raise next(iter(failed.values()))
    try:
        side.call("crm.type.delete", {"id": type_id})
    except NotFound:
        pass
    except B24Error as err:
        if err.code != "0":  # "0" = the type is already gone (server-behaviour.md §3)
            raise


def remove_leftovers(side: Side) -> int:
    """Remove every sandbox type left by earlier runs; returns how many were removed."""
    side.mark("leftovers")
    leftovers = find_leftovers(side)
    for row in leftovers:
        remove_type(side, int(row["id"]), int(row["entityTypeId"]))
    return len(leftovers)
