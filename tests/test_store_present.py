"""`rows.present`: which ids or keys a process table holds, whichever way it looks them up.

Dense integer ids (a keyset pull's chunk) are read as one index range; anything else by IN lists. Both
must give exactly what a plain `IN` query gives, for stored values of any type (a user's SQL may put
text or a real in the INTEGER id column).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.store import rows

STORED = st.one_of(st.integers(min_value=-5, max_value=400), st.sampled_from(["7", "abc", 7.5, 8.0, None]))


def _plain(conn: sqlite3.Connection, column: str, values: list[Any]) -> set[Any]:
    found: set[Any] = set()
    for value in values:
        found.update(r[0] for r in conn.execute(f"SELECT {column} FROM t WHERE {column} IN (?)", (value,)))
    return found


@settings(max_examples=200, deadline=None)
@given(st.lists(STORED, max_size=300), st.lists(st.integers(min_value=-10, max_value=420), max_size=300),
       st.booleans())
def test_present_is_a_plain_in_query(stored: list[Any], asked: list[int], dense: bool) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (key TEXT PRIMARY KEY, id INTEGER UNIQUE)")
    conn.executemany("INSERT OR IGNORE INTO t (key, id) VALUES (?, ?)",
                     [(f"k{n}", value) for n, value in enumerate(stored)])
    if dense:  # a pull's chunk: every other id of a run of 200 (the table holds some between), and a few more
        run = [(f"r{i}", i) for i in range(95, 310, 3)]
        conn.executemany("INSERT OR IGNORE INTO t (key, id) VALUES (?, ?)", run)
        asked = list(range(100, 300, 2)) + asked[:10]
    assert rows.present(conn, "t", "id", asked) == _plain(conn, "id", asked)
    keys = [f"k{n}" for n in range(0, 2 * len(stored) + 1, 3)]
    assert rows.present(conn, "t", "key", keys) == _plain(conn, "key", keys)
