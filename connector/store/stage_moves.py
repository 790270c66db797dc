"""Stage history (`_stage_history`): every stage move of every item, pulled, pushed or seen locally."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from connector.store.errors import StoreError
from connector.store.migrations import STAGE_MOVE_ITEM
from connector.store.models import StageMove

STAGE_SOURCES = ("pull", "push", "local")
StageMoveRow = tuple[str | None, int | None, str | None, str | None, str, str, str]
_INSERT_MOVE = ("INSERT OR IGNORE INTO _stage_history (tbl, key, portal_id, funnel, from_stage, to_stage, "
                "at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


def _check_move(key: str | None, portal_id: int | None, to_stage: str | None, at: str | None,
                source: str) -> None:
    if source not in STAGE_SOURCES:
        raise StoreError(f"stage move source {source!r} is unknown; allowed: {', '.join(STAGE_SOURCES)}")
    if not to_stage or not at:
        raise StoreError("a stage move needs to_stage and at (UTC ISO time)")
    if key is None and portal_id is None:
        raise StoreError("a stage move needs the row key or the portal id")


def _key_of(conn: sqlite3.Connection, tbl: str, portal_id: int) -> str | None:
    """The local key of a portal item: from its process table, else from earlier moves."""
    table = conn.execute("SELECT 1 FROM _processes WHERE tbl = ?", (tbl,)).fetchone()
    if table:
        row = conn.execute(f'SELECT "key" FROM "{tbl}" WHERE id = ?', (portal_id,)).fetchone()
        if row:
            return str(row[0])
    row = conn.execute("SELECT key FROM _stage_history WHERE tbl = ? AND portal_id = ? AND key IS NOT NULL "
                       "LIMIT 1", (tbl, portal_id)).fetchone()
    return str(row[0]) if row else None


def add_stage_move(conn: sqlite3.Connection, tbl: str, key: str | None, portal_id: int | None,
                   funnel: str | None, from_stage: str | None, to_stage: str, at: str, source: str) -> int:
    """Insert a stage move unless the same move of the same item at the same time is known; its id.

    The item is its local key (looked up by portal id when not given); the unique index
    `_stage_history_move` makes the duplicate check one index probe (INSERT OR IGNORE).
    """
    _check_move(key, portal_id, to_stage, at, source)
    if key is None and portal_id is not None:
        key = _key_of(conn, tbl, portal_id)
    cur = conn.execute(_INSERT_MOVE, (tbl, key, portal_id, funnel, from_stage, to_stage, at, source))
    if cur.rowcount:
        return int(cur.lastrowid or 0)
    found = conn.execute(
        f"SELECT id FROM _stage_history WHERE tbl = ? AND {STAGE_MOVE_ITEM} = ? AND to_stage = ? AND at = ?",
        (tbl, key if key is not None else f"#{portal_id}", to_stage, at),
    ).fetchone()
    return int(found[0])


def add_stage_moves(conn: sqlite3.Connection, tbl: str, moves: Iterable[StageMoveRow]) -> int:
    """Bulk insert of (key, portal_id, funnel, from_stage, to_stage, at, source); known moves are ignored.

    Returns how many were new. Every move must name its item by key (the engine always knows it).
    """
    rows = []
    for key, portal_id, funnel, from_stage, to_stage, at, source in moves:
        _check_move(key, portal_id, to_stage, at, source)
        if key is None:
            raise StoreError("add_stage_moves needs the row key of every move; use add_stage_move for "
                             "a move known only by portal id")
        rows.append((tbl, key, portal_id, funnel, from_stage, to_stage, at, source))
    before = conn.total_changes
    conn.executemany(_INSERT_MOVE, rows)
    return conn.total_changes - before


def stage_history(conn: sqlite3.Connection, tbl: str, key: str | None) -> list[StageMove]:
    """Stage moves in time order."""
    sql, args = ("SELECT id, tbl, key, portal_id, funnel, from_stage, to_stage, at, source "
                 "FROM _stage_history WHERE tbl = ?"), [tbl]
    if key is not None:
        sql += " AND key = ?"
        args.append(key)
    names = ("id", "tbl", "key", "portal_id", "funnel", "from_stage", "to_stage", "at", "source")
    rows = conn.execute(sql + " ORDER BY at, id", args)
    return [StageMove(**dict(zip(names, r, strict=True))) for r in rows]
