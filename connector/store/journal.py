"""Base snapshots, cursors, conflicts, stage history and runs: small tables with plain SQL."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from connector.store.errors import StoreError
from connector.store.migrations import STAGE_MOVE_ITEM
from connector.store.models import BaseSnapshot, Conflict, Run, StageMove
from connector.store.sqltext import COLUMN_NAME, NOW_SQL, PROCESS_CODE, json_object_sql

RESOLUTIONS = ("local", "remote", "merged", "dismissed")
STAGE_SOURCES = ("pull", "push", "local")
RUN_STATUSES = ("ok", "failed", "partial", "interrupted")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def base_get(conn: sqlite3.Connection, tbl: str, key: str) -> BaseSnapshot | None:
    """Read one base snapshot."""
    row = conn.execute("SELECT portal_id, updated_time, data FROM _base WHERE tbl = ? AND key = ?",
                       (tbl, key)).fetchone()
    if not row:
        return None
    return BaseSnapshot(tbl=tbl, key=key, portal_id=row[0], updated_time=row[1], data=json.loads(row[2]))


def base_set(conn: sqlite3.Connection, tbl: str, key: str, portal_id: int | None,
             updated_time: str | None, data: Mapping[str, Any]) -> None:
    """Write one base snapshot."""
    if not isinstance(data, Mapping):
        raise StoreError(f"base data for {tbl}/{key} must be a mapping of column -> value, "
                         f"got {type(data).__name__}")
    conn.execute(
        "INSERT INTO _base (tbl, key, portal_id, updated_time, data) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (tbl, key) DO UPDATE SET portal_id = excluded.portal_id, "
        "updated_time = excluded.updated_time, data = excluded.data",
        (tbl, key, portal_id, updated_time, _json(dict(data))),
    )


def base_from_rows(conn: sqlite3.Connection, tbl: str, keys: list[str], columns: list[str]) -> int:
    """Make the current values of `columns` the base of rows `keys` (JSON built by SQLite, in bulk)."""
    bad = [c for c in columns if not COLUMN_NAME.match(c)]
    if bad or not PROCESS_CODE.match(tbl):
        raise StoreError(f"base_from_rows needs lowercase snake names, got table {tbl!r}, columns {bad}")
    if not keys:
        return 0
    data = json_object_sql(columns, drop_nulls=True)
    sql = (
        "INSERT INTO _base (tbl, key, portal_id, updated_time, data) "
        f"SELECT ?, \"key\", \"id\", \"updated_time\", {data} FROM \"{tbl}\" "
        "WHERE \"key\" IN (SELECT value FROM json_each(?)) "
        "ON CONFLICT (tbl, key) DO UPDATE SET portal_id = excluded.portal_id, "
        "updated_time = excluded.updated_time, data = excluded.data"
    )
    total = 0
    for start in range(0, len(keys), 5_000):
        part = keys[start : start + 5_000]
        total += conn.execute(sql, (tbl, json.dumps(part))).rowcount
    return total


def cursor_set(conn: sqlite3.Connection, portal: str, tbl: str, value: str | None) -> None:
    """Write one cursor."""
    conn.execute(
        f"INSERT INTO _cursors (portal, tbl, value, updated_at) VALUES (?, ?, ?, {NOW_SQL}) "
        "ON CONFLICT (portal, tbl) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (portal, tbl, value),
    )


_CONFLICT_COLS = ("id, tbl, key, portal_id, fields, local, remote, base, policy, status, resolution, "
                  "created_at, resolved_at")


def _conflict(row: tuple[Any, ...]) -> Conflict:
    cid, tbl, key, pid, fields, local, remote, base, policy, status, resolution, created, resolved = row
    return Conflict(id=cid, tbl=tbl, key=key, portal_id=pid, fields=json.loads(fields),
                    local=json.loads(local), remote=json.loads(remote),
                    base=json.loads(base) if base is not None else None, policy=policy, status=status,
                    resolution=resolution, created_at=created, resolved_at=resolved)


def add_conflict(conn: sqlite3.Connection, tbl: str, key: str, portal_id: int | None, fields: list[str],
                 local: Mapping[str, Any], remote: Mapping[str, Any], base: Mapping[str, Any] | None,
                 policy: str) -> int:
    """Insert a conflict; return its id."""
    cur = conn.execute(
        f"INSERT INTO _conflicts (tbl, key, portal_id, fields, local, remote, base, policy, created_at) "
        f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, {NOW_SQL})",
        (tbl, key, portal_id, _json(list(fields)), _json(dict(local)), _json(dict(remote)),
         _json(dict(base)) if base is not None else None, policy),
    )
    return int(cur.lastrowid or 0)


def list_conflicts(conn: sqlite3.Connection, tbl: str | None, status: str | None) -> list[Conflict]:
    """Conflicts filtered by table and status, oldest first."""
    if status not in (None, "open", "resolved"):
        raise StoreError(f"conflict status {status!r} is unknown; allowed: open, resolved, or None for all")
    sql, args = f"SELECT {_CONFLICT_COLS} FROM _conflicts WHERE 1 = 1", []
    if tbl is not None:
        sql += " AND tbl = ?"
        args.append(tbl)
    if status is not None:
        sql += " AND status = ?"
        args.append(status)
    return [_conflict(r) for r in conn.execute(sql + " ORDER BY id", args)]


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
    row = conn.execute(f"SELECT {_CONFLICT_COLS} FROM _conflicts WHERE id = ?", (conflict_id,)).fetchone()
    return _conflict(row)


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


def run_start(conn: sqlite3.Connection, kind: str, portal: str | None, job: str | None) -> int:
    """Insert a running run; return its id."""
    if not kind:
        raise StoreError("a run needs its kind (sync, deploy, report, ...)")
    cur = conn.execute(f"INSERT INTO _runs (kind, portal, job, started_at) VALUES (?, ?, ?, {NOW_SQL})",
                       (kind, portal, job))
    return int(cur.lastrowid or 0)


def run_finish(conn: sqlite3.Connection, run_id: int, status: str, figures: Mapping[str, Any],
               error: str | None) -> None:
    """Close a run with its status and figures."""
    if status not in RUN_STATUSES:
        raise StoreError(f"run status {status!r} is unknown; allowed: {', '.join(RUN_STATUSES)}")
    cur = conn.execute(
        f"UPDATE _runs SET finished_at = {NOW_SQL}, status = ?, figures = ?, error = ? WHERE id = ?",
        (status, _json(dict(figures)), error, run_id),
    )
    if cur.rowcount == 0:
        raise StoreError(f"no run with id {run_id!r}")


def last_runs(conn: sqlite3.Connection, limit: int, kind: str | None, portal: str | None) -> list[Run]:
    """Most recent runs first."""
    sql, args = ("SELECT id, kind, portal, job, started_at, finished_at, status, figures, error "
                 "FROM _runs WHERE 1 = 1"), []
    if kind is not None:
        sql += " AND kind = ?"
        args.append(kind)
    if portal is not None:
        sql += " AND portal = ?"
        args.append(portal)
    rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])
    return [Run(id=r[0], kind=r[1], portal=r[2], job=r[3], started_at=r[4], finished_at=r[5], status=r[6],
                figures=json.loads(r[7]), error=r[8]) for r in rows]
