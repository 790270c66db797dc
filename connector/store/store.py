"""The local SQLite store: one file per portal, one table per process, change log by triggers."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from connector.store import (
    bases,
    changelog,
    conflicts,
    cursors,
    map_cache,
    rows,
    runs,
    stage_moves,
    sync_templates,
)
from connector.store.bulk import insert_new_rows, upsert_rows
from connector.store.errors import StoreError
from connector.store.idmap import IdMap
from connector.store.migrations import migrate
from connector.store.models import BaseSnapshot, Change, Conflict, Run, StageMove
from connector.store.process import ProcessPlan, check_code

if TYPE_CHECKING:
    import sqlite_utils

    from connector.templates import Template

log = logging.getLogger("b24sync.store")

BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_EVERY = 0.25  # seconds between background checkpoints during a pull


def _connect(path: str) -> sqlite3.Connection:
    """Open a connection in autocommit mode (we issue BEGIN ourselves), WAL, FKs off, busy timeout."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = OFF")
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:  # switching to WAL needs a moment alone with the file; another opener may hold it
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    conn.execute("PRAGMA synchronous = NORMAL")
    # a row that INSERT OR REPLACE removes fires its DELETE triggers too, so a lazy base (store/bases.py)
    # is turned into JSON before its row goes (no trigger of ours writes the table it fires on)
    conn.execute("PRAGMA recursive_triggers = ON")
    return conn


