"""Templates remembered for sync (`_sync_templates`), so `sync` without FILE knows its processes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from connector.store.sqltext import NOW_SQL


def remember(conn: sqlite3.Connection, templates: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
    """Keep (code, template as JSON data) pairs, replacing older versions of the same codes."""
    conn.executemany(
        "INSERT INTO _sync_templates (code, data) VALUES (?, ?) ON CONFLICT (code) DO UPDATE SET "
        f"data = excluded.data, updated_at = {NOW_SQL}",
        [(code, json.dumps(dict(data), ensure_ascii=False)) for code, data in templates],
    )


def remembered(conn: sqlite3.Connection, code: str | None = None) -> list[dict[str, Any]]:
    """The remembered templates as JSON data, by code (only `code`'s when given)."""
    sql, args = "SELECT data FROM _sync_templates", []
    if code is not None:
        sql, args = sql + " WHERE code = ?", [code]
    return [json.loads(r[0]) for r in conn.execute(sql + " ORDER BY code", args)]
