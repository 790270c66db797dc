"""Versioned migrations of the store's internal tables, recorded in `_meta.schema_version`."""

from __future__ import annotations

import sqlite3

from connector.store.errors import StoreError

# The item a stage move belongs to: its local key, else `#<portal id>` (keys are hex, never `#...`).
STAGE_MOVE_ITEM = "COALESCE(key, '#' || portal_id)"

# The one-row lock of `b24sync sync` (connector/sync/lock.py): holder pid, host, since, heartbeat.
SYNC_LOCK_DDL = """CREATE TABLE IF NOT EXISTS _sync_lock (
    id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL,
    since TEXT NOT NULL, beat REAL NOT NULL, token TEXT NOT NULL, started TEXT)"""

# Each migration is a list of statements; never edit a released one, append a new version.
MIGRATIONS: list[list[str]] = [
    [  # 1: internal tables of docs/CONTRACTS.md "Local store layout"
        """CREATE TABLE IF NOT EXISTS _idmap (
            portal TEXT NOT NULL, kind TEXT NOT NULL, code TEXT NOT NULL,
            portal_id NOT NULL, extra TEXT, updated_at TEXT NOT NULL,
            PRIMARY KEY (portal, kind, code))""",
        """CREATE TABLE IF NOT EXISTS _cursors (
            portal TEXT NOT NULL, tbl TEXT NOT NULL, value TEXT, updated_at TEXT NOT NULL,
            PRIMARY KEY (portal, tbl))""",
        """CREATE TABLE IF NOT EXISTS _changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, key TEXT,
            op TEXT NOT NULL CHECK (op IN ('I', 'U', 'D')), columns TEXT NOT NULL DEFAULT '[]',
            at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'done', 'failed')),
            error TEXT, attempts INTEGER NOT NULL DEFAULT 0, portal_id INTEGER)""",
        "CREATE INDEX IF NOT EXISTS _changes_status ON _changes (status, tbl, seq)",
        """CREATE TABLE IF NOT EXISTS _base (
            tbl TEXT NOT NULL, key TEXT NOT NULL, portal_id INTEGER, updated_time TEXT,
            data TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (tbl, key))""",
        "CREATE INDEX IF NOT EXISTS _base_portal_id ON _base (tbl, portal_id)",
        """CREATE TABLE IF NOT EXISTS _conflicts (
            id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, key TEXT NOT NULL,
            portal_id INTEGER, fields TEXT NOT NULL DEFAULT '[]', local TEXT NOT NULL DEFAULT '{}',
            remote TEXT NOT NULL DEFAULT '{}', base TEXT, policy TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
            resolution TEXT, created_at TEXT NOT NULL, resolved_at TEXT)""",
        """CREATE TABLE IF NOT EXISTS _stage_history (
            id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, key TEXT, portal_id INTEGER,
            funnel TEXT, from_stage TEXT, to_stage TEXT NOT NULL, at TEXT NOT NULL, source TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS _stage_history_item ON _stage_history (tbl, key, at)",
        """CREATE TABLE IF NOT EXISTS _runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, portal TEXT, job TEXT,
            started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL DEFAULT 'running',
            figures TEXT NOT NULL DEFAULT '{}', error TEXT)""",
        """CREATE TABLE IF NOT EXISTS _applying (
            id INTEGER PRIMARY KEY CHECK (id = 1), flag INTEGER NOT NULL DEFAULT 0)""",
        "INSERT OR IGNORE INTO _applying (id, flag) VALUES (1, 0)",
        """CREATE TABLE IF NOT EXISTS _labels (
            tbl TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('process', 'field', 'funnel', 'stage', 'option')),
            scope TEXT NOT NULL DEFAULT '', code TEXT NOT NULL, lang TEXT NOT NULL, label TEXT NOT NULL,
            PRIMARY KEY (tbl, kind, scope, code, lang))""",
        """CREATE TABLE IF NOT EXISTS _processes (
            tbl TEXT PRIMARY KEY, signature TEXT NOT NULL, lang TEXT NOT NULL, updated_at TEXT NOT NULL)""",
    ],
    [  # 2: one stage move per (item, to_stage, at), enforced by a unique index (INSERT OR IGNORE)
        f"""DELETE FROM _stage_history WHERE id NOT IN (
            SELECT MIN(id) FROM _stage_history GROUP BY tbl, {STAGE_MOVE_ITEM}, to_stage, at)""",
        f"""CREATE UNIQUE INDEX IF NOT EXISTS _stage_history_move
            ON _stage_history (tbl, {STAGE_MOVE_ITEM}, to_stage, at)""",
    ],
    [SYNC_LOCK_DDL],  # 3: one sync per store at a time
    [  # 4: stage-rule firings, and linked deals/companies/contacts (store/entities.py)
        """CREATE TABLE IF NOT EXISTS _rule_firings (
            portal TEXT NOT NULL, rule TEXT NOT NULL, entity_type_id INTEGER NOT NULL,
            entity_id INTEGER NOT NULL, transition TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'skipped', 'failed')),
            result TEXT NOT NULL DEFAULT '', child_id INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
            at TEXT NOT NULL, PRIMARY KEY (portal, rule, entity_type_id, entity_id, transition))""",
        """CREATE TABLE IF NOT EXISTS _deals (
            portal TEXT NOT NULL, id INTEGER NOT NULL, title TEXT, funnel_id INTEGER, funnel TEXT,
            stage_id TEXT, stage TEXT, stage_label TEXT, stage_semantics TEXT, stage_sort INTEGER,
            amount REAL, currency TEXT, company_id INTEGER, contact_id INTEGER, assigned_by_id INTEGER,
            begindate TEXT, closedate TEXT, created_time TEXT, updated_time TEXT, pulled_at TEXT NOT NULL,
            PRIMARY KEY (portal, id))""",
        """CREATE TABLE IF NOT EXISTS _companies (
            portal TEXT NOT NULL, id INTEGER NOT NULL, title TEXT, pulled_at TEXT NOT NULL,
            PRIMARY KEY (portal, id))""",
        """CREATE TABLE IF NOT EXISTS _contacts (
            portal TEXT NOT NULL, id INTEGER NOT NULL, name TEXT, company_id INTEGER,
            pulled_at TEXT NOT NULL, PRIMARY KEY (portal, id))""",
        """CREATE TABLE IF NOT EXISTS _item_dates (
            portal TEXT NOT NULL, tbl TEXT NOT NULL, id INTEGER NOT NULL, begindate TEXT, closedate TEXT,
            pulled_at TEXT NOT NULL, PRIMARY KEY (portal, tbl, id))""",
    ],
    [  # 5: sync's own bookkeeping (until now each was created by connector/sync on first use)
        # remembered templates (`sync` without FILE), store/sync_templates.py
        """CREATE TABLE IF NOT EXISTS _sync_templates (
    code TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at TEXT NOT NULL DEFAULT
    (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))""",
        # resolved process maps per portal, keyed by the template's signature, store/map_cache.py
        """CREATE TABLE IF NOT EXISTS _sync_maps (
    portal TEXT NOT NULL, code TEXT NOT NULL, signature TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (portal, code))""",
        # creates sent but not yet confirmed (looked up by xmlId before a re-send), store/inflight.py
        """CREATE TABLE IF NOT EXISTS _sync_inflight (
    tbl TEXT NOT NULL, key TEXT NOT NULL, at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (tbl, key))""",
    ],
    [  # 6: funnel order and stage order/meaning as the template declares them (store/process.py)
        """CREATE TABLE IF NOT EXISTS _funnels (
            tbl TEXT NOT NULL, code TEXT NOT NULL, position INTEGER NOT NULL, sort INTEGER NOT NULL,
            is_default INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (tbl, code))""",
        """CREATE TABLE IF NOT EXISTS _stages (
            tbl TEXT NOT NULL, funnel TEXT NOT NULL, code TEXT NOT NULL, position INTEGER NOT NULL,
            sort INTEGER NOT NULL,
            semantics TEXT NOT NULL CHECK (semantics IN ('process', 'success', 'failure')),
            PRIMARY KEY (tbl, funnel, code))""",
    ],
    [  # 7: the columns a lazy base (`_base.data = ''`) stands for, per process table (store/bases.py)
        "CREATE TABLE IF NOT EXISTS _base_columns (tbl TEXT PRIMARY KEY, columns TEXT NOT NULL)",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    """Schema version recorded in `_meta` (0 for a new file)."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_meta'").fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT value FROM _meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection) -> int:
    """Apply missing migrations in one BEGIN IMMEDIATE transaction; return the version reached."""
    if current_version(conn) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value TEXT)")
        version = current_version(conn)  # re-read under the write lock: another process may have won
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store schema version {version} is newer than this b24sync supports ({SCHEMA_VERSION}); "
                "upgrade b24sync"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO _meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )
        conn.execute("UPDATE _applying SET flag = 0 WHERE flag <> 0")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
