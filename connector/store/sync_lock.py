"""The sync lock row (`_sync_lock`): who runs `sync` on this store now. The policy (when a holder
counts as crashed, waiting, heartbeats) is connector/sync/lock.py; this module only reads and writes
the row, each take in one BEGIN IMMEDIATE transaction so two processes never both win."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import NamedTuple

from connector.store.migrations import SYNC_LOCK_DDL

_SELECT = "SELECT pid, host, since, beat, token, started FROM _sync_lock"


class LockRow(NamedTuple):
    """The lock row: holder pid and host, since when (UTC text), heartbeat (epoch), token, pid start."""

    pid: int
    host: str
    since: str
    beat: float
    token: str
    started: str | None


def connect(path: str) -> sqlite3.Connection:
    """A connection of its own for the lock (so its commits never wait for the run's transactions)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA synchronous = NORMAL")  # the store is in WAL mode: commits need no fsync
    conn.execute(SYNC_LOCK_DDL)  # also migration 3; here for a file opened by an older b24sync
    return conn


def holder(conn: sqlite3.Connection) -> LockRow | None:
    """The lock row, or None when nobody holds the lock."""
    row = conn.execute(_SELECT).fetchone()
    return LockRow(*row) if row is not None else None


def take(conn: sqlite3.Connection, mine: LockRow,
         still_held: Callable[[LockRow], bool]) -> tuple[bool, LockRow | None]:
    """Write `mine` as the lock row unless `still_held(current holder)`; (taken?, previous holder)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = holder(conn)
        if current is not None and still_held(current):
            conn.execute("ROLLBACK")
            return False, current
        conn.execute(
            "INSERT OR REPLACE INTO _sync_lock (id, pid, host, since, beat, token, started) "
            "VALUES (1, ?, ?, ?, ?, ?, ?)",
            tuple(mine),
        )
        conn.execute("COMMIT")
        return True, current
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def beat(conn: sqlite3.Connection, token: str, at: float) -> None:
    """Refresh the heartbeat of the lock held with `token`."""
    conn.execute("UPDATE _sync_lock SET beat = ? WHERE token = ?", (at, token))


def release(conn: sqlite3.Connection, token: str) -> None:
    """Drop the lock row if `token` still holds it."""
    conn.execute("DELETE FROM _sync_lock WHERE token = ?", (token,))
