"""Lazy bases (`_base.data = ''`, store/bases.py): they read exactly as the eager JSON bases they replace.

A pull that has just written rows makes their bases lazy ("the row's own values of the recorded
columns") instead of copying every value into JSON. These tests hold a lazy base equal, at every
step, to the eager snapshot an eager store would hold: the row's values of the base columns at the
moment the base was taken, NULL columns left out (docs/CONTRACTS.md "Local store layout").
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from test_store_schema import make_template

from connector.store import BULK_NULL, Store, StoreError, bases, rows

COLUMNS = ["id", "title", "funnel", "stage", "created_time", "vin", "mileage", "key"]
BASE = ["title", "funnel", "stage", "vin", "mileage"]


def new_row(pid: int, key: str, vin: str | None = None, mileage: int | None = None) -> list[Any]:
    return [pid, f"item {pid}", "main", "NEW", "2026-01-01T00:00:00Z",
            BULK_NULL if vin is None else vin, mileage, key]


def snapshot(store: Store, key: str, columns: list[str] = BASE) -> dict[str, Any]:
    """The eager base: the row's values of `columns`, NULLs left out."""
    found = store.row("car", key)
    assert found is not None
    return {c: found[c] for c in columns if found[c] is not None}


def raw(store: Store, key: str) -> str:
    return store.conn.execute("SELECT data FROM _base WHERE tbl = 'car' AND key = ?", (key,)).fetchone()[0]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "lazy.db")
    s.ensure_process(make_template())
    yield s
    s.close()


def test_a_bulk_insert_leaves_lazy_bases_that_read_as_the_rows(store: Store) -> None:
    store.insert_new_rows("car", COLUMNS, [new_row(1, "k1", "VIN1", 10), new_row(2, "k2")], BASE)
    assert raw(store, "k1") == "" and raw(store, "k2") == ""
    assert store.base_get("car", "k1").data == {"title": "item 1", "funnel": "main", "stage": "NEW",
                                                "vin": "VIN1", "mileage": 10}
    assert store.base_get("car", "k2").data == snapshot(store, "k2")
    with store.engine_writes() as conn:
        assert bases.bases_of(conn, "car", ["k1", "k2"])["k2"][1] == snapshot(store, "k2")


def test_a_local_edit_by_another_sqlite_client_keeps_the_old_base(store: Store, tmp_path: Path) -> None:
    store.insert_new_rows("car", COLUMNS, [new_row(1, "k1", "VIN1", 10)], BASE)
    before = snapshot(store, "k1")
    other = sqlite3.connect(tmp_path / "lazy.db", isolation_level=None)  # no pragmas of ours
    other.execute("UPDATE car SET vin = 'EDITED', mileage = NULL WHERE key = 'k1'")
    other.close()
    assert json.loads(raw(store, "k1")) == before  # made JSON from the OLD values before the edit
    assert store.base_get("car", "k1").data == before
    assert [c.op for c in store.pending_changes("car")] == ["U"]  # the edit is still logged


def test_a_local_delete_keeps_the_base_of_the_gone_row(store: Store) -> None:
    store.insert_new_rows("car", COLUMNS, [new_row(1, "k1", "VIN1")], BASE)
    before = snapshot(store, "k1")
    store.conn.execute("DELETE FROM car WHERE key = 'k1'")
    assert store.base_get("car", "k1").data == before


def test_an_engine_write_and_a_replace_keep_the_base_too(store: Store) -> None:
    store.insert_new_rows("car", COLUMNS, [new_row(1, "k1", "VIN1"), new_row(2, "k2", "VIN2")], BASE)
    first, second = snapshot(store, "k1"), snapshot(store, "k2")
    with store.engine_writes() as conn:
        rows.set_values(conn, "car", "k1", {"vin": "REMOTE"})
        # no engine path replaces a row today; if one did, the replaced row's DELETE triggers fire
        # (PRAGMA recursive_triggers, set by Store.open), so its lazy base is kept as JSON
        conn.execute("INSERT OR REPLACE INTO car (key, id, title) VALUES ('k2', 22, 'replaced')")
    assert store.base_get("car", "k1").data == first
    assert store.base_get("car", "k2").data == second


def test_new_base_columns_turn_older_lazy_bases_into_json_first(store: Store) -> None:
    store.insert_new_rows("car", COLUMNS, [new_row(1, "k1", "VIN1", 7)], BASE)
    old = snapshot(store, "k1")
    store.insert_new_rows("car", COLUMNS, [new_row(2, "k2", "VIN2", 8)], ["title", "vin"])
    assert json.loads(raw(store, "k1")) == old  # taken with the old columns, kept with them
    assert store.base_get("car", "k2").data == {"title": "item 2", "vin": "VIN2"}
    store.conn.execute("UPDATE car SET mileage = 9, vin = 'X' WHERE key = 'k2'")
    assert store.base_get("car", "k2").data == {"title": "item 2", "vin": "VIN2"}


