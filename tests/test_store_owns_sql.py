"""The store owns its SQL: no module outside connector/store speaks SQL to an internal table, every
internal table is created by the migrations, and a store made by an older b24sync migrates cleanly."""

from __future__ import annotations

import ast
import json
import re
import sqlite3
from pathlib import Path

import pytest
from support import ROOT
from test_sync import TEMPLATES, env_on_emulator
from test_sync_support import local_insert, row_values

from connector.store import Store
from connector.store.migrations import MIGRATIONS, SCHEMA_VERSION
from connector.sync import stored_templates
from connector.sync.engine import resolve_maps

PACKAGE = ROOT / "connector"
STORE = PACKAGE / "store"
NOT_YET_SCANNED: tuple[Path, ...] = ()  # every package outside the store is scanned
SQL = re.compile(
    r"\b(SELECT\b.*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|REPLACE\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(UNIQUE\s+)?(TABLE|INDEX|VIEW|TRIGGER)|DROP\s+(TABLE|INDEX|VIEW|TRIGGER)|ALTER\s+TABLE"
    r"|PRAGMA)\b",
    re.S | re.I,
)
CREATED = re.compile(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.I)
# Old b24sync created these three itself, on first use (connector/sync before migration 5).
OLD_SYNC_DDL = [
    """CREATE TABLE IF NOT EXISTS _sync_templates (
    code TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at TEXT NOT NULL DEFAULT
    (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))""",
    """CREATE TABLE IF NOT EXISTS _sync_maps (
    portal TEXT NOT NULL, code TEXT NOT NULL, signature TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (portal, code))""",
    """CREATE TABLE IF NOT EXISTS _sync_inflight (
    tbl TEXT NOT NULL, key TEXT NOT NULL, at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (tbl, key))""",
]


def migration_tables() -> set[str]:
    """Every table the migrations create (`_meta` is created by `migrate` itself)."""
    return {"_meta"} | {m for statements in MIGRATIONS for s in statements for m in CREATED.findall(s)}


