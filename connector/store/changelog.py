"""The change log `_changes`: read coalesced per row, mark done or failed, retry."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from connector.store.errors import StoreError
from connector.store.models import Change
from connector.store.sqltext import NOW_SQL

_SELECT = "SELECT seq, tbl, key, op, columns, at, error, attempts, portal_id FROM _changes"


def coalesce(rows: Iterable[tuple[Any, ...]],
             table_columns: Callable[[str], list[str]] | None = None) -> list[Change]:
    """Fold raw log rows (seq order) into one Change per (tbl, key), ordered by first seq.

    Net op: absent before and after (I..D) is a D with the last known portal id (None when the row
    never reached the portal); absent before, present after is I; present both is U; present
    before, absent after is D. Columns are the union of touched columns in first-seen order; a row
    deleted and inserted again (net U) was replaced whole, so every column of its table is listed.
    """
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in rows:
        groups.setdefault((row[1], row[2]), []).append(row)
    changes: list[Change] = []
    for (tbl, key), items in groups.items():
        first_op, last_op = items[0][3], items[-1][3]
        op: Literal["I", "U", "D"] = "D" if last_op == "D" else ("I" if first_op == "I" else "U")
        columns: list[str] = []
        for item in items:
            for name in json.loads(item[4] or "[]"):
                if name not in columns:
                    columns.append(name)
        replaced = op == "U" and any(
            a[3] == "D" and b[3] == "I" for a, b in zip(items, items[1:], strict=False))
        if replaced and table_columns is not None:
            columns += [c for c in table_columns(tbl) if c != "key" and c not in columns]
        portal_id = next((item[8] for item in reversed(items) if item[8] is not None), None)
        changes.append(Change(
            tbl=tbl, key=key, op=op, columns=[] if op == "D" else columns,
            seqs=[item[0] for item in items], portal_id=portal_id,
            first_at=items[0][5], last_at=items[-1][5],
            error=items[-1][6], attempts=max(item[7] for item in items),
        ))
    return changes


def select(conn: sqlite3.Connection, status: str, tbl: str | None, limit: int | None) -> list[Change]:
    """Coalesced changes with `status`, optionally of one table, at most `limit` rows (items).

    Pending changes of a row also take in that row's failed ones: a new local edit (say, fixing the
    value the portal refused) retries the whole row, so a failed create is never pushed as an update.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise StoreError(f"limit must be a positive integer or None, got {limit!r}")
    sql, args = _SELECT + " c WHERE status = ?", [status]
    if status == "unsynced":  # every local change not yet on the portal, failed ones too
        sql, args = _SELECT + " c WHERE status IN ('pending', 'failed')", []
    elif status == "pending":
        sql = _SELECT + (" c WHERE (status = 'pending' OR (status = 'failed' AND EXISTS (SELECT 1 FROM "
                         "_changes p WHERE p.tbl = c.tbl AND p.key = c.key AND p.status = 'pending')))")
        args = []
    if tbl is not None:
        sql += " AND tbl = ?"
        args.append(tbl)
    def table_columns(name: str) -> list[str]:
        return [r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (name,))]

    changes = coalesce(conn.execute(sql + " ORDER BY seq", args).fetchall(), table_columns)
    return changes if limit is None else changes[:limit]


def _seq_list(seqs: Iterable[int]) -> list[int]:
    out = list(seqs)
    bad = [s for s in out if isinstance(s, bool) or not isinstance(s, int)]
    if bad:
        raise StoreError(f"change seqs must be integers, got {bad[:5]!r}")
    return out


def set_status(conn: sqlite3.Connection, seqs: Iterable[int], status: str, error: str | None) -> int:
    """Set the status (and error, counting an attempt on failure) of log rows; return rows touched."""
    ids = _seq_list(seqs)
    bump = 1 if status == "failed" else 0
    conn.executemany(
        "UPDATE _changes SET status = ?, error = ?, attempts = attempts + ? WHERE seq = ?",
        [(status, error, bump, s) for s in ids],
    )
    return len(ids)


def mark_done(conn: sqlite3.Connection, seqs: Iterable[int]) -> int:
    """Mark log rows pushed (or settled without a push); the caller owns the transaction."""
    return set_status(conn, seqs, "done", None)


def set_pending_portal_id(conn: sqlite3.Connection, tbl: str, key: str, portal_id: int) -> None:
    """Give a row's pending changes the portal id its create just got (its local delete goes next)."""
    conn.execute("UPDATE _changes SET portal_id = ? WHERE tbl = ? AND key = ? AND status = 'pending'",
                 (portal_id, tbl, key))


def columns_logged_after(conn: sqlite3.Connection, tbl: str, key: str, seq: int) -> set[str]:
    """Columns of a row's pending log entries after `seq` (local edits made while a push was in flight)."""
    out: set[str] = set()
    for (cols,) in conn.execute(
        "SELECT columns FROM _changes WHERE tbl = ? AND key = ? AND seq > ? AND status = 'pending'",
        (tbl, key, seq),
    ):
        out.update(json.loads(cols or "[]"))
    return out


def log_update(conn: sqlite3.Connection, tbl: str, key: str, columns: Sequence[str],
               portal_id: int | None) -> None:
    """Log a pending update of `columns` by hand (the engine's writes are not logged by the triggers)."""
    conn.execute(
        "INSERT INTO _changes (tbl, key, op, columns, at, status, portal_id) VALUES "
        f"(?, ?, 'U', ?, {NOW_SQL}, 'pending', ?)",
        (tbl, key, json.dumps(list(columns)), portal_id),
    )
