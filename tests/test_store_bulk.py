"""Bulk engine path for new rows: store.insert_new_rows (rows, bases, first stage moves) and new_keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_store_schema import make_template

from connector.store import BULK_NULL, Store, StoreError, new_key, new_keys

COLUMNS = ["id", "title", "funnel", "stage", "created_time", "moved_time", "vin", "mileage", "key"]
BASE = ["title", "funnel", "stage", "vin", "mileage"]


def row(pid: int, stage: str, created: str, key: str) -> list[object]:
    return [pid, f"item {pid}", "main", stage, created, None, None, pid, key]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "portal.db")
    s.ensure_process(make_template())
    yield s
    s.close()


def test_new_rows_get_their_values_as_base_and_a_first_stage_move(store: Store) -> None:
    rows = [
        [1, "a", "main", "NEW", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", BULK_NULL, 5, "k1"],
        [2, "b", "fleet", "WON", "2026-01-03T00:00:00Z", BULK_NULL, "VIN2", None, "k2"],
        [3, "c", None, None, "2026-01-04T00:00:00Z", None, None, BULK_NULL, "k3"],  # no stage: no move
    ]
    assert store.insert_new_rows("car", COLUMNS, rows, BASE) == 3
    got = {r[0]: r[1:] for r in store.conn.execute("SELECT key, vin, mileage, moved_time FROM car")}
    assert got == {
        "k1": (None, 5, "2026-01-02T00:00:00Z"),
        "k2": ("VIN2", None, None),
        "k3": (None, None, None),
    }
    assert store.base_get("car", "k1").data == {"title": "a", "funnel": "main", "stage": "NEW", "mileage": 5}
    b2 = store.base_get("car", "k2")
    assert (b2.portal_id, b2.data) == (2, {"title": "b", "funnel": "fleet", "stage": "WON", "vin": "VIN2"})
    moves = [(m.key, m.funnel, m.from_stage, m.to_stage, m.at, m.source) for m in store.stage_history("car")]
    assert moves == [
        ("k1", "main", None, "NEW", "2026-01-02T00:00:00Z", "pull"),  # moved time first
        ("k2", "fleet", None, "WON", "2026-01-03T00:00:00Z", "pull"),  # else created time
    ]
    assert store.pending_changes("car") == []  # engine writes are not logged


def test_only_the_rows_inserted_get_bases_and_moves(store: Store) -> None:
    store.insert_new_rows("car", COLUMNS, [row(1, "NEW", "2026-01-01T00:00:00Z", "k1")], BASE)
    store.base_set("car", "k1", 1, "2026-01-01T00:00:00Z", {"title": "agreed earlier"})
    assert store.insert_new_rows("car", COLUMNS, [], BASE) == 0
    store.insert_new_rows("car", COLUMNS, [row(2, "WON", "2026-01-05T00:00:00Z", "k2")], BASE)
    assert store.base_get("car", "k1").data == {"title": "agreed earlier"}
    assert [m.key for m in store.stage_history("car")] == ["k1", "k2"]


def test_a_local_edit_after_a_bulk_insert_is_logged_against_the_base(store: Store) -> None:
    store.insert_new_rows("car", COLUMNS, [row(7, "NEW", "2026-01-01T00:00:00Z", "k7")], BASE)
    store.conn.execute("UPDATE car SET vin = 'X' WHERE key = 'k7'")
    [change] = store.pending_changes("car")
    base = store.base_get("car", "k7").data
    assert change.key == "k7" and change.columns == ["vin"] and base.get("vin") is None


def test_bad_names_and_sources_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="needs the 'key' and 'id' columns"):
        store.insert_new_rows("car", ["title"], [["a"]], BASE)
    with pytest.raises(StoreError, match="lowercase snake"):
        store.insert_new_rows("car", ["id", "key", 'title"; DROP TABLE car; --'], [[1, "k", "a"]], BASE)
    with pytest.raises(StoreError, match="stage move source 'portal' is unknown; allowed: pull, push, local"):
        store.insert_new_rows("car", COLUMNS, [], BASE, source="portal")
    with pytest.raises(StoreError, match="no process table 'boat'"):
        store.insert_new_rows("boat", COLUMNS, [], BASE)


def test_new_keys_are_unique_time_ordered_and_shaped_like_new_key() -> None:
    keys = new_keys(10_000) + [new_key()] + new_keys(3)
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert all(len(k) == 32 and k[12] == "7" and int(k, 16) >= 0 for k in keys)
    assert new_keys(0) == []


def test_bulk_bases_leave_null_columns_out(store: Store) -> None:
    store.conn.execute("INSERT INTO car (key, id, title, vin) VALUES ('k1', 1, 't', NULL)")
    store.base_from_rows("car", ["k1"], ["title", "vin", "mileage"])
    raw = store.conn.execute("SELECT data FROM _base WHERE key = 'k1'").fetchone()[0]
    assert raw == ""  # lazy: the row's own values (tests/test_store_lazy_base.py)
    assert store.base_get("car", "k1").data == {"title": "t"}
    store.conn.execute("UPDATE car SET title = 'edited' WHERE key = 'k1'")  # a local edit: made JSON first
    raw = store.conn.execute("SELECT data FROM _base WHERE key = 'k1'").fetchone()[0]
    assert json.loads(raw) == {"title": "t"}
