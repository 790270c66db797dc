"""Resolved process maps (`_sync_maps`): per portal and process, the map sync built and the template
signature it was built for, so an incremental sync reads no portal schema."""

from __future__ import annotations

import sqlite3


def cached_map(conn: sqlite3.Connection, portal: str, code: str, signature: str) -> str | None:
    """The cached map (JSON text) of a process, if it was built for this template signature."""
    row = conn.execute("SELECT signature, data FROM _sync_maps WHERE portal = ? AND code = ?",
                       (portal, code)).fetchone()
    return str(row[1]) if row and row[0] == signature else None


def cache_map(conn: sqlite3.Connection, portal: str, code: str, signature: str, data: str) -> None:
    """Remember the map (JSON text) of a process for one template signature."""
    conn.execute(
        "INSERT INTO _sync_maps (portal, code, signature, data) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (portal, code) DO UPDATE SET signature = excluded.signature, data = excluded.data",
        (portal, code, signature, data),
    )
