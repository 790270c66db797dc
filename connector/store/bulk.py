"""Bulk upsert of rows into a process table: executemany per column set, one statement each."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from connector.store.errors import StoreError
from connector.store.keys import new_key
from connector.store.sqltext import ident

CHUNK = 5_000


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
