"""Conflicts (`_conflicts`): rows changed on both sides, kept with both values until settled."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from connector.store.errors import StoreError
from connector.store.models import Conflict
from connector.store.sqltext import NOW_SQL, to_json, where_equal

RESOLUTIONS = ("local", "remote", "merged", "dismissed")
_COLUMNS = ("id, tbl, key, portal_id, fields, local, remote, base, policy, status, resolution, "
            "created_at, resolved_at")


def _conflict(row: tuple[Any, ...]) -> Conflict:
    cid, tbl, key, pid, fields, local, remote, base, policy, status, resolution, created, resolved = row
    return Conflict(id=cid, tbl=tbl, key=key, portal_id=pid, fields=json.loads(fields),
                    local=json.loads(local), remote=json.loads(remote),
                    base=json.loads(base) if base is not None else None, policy=policy, status=status,
                    resolution=resolution, created_at=created, resolved_at=resolved)


def add_conflict(conn: sqlite3.Connection, tbl: str, key: str, portal_id: int | None, fields: Sequence[str],
                 local: Mapping[str, Any], remote: Mapping[str, Any], base: Mapping[str, Any] | None,
                 policy: str) -> int:
    """Insert a conflict; return its id."""
    cur = conn.execute(
        f"INSERT INTO _conflicts (tbl, key, portal_id, fields, local, remote, base, policy, created_at) "
        f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, {NOW_SQL})",
        (tbl, key, portal_id, to_json(list(fields)), to_json(dict(local)), to_json(dict(remote)),
         to_json(dict(base)) if base is not None else None, policy),
    )
    return int(cur.lastrowid or 0)


def update_conflict(conn: sqlite3.Connection, conflict_id: int, *, fields: Sequence[str] | None = None,
                    local: Mapping[str, Any] | None = None, remote: Mapping[str, Any] | None = None) -> None:
    """Show the latest values of an open conflict (the clashing fields, either side's values)."""
    sets: dict[str, str] = {}
    if fields is not None:
        sets["fields"] = to_json(list(fields))
    if local is not None:
        sets["local"] = to_json(dict(local))
    if remote is not None:
        sets["remote"] = to_json(dict(remote))
    if not sets:
        return
    assignments = ", ".join(f"{name} = ?" for name in sets)  # names are the three above, never input
    conn.execute(f"UPDATE _conflicts SET {assignments} WHERE id = ?", [*sets.values(), conflict_id])


def list_conflicts(conn: sqlite3.Connection, tbl: str | None, status: str | None) -> list[Conflict]:
    """Conflicts filtered by table and status, oldest first."""
    if status not in (None, "open", "resolved"):
        raise StoreError(f"conflict status {status!r} is unknown; allowed: open, resolved, or None for all")
    where, args = where_equal(tbl=tbl, status=status)
    return [_conflict(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM _conflicts{where} ORDER BY id", args)]


def resolve_conflict(conn: sqlite3.Connection, conflict_id: int, resolution: str) -> Conflict:
    """Close one conflict."""
    if resolution not in RESOLUTIONS:
        raise StoreError(f"conflict resolution {resolution!r} is unknown; allowed: {', '.join(RESOLUTIONS)}")
    cur = conn.execute(
        f"UPDATE _conflicts SET status = 'resolved', resolution = ?, resolved_at = {NOW_SQL} WHERE id = ?",
        (resolution, conflict_id),
    )
    if cur.rowcount == 0:
        raise StoreError(f"no conflict with id {conflict_id!r}")
    row = conn.execute(f"SELECT {_COLUMNS} FROM _conflicts WHERE id = ?", (conflict_id,)).fetchone()
    return _conflict(row)
