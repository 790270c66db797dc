"""Bulk upsert of rows into a process table: executemany per column set, one statement each."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from connector.store.bases import prepare_lazy
from connector.store.errors import StoreError
from connector.store.keys import new_key
from connector.store.sqltext import COLUMN_NAME, PROCESS_CODE, ident

CHUNK = 5_000
# Python's sqlite3 binds None through its adapter protocol (about 0.7 us a value on a slow core, most
# of a wide, sparse row's insert time); an empty bytearray binds directly. `insert_new_rows` wraps
# every parameter in NULLIF(?, x''), so rows may carry BULK_NULL (or None) for NULL. Stored values
# are never empty blobs, so nothing else turns into NULL.
BULK_NULL = bytearray()


def _statement(tbl: str, columns: tuple[str, ...], by: str) -> str:
    names = ", ".join(ident(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{ident(c)} = excluded.{ident(c)}" for c in columns if c not in (by, "key"))
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    return f"INSERT INTO {ident(tbl)} ({names}) VALUES ({marks}) ON CONFLICT ({ident(by)}) {action}"


def upsert_rows(conn: sqlite3.Connection, tbl: str, rows: Iterable[Mapping[str, Any]], by: str) -> int:
    """Insert or update rows matched on `by` ("id" or "key"); a new row without key gets one.

    Rows with the same column set go to one executemany; the caller owns the transaction.
    """
    if by not in ("id", "key"):
        raise StoreError(f"upsert match column {by!r} is not allowed; use 'id' (portal id) or 'key'")
    known = {r[1] for r in conn.execute(f"PRAGMA table_info({ident(tbl)})")}
    statements: dict[tuple[str, ...], str] = {}
    batches: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    count = 0
    for row in rows:
        if row.get(by) is None:
            shown = str(dict(row))[:200]
            raise StoreError(f"a row for {tbl!r} has no {by!r}; every upserted row needs it: {shown}")
        values = {**row, "key": new_key()} if by == "id" and row.get("key") is None else row
        columns = tuple(values)
        if columns not in statements:
            unknown = [c for c in columns if c not in known]
            if unknown:
                raise StoreError(f"table {tbl!r} has no column(s) {unknown}; known: {sorted(known)}")
            statements[columns] = _statement(tbl, columns, by)
            batches[columns] = []
        batch = batches[columns]
        batch.append(tuple(values.values()))
        count += 1
        if len(batch) >= CHUNK:
            conn.executemany(statements[columns], batch)
            batch.clear()
    for columns, batch in batches.items():
        if batch:
            conn.executemany(statements[columns], batch)
    return count


def insert_new_rows(
    conn: sqlite3.Connection,
    tbl: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    base_columns: Sequence[str],
    source: str,
) -> int:
    """Insert rows new to the table, then, in SQL over just those rows, their (lazy) base snapshots and
    their first stage moves (none -> stage, at moved/created/updated time); return rows inserted.

    The caller owns the engine transaction (`_applying.flag` = 1), so the rows inserted are exactly
    those whose rowid is above the table's largest rowid before the insert. The table's INSERT
    triggers do nothing for engine writes but still cost a third of each row's insert (1.5 -> 1.0 CPU s
    per 100,000 rows): they are dropped for the insert and created again from their own SQL before
    returning, inside the same transaction, so no other connection ever sees the table without them.
    """
    bad = [c for c in (*columns, *base_columns) if not COLUMN_NAME.match(c)]
    if bad or not PROCESS_CODE.match(tbl):
        raise StoreError(f"insert_new_rows needs lowercase snake names, got table {tbl!r}, columns {bad}")
    if "key" not in columns or "id" not in columns:
        raise StoreError(f"insert_new_rows needs the 'key' and 'id' columns, got {list(columns)}")
    (flag,) = conn.execute("SELECT flag FROM _applying").fetchone()
    if flag != 1 or not conn.in_transaction:
        raise StoreError("insert_new_rows runs only inside the engine's transaction (Store.engine_writes)")
    t = ident(tbl)
    (last,) = conn.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {t}").fetchone()
    names = ", ".join(ident(c) for c in columns)
    marks = ", ".join("NULLIF(?, x'')" for _ in columns)
    triggers = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND name IN (?, ?)",
        (tbl, f"_guard_{tbl}_insert", f"_log_{tbl}_insert"),
    ).fetchall()
    for name, _ in triggers:
        conn.execute(f"DROP TRIGGER {ident(name)}")
    try:
        count = conn.executemany(f"INSERT INTO {t} ({names}) VALUES ({marks})", rows).rowcount
    finally:
        if conn.in_transaction:
            for _, sql in triggers:
                conn.execute(sql)
    if count <= 0:
        return 0
    prepare_lazy(conn, tbl, base_columns)
    conn.execute(
        "INSERT INTO _base (tbl, key, portal_id, updated_time, data) "
        f'SELECT ?, "key", "id", "updated_time", \'\' FROM {t} WHERE rowid > ? '
        "ON CONFLICT (tbl, key) DO UPDATE SET portal_id = excluded.portal_id, "
        "updated_time = excluded.updated_time, data = excluded.data",
        (tbl, last),
    )
    at = "COALESCE(NULLIF(moved_time, ''), NULLIF(created_time, ''), NULLIF(updated_time, ''))"
    conn.execute(
        "INSERT OR IGNORE INTO _stage_history "
        "(tbl, key, portal_id, funnel, from_stage, to_stage, at, source) "
        f"SELECT ?, \"key\", \"id\", funnel, NULL, stage, {at}, ? FROM {t} "
        f"WHERE rowid > ? AND stage IS NOT NULL AND stage <> '' AND {at} IS NOT NULL",
        (tbl, source, last),
    )
    return count
