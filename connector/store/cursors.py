"""Pull cursors (`_cursors`): per portal and process, the server time the next pull starts from."""

from __future__ import annotations

import sqlite3

from connector.store.sqltext import NOW_SQL


def cursor_get(conn: sqlite3.Connection, portal: str, tbl: str) -> str | None:
    """The cursor of one process on one portal, or None before its first backfill."""
    row = conn.execute("SELECT value FROM _cursors WHERE portal = ? AND tbl = ?", (portal, tbl)).fetchone()
    return row[0] if row else None


def cursor_set(conn: sqlite3.Connection, portal: str, tbl: str, value: str | None) -> None:
    """Write one cursor."""
    conn.execute(
        f"INSERT INTO _cursors (portal, tbl, value, updated_at) VALUES (?, ?, ?, {NOW_SQL}) "
        "ON CONFLICT (portal, tbl) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (portal, tbl, value),
    )
