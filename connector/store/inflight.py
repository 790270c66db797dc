"""Creates in flight (`_sync_inflight`): rows whose create was sent and not yet confirmed.

After a lost answer (or a kill) the next push looks these keys up on the portal by xmlId before it
sends anything again, so a row is never created twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence


def inflight_keys(conn: sqlite3.Connection, tbl: str) -> list[str]:
    """Keys of the rows of `tbl` whose create is unconfirmed."""
    return [r[0] for r in conn.execute("SELECT key FROM _sync_inflight WHERE tbl = ?", (tbl,))]


def add_inflight(conn: sqlite3.Connection, tbl: str, keys: Sequence[str]) -> None:
    """Note creates about to be sent (commit before sending)."""
    conn.executemany("INSERT OR IGNORE INTO _sync_inflight (tbl, key) VALUES (?, ?)",
                     [(tbl, k) for k in keys])


def drop_inflight(conn: sqlite3.Connection, tbl: str, keys: Sequence[str]) -> None:
    """Forget creates whose outcome is known."""
    for start in range(0, len(keys), 900):
        part = list(keys[start : start + 900])
        marks = ", ".join("?" for _ in part)
        conn.execute(f"DELETE FROM _sync_inflight WHERE tbl = ? AND key IN ({marks})", [tbl, *part])
