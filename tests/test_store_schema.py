"""Store schema: migrations, process tables, change-log triggers, engine writes, labels view."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from connector.store import Store, StoreError
from connector.store.migrations import SCHEMA_VERSION
from connector.templates.model import Template


def make_template(extra_fields: list[dict[str, Any]] | None = None, **over: Any) -> Template:
    data: dict[str, Any] = {
        "code": "car",
        "title": {"ru": "Автомобиль", "en": "Car"},
        "flags": {"isClientEnabled": True},
        "relations": {"parents": ["deal", "garage"]},
        "fields": [
            {"code": "vin", "type": "string", "label": {"ru": "VIN"}},
            {"code": "mileage", "type": "integer", "label": {"ru": "Пробег"}},
            {"code": "color", "type": "enumeration", "label": {"ru": "Цвет"},
             "options": [{"code": "red", "label": {"ru": "Красный", "en": "Red"}},
                         {"code": "blue", "label": {"ru": "Синий", "en": "Blue"}}]},
            {"code": "extras", "type": "enumeration", "multiple": True, "label": {"ru": "Опции"},
             "options": [{"code": "abs", "label": {"ru": "АБС"}},
                         {"code": "gps", "label": {"ru": "Навигатор"}}]},
            {"code": "price", "type": "money", "label": {"ru": "Цена"}},
            {"code": "insured", "type": "boolean", "label": {"ru": "Застрахован"}},
        ] + (extra_fields or []),
        "funnels": [
            {"code": "main", "name": {"ru": "Основная", "en": "Main"}, "default": True, "stages": [
                {"code": "NEW", "name": {"ru": "Новая", "en": "New"}},
                {"code": "WON", "name": {"ru": "Успех", "en": "Won"}, "semantics": "success"},
                {"code": "LOST", "name": {"ru": "Провал"}, "semantics": "failure"}]},
            {"code": "fleet", "name": {"ru": "Автопарк"}, "stages": [
                {"code": "NEW", "name": {"ru": "Заявка парка"}},
                {"code": "WON", "name": {"ru": "Парк принят"}, "semantics": "success"},
                {"code": "LOST", "name": {"ru": "Парк отказ"}, "semantics": "failure"}]},
        ],
    }
    data.update(over)
    return Template.model_validate(data)


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "portal.db")
    s.ensure_process(make_template())
    yield s
    s.close()


def foreign(store: Store) -> sqlite3.Connection:
    """A plain sqlite3 connection, as Datasette or a user script would open the file."""
    return sqlite3.connect(store.path, isolation_level=None)


def log(store: Store) -> list[tuple[str, str, str, list[str], str]]:
    rows = store.conn.execute("SELECT tbl, key, op, columns, status FROM _changes ORDER BY seq")
    return [(t, k, o, json.loads(c), s) for t, k, o, c, s in rows]


# --- migrations ------------------------------------------------------------------------------

def test_open_creates_internal_tables_wal_and_version(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "a.db")
    names = set(s.db.table_names())
    for t in ("_meta", "_idmap", "_cursors", "_changes", "_base", "_conflicts", "_stage_history", "_runs",
              "_applying", "_labels"):
        assert t in names
    assert s.meta_get("schema_version") == str(SCHEMA_VERSION)
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 0
    assert s.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert s.conn.execute("SELECT flag FROM _applying").fetchall() == [(0,)]
    s.close()


def test_reopen_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    s = Store.open(path)
    s.idmap.set("p", "type", "car", 13)
    s.close()
    s2 = Store.open(path)
    assert s2.idmap.get("p", "type", "car") == 13
    assert s2.conn.execute("SELECT count(*) FROM _applying").fetchone()[0] == 1
    s2.close()


def _open_in_child(path: str) -> int:
    s = Store.open(path)
    version = int(s.meta_get("schema_version") or 0)
    s.ensure_process(make_template())
    s.close()
    return version


def test_concurrent_open_from_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        versions = pool.map(_open_in_child, [path] * 3)
    assert versions == [SCHEMA_VERSION] * 3
    s = Store.open(path)
    assert s.processes() == ["car"]
    assert len([n for n in s.db.table_names() if n == "car"]) == 1
    s.close()


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    Store.open(path).close()
    c = sqlite3.connect(path)
    c.execute("UPDATE _meta SET value = '999' WHERE key = 'schema_version'")
    c.commit()
    c.close()
    with pytest.raises(StoreError, match="newer"):
        Store.open(path)


def test_open_in_missing_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(tmp_path / "nope" / "x.db")


# --- process table ---------------------------------------------------------------------------

def test_process_table_columns_follow_contract(store: Store) -> None:
    cols = store.db["car"].columns_dict
    assert list(cols)[:11] == ["key", "id", "title", "funnel", "stage", "assigned_by_id", "created_time",
                               "updated_time", "moved_time", "deleted", "deleted_at"]
    assert cols["mileage"] is int and cols["vin"] is str and cols["price"] is float
    assert cols["price_currency"] is str and cols["extras"] is str and cols["insured"] is int
    assert cols["parent_deal"] is int and "parent_deal_key" not in cols
    assert cols["parent_garage"] is int and cols["parent_garage_key"] is str
    assert cols["contact_ids"] is str and cols["company_id"] is int


def test_no_client_columns_without_flag(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "x.db")
    s.ensure_process(make_template(flags={"isClientEnabled": False}, relations={}))
    cols = s.db["car"].columns_dict
    assert "contact_ids" not in cols and "company_id" not in cols
    assert not [c for c in cols if c.startswith("parent_")]
    s.close()


def test_ensure_process_rerun_is_noop(store: Store) -> None:
    before = store.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    stamp = store.conn.execute("SELECT updated_at, signature FROM _processes").fetchall()
    assert store.ensure_process(make_template()) == []
    assert store.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before
    assert store.conn.execute("SELECT updated_at, signature FROM _processes").fetchall() == stamp


def test_ensure_process_adds_field_keeps_data_and_logs_it(store: Store) -> None:
    store.conn.execute("INSERT INTO car (key, vin) VALUES ('k1', 'VIN1')")
    added = store.ensure_process(make_template([
        {"code": "plate", "type": "string", "label": {"ru": "Номер"}},
        {"code": "tint", "type": "enumeration", "label": {"ru": "Тонировка"},
         "options": [{"code": "dark", "label": {"ru": "Тёмная"}}]},
    ]))
    assert added == ["plate", "tint"]
    assert store.row("car", "k1")["vin"] == "VIN1"
    fc = foreign(store)
    fc.execute("UPDATE car SET plate = 'A123', tint = 'dark' WHERE key = 'k1'")
    assert log(store)[-1] == ("car", "k1", "U", ["plate", "tint"], "pending")
    label = store.conn.execute("SELECT tint_label FROM car_labels WHERE key = 'k1'").fetchone()[0]
    assert label == "Тёмная"
    # a field dropped from the template keeps its column and data
    assert store.ensure_process(make_template()) == []
    assert store.row("car", "k1")["plate"] == "A123"


def test_bad_process_code_and_column_clash(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "x.db")

    class Fake:
        code = "Bad-Code"
        fields: list[Any] = []

    with pytest.raises(StoreError, match="lowercase snake"):
        s.ensure_process(Fake())  # type: ignore[arg-type]
    clash = make_template([{"code": "price_currency", "type": "string", "label": {"ru": "x"}}])
    with pytest.raises(StoreError, match="price_currency"):
        s.ensure_process(clash)
    assert "car" not in s.db.table_names()
    s.close()


# --- triggers --------------------------------------------------------------------------------

def test_foreign_insert_update_delete_are_logged_with_columns(store: Store) -> None:
    fc = foreign(store)
    fc.execute("INSERT INTO car (title, vin, mileage) VALUES ('Lada', 'X1', 100)")
    key = store.conn.execute("SELECT key FROM car").fetchone()[0]
    assert len(key) == 32 and int(key, 16) >= 0
    fc.execute("UPDATE car SET mileage = 200, vin = 'X1' WHERE key = ?", (key,))
    fc.execute("UPDATE car SET title = 'Lada' WHERE key = ?", (key,))  # no real change: not logged
    fc.execute("UPDATE car SET price = 5.5, price_currency = 'RUB', color = NULL WHERE key = ?", (key,))
    fc.execute("DELETE FROM car WHERE key = ?", (key,))
    assert log(store) == [
        ("car", key, "I", ["title", "vin", "mileage"], "pending"),
        ("car", key, "U", ["mileage"], "pending"),
        ("car", key, "U", ["price", "price_currency"], "pending"),
        ("car", key, "D", [], "pending"),
    ]
    fc.close()


def test_explicit_null_key_gets_a_random_key(store: Store) -> None:
    fc = foreign(store)
    fc.execute("INSERT INTO car (key, title) VALUES (NULL, 'a')")
    fc.execute("INSERT INTO car (title) VALUES ('b')")
    keys = [r[0] for r in store.conn.execute("SELECT key FROM car")]
    assert len(set(keys)) == 2 and all(len(k) == 32 for k in keys)


def test_type_change_is_logged_as_change(store: Store) -> None:
    store.conn.execute("INSERT INTO car (key, mileage) VALUES ('k', 1)")
    store.conn.execute("UPDATE car SET mileage = '1' WHERE key = 'k'")  # INTEGER affinity: still 1
    store.conn.execute("UPDATE car SET mileage = 1.5 WHERE key = 'k'")
    assert [c[3] for c in log(store)] == [["mileage"], ["mileage"]]


def test_engine_writes_are_not_logged_and_foreign_ones_are(store: Store) -> None:
    fc = foreign(store)
    with store.engine_writes() as conn:
        conn.execute("INSERT INTO car (key, id, title) VALUES ('e1', 7, 'from portal')")
        conn.execute("UPDATE car SET mileage = 5 WHERE key = 'e1'")
        # another connection sees the committed flag 0 while the engine holds 1 in its transaction
        assert fc.execute("SELECT flag FROM _applying").fetchone()[0] == 0
    assert store.conn.execute("SELECT flag FROM _applying").fetchone()[0] == 0
    assert log(store) == []
    fc.execute("UPDATE car SET title = 'edited by user' WHERE key = 'e1'")
    assert log(store) == [("car", "e1", "U", ["title"], "pending")]
    assert store.pending_changes()[0].portal_id == 7
    fc.close()


def test_foreign_write_during_engine_transaction_is_logged(store: Store) -> None:
    """A foreign writer blocked by the engine's transaction writes right after it, and is logged."""
    import threading

    done = threading.Event()

    def user_write() -> None:
        c = sqlite3.connect(store.path, isolation_level=None, timeout=10)
        c.execute("INSERT INTO car (key, title) VALUES ('u1', 'user')")
        c.close()
        done.set()

    with store.engine_writes() as conn:
        conn.execute("INSERT INTO car (key, title) VALUES ('e1', 'engine')")
        t = threading.Thread(target=user_write)
        t.start()
        assert not done.wait(0.3)  # blocked on the write lock, never sees flag = 1
    t.join(10)
    assert done.is_set()
    assert [(k, op) for _, k, op, _, _ in log(store)] == [("u1", "I")]