def test_the_insert_triggers_are_back_after_a_bulk_insert(store: Store) -> None:
    def triggers() -> list[tuple[str, str]]:
        return store.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'car' ORDER BY name"
        ).fetchall()

    before = [t for t in triggers() if not t[0].startswith("_base_")]
    store.insert_new_rows("car", COLUMNS, [new_row(1, "k1")], BASE)
    assert [t for t in triggers() if not t[0].startswith("_base_")] == before
    store.conn.execute("INSERT INTO car (title) VALUES ('made here')")  # a local insert is logged
    assert [c.op for c in store.pending_changes("car")] == ["I"]
    with pytest.raises(sqlite3.IntegrityError, match="key already in the table"):
        store.conn.execute("INSERT INTO car (key, title) VALUES ('k1', 'clash')")  # the guard is back


def test_a_failed_bulk_insert_leaves_the_triggers_and_the_rows_as_they_were(store: Store) -> None:
    store.insert_new_rows("car", COLUMNS, [new_row(1, "k1")], BASE)
    count = store.conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()
    with pytest.raises(sqlite3.IntegrityError):  # id 1 is taken (UNIQUE)
        store.insert_new_rows("car", COLUMNS, [new_row(5, "k5"), new_row(1, "k9")], BASE)
    assert store.conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'").fetchone() == count
    assert [r[0] for r in store.conn.execute("SELECT key FROM car ORDER BY key")] == ["k1"]


def test_the_bulk_insert_refuses_to_run_outside_the_engine_transaction(store: Store) -> None:
    from connector.store.bulk import insert_new_rows

    with pytest.raises(StoreError, match="engine's transaction"):
        insert_new_rows(store.conn, "car", COLUMNS, [new_row(1, "k1")], BASE, "pull")
    assert store.conn.execute("SELECT COUNT(*) FROM car").fetchone() == (0,)


# ---- a model: every base, at every step, equals the eager snapshot ----------------------------

VALUES = st.one_of(st.none(), st.text(max_size=5), st.integers(-5, 5))


class LazyBaseMachine(RuleBasedStateMachine):
    """Bulk inserts, lazy re-bases, eager bases, local and engine edits, deletes: bases match a model."""

    def __init__(self) -> None:
        super().__init__()
        self.expected: dict[str, dict[str, Any]] = {}  # key -> the eager base
        self.next_id = 1

    @initialize()
    def open_store(self) -> None:
        import tempfile

        self.dir = tempfile.TemporaryDirectory()
        self.store = Store.open(Path(self.dir.name) / "m.db")
        self.store.ensure_process(make_template())

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    def live(self) -> list[str]:
        return [r[0] for r in self.store.conn.execute("SELECT key FROM car ORDER BY key")]

    @rule(n=st.integers(1, 3), vin=VALUES.filter(lambda v: v != ""), mileage=st.none() | st.integers(0, 9))
    def pull_new(self, n: int, vin: Any, mileage: int | None) -> None:
        batch = []
        for _ in range(n):
            pid = self.next_id
            self.next_id += 1
            batch.append(new_row(pid, f"k{pid}", None if vin is None else str(vin), mileage))
        with self.store.engine_writes():
            self.store.insert_new_rows("car", COLUMNS, batch, BASE)
        for r in batch:
            self.expected[r[-1]] = snapshot(self.store, r[-1])

    @rule(data=st.data(), column=st.sampled_from(["title", "vin", "mileage"]), value=VALUES)
    def local_edit(self, data: st.DataObject, column: str, value: Any) -> None:
        keys = self.live()
        if keys:
            key = data.draw(st.sampled_from(keys))
            self.store.conn.execute(f"UPDATE car SET {column} = ? WHERE key = ?", (value, key))

    @rule(data=st.data(), value=VALUES)
    def engine_edit(self, data: st.DataObject, value: Any) -> None:
        keys = self.live()
        if keys:
            key = data.draw(st.sampled_from(keys))
            with self.store.engine_writes() as conn:
                rows.set_values(conn, "car", key, {"vin": value})

    @rule(data=st.data())
    def rebase_lazily(self, data: st.DataObject) -> None:
        keys = self.live()
        if keys:
            chosen = data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3, unique=True))
            with self.store.engine_writes():
                self.store.base_from_rows("car", chosen, BASE)
            for key in chosen:
                self.expected[key] = snapshot(self.store, key)

    @rule(data=st.data(), value=VALUES)
    def rebase_eagerly(self, data: st.DataObject, value: Any) -> None:
        keys = self.live()
        if keys:
            key = data.draw(st.sampled_from(keys))
            self.store.base_set("car", key, None, None, {"vin": value})
            self.expected[key] = {"vin": value}

    @rule(data=st.data())
    def local_delete(self, data: st.DataObject) -> None:
        keys = self.live()
        if keys:
            self.store.conn.execute("DELETE FROM car WHERE key = ?", (data.draw(st.sampled_from(keys)),))

    @invariant()
    def every_base_reads_as_its_model(self) -> None:
        if not hasattr(self, "store"):
            return
        for key, want in self.expected.items():
            got = self.store.base_get("car", key)
            assert got is not None and got.data == want, key
        with self.store.engine_writes() as conn:
            many = bases.bases_of(conn, "car", list(self.expected))
            read = rows.rows_by(conn, "car", "key", list(self.expected))  # lazy bases read from these
            from_rows = bases.bases_of(conn, "car", list(self.expected), read)
        assert {k: v[1] for k, v in many.items()} == self.expected
        assert from_rows == many


TestLazyBaseMachine = LazyBaseMachine.TestCase
TestLazyBaseMachine.settings = settings(max_examples=40, stateful_step_count=12, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
