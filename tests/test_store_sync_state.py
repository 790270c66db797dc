"""The store functions sync calls for its own bookkeeping: creates in flight, cached maps, remembered
templates, bases and rows in bulk, conflict updates, run tags."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.store import Store, StoreError, bases, conflicts, inflight, rows
from connector.templates import loads_template

TEMPLATE = loads_template("""
code = "lead"
title = { en = "Lead" }
[[fields]]
code = "note"
type = "string"
label = { en = "Note" }
""")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "s.db") as s:
        s.ensure_process(TEMPLATE)
        yield s


def test_creates_in_flight_are_kept_per_table_in_any_number(store: Store) -> None:
    keys = [f"k{i:04}" for i in range(2_000)]  # more than one IN (...) list
    with store.transaction() as conn:
        inflight.add_inflight(conn, "lead", keys)
        inflight.add_inflight(conn, "lead", keys[:3])  # noted twice: kept once
        inflight.add_inflight(conn, "other", ["x"])
    assert sorted(inflight.inflight_keys(store.conn, "lead")) == keys
    with store.transaction() as conn:
        inflight.drop_inflight(conn, "lead", keys[:1_500])
    assert sorted(inflight.inflight_keys(store.conn, "lead")) == keys[1_500:]
    assert inflight.inflight_keys(store.conn, "other") == ["x"]


def test_a_cached_map_is_only_given_for_its_template_signature(store: Store) -> None:
    store.cache_maps("p1", [("lead", "sig1", '{"a": 1}')])
    assert store.cached_map("p1", "lead", "sig1") == '{"a": 1}'
    assert store.cached_map("p1", "lead", "sig2") is None  # the template changed since
    assert store.cached_map("p2", "lead", "sig1") is None  # another portal
    store.cache_maps("p1", [("lead", "sig2", '{"a": 2}')])
    assert store.cached_map("p1", "lead", "sig2") == '{"a": 2}'
    assert store.cached_map("p1", "lead", "sig1") is None


def test_remembered_templates_replace_older_versions(store: Store) -> None:
    store.remember_templates([("b", {"code": "b", "v": 1}), ("a", {"code": "a", "title": "Ёлка"})])
    store.remember_templates([("b", {"code": "b", "v": 2})])
    assert store.remembered_templates() == [{"code": "a", "title": "Ёлка"}, {"code": "b", "v": 2}]
    assert store.remembered_templates("b") == [{"code": "b", "v": 2}]
    assert store.remembered_templates("zzz") == []


def test_bases_of_many_rows_and_one(store: Store) -> None:
    keys = [f"k{i:04}" for i in range(1_000)]
    with store.transaction() as conn:
        for n, key in enumerate(keys):
            bases.base_set(conn, "lead", key, n, f"t{n}", {"note": str(n)})
    found = bases.bases_of(store.conn, "lead", [*keys, "missing"])
    assert len(found) == 1_000 and found["k0999"] == ("t999", {"note": "999"})
    assert store.base_get("lead", "k0001") is not None
    store.base_delete("lead", "k0001")
    assert store.base_get("lead", "k0001") is None
    with pytest.raises(StoreError, match="must be a mapping"):
        bases.base_set(store.conn, "lead", "k", None, None, ["not", "a", "mapping"])  # type: ignore[arg-type]


def test_rows_are_read_and_written_by_key_and_id(store: Store) -> None:
    with store.engine_writes() as conn:
        new = [[f"k{i}", i, f"n{i}"] for i in range(1, 1_001)]
        rows.insert_rows(conn, "lead", ["key", "id", "note"], new)
        rows.update_rows(conn, "lead", [("k1", {"note": "a"}), ("k2", {"note": "b", "id": 2000}), ("k3", {})])
        rows.tombstone(conn, "lead", "k4")
    assert store.pending_changes("lead") == []  # engine writes are not logged
    assert rows.row(store.conn, "lead", "k1")["note"] == "a"  # type: ignore[index]
    assert rows.portal_id_of(store.conn, "lead", "k2") == (2000, False)
    assert rows.portal_id_of(store.conn, "lead", "k4") == (4, True)
    assert rows.portal_id_of(store.conn, "lead", "nope") is None
    assert rows.present(store.conn, "lead", "id", [1, 2, 2000, 5000]) == {1, 2000}
    assert set(rows.rows_by(store.conn, "lead", "key", ["k1", "k3"])) == {"k1", "k3"}
    ids = list(range(1, 1_001)) * 2  # the same ids twice, over several IN (...) lists
    live = rows.live_rows_with_ids(store.conn, "lead", ids)
    assert len(live) == 998 and {r["id"] for r in live} == set(range(1, 1_001)) - {2, 4}
    assert 4 not in rows.live_ids(store.conn, "lead") and 2000 in rows.live_ids(store.conn, "lead")
    assert "deleted_at" in rows.table_columns(store.conn, "lead")


def test_an_open_conflict_shows_the_latest_values(store: Store) -> None:
    cid = store.add_conflict("lead", "k", 1, ["note"], {"note": "l"}, {"note": "r"}, {"note": "b"})
    with store.transaction() as conn:
        conflicts.update_conflict(conn, cid, remote={"note": "r2"})
        conflicts.update_conflict(conn, cid)  # nothing to show: no change
    [c] = store.list_conflicts("lead")
    assert (c.fields, c.local, c.remote, c.base) == (["note"], {"note": "l"}, {"note": "r2"}, {"note": "b"})
    with store.transaction() as conn:
        conflicts.update_conflict(conn, cid, fields=["note", "x"], local={"note": "l2"})
    [c] = store.list_conflicts("lead")
    assert (c.fields, c.local, c.remote) == (["note", "x"], {"note": "l2"}, {"note": "r2"})


def test_runs_of_a_job_are_tagged_with_its_name(store: Store) -> None:
    assert store.last_run_id() == 0
    first = store.run_start("sync", "p")
    before = store.last_run_id()
    assert before == first
    second = store.run_start("sync", "p")
    other = store.run_start("deploy", "p")
    assert store.tag_runs("nightly", before, "sync") == 1
    jobs = {r.id: r.job for r in store.last_runs()}
    assert jobs == {first: None, second: "nightly", other: None}
