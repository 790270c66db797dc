"""Store API: id map, change log, base snapshots, cursors, conflicts, stage history, runs, bulk upsert."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_store_schema import make_template

from connector.store import Store, StoreError


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "portal.db")
    s.ensure_process(make_template())
    yield s
    s.close()


def user(store: Store) -> sqlite3.Connection:
    return sqlite3.connect(store.path, isolation_level=None)


# --- id map ----------------------------------------------------------------------------------

def test_idmap_set_get_overwrite_and_reverse(store: Store) -> None:
    m = store.idmap
    assert m.get("acme", "type", "car") is None
    m.set("acme", "type", "car", 13, extra={"entityTypeId": 1032})
    m.set("acme", "stage", "car.main.NEW", "DT1032_7:NEW")
    m.set("other", "type", "car", 4)
    assert m.get("acme", "type", "car") == 13
    assert m.entry("acme", "type", "car").extra == {"entityTypeId": 1032}
    assert m.get("other", "type", "car") == 4
    assert m.get("acme", "stage", "car.main.NEW") == "DT1032_7:NEW"
    assert m.code_of("acme", "stage", "DT1032_7:NEW") == "car.main.NEW"
    m.set("acme", "type", "car", 14)
    assert m.get("acme", "type", "car") == 14 and m.entry("acme", "type", "car").extra is None
    assert [(e.kind, e.code) for e in m.all("acme")] == [("stage", "car.main.NEW"), ("type", "car")]
    assert m.as_dict("acme", "type") == {"car": 14}
    assert m.portals() == ["acme", "other"]


def test_idmap_delete_scopes(store: Store) -> None:
    m = store.idmap
    entries = [("type", "car", 1), ("field", "car.vin", "UF_CRM_1_VIN"), ("field", "car.km", "x")]
    for kind, code, pid in entries:
        m.set("acme", kind, code, pid)
    m.set("b", "type", "car", 2)
    assert m.delete("acme", "field", "car.vin") == 1
    assert m.delete("acme", "field") == 1
    assert m.delete("acme") == 1
    assert m.all("acme") == [] and m.get("b", "type", "car") == 2
    with pytest.raises(StoreError, match="kind"):
        m.delete("acme", code="car")


def test_idmap_rejects_bad_input(store: Store) -> None:
    with pytest.raises(StoreError, match="kind 'widget' is unknown; allowed: type, field"):
        store.idmap.set("acme", "widget", "x", 1)
    with pytest.raises(StoreError, match="portal_id"):
        store.idmap.set("acme", "type", "x", None)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="portal"):
        store.idmap.set("", "type", "x", 1)


# --- change log ------------------------------------------------------------------------------

def test_pending_changes_coalesce_per_row(store: Store) -> None:
    u = user(store)
    u.execute("INSERT INTO car (key, title) VALUES ('a', 'A')")
    u.execute("UPDATE car SET vin = 'V' WHERE key = 'a'")
    with store.engine_writes() as conn:
        conn.execute("INSERT INTO car (key, id, title) VALUES ('b', 50, 'B')")
    u.execute("UPDATE car SET mileage = 1 WHERE key = 'b'")
    u.execute("UPDATE car SET title = 'BB', mileage = 2 WHERE key = 'b'")
    u.execute("INSERT INTO car (key, title) VALUES ('c', 'C')")
    u.execute("DELETE FROM car WHERE key = 'c'")
    with store.engine_writes() as conn:
        conn.execute("INSERT INTO car (key, id) VALUES ('d', 60)")
    u.execute("UPDATE car SET vin = 'X' WHERE key = 'd'")
    u.execute("DELETE FROM car WHERE key = 'd'")
    changes = store.pending_changes("car")
    got = [(c.key, c.op, c.columns, c.portal_id, len(c.seqs)) for c in changes]
    assert got == [
        ("a", "I", ["title", "vin"], None, 2),
        ("b", "U", ["mileage", "title"], 50, 2),
        ("c", "D", [], None, 2),          # created and deleted locally: nothing on the portal
        ("d", "D", [], 60, 2),
    ]
    assert [c.key for c in store.pending_changes(limit=2)] == ["a", "b"]
    assert store.pending_changes("other") == []
    with pytest.raises(StoreError, match="limit"):
        store.pending_changes(limit=0)


def test_delete_then_reinsert_is_an_update(store: Store) -> None:
    with store.engine_writes() as conn:
        conn.execute("INSERT INTO car (key, id, title) VALUES ('a', 5, 'x')")
    u = user(store)
    u.execute("DELETE FROM car WHERE key = 'a'")
    u.execute("INSERT INTO car (key, id, title, vin) VALUES ('a', 5, 'y', 'V')")
    [c] = store.pending_changes()
    assert (c.op, c.portal_id) == ("U", 5)
    assert c.columns[:3] == ["id", "title", "vin"]  # replaced whole: every column may differ
    assert set(c.columns) == set(store.db["car"].columns_dict) - {"key"}


def test_mark_done_failed_retry(store: Store) -> None:
    u = user(store)
    for k in ("a", "b", "c"):
        u.execute("INSERT INTO car (key, title) VALUES (?, 't')", (k,))
    a, b, c = store.pending_changes()
    assert store.mark_done(a.seqs) == 1
    store.mark_failed(b.seqs, "CRM_FIELD_ERROR_VALUE_NOT_VALID: Invalid value for field \"vin\"")
    assert [x.key for x in store.pending_changes()] == ["c"]  # a failed row does not block the others
    [f] = store.failed_changes()
    assert (f.key, f.attempts) == ("b", 1) and "Invalid value" in (f.error or "")
    assert store.retry_failed() == 1
    assert [x.key for x in store.pending_changes()] == ["b", "c"]
    store.mark_failed(store.pending_changes()[0].seqs, "again")
    assert store.failed_changes()[0].attempts == 2
    # a local edit of the failed row retries the whole row: still a create, with every column
    u.execute("UPDATE car SET vin = 'fixed' WHERE key = 'b'")
    pend = {x.key: x for x in store.pending_changes()}
    assert list(pend) == ["b", "c"]
    assert pend["b"].columns == ["title", "vin"] and pend["b"].op == "I" and pend["b"].error is None
    assert len(pend["b"].seqs) == 2 and store.failed_changes()[0].key == "b"
    store.mark_done(pend["b"].seqs)
    assert store.failed_changes() == []
    assert store.mark_pushed(pend["c"].seqs) == 1
    assert store.prune_done() == 4
    with pytest.raises(StoreError, match="error text"):
        store.mark_failed([1], "")
    with pytest.raises(StoreError, match="integers"):
        store.mark_done(["1"])  # type: ignore[list-item]


# --- bulk upsert (engine path) ---------------------------------------------------------------

def test_upsert_rows_by_portal_id_keeps_local_key_and_is_unlogged(store: Store) -> None:
    n = store.upsert_rows("car", [{"id": i, "title": f"t{i}", "mileage": i} for i in range(1, 101)])
    assert n == 100
    key7 = store.conn.execute("SELECT key FROM car WHERE id = 7").fetchone()[0]
    store.upsert_rows("car", [{"id": 7, "title": "new"}, {"id": 200, "title": "x", "vin": "V"}])
    row = store.conn.execute("SELECT key, title, mileage FROM car WHERE id = 7").fetchone()
    assert row == (key7, "new", 7)
    assert store.conn.execute("SELECT count(*) FROM car").fetchone()[0] == 101
    assert store.pending_changes() == []


def test_upsert_rows_by_key_and_errors(store: Store) -> None:
    store.upsert_rows("car", [{"key": "k1", "title": "a"}], by="key")
    store.upsert_rows("car", [{"key": "k1", "id": 9}], by="key")
    assert store.row("car", "k1")["id"] == 9 and store.row("car", "k1")["title"] == "a"
    with pytest.raises(StoreError, match="no column"):
        store.upsert_rows("car", [{"id": 1, "nope": 1}])
    with pytest.raises(StoreError, match="has no 'id'"):
        store.upsert_rows("car", [{"title": "x"}])
    with pytest.raises(StoreError, match="use 'id'"):
        store.upsert_rows("car", [{"id": 1}], by="title")
    with pytest.raises(StoreError, match="no process table 'truck'"):
        store.upsert_rows("truck", [{"id": 1}])
    assert store.pending_changes() == []


# --- base, cursors ---------------------------------------------------------------------------

def test_base_snapshot_roundtrip(store: Store) -> None:
    assert store.base_get("car", "k") is None
    store.base_set("car", "k", 5, "2026-01-02T03:04:05Z", {"title": "a", "mileage": 3})
    b = store.base_get("car", "k")
    assert (b.portal_id, b.updated_time, b.data) == (5, "2026-01-02T03:04:05Z", {"title": "a", "mileage": 3})
    store.base_set("car", "k", 5, "2026-01-03T00:00:00Z", {"title": "b"})
    assert store.base_get("car", "k").data == {"title": "b"}
    store.base_delete("car", "k")
    assert store.base_get("car", "k") is None
    with pytest.raises(StoreError, match="mapping"):
        store.base_set("car", "k", 5, None, ["x"])  # type: ignore[arg-type]


def test_cursor_set_in_engine_transaction_rolls_back_with_rows(store: Store) -> None:
    assert store.cursor_get("acme", "car") is None
    store.cursor_set("acme", "car", "2026-01-01T00:00:00Z")
    with pytest.raises(RuntimeError):
        with store.engine_writes():
            store.upsert_rows("car", [{"id": 1}])
            store.cursor_set("acme", "car", "2026-02-01T00:00:00Z")
            raise RuntimeError("killed")
    assert store.cursor_get("acme", "car") == "2026-01-01T00:00:00Z"
    assert store.conn.execute("SELECT count(*) FROM car").fetchone()[0] == 0


# --- conflicts, stage history, runs ----------------------------------------------------------

def test_conflicts_add_list_resolve(store: Store) -> None:
    cid = store.add_conflict("car", "k", 5, ["vin"], {"vin": "L"}, {"vin": "R"}, {"vin": "B"}, policy="merge")
    store.add_conflict("car", "k2", None, ["title"], {"title": "x"}, {"title": "y"})
    open_ = store.list_conflicts("car")
    assert [c.key for c in open_] == ["k", "k2"]
    assert open_[0].local == {"vin": "L"} and open_[0].base == {"vin": "B"} and open_[0].policy == "merge"
    c = store.resolve_conflict(cid, "remote")
    assert c.status == "resolved" and c.resolution == "remote" and c.resolved_at
    assert [x.key for x in store.list_conflicts()] == ["k2"]
    assert len(store.list_conflicts(status=None)) == 2
    with pytest.raises(StoreError, match="allowed: local, remote, merged, dismissed"):
        store.resolve_conflict(cid, "whatever")
    with pytest.raises(StoreError, match="no conflict"):
        store.resolve_conflict(999, "local")


def test_stage_history_orders_and_dedupes(store: Store) -> None:
    store.add_stage_move("car", "k", 5, "main", "NEW", "WON", "2026-01-02T00:00:00Z", "pull")
    store.add_stage_move("car", "k", 5, "main", None, "NEW", "2026-01-01T00:00:00Z", "pull")
    again = store.add_stage_move("car", None, 5, "main", "NEW", "WON", "2026-01-02T00:00:00Z", "pull")
    store.add_stage_move("car", "k2", None, "main", None, "NEW", "2026-01-01T00:00:00Z", "local")
    hist = store.stage_history("car", "k")
    assert [(h.from_stage, h.to_stage) for h in hist] == [(None, "NEW"), ("NEW", "WON")]
    assert again == hist[1].id
    assert len(store.stage_history("car")) == 3
    with pytest.raises(StoreError, match="source"):
        store.add_stage_move("car", "k", 5, "main", None, "NEW", "2026-01-01T00:00:00Z", "robot")


def test_runs(store: Store) -> None:
    r1 = store.run_start("sync", "acme", job="nightly")
    store.run_finish(r1, "ok", {"pulled": 10, "pushed": 2})
    r2 = store.run_start("deploy", "acme")
    store.run_finish(r2, "failed", {}, error="ACCESS_DENIED")
    runs = store.last_runs()
    assert [r.id for r in runs] == [r2, r1]
    assert runs[1].figures == {"pulled": 10, "pushed": 2} and runs[1].job == "nightly"
    assert runs[0].error == "ACCESS_DENIED" and runs[0].finished_at
    assert [r.id for r in store.last_runs(kind="sync")] == [r1]
    with pytest.raises(StoreError, match="status"):
        store.run_finish(r1, "great", {})
    with pytest.raises(StoreError, match="no run"):
        store.run_finish(999, "ok", {})


def test_new_keys_are_unique_ordered_uuid7_hex() -> None:
    import uuid

    from connector.store import new_key

    keys = [new_key() for _ in range(10_000)]
    assert len(set(keys)) == len(keys) and keys == sorted(keys)
    assert all(len(k) == 32 for k in keys)
    parsed = uuid.UUID(hex=keys[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
