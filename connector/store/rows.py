"""Rows of process tables as the sync engine reads and writes them (inside `Store.engine_writes`).

Every function takes the connection and a process code already checked by `ensure_process`; names
are quoted with `sqltext.ident`. Rows are dicts of column -> value.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from connector.store.sqltext import NOW_SQL, ident

_PART = 900  # values per IN (...) list: below SQLite's bound-parameter limit


def _marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))


def _parts(values: Sequence[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _PART):
        yield list(values[start : start + _PART])


def _dicts(cur: sqlite3.Cursor) -> Iterable[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    for r in cur:
        yield dict(zip(names, r, strict=True))


def table_columns(conn: sqlite3.Connection, tbl: str) -> list[str]:
    """Column names of a table, in table order."""
    return [r[1] for r in conn.execute(f"PRAGMA table_info({ident(tbl)})")]


def row(conn: sqlite3.Connection, tbl: str, key: str) -> dict[str, Any] | None:
    """One row by local key."""
    return next(iter(_dicts(conn.execute(f'SELECT * FROM {ident(tbl)} WHERE "key" = ?', (key,)))), None)


def rows_by(conn: sqlite3.Connection, tbl: str, column: str,
            values: Sequence[Any]) -> dict[Any, dict[str, Any]]:
    """Rows whose `column` (id or key) is one of `values`, by that value."""
    out: dict[Any, dict[str, Any]] = {}
    for part in _parts(values):
        cur = conn.execute(f"SELECT * FROM {ident(tbl)} WHERE {ident(column)} IN ({_marks(len(part))})", part)
        for d in _dicts(cur):
            out[d[column]] = d
    return out


def present(conn: sqlite3.Connection, tbl: str, column: str, values: Sequence[Any]) -> set[Any]:
    """Which of `values` the table holds in `column` (id or key).

    Dense integer ids (a keyset pull's chunk) are looked up as one range of the index, not value by value.
    """
    found: set[Any] = set()
    if len(values) > 64 and all(v.__class__ is int for v in values):
        low, high = min(values), max(values)
        if high - low < 2 * len(values):
            wanted = set(values)
            sql = f"SELECT {ident(column)} FROM {ident(tbl)} WHERE {ident(column)} BETWEEN ? AND ?"
            return {r[0] for r in conn.execute(sql, (low, high)) if r[0] in wanted}
    for part in _parts(values):
        sql = f"SELECT {ident(column)} FROM {ident(tbl)} WHERE {ident(column)} IN ({_marks(len(part))})"
        found.update(r[0] for r in conn.execute(sql, part))
    return found


def live_rows_with_ids(conn: sqlite3.Connection, tbl: str, ids: Sequence[int]) -> list[dict[str, Any]]:
    """Rows (not tombstones) of the portal items `ids`."""
    out: list[dict[str, Any]] = []
    for part in _parts(list(dict.fromkeys(ids))):
        sql = f"SELECT * FROM {ident(tbl)} WHERE deleted = 0 AND id IN ({_marks(len(part))})"
        out.extend(_dicts(conn.execute(sql, part)))
    return out


def live_ids(conn: sqlite3.Connection, tbl: str) -> list[int]:
    """Portal ids of the rows that are on the portal and not tombstones."""
    return [r[0] for r in conn.execute(f"SELECT id FROM {ident(tbl)} WHERE id IS NOT NULL AND deleted = 0")]


def portal_id_of(conn: sqlite3.Connection, tbl: str, key: str) -> tuple[int | None, bool] | None:
    """(portal id, is a tombstone) of a row by key; None when there is no such row."""
    found = conn.execute(f"SELECT id, deleted FROM {ident(tbl)} WHERE key = ?", (key,)).fetchone()
    return (None if found[0] is None else int(found[0]), bool(found[1])) if found else None


def insert_rows(conn: sqlite3.Connection, tbl: str, columns: Sequence[str],
                rows: Iterable[Sequence[Any]]) -> None:
    """Insert rows given as value lists in `columns` order."""
    names = ", ".join(ident(c) for c in columns)
    conn.executemany(f"INSERT INTO {ident(tbl)} ({names}) VALUES ({_marks(len(columns))})", rows)


def update_rows(conn: sqlite3.Connection, tbl: str, updates: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
    """Set new values of rows by key: (key, {column: value}); one statement per column set."""
    groups: dict[tuple[str, ...], list[list[Any]]] = {}
    for key, values in updates:
        if not values:
            continue
        groups.setdefault(tuple(values), []).append([*values.values(), key])
    for cols, params in groups.items():
        sets = ", ".join(f"{ident(c)} = ?" for c in cols)
        conn.executemany(f"UPDATE {ident(tbl)} SET {sets} WHERE key = ?", params)


def set_values(conn: sqlite3.Connection, tbl: str, key: str, values: Mapping[str, Any]) -> None:
    """Set some columns of one row."""
    update_rows(conn, tbl, [(key, values)])


def tombstone(conn: sqlite3.Connection, tbl: str, key: str) -> None:
    """Mark a row deleted on the portal (`deleted` = 1, `deleted_at` = now); it stays for reports."""
    conn.execute(f"UPDATE {ident(tbl)} SET deleted = 1, deleted_at = {NOW_SQL} WHERE key = ?", (key,))


def distinct_values(conn: sqlite3.Connection, tbl: str, column: str, *, live: bool = False) -> list[Any]:
    """The distinct non-NULL values of a column (of rows that are not tombstones, when `live`)."""
    col = ident(column)
    where = f"{col} IS NOT NULL" + (" AND deleted = 0" if live else "")
    return [r[0] for r in conn.execute(f"SELECT DISTINCT {col} FROM {ident(tbl)} WHERE {where}")]
