"""The state file: one SQLite database — a JSON blob for the schema, one row per item."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .auth import REFRESH_TTL, _Token
from .state import Category, EnumOption, Relation, Sequences, SmartType, Stage, StoredFile, UserField

if TYPE_CHECKING:
    from .core import Emulator

FORMAT = 1


class StateFile:
    """Write-through persistence of one portal (items are written as they change)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise ValueError(f"state file {self.path} is a directory; give a file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(str(self.path), check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a crash of us
            self.db.executescript(
                "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);"
                "CREATE TABLE IF NOT EXISTS items (etid INTEGER, id INTEGER, data TEXT NOT NULL,"
                " PRIMARY KEY (etid, id)) WITHOUT ROWID;"
                "CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY, data TEXT NOT NULL);"
                "CREATE TABLE IF NOT EXISTS files (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " token TEXT NOT NULL, data BLOB NOT NULL);"
            )
        except sqlite3.DatabaseError as err:
            raise ValueError(f"state file {self.path} is not an emulator state database: {err}") from None
        self._lock = threading.Lock()
        self._history_saved = 0
        # entity types with rows in the file: read once here, kept up to date by flush (no scan per write)
        self._etids_in_file = {r[0] for r in self.db.execute("SELECT DISTINCT etid FROM items")}

    def load(self, emu: Emulator) -> None:
        """Restore the portal from the file (a new file leaves the fresh portal as it is)."""
        row = self.db.execute("SELECT v FROM meta WHERE k='portal'").fetchone()
        if row is None:
            return
        data = json.loads(row[0])
        if data.get("format") != FORMAT:
            raise ValueError(f"state file {self.path} has format {data.get('format')!r}; expected {FORMAT}")
        st = emu.state
        seq = data["seq"]
        st.seq = Sequences(**{**seq, "item_ids": {int(k): v for k, v in seq["item_ids"].items()}})
        st.types = {t["id"]: SmartType(**t) for t in data["types"]}
        st.categories = {c["id"]: Category(**c) for c in data["categories"]}
        st.stages = {s["id"]: Stage(**s) for s in data["stages"]}
        st.user_fields = {}
        for f in data["user_fields"]:
            f["enum"] = [EnumOption(**o) for o in f["enum"]]
            st.user_fields[f["id"]] = UserField(**f)
        st.relations = {(r["parent"], r["child"]): Relation(**r) for r in data["relations"]}
        st.details_config = data.get("details_config", {})
        st.product_rows = {r["id"]: r for r in data.get("product_rows", [])}
        if not emu.explicit_code:
            emu.webhook_code = data.get("webhook_code", emu.webhook_code)
        if data.get("events") and hasattr(emu.events, "load_dict"):
            emu.events.load_dict(data["events"])
        oauth = data.get("oauth")
        if oauth:
            emu.oauth.client_id, emu.oauth.client_secret = oauth["client_id"], oauth["client_secret"]
            for table in ("access", "refresh"):
                getattr(emu.oauth, table).update(
                    {t: _Token(u, exp, frozenset(sc)) for t, (u, exp, sc) in oauth.get(table, {}).items()}
                )
        for etid, item_id, raw in self.db.execute("SELECT etid, id, data FROM items ORDER BY etid, id"):
            st.table(etid).put(item_id, json.loads(raw))
        for etid in {t.entity_type_id for t in st.types.values()}:
            st.table(etid)
        st.stage_history = [json.loads(r[0]) for r in self.db.execute("SELECT data FROM history ORDER BY id")]
        self._history_saved = len(st.stage_history)
        st.files = {
            fid: StoredFile(fid, name, bytes(data), token)
            for fid, name, token, data in self.db.execute("SELECT id, name, token, data FROM files")
        }
        st.touch_schema()
        st.schema_dirty = False

    def flush(self, emu: Emulator) -> None:
        """Write the schema blob and every item changed since the last flush."""
        st = emu.state
        with self._lock, self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES ('portal', ?)", (json.dumps(_snapshot(emu)),)
            )
            dirty = sorted(st.dirty_items)  # key order: B-tree appends, not random inserts
            live = {etid: table.rows for etid, table in st.items.items()}
            gone = [(etid, i) for etid, i in dirty if i not in live.get(etid, {})]
            written: set[int] = set()

            def upserts() -> Iterator[tuple[int, int, str]]:  # streamed: no list of 100,000 blobs
                for etid, item_id in dirty:
                    data = live.get(etid, {}).get(item_id)
                    if data is not None:
                        written.add(etid)
                        yield etid, item_id, json.dumps(data)

            self.db.executemany("INSERT OR REPLACE INTO items (etid, id, data) VALUES (?, ?, ?)", upserts())
            self.db.executemany("DELETE FROM items WHERE etid=? AND id=?", gone)
            self._etids_in_file |= written
            for etid in self._etids_in_file - set(st.items):  # a deleted type's table
                self.db.execute("DELETE FROM items WHERE etid=?", (etid,))
            self._etids_in_file &= set(st.items)
            new_history = st.stage_history[self._history_saved :]
            self.db.executemany(
                "INSERT OR REPLACE INTO history (id, data) VALUES (?, ?)",
                [(h["id"], json.dumps(h)) for h in new_history],
            )
            self._history_saved = len(st.stage_history)
            self.db.executemany(
                "INSERT OR REPLACE INTO files (id, name, token, data) VALUES (?, ?, ?, ?)",
                [(f.id, f.name, f.token, f.data) for f in map(st.files.get, st.dirty_files) if f],
            )
            st.dirty_files.clear()
        st.dirty_items.clear()
        st.schema_dirty = False

    def close(self) -> None:
        self.db.close()


def _snapshot(emu: Emulator) -> dict[str, Any]:
    st = emu.state
    seq = asdict(st.seq)
    seq["item_ids"] = {str(k): v for k, v in st.seq.item_ids.items()}
    return {
        "format": FORMAT,
        "seq": seq,
        "types": [asdict(t) for t in st.types.values()],
        "categories": [asdict(c) for c in st.categories.values()],
        "stages": [asdict(s) for s in st.stages.values()],
        "user_fields": [asdict(f) for f in st.user_fields.values()],
        "relations": [asdict(r) for r in st.relations.values()],
        "details_config": st.details_config,
        "product_rows": list(st.product_rows.values()),
        "webhook_code": emu.webhook_code,
        "events": emu.events.to_dict() if hasattr(emu.events, "to_dict") else None,
        "oauth": {
            "client_id": emu.oauth.client_id,
            "client_secret": emu.oauth.client_secret,
            **_tokens(emu),
        },
    }


def _tokens(emu: Emulator) -> dict[str, dict[str, list[Any]]]:
    """OAuth tokens, so clients keep working across a restart.

    Expired access tokens are kept while their refresh token may live (the client must still be
    told `expired_token`, not `NO_AUTH`); dead refresh tokens are dropped.
    """
    now = emu.clock.now()
    keep_after = {"access": now - REFRESH_TTL, "refresh": now}
    with emu.oauth.lock:
        return {
            table: {
                token: [entry.user_id, entry.expires, sorted(entry.scopes)]
                for token, entry in getattr(emu.oauth, table).items()
                if entry.expires > keep_after[table] or (table == "access" and entry.expires <= 0)
            }
            for table in ("access", "refresh")
        }
