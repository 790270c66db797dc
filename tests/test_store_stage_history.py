"""Stage history: one move per (item, stage, time) enforced by a unique index; migration from v1."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from connector.store import Store, StoreError
from connector.store.migrations import MIGRATIONS, SCHEMA_VERSION

AT1, AT2 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"


def test_bulk_moves_ignore_known_ones_and_count_new(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        first = [("k1", 1, "main", None, "NEW", AT1, "pull"), ("k2", 2, "main", None, "NEW", AT1, "pull")]
        assert store.add_stage_moves("car", first) == 2
        again = [*first, ("k1", 1, "main", "NEW", "WON", AT2, "push")]
        assert store.add_stage_moves("car", again) == 1  # only the move to WON is new
        assert [(m.key, m.to_stage) for m in store.stage_history("car")] == [
            ("k1", "NEW"),
            ("k2", "NEW"),
            ("k1", "WON"),
        ]
        # a single move seen again returns the id of the kept one
        kept = store.stage_history("car", "k1")[1].id
        assert store.add_stage_move("car", "k1", 1, "main", "NEW", "WON", AT2, "pull") == kept
        with pytest.raises(StoreError, match="row key"):
            store.add_stage_moves("car", [(None, 3, "main", None, "NEW", AT1, "pull")])
        with pytest.raises(StoreError, match="allowed: pull, push, local"):
            store.add_stage_moves("car", [("k3", 3, "main", None, "NEW", AT1, "robot")])


def test_duplicate_check_is_an_index_probe_not_a_scan(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        plan = store.conn.execute(
            "EXPLAIN QUERY PLAN INSERT OR IGNORE INTO _stage_history "
            "(tbl, key, portal_id, funnel, from_stage, to_stage, at, source) VALUES "
            "('car', 'k', 1, 'main', NULL, 'NEW', 'x', 'pull')"
        ).fetchall()
        lookup = store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM _stage_history WHERE tbl = 'car' "
            "AND COALESCE(key, '#' || portal_id) = 'k' AND to_stage = 'NEW' AND at = 'x'"
        ).fetchall()
        assert "SCAN" not in str(plan)
        assert "USING INDEX _stage_history_move" in str(lookup)
        indexes = {r[1] for r in store.conn.execute("PRAGMA index_list(_stage_history)")}
        assert "_stage_history_move" in indexes


def test_move_by_portal_id_only_joins_the_item_of_that_id(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        a = store.add_stage_move("car", "k", 5, "main", "NEW", "WON", AT2, "pull")
        assert store.add_stage_move("car", None, 5, "main", "NEW", "WON", AT2, "pull") == a
        b = store.add_stage_move("car", None, 6, "main", None, "NEW", AT1, "pull")
        assert store.add_stage_move("car", None, 6, "main", None, "NEW", AT1, "pull") == b
        assert len(store.stage_history("car")) == 2


def test_migration_from_v1_drops_duplicate_moves(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE _meta (key TEXT PRIMARY KEY, value TEXT)")
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO _meta VALUES ('schema_version', '1')")
    rows = [
        ("car", "k", 1, "NEW", AT1),
        ("car", "k", 1, "NEW", AT1),
        ("car", None, 2, "NEW", AT1),
        ("car", None, 2, "NEW", AT1),
        ("car", "k", 1, "WON", AT2),
    ]
    conn.executemany(
        "INSERT INTO _stage_history (tbl, key, portal_id, to_stage, at, source) "
        "VALUES (?, ?, ?, ?, ?, 'pull')",
        rows,
    )
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        assert store.meta_get("schema_version") == str(SCHEMA_VERSION)
        kept = [(m.id, m.key, m.portal_id, m.to_stage) for m in store.stage_history("car")]
        assert kept == [(1, "k", 1, "NEW"), (3, None, 2, "NEW"), (5, "k", 1, "WON")]