def _texts(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants and f-strings (their literal parts joined), with line numbers; no docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    in_fstrings = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
            out.append((node.lineno, "".join(str(p) for p in parts)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and id(node) not in in_fstrings:
                out.append((node.lineno, node.value))
    return out


def sql_on_internal_tables(source: str, tables: set[str]) -> list[tuple[int, str]]:
    """(line, table) of each SQL text in `source` that names one of `tables`."""
    names = re.compile(r"(?<![\w.])(" + "|".join(sorted(map(re.escape, tables))) + r")\b")
    found = []
    for line, text in _texts(ast.parse(source)):
        if SQL.search(text):
            found += [(line, m) for m in sorted(set(names.findall(text)))]
    return sorted(found)


def scanned_files() -> list[Path]:
    skip = (STORE, *NOT_YET_SCANNED)
    return [p for p in sorted(PACKAGE.rglob("*.py")) if not any(p.is_relative_to(s) for s in skip)]


def test_no_module_outside_the_store_speaks_sql_to_an_internal_table() -> None:
    tables = migration_tables()
    found = [
        f"{path.relative_to(ROOT)}:{line}: {table}"
        for path in scanned_files()
        for line, table in sql_on_internal_tables(path.read_text(encoding="utf-8"), tables)
    ]
    shown = "\n".join(found)
    assert found == [], f"SQL against store tables outside connector/store (add a store function):\n{shown}"


def test_the_scan_finds_sql_in_every_shape_it_is_written() -> None:
    tables = {"_base", "_changes", "_sync_maps"}
    source = '''
"""Docstrings may name _base: SELECT data FROM _base is prose here."""
conn.execute("SELECT data FROM _base WHERE tbl = ?", (t,))
conn.execute(
    "UPDATE _changes SET status = 'done' "
    "WHERE seq = ?", (1,))
conn.execute(f"DELETE FROM _sync_maps WHERE portal = {portal!r}")
conn.execute(f"SELECT * FROM {tbl} JOIN _base b ON b.key = {tbl}.key")
label = "_base snapshots are kept"          # no SQL
other = "SELECT * FROM _base_portal_id"      # another name
attr = "UPDATE x SET y = store._base"        # an attribute, not a table
'''
    assert sql_on_internal_tables(source, tables) == [
        (3, "_base"), (5, "_changes"), (7, "_sync_maps"), (8, "_base")]


def test_the_scan_knows_every_internal_table() -> None:
    assert {"_base", "_changes", "_runs", "_sync_lock", "_rule_firings", "_sync_templates", "_sync_maps",
            "_sync_inflight", "_meta"} <= migration_tables()


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'")
    return {r[0] for r in rows}


def test_every_table_of_a_new_store_is_created_by_the_migrations(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        assert _tables(store.conn) == migration_tables()


def test_a_sync_creates_no_table_of_its_own(tmp_path: Path) -> None:
    """Pull, push of a new row (its create in flight), maps cached, templates remembered: the file's
    internal tables are exactly those `Store.open` made."""
    with env_on_emulator(tmp_path) as env:
        before = _tables(env.store.conn)
        env.sync()
        local_insert(env.db, TEMPLATES[0].code, row_values(TEMPLATES[0], 1))
        report = env.sync()
        assert report.failures == [] and report.total("created") == 1
        after = {t for t in _tables(env.store.conn) if t.startswith("_")}
        assert after == before == migration_tables()
        assert env.store.remembered_templates() and env.store.conn.execute(
            "SELECT COUNT(*) FROM _sync_maps").fetchone()[0] == len(TEMPLATES)


def _old_store(path: Path, *, with_sync_tables: bool) -> None:
    """A store file as b24sync wrote it before migration 5: schema version 4, and (after a sync) the
    three `_sync_*` tables sync created itself, holding data."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE _meta (key TEXT PRIMARY KEY, value TEXT)")
    for statements in MIGRATIONS[:4]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("INSERT INTO _meta (key, value) VALUES ('schema_version', '4')")
    if with_sync_tables:
        for ddl in OLD_SYNC_DDL:
            conn.execute(ddl)
        data = json.dumps(TEMPLATES[0].model_dump(mode="json"), ensure_ascii=False)
        conn.execute("INSERT INTO _sync_templates (code, data) VALUES (?, ?)", (TEMPLATES[0].code, data))
        conn.execute("INSERT INTO _sync_maps VALUES ('emu', 'x', 'sig', '{}')")
        conn.execute("INSERT INTO _sync_inflight (tbl, key) VALUES ('x', 'k1')")
    conn.close()


@pytest.mark.parametrize("with_sync_tables", [True, False], ids=["synced-before", "never-synced"])
def test_a_store_made_by_the_old_code_migrates_cleanly(tmp_path: Path, with_sync_tables: bool) -> None:
    db = tmp_path / "old.db"
    _old_store(db, with_sync_tables=with_sync_tables)
    with Store.open(db) as store:
        assert store.meta_get("schema_version") == str(SCHEMA_VERSION) == "7"
        assert _tables(store.conn) == migration_tables()
        kept = stored_templates(store)
        assert [t.code for t in kept] == ([TEMPLATES[0].code] if with_sync_tables else [])
        if with_sync_tables:
            assert kept[0] == TEMPLATES[0]
            assert store.cached_map("emu", "x", "sig") == "{}"
            assert store.conn.execute("SELECT tbl, key FROM _sync_inflight").fetchall() == [("x", "k1")]
    with Store.open(db) as again:  # opening twice changes nothing
        assert again.meta_get("schema_version") == "7"


def test_an_old_store_syncs_on_from_where_it_was(tmp_path: Path) -> None:
    """A store synced by the old code, then migrated: maps cached before are read again (no new schema
    reads), and the next sync runs normally."""
    with env_on_emulator(tmp_path) as env:
        env.sync()
        cached = env.store.conn.execute("SELECT portal, code, signature, data FROM _sync_maps").fetchall()
        assert len(cached) == len(TEMPLATES)
        env.store.conn.execute("UPDATE _meta SET value = '4' WHERE key = 'schema_version'")  # as if old
        env.store.close()
        env.store = Store.open(env.db)
        assert env.store.meta_get("schema_version") == str(SCHEMA_VERSION)
        again = env.store.conn.execute("SELECT portal, code, signature, data FROM _sync_maps").fetchall()
        assert again == cached
        maps = resolve_maps(None, env.store, TEMPLATES, "emu")  # no client: every map must come from cache
        assert sorted(maps) == sorted(t.code for t in TEMPLATES)
        assert env.sync().failures == []
