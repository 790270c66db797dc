"""Base snapshots (`_base`): what both sides agreed on at the last sync of each row.

A base is either JSON text, or **lazy**: `data = ''` says "the row's own values of the table's
recorded base columns" (`_base_columns`). A pull that has just written a row from the portal makes its
base lazy instead of copying every value into JSON (a quarter of a first sync's SQLite time). The
invariant "a lazy base's row has not changed since" is kept in SQL: triggers `_base_<tbl>_update` and
`_base_<tbl>_delete` turn a lazy base into JSON from the row's OLD values before any UPDATE or DELETE
of the row, by anyone (the engine, a user's SQL, a tool). Readers resolve a lazy base with the same
JSON expression, so a lazy base reads exactly as the eager one it replaces.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from connector.store.errors import StoreError
from connector.store.models import BaseSnapshot
from connector.store.sqltext import COLUMN_NAME, PROCESS_CODE, ident, json_object_sql, literal, to_json

_UPSERT = (
    "INSERT INTO _base (tbl, key, portal_id, updated_time, data) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (tbl, key) DO UPDATE SET portal_id = excluded.portal_id, "
    "updated_time = excluded.updated_time, data = excluded.data"
)
_PART = 900  # keys per IN (...) list: below SQLite's bound-parameter limit
LAZY = ""  # `_base.data` of a lazy base: the row's own values of the recorded base columns


def _recorded(conn: sqlite3.Connection, tbl: str) -> list[str] | None:
    row = conn.execute("SELECT columns FROM _base_columns WHERE tbl = ?", (tbl,)).fetchone()
    return json.loads(row[0]) if row else None


def _data_sql(conn: sqlite3.Connection, tbl: str) -> str:
    """SQL for a base's JSON text: as stored, or for a lazy base built from its row."""
    columns = _recorded(conn, tbl)
    if not columns:
        return "data"
    built = json_object_sql(columns, drop_nulls=True, row="r")
    return (f"CASE WHEN data = '' THEN (SELECT {built} FROM {ident(tbl)} r WHERE r.\"key\" = _base.key) "
            "ELSE data END")


def _trigger_names(tbl: str) -> tuple[str, str]:
    return f"_base_{tbl}_update", f"_base_{tbl}_delete"


def prepare_lazy(conn: sqlite3.Connection, tbl: str, columns: Sequence[str]) -> None:
    """Let `tbl` hold lazy bases of `columns`: record them and (re)create the keeping triggers.

    Lazy bases recorded with other columns are turned into JSON first, so each keeps the columns it
    was taken with. The caller owns the transaction.
    """
    bad = [c for c in columns if not COLUMN_NAME.match(c)]
    if bad or not PROCESS_CODE.match(tbl):
        raise StoreError(f"lazy bases need lowercase snake names, got table {tbl!r}, columns {bad}")
    wanted = list(columns)
    names = _trigger_names(tbl)
    have = {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?)", names)}
    if _recorded(conn, tbl) == wanted and have == set(names):
        return
    conn.execute(f"UPDATE _base SET data = COALESCE(({_data_sql(conn, tbl)}), '{{}}') "
                 "WHERE tbl = ? AND data = ''", (tbl,))
    conn.execute("INSERT INTO _base_columns (tbl, columns) VALUES (?, ?) "
                 "ON CONFLICT (tbl) DO UPDATE SET columns = excluded.columns", (tbl, json.dumps(wanted)))
    keep = (f"UPDATE _base SET data = {json_object_sql(wanted, drop_nulls=True, row='OLD')} "
            f"WHERE tbl = {literal(tbl)} AND key = OLD.\"key\" AND data = ''")
    for name, event in zip(names, ("UPDATE", "DELETE"), strict=True):
        conn.execute(f"DROP TRIGGER IF EXISTS {ident(name)}")
        conn.execute(f"CREATE TRIGGER {ident(name)} BEFORE {event} ON {ident(tbl)} BEGIN {keep}; END")


def base_get(conn: sqlite3.Connection, tbl: str, key: str) -> BaseSnapshot | None:
    """Read one base snapshot."""
    row = conn.execute(f"SELECT portal_id, updated_time, {_data_sql(conn, tbl)} FROM _base "
                       "WHERE tbl = ? AND key = ?", (tbl, key)).fetchone()
    if not row:
        return None
    return BaseSnapshot(tbl=tbl, key=key, portal_id=row[0], updated_time=row[1],
                        data=json.loads(row[2] or "{}"))


def _select(conn: sqlite3.Connection, tbl: str, keys: Sequence[str],
            data: str) -> Iterator[tuple[str, str | None, str | None]]:
    """(key, updated_time, `data` expression) of the bases of `keys`, in IN lists of `_PART` keys."""
    for start in range(0, len(keys), _PART):
        part = list(keys[start : start + _PART])
        marks = ", ".join("?" for _ in part)
        yield from conn.execute(
            f"SELECT key, updated_time, {data} FROM _base WHERE tbl = ? AND key IN ({marks})", [tbl, *part]
        )


def bases_of(
    conn: sqlite3.Connection, tbl: str, keys: Sequence[str],
    rows: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """(updated_time, data) of the bases of many rows, by key (rows without a base are left out).

    `rows` (the rows by key, as the caller just read them in this transaction) lets a lazy base be
    read from its row's values in Python instead of building its JSON in SQL and parsing it.
    """
    out: dict[str, tuple[str | None, dict[str, Any]]] = {}
    columns = _recorded(conn, tbl) or []
    lazy: list[str] = []
    for key, updated, data in _select(conn, tbl, keys, "data"):
        if data != LAZY:
            out[key] = (updated, json.loads(data or "{}"))
        elif rows is not None and key in rows:
            row = rows[key]
            out[key] = (updated, {c: v for c in columns if (v := row.get(c)) is not None})
        else:
            lazy.append(key)
    for key, updated, data in _select(conn, tbl, lazy, _data_sql(conn, tbl)) if lazy else ():
        out[key] = (updated, json.loads(data or "{}"))
    return out


def base_set(conn: sqlite3.Connection, tbl: str, key: str, portal_id: int | None,
             updated_time: str | None, data: Mapping[str, Any]) -> None:
    """Write one base snapshot."""
    if not isinstance(data, Mapping):
        raise StoreError(f"base data for {tbl}/{key} must be a mapping of column -> value, "
                         f"got {type(data).__name__}")
    conn.execute(_UPSERT, (tbl, key, portal_id, updated_time, to_json(dict(data))))


def base_delete(conn: sqlite3.Connection, tbl: str, key: str) -> None:
    """Forget the base of one row."""
    conn.execute("DELETE FROM _base WHERE tbl = ? AND key = ?", (tbl, key))


def base_from_rows(conn: sqlite3.Connection, tbl: str, keys: Sequence[str], columns: Sequence[str]) -> int:
    """Make the current values of `columns` the base of rows `keys` (lazy bases, in bulk)."""
    if not keys:
        return 0
    prepare_lazy(conn, tbl, columns)
    sql = (
        "INSERT INTO _base (tbl, key, portal_id, updated_time, data) "
        f"SELECT ?, \"key\", \"id\", \"updated_time\", '' FROM {ident(tbl)} "
        "WHERE \"key\" IN (SELECT value FROM json_each(?)) "
        "ON CONFLICT (tbl, key) DO UPDATE SET portal_id = excluded.portal_id, "
        "updated_time = excluded.updated_time, data = excluded.data"
    )
    total = 0
    for start in range(0, len(keys), 5_000):
        part = list(keys[start : start + 5_000])
        total += conn.execute(sql, (tbl, json.dumps(part))).rowcount
    return total
