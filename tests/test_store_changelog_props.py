"""Property: whatever a user does to rows, the coalesced change log describes the net difference."""

from __future__ import annotations

from typing import Any

import sqlite_utils
from hypothesis import given, settings
from hypothesis import strategies as st
from test_store_schema import make_template

from connector.store import Store

KEYS = ["a", "b", "c"]
COLUMNS = ["title", "vin", "mileage", "color"]
VALUES = st.one_of(st.none(), st.integers(0, 3), st.sampled_from(["x", "y"]))
OPS = st.lists(
    st.tuples(st.sampled_from(["insert", "update", "delete"]), st.sampled_from(KEYS),
              st.dictionaries(st.sampled_from(COLUMNS), VALUES, min_size=1, max_size=3)),
    max_size=12,
)


def snapshot(store: Store) -> dict[str, dict[str, Any]]:
    cur = store.conn.execute('SELECT "key", ' + ", ".join(COLUMNS) + " FROM car")
    return {r[0]: dict(zip(COLUMNS, r[1:], strict=True)) for r in cur}


@settings(max_examples=40, deadline=None)
@given(initial=st.sets(st.sampled_from(KEYS)), ops=OPS)
def test_coalesced_changes_match_net_difference(initial: set[str], ops: list[Any]) -> None:
    store = Store.open(":memory:")
    store.ensure_process(make_template())
    store.upsert_rows("car", [{"key": k, "id": i + 1, "title": "t"} for i, k in enumerate(sorted(initial))],
                      by="key")
    before = snapshot(store)
    for op, key, values in ops:  # plain writes on a logged connection, as any SQLite tool does
        exists = key in snapshot(store)
        if op == "insert" and not exists:
            cols = ", ".join(["key", *values])
            store.conn.execute(f"INSERT INTO car ({cols}) VALUES ({', '.join('?' * (len(values) + 1))})",
                               [key, *values.values()])
        elif op == "update" and exists:
            sets = ", ".join(f"{c} = ?" for c in values)
            store.conn.execute(f"UPDATE car SET {sets} WHERE key = ?", [*values.values(), key])
        elif op == "delete" and exists:
            store.conn.execute("DELETE FROM car WHERE key = ?", (key,))
    after = snapshot(store)
    changes = {c.key: c for c in store.pending_changes("car")}
    for key in KEYS:
        was, now = before.get(key), after.get(key)
        change = changes.get(key)
        if was == now and change is None:
            continue
        if was != now:
            assert change is not None, f"{key}: {was} -> {now} not logged"
        assert change is not None
        if now is None:
            assert change.op == "D"
            assert change.portal_id == (sorted(initial).index(key) + 1 if was is not None else None)
        elif was is None:
            assert change.op == "I"
            assert {c for c, v in now.items() if v is not None} <= set(change.columns)
        else:
            assert change.op == "U"
            assert {c for c in COLUMNS if was[c] != now[c]} <= set(change.columns)
    store.close()


def test_sqlite_utils_writes_are_logged(tmp_path: Any) -> None:
    """Another program using sqlite-utils (as Datasette does) is logged like any other writer."""
    store = Store.open(tmp_path / "p.db")
    store.ensure_process(make_template())
    other = sqlite_utils.Database(str(tmp_path / "p.db"))
    other["car"].insert({"title": "from sqlite-utils", "vin": "V"})
    other["car"].update(other.execute("SELECT key FROM car").fetchone()[0], {"vin": "W"})
    [change] = store.pending_changes()
    assert change.op == "I" and change.columns == ["title", "vin"] and len(change.seqs) == 2
    other.close()
    store.close()