class _Checkpointer:
    """A thread copying committed WAL frames into the store file, PASSIVE, until `stop()`."""

    def __init__(self, path: str, every: float) -> None:
        self.path, self.every = path, every
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return  # the last checkpoint, on the writer's connection, copies everything anyway
        try:
            while not self.done.wait(self.every):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            log.debug("background checkpoint stopped: %s", exc)
        finally:
            conn.close()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A connection that only reads the store file; it works on a read-only file in a read-only folder.

    SQLite needs a store's `-shm` file even to read it in WAL mode, and cannot create one in a folder
    it may not write ("attempt to write a readonly database"). Then, when no `-wal` file holds
    unmerged writes, the file is opened `immutable` (https://sqlite.org/uri.html#uriimmutable).
    """
    resolved = Path(path).resolve()
    base = f"file:{quote(str(resolved))}"
    conn = sqlite3.connect(f"{base}?mode=ro", uri=True, check_same_thread=False)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        wal = Path(f"{resolved}-wal")
        if os.access(resolved.parent, os.W_OK) or (wal.exists() and wal.stat().st_size > 0):
            raise
    return sqlite3.connect(f"{base}?immutable=1", uri=True, check_same_thread=False)


class Store:
    """One SQLite file per portal; any SQLite tool may read and write it alongside us.

    Transactions on one Store are serialised by a lock, but plain reads are not: give each thread
    its own Store (they share the file safely through WAL and the busy timeout).
    """

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.idmap = IdMap(self)
        self._lock = threading.RLock()
        self._engine_depth = 0

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """The file as a `sqlite_utils.Database` (imported on first use: no command needs it)."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    @classmethod
    def open(cls, path: str | Path) -> Store:
        """Create or open the file and run the migrations (idempotent, safe from two processes)."""
        text = str(path)
        if text != ":memory:":
            parent = Path(text).parent
            if not parent.is_dir():
                raise StoreError(f"cannot open store {text!r}: folder {str(parent)!r} does not exist")
        try:
            conn = _connect(text)
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {text!r}: {exc}") from exc
        return cls(conn, text)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    # --- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error); joins an enclosing transaction."""
        with self._lock:
            if self.conn.in_transaction:
                yield self.conn
                return
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    @contextmanager
    def deferred_checkpoints(self, every: float = CHECKPOINT_EVERY) -> Iterator[None]:
        """Many write transactions in a row (a pull): the WAL copied into the store file on a thread.

        A checkpoint is mostly waiting for the disk (copying 32 MB of WAL: 0.48 s wall, 0.10 s CPU), and
        an automatic one runs on the committing thread every 4 MB. Here the writer never checkpoints:
        a thread with its own connection copies what has been committed every `every` seconds (a
        PASSIVE checkpoint blocks no writer), and a last checkpoint when the block ends copies the rest.
        Until a checkpoint, commits are consistent but may be lost on power loss (WAL with
        synchronous=NORMAL): a pull's cursor commits with its last rows, so a lost tail is pulled again.
        """
        (before,) = self.conn.execute("PRAGMA wal_autocheckpoint").fetchone()
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        copier = _Checkpointer(self.path, every) if self.path != ":memory:" else None
        try:
            yield
        finally:
            if copier is not None:
                copier.stop()
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {int(before)}")
            if not self.conn.in_transaction:
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @contextmanager
    def engine_writes(self) -> Iterator[sqlite3.Connection]:
        """A transaction whose writes are not logged: `_applying.flag` is 1 only inside it."""
        with self.transaction() as conn:
            if self._engine_depth:
                yield conn
                return
            conn.execute("UPDATE _applying SET flag = 1")
            self._engine_depth += 1
            try:
                yield conn
            finally:
                self._engine_depth -= 1
                if conn.in_transaction:
                    conn.execute("UPDATE _applying SET flag = 0")  # before COMMIT: nobody ever sees 1

    # --- process tables -----------------------------------------------------------------------

    def ensure_process(self, template: Template, lang: str | None = None) -> list[str]:
        """Create or evolve table `<code>`, its triggers and view `<code>_labels`; return added columns.

        Labels in the view are in `lang` (default: the template's language, else "ru").
        """
        lang = lang or getattr(template, "language", None) or "ru"
        if not isinstance(lang, str):
            raise StoreError(f"label language must be a code like 'ru' or 'en', got {lang!r}")
        if ProcessPlan(self.conn, template, lang).is_current(self.conn):
            return []
        with self.transaction() as conn:
            plan = ProcessPlan(conn, template, lang)  # again under the write lock
            return [] if plan.is_current(conn) else plan.apply(conn)

    def processes(self) -> list[str]:
        """Codes of the process tables this store manages."""
        return [r[0] for r in self.conn.execute("SELECT tbl FROM _processes ORDER BY tbl")]

    def _check_table(self, tbl: str) -> str:
        check_code(tbl)
        if not self.conn.execute("SELECT 1 FROM _processes WHERE tbl = ?", (tbl,)).fetchone():
            known = ", ".join(self.processes()) or "none yet"
            raise StoreError(f"no process table {tbl!r} in this store (known: {known}); run ensure_process")
        return tbl

    def upsert_rows(self, tbl: str, rows: Iterable[Mapping[str, Any]], by: str = "id") -> int:
        """Engine path: insert or update rows matched by `id` (portal id) or `key`; not logged."""
        self._check_table(tbl)
        with self.engine_writes() as conn:
            return upsert_rows(conn, tbl, rows, by)

    def insert_new_rows(self, tbl: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                        base_columns: Sequence[str], source: str = "pull") -> int:
        """Engine path for rows new to the table (bulk, not logged): insert them, make their values of
        `base_columns` their base, and record each one's first stage move; return rows inserted.

        `columns` must include `key` and `id`; every row is a sequence in `columns` order.
        """
        self._check_table(tbl)
        if source not in stage_moves.STAGE_SOURCES:
            allowed = ", ".join(stage_moves.STAGE_SOURCES)
            raise StoreError(f"stage move source {source!r} is unknown; allowed: {allowed}")
        with self.engine_writes() as conn:
            return insert_new_rows(conn, tbl, columns, rows, base_columns, source)

    def row(self, tbl: str, key: str) -> dict[str, Any] | None:
        """One row of a process table by local key."""
        self._check_table(tbl)
        return rows.row(self.conn, tbl, key)

    # --- change log ---------------------------------------------------------------------------

    def pending_changes(self, tbl: str | None = None, limit: int | None = None) -> list[Change]:
        """Local changes waiting for push, one per row (net op, union of columns), in seq order."""
        return changelog.select(self.conn, "pending", tbl, limit)

    def unsynced_changes(self, tbl: str | None = None) -> list[Change]:
        """Local changes not yet on the portal (pending and failed ones), one per row: what a pull
        must merge with, so a row whose push failed keeps its edits."""
        return changelog.select(self.conn, "unsynced", tbl, None)

    def failed_changes(self, tbl: str | None = None) -> list[Change]:
        """Changes whose push failed, with the error text, one per row."""
        return changelog.select(self.conn, "failed", tbl, None)

    def mark_done(self, seqs: Iterable[int]) -> int:
        """Mark log rows pushed."""
        with self.transaction() as conn:
            return changelog.set_status(conn, seqs, "done", None)

    mark_pushed = mark_done  # name used in docs/CONTRACTS.md

    def mark_failed(self, seqs: Iterable[int], error: str) -> int:
        """Mark log rows failed with the error text; they stop blocking nothing and wait for retry."""
        if not isinstance(error, str) or not error:
            raise StoreError("mark_failed needs the error text (a non-empty string)")
        with self.transaction() as conn:
            return changelog.set_status(conn, seqs, "failed", error)

    def retry_failed(self, tbl: str | None = None) -> int:
        """Put failed changes back to pending; return how many log rows."""
        sql, args = "UPDATE _changes SET status = 'pending' WHERE status = 'failed'", []
        if tbl is not None:
            sql += " AND tbl = ?"
            args.append(tbl)
        with self.transaction() as conn:
            return conn.execute(sql, args).rowcount

    def prune_done(self) -> int:
        """Delete pushed log rows; return how many."""
        with self.transaction() as conn:
            return conn.execute("DELETE FROM _changes WHERE status = 'done'").rowcount

    # --- base snapshots, cursors --------------------------------------------------------------

    def base_get(self, tbl: str, key: str) -> BaseSnapshot | None:
        """What both sides agreed on at the last sync of row `key`."""
        return bases.base_get(self.conn, tbl, key)

    def base_set(self, tbl: str, key: str, portal_id: int | None, updated_time: str | None,
                 data: Mapping[str, Any]) -> None:
        """Record the agreed state of a row (after a pull or a successful push)."""
        with self.transaction() as conn:
            bases.base_set(conn, tbl, key, portal_id, updated_time, data)

    def base_from_rows(self, tbl: str, keys: list[str], columns: list[str]) -> int:
        """Make the rows' current values of `columns` their base (bulk, after the engine wrote them)."""
        self._check_table(tbl)
        with self.transaction() as conn:
            return bases.base_from_rows(conn, tbl, keys, columns)

    def base_delete(self, tbl: str, key: str) -> None:
        """Forget the base of a row (after its deletion is synced)."""
        with self.transaction() as conn:
            bases.base_delete(conn, tbl, key)

    def cursor_get(self, portal: str, tbl: str) -> str | None:
        """The pull cursor of one process on one portal (server time text), or None before backfill."""
        return cursors.cursor_get(self.conn, portal, tbl)

    def cursor_set(self, portal: str, tbl: str, value: str | None) -> None:
        """Set the pull cursor; call it inside the transaction that commits the pulled rows."""
        with self.transaction() as conn:
            cursors.cursor_set(conn, portal, tbl, value)

    # --- conflicts, stage history, runs -------------------------------------------------------

    def add_conflict(self, tbl: str, key: str, portal_id: int | None, fields: list[str],
                     local: Mapping[str, Any], remote: Mapping[str, Any],
                     base: Mapping[str, Any] | None = None, policy: str = "manual") -> int:
        """Record a conflict; return its id."""
        with self.transaction() as conn:
            return conflicts.add_conflict(conn, tbl, key, portal_id, fields, local, remote, base, policy)

    def list_conflicts(self, tbl: str | None = None, status: str | None = "open") -> list[Conflict]:
        """Conflicts, open ones by default (status None lists all)."""
        return conflicts.list_conflicts(self.conn, tbl, status)

    def resolve_conflict(self, conflict_id: int, resolution: str) -> Conflict:
        """Close a conflict with `local`, `remote`, `merged` or `dismissed`."""
        with self.transaction() as conn:
            return conflicts.resolve_conflict(conn, conflict_id, resolution)

    def add_stage_move(self, tbl: str, key: str | None, portal_id: int | None, funnel: str | None,
                       from_stage: str | None, to_stage: str, at: str, source: str) -> int:
        """Keep one stage change (source: pull, push or local); duplicates are ignored."""
        with self.transaction() as conn:
            return stage_moves.add_stage_move(conn, tbl, key, portal_id, funnel, from_stage, to_stage, at,
                                              source)

    def add_stage_moves(self, tbl: str, moves: Iterable[stage_moves.StageMoveRow]) -> int:
        """Keep many stage moves (key, portal_id, funnel, from, to, at, source); return how many were new."""
        with self.transaction() as conn:
            return stage_moves.add_stage_moves(conn, tbl, moves)

    def stage_history(self, tbl: str, key: str | None = None) -> list[StageMove]:
        """Stage moves of a process (or one row) in time order."""
        return stage_moves.stage_history(self.conn, tbl, key)

    def run_start(self, kind: str, portal: str | None, job: str | None = None) -> int:
        """Record the start of a run; return its id."""
        with self.transaction() as conn:
            return runs.run_start(conn, kind, portal, job)

    def run_finish(self, run_id: int, status: str, figures: Mapping[str, Any],
                   error: str | None = None) -> None:
        """Record the end of a run with its figures."""
        with self.transaction() as conn:
            runs.run_finish(conn, run_id, status, figures, error)

    def last_runs(self, limit: int = 20, kind: str | None = None, portal: str | None = None) -> list[Run]:
        """Most recent runs first."""
        return runs.last_runs(self.conn, limit, kind, portal)

    def last_run_id(self) -> int:
        """The id of the newest run (0 when none is recorded)."""
        return runs.last_run_id(self.conn)

    def tag_runs(self, job: str, after: int, kind: str) -> int:
        """Name the job of untagged runs of `kind` newer than run `after`; return how many."""
        with self.transaction() as conn:
            return runs.tag_runs(conn, job, after, kind)

    # --- sync's bookkeeping: remembered templates, cached process maps ------------------------

    def remember_templates(self, templates: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Keep (code, template as JSON data) pairs for later syncs without FILE."""
        with self.transaction() as conn:
            sync_templates.remember(conn, templates)

    def remembered_templates(self, code: str | None = None) -> list[dict[str, Any]]:
        """Templates remembered for sync as JSON data, by code (only `code`'s when given)."""
        return sync_templates.remembered(self.conn, code)

    def cached_map(self, portal: str, code: str, signature: str) -> str | None:
        """The process map (JSON text) sync cached for this template signature, if any."""
        return map_cache.cached_map(self.conn, portal, code, signature)

    def cache_maps(self, portal: str, maps: Iterable[tuple[str, str, str]]) -> None:
        """Cache process maps: (code, template signature, map as JSON text)."""
        with self.transaction() as conn:
            for code, signature, data in maps:
                map_cache.cache_map(conn, portal, code, signature, data)

    # --- _meta --------------------------------------------------------------------------------

    def meta_get(self, key: str) -> str | None:
        """A value from `_meta`."""
        row = self.conn.execute("SELECT value FROM _meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def meta_set(self, key: str, value: str) -> None:
        """Set a text value in `_meta` (schema_version is reserved)."""
        if key == "schema_version":
            raise StoreError("_meta.schema_version is managed by migrations; it cannot be set by hand")
        with self.transaction() as conn:
            conn.execute("INSERT INTO _meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))
