"""Base snapshots (`_base`): what both sides agreed on at the last sync of each row."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from connector.store.errors import StoreError
from connector.store.models import BaseSnapshot
from connector.store.sqltext import COLUMN_NAME, PROCESS_CODE, json_object_sql, to_json

_UPSERT = (
    "INSERT INTO _base (tbl, key, portal_id, updated_time, data) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (tbl, key) DO UPDATE SET portal_id = excluded.portal_id, "
    "updated_time = excluded.updated_time, data = excluded.data"
)
_PART = 900  # keys per IN (...) list: below SQLite's bound-parameter limit


def base_get(conn: sqlite3.Connection, tbl: str, key: str) -> BaseSnapshot | None:
    """Read one base snapshot."""
    row = conn.execute("SELECT portal_id, updated_time, data FROM _base WHERE tbl = ? AND key = ?",
                       (tbl, key)).fetchone()
    if not row:
        return None
    return BaseSnapshot(tbl=tbl, key=key, portal_id=row[0], updated_time=row[1], data=json.loads(row[2]))


def bases_of(conn: sqlite3.Connection, tbl: str,
             keys: Sequence[str]) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """(updated_time, data) of the bases of many rows, by key (rows without a base are left out)."""
    out: dict[str, tuple[str | None, dict[str, Any]]] = {}
    for start in range(0, len(keys), _PART):
        part = list(keys[start : start + _PART])
        marks = ", ".join("?" for _ in part)
        for key, updated, data in conn.execute(
            f"SELECT key, updated_time, data FROM _base WHERE tbl = ? AND key IN ({marks})", [tbl, *part]
        ):
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
        part = list(keys[start : start + 5_000])
        total += conn.execute(sql, (tbl, json.dumps(part))).rowcount
    return total
