"""One sync per store at a time: a lock row in the store, naming its holder (pid, host, since).

The lock is one row in the store (connector/store/sync_lock.py). Taking it is one `BEGIN IMMEDIATE`
transaction, so two processes (or threads) never both win. While held, the run refreshes `beat` as it
makes progress (`Held.tick`, at most every BEAT_SECONDS: each pulled chunk, each pushed wave). A holder
that crashed is taken over safely: on the same host when its pid is gone (or is another process now,
or is this process but not a lock it holds); on another host when its heartbeat is older than
STALE_SECONDS.
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
from typing import TYPE_CHECKING

from pydantic import BaseModel

from connector.errors import BusyError
from connector.store import sync_lock as lock_row
from connector.times import utc_now_text

if TYPE_CHECKING:
    from connector.store import Store

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


def _holder(row: lock_row.LockRow) -> LockHolder:
    return LockHolder(pid=row.pid, host=row.host, since=row.since, beat=row.beat, token=row.token)


def _row_alive(row: lock_row.LockRow) -> bool:
    return _alive(_holder(row), row.started)


def _try_take(conn: sqlite3.Connection, token: str) -> tuple[bool, LockHolder | None]:
    pid = os.getpid()
    mine = lock_row.LockRow(pid, socket.gethostname(), utc_now_text(), time.time(), token, _start_time(pid))
    took, previous = lock_row.take(conn, mine, _row_alive)
    return took, _holder(previous) if previous is not None else None


def holder_of(path: str) -> LockHolder | None:
    """Who holds the lock of the store at `path` now (None when free or held by a crashed run)."""
    if path == ":memory:":
        return None
    conn = lock_row.connect(path)
    try:
        row = lock_row.holder(conn)
        return _holder(row) if row is not None and _row_alive(row) else None
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
            lock_row.beat(self.conn, self.token, time.time())
        except sqlite3.OperationalError:
            pass  # busy: the next tick tries again


@contextmanager
def sync_lock(store: Store, wait: float = DEFAULT_WAIT) -> Iterator[Held | None]:
    """Hold the store's sync lock for the block; wait up to `wait` seconds, else raise SyncLocked.

    Yields the `Held` lock (None for an in-memory store, which needs no lock).
    """
    path = str(store.path)
    if path == ":memory:":
        yield None
        return
    token = uuid.uuid4().hex
    conn = lock_row.connect(path)
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
            lock_row.release(conn, token)
    finally:
        with _held_lock:
            _held.discard(token)
        conn.close()
