"""Every shipped template in mappings/ gets a table, triggers and a labels view; re-runs are no-ops."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from connector.store import Store
from connector.store.migrations import SCHEMA_VERSION, migrate
from connector.store.values import column_types
from connector.templates.loader import load_templates

MAPPINGS = sorted((Path(__file__).resolve().parents[1] / "mappings").glob("*.toml"))


@pytest.mark.skipif(not MAPPINGS, reason="no shipped templates yet")
def test_shipped_templates_build_tables(tmp_path: Path) -> None:
    templates = load_templates(MAPPINGS)
    store = Store.open(tmp_path / "all.db")
    for t in templates:
        added = store.ensure_process(t)
        for field in t.fields:
            assert set(column_types(field)) <= set(added)
    for t in templates:
        assert store.ensure_process(t) == []
    user = sqlite3.connect(store.path, isolation_level=None)
    for t in templates:
        funnel = t.default_funnel or t.funnels[0]
        stage = funnel.stages[0]
        user.execute(f'INSERT INTO "{t.code}" (key, title, funnel, stage) VALUES (?, ?, ?, ?)',
                     (f"k-{t.code}", "x", funnel.code, stage.code))
        sql = f'SELECT funnel_name, stage_name FROM "{t.code}_labels" WHERE key = ?'
        view = store.conn.execute(sql, (f"k-{t.code}",)).fetchone()
        assert view == (t.text(funnel.name), t.text(stage.name))
    logged = [c.tbl for c in store.pending_changes()]
    assert logged == [t.code for t in templates]
    user.close()
    store.close()


def test_migrate_twice_is_a_noop(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    assert migrate(conn) == SCHEMA_VERSION
    schema = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    conn.execute("INSERT INTO _runs (kind, started_at) VALUES ('sync', 'now')")
    assert migrate(conn) == SCHEMA_VERSION
    assert conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall() == schema
    assert conn.execute("SELECT count(*) FROM _runs").fetchone()[0] == 1
    assert json.loads(conn.execute("SELECT value FROM _meta WHERE key = 'schema_version'").fetchone()[0]) \
        == SCHEMA_VERSION
    conn.close()