def test_engine_writes_rollback_resets_flag(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.engine_writes() as conn:
            conn.execute("INSERT INTO car (key) VALUES ('gone')")
            raise RuntimeError("boom")
    assert store.row("car", "gone") is None
    assert store.conn.execute("SELECT flag FROM _applying").fetchone()[0] == 0
    store.conn.execute("INSERT INTO car (key) VALUES ('mine')")
    assert [k for _, k, _, _, _ in log(store)] == ["mine"]


def test_nested_engine_writes_and_plain_transaction(store: Store) -> None:
    with store.engine_writes() as conn:
        with store.engine_writes() as inner:
            inner.execute("INSERT INTO car (key) VALUES ('a')")
        conn.execute("INSERT INTO car (key) VALUES ('b')")  # still inside: not logged
    assert log(store) == []
    with store.transaction() as conn:
        conn.execute("INSERT INTO car (key) VALUES ('c')")
    assert [k for _, k, _, _, _ in log(store)] == ["c"]


# --- labels view -----------------------------------------------------------------------------

def test_labels_view_names_funnel_stage_and_options(store: Store) -> None:
    fc = foreign(store)
    fc.execute("INSERT INTO car (key, funnel, stage, color, extras) VALUES "
               "('a', 'main', 'WON', 'red', '[\"abs\",\"gps\",\"zzz\"]'), "
               "('b', 'fleet', 'WON', 'blue', NULL), ('c', NULL, 'NEW', 'nope', 'not json')")
    rows = {r["key"]: r for r in store.db["car_labels"].rows}
    assert (rows["a"]["funnel_name"], rows["a"]["stage_name"]) == ("Основная", "Успех")
    assert (rows["b"]["funnel_name"], rows["b"]["stage_name"]) == ("Автопарк", "Парк принят")
    assert (rows["c"]["funnel_name"], rows["c"]["stage_name"]) == ("Основная", "Новая")  # default funnel
    assert rows["a"]["color_label"] == "Красный" and rows["c"]["color_label"] is None
    assert json.loads(rows["a"]["extras_label"]) == ["АБС", "Навигатор", "zzz"]
    assert rows["b"]["extras_label"] is None and rows["c"]["extras_label"] is None
    assert rows["a"]["vin"] is None and "price_currency" in rows["a"]


def test_labels_view_in_english_falls_back(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "en.db")
    s.ensure_process(make_template(), lang="en")
    s.conn.execute("INSERT INTO car (key, funnel, stage, color) VALUES ('a', 'main', 'LOST', 'red'), "
                   "('b', 'main', 'WON', 'blue')")
    rows = {r["key"]: r for r in s.db["car_labels"].rows}
    assert rows["a"]["stage_name"] == "Провал"  # no English name: falls back to Russian
    assert rows["b"]["stage_name"] == "Won" and rows["b"]["color_label"] == "Blue"
    assert rows["a"]["funnel_name"] == "Main"
    s.close()


def test_wide_table_triggers_stay_under_sqlite_depth_limit(tmp_path: Path) -> None:
    fields = [{"code": f"f{i}", "type": "string", "label": {"ru": "x"}} for i in range(1200)]
    s = Store.open(tmp_path / "wide.db")
    s.ensure_process(Template.model_validate({"code": "wide", "title": {"ru": "W"}, "fields": fields}))
    s.conn.execute("INSERT INTO wide (key, f5) VALUES ('k', 'a')")
    s.conn.execute("UPDATE wide SET f1199 = 'b', f3 = 'c' WHERE key = 'k'")
    [change] = s.pending_changes()
    assert (change.op, change.columns) == ("I", ["f5", "f3", "f1199"])
    s.close()
