"""Read-only access to a store file: `mode=ro` plus an authorizer that allows reads only."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from connector.reports.errors import ReportError
from connector.store.store import open_readonly

# Actions a query may perform: reading tables, selecting, calling functions, recursive CTEs.
_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
# Pragmas that only describe the schema (used as table-valued functions, e.g. pragma_table_info).
_ALLOWED_PRAGMAS = frozenset({"table_info", "table_xinfo"})
# Functions that could reach outside the file even in a read-only connection.
_DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})


def _authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None) -> int:
    """Allow SELECT/READ/FUNCTION and schema-describing pragmas; deny everything else."""
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_DENY if (arg2 or "").lower() in _DENIED_FUNCTIONS else sqlite3.SQLITE_OK
    if action in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _ALLOWED_PRAGMAS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master":
        # SQLite reports its own (re)loading of the schema this way; a real write to the schema
        # is impossible here (read-only file, query_only, writable_schema cannot be set).
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


@contextmanager
def scope_reads(conn: sqlite3.Connection, tables: set[str]) -> Iterator[None]:
    """While statements are prepared inside, they may read only `tables` (and nothing else the
    read-only authorizer forbids); outside, the plain read-only authorizer applies again."""

    def authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, src: str | None) -> int:
        if action == sqlite3.SQLITE_READ and arg1 not in tables:
            # SQLite itself reads `sqlite_master.ROWID` when it sets up json_each (no schema text)
            internal = arg1 in ("sqlite_master", "sqlite_schema") and (arg2 or "").upper() == "ROWID"
            return sqlite3.SQLITE_OK if internal else sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA:
            return sqlite3.SQLITE_DENY
        return _authorize(action, arg1, arg2, db, src)

    conn.set_authorizer(authorize)
    try:
        yield
    finally:
        conn.set_authorizer(_authorize)


def connect_readonly(db_path: str | Path) -> sqlite3.Connection:
    """Open a store file so that no statement run on it can change it."""
    path = Path(db_path)
    if not path.is_file():
        raise ReportError(f"store file not found: {path} (run `b24sync sync` first, or pass --db PATH)")
    conn = open_readonly(path)  # also a read-only file in a read-only folder
    conn.execute("PRAGMA query_only = 1")
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.set_authorizer(_authorize)
    return conn


def table_names(conn: sqlite3.Connection) -> dict[str, str]:
    """Every table and view in the store: name -> 'table' | 'view'."""
    rows = conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')")
    return {name: kind for name, kind in rows}


def column_names(conn: sqlite3.Connection, name: str) -> list[str]:
    """Column names of a table or view, in their declared order."""
    return [row[0] for row in conn.execute("SELECT name FROM pragma_table_info(?)", (name,))]
