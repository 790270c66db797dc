"""One sync per store at a time: a lock row in the store, naming its holder (pid, host, since).

The lock lives in `_sync_lock` (one row). Taking it is one `BEGIN IMMEDIATE` transaction, so two
processes (or threads) never both win. While held, the run refreshes `beat` as it makes progress
(`Held.tick`, at most every BEAT_SECONDS: each pulled chunk, each pushed wave). A holder that
crashed is taken over safely: on the same host when its pid is gone (or is another process now, or is
this process but not a lock it holds); on another host when its heartbeat is older than STALE_SECONDS.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from connector.errors import BusyError
from connector.store.migrations import SYNC_LOCK_DDL

DEFAULT_WAIT = 60.0  # seconds a sync waits for another one on the same store
BEAT_SECONDS = 10.0
STALE_SECONDS = 900.0  # a holder on another host without progress for this long has crashed
POLL_SECONDS = 0.05
_held: set[str] = set()  # tokens held by this process
_held_lock = threading.Lock()


class LockHolder(BaseModel):
    """Who holds a store's sync lock."""

    pid: int
    host: str
    since: str
    beat: float
    token: str

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, since {self.since}"


class SyncLocked(BusyError, RuntimeError):
    """Another sync holds the store; `holder` names it."""

    def __init__(self, path: str, holder: LockHolder, waited: float) -> None:
        self.holder = holder
        super().__init__(
            f"store {path} is in use by another sync ({holder.describe()}); waited {waited:.0f} s; "
            "try again later or pass --wait SECONDS"
        )


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _start_time(pid: int) -> str | None:
    """A process's start time from /proc (guards against pid reuse); None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: LockHolder, started: str | None) -> bool:
    """Whether the holder may still be running (unsure counts as alive)."""
    if holder.host != socket.gethostname():
        return time.time() - holder.beat < STALE_SECONDS
    if holder.pid == os.getpid():
        with _held_lock:
            return holder.token in _held
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or _start_time(holder.pid) in (None, started)


def _try_take(conn: sqlite3.Connection, token: str) -> tuple[bool, LockHolder | None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT pid, host, since, beat, token, started FROM _sync_lock").fetchone()
        holder = None
        if row is not None:
            holder = LockHolder(pid=row[0], host=row[1], since=row[2], beat=row[3], token=row[4])
            if _alive(holder, row[5]):
                conn.execute("ROLLBACK")
                return False, holder
        pid = os.getpid()
        conn.execute(
            "INSERT OR REPLACE INTO _sync_lock (id, pid, host, since, beat, token, started) "
            "VALUES (1, ?, ?, ?, ?, ?, ?)",
            (pid, socket.gethostname(), _now_text(), time.time(), token, _start_time(pid)),
        )
        conn.execute("COMMIT")
        return True, holder
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA synchronous = NORMAL")  # the store is in WAL mode: commits need no fsync
    conn.execute(SYNC_LOCK_DDL)  # also migration 3; here for a file opened by an older b24sync
    return conn


def holder_of(path: str) -> LockHolder | None:
    """Who holds the lock of the store at `path` now (None when free or held by a crashed run)."""
    if path == ":memory:":
        return None
    conn = _connect(path)
    try:
        row = conn.execute("SELECT pid, host, since, beat, token, started FROM _sync_lock").fetchone()
        if row is None:
            return None
        holder = LockHolder(pid=row[0], host=row[1], since=row[2], beat=row[3], token=row[4])
        return holder if _alive(holder, row[5]) else None
    finally:
        conn.close()


class Held:
    """A lock this run holds: `tick()` refreshes its heartbeat; `crashed` is the holder taken over."""

    def __init__(self, conn: sqlite3.Connection, token: str, crashed: LockHolder | None) -> None:
        self.conn, self.token, self.crashed = conn, token, crashed
        self.last = time.monotonic()

    def tick(self) -> None:
        """Refresh the heartbeat when BEAT_SECONDS have passed since the last one."""
        if time.monotonic() - self.last < BEAT_SECONDS:
            return
        self.last = time.monotonic()
        try:
            self.conn.execute("UPDATE _sync_lock SET beat = ? WHERE token = ?", (time.time(), self.token))
        except sqlite3.OperationalError:
            pass  # busy: the next tick tries again


@contextmanager
def sync_lock(store: Any, wait: float = DEFAULT_WAIT) -> Iterator[Held | None]:
    """Hold the store's sync lock for the block; wait up to `wait` seconds, else raise SyncLocked.

    Yields the `Held` lock (None for an in-memory store, which needs no lock).
    """
    path = str(store.path)
    if path == ":memory:":
        yield None
        return
    token = uuid.uuid4().hex
    conn = _connect(path)
    deadline = time.monotonic() + max(0.0, wait)
    started = time.monotonic()
    try:
        with _held_lock:
            _held.add(token)  # before the row exists, so our own check never takes it for a crash
        while True:
            took, holder = _try_take(conn, token)
            if took:
                break
            if time.monotonic() >= deadline:
                assert holder is not None
                raise SyncLocked(path, holder, time.monotonic() - started)
            time.sleep(POLL_SECONDS)
        try:
            yield Held(conn, token, holder)
        finally:
            conn.execute("DELETE FROM _sync_lock WHERE token = ?", (token,))
    finally:
        with _held_lock:
            _held.discard(token)
        conn.close()
