"""The store read by exports, reports and `status`: a read-only connection and typed answers.

Nothing here can change the file: it is opened `mode=ro` (or `immutable`), `query_only`, under an
authorizer that allows reads only. Readers never write SQL against the store's internal tables
themselves; they ask this class for the catalog (processes, columns, funnels and stages in order with
their meaning, labels), for rows, and for the status of syncs. The one piece of caller-built SQL, an
export's SELECT over the public process tables and `<code>_labels` views with the user's `--where`,
runs through `select_public`, where it may read only those public objects.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from connector.store.errors import StoreError
from connector.store.models import Conflict, Run
from connector.store.process import FunnelRow, StageRow, funnel_rows, stage_rows
from connector.store.sqltext import PROCESS_CODE, ident
from connector.store.store import open_readonly
from connector.templates import Template

Semantics = Literal["process", "success", "failure"]
LabelKey = tuple[str, str, str]  # (kind, scope, code): ("stage", "<funnel>", "<stage>"), ...
SqlFunction = tuple[int, Callable[..., Any]]  # (number of arguments, the Python function)

# Actions a query may perform: reading tables, selecting, calling functions, recursive CTEs.
_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
# Pragmas that only describe the schema (used as table-valued functions, e.g. pragma_table_info).
_ALLOWED_PRAGMAS = frozenset({"table_info", "table_xinfo"})
# Functions that could reach outside the file even in a read-only connection.
_DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})
# Columns every process table has (docs/CONTRACTS.md "Local store layout").
_PROCESS_MARKERS = frozenset({"key", "id", "stage", "funnel"})


def _authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None) -> int:
    """Allow SELECT/READ/FUNCTION and schema-describing pragmas; deny everything else."""
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_DENY if (arg2 or "").lower() in _DENIED_FUNCTIONS else sqlite3.SQLITE_OK
    if action in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _ALLOWED_PRAGMAS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master":
        # SQLite reports its own (re)loading of the schema this way; a real write to the schema
        # is impossible here (read-only file, query_only, writable_schema cannot be set).
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


@dataclass(frozen=True)
class StageEntry:
    """One stage of a funnel as the template declares it."""

    code: str
    sort: int
    semantics: Semantics


@dataclass(frozen=True)
class FunnelEntry:
    """One funnel with its stages in order (by sort, then template order)."""

    code: str
    sort: int
    default: bool
    stages: tuple[StageEntry, ...]


@dataclass(frozen=True)
class ProcessCatalog:
    """What the store knows of one process table: columns, view, language, funnels and stages.

    `recorded` is False for a store made before funnel order and stage meaning were kept (and with no
    template remembered by sync): then `funnels` is empty until the next `ensure_process`.
    """

    code: str
    columns: tuple[str, ...]
    view: str | None  # `<code>_labels`, when the store has it
    view_columns: tuple[str, ...]
    language: str | None  # the language the labels view shows (`ensure_process(lang=...)`)
    funnels: tuple[FunnelEntry, ...]
    recorded: bool

    @property
    def default_funnel(self) -> str | None:
        """The funnel of items stored without one; None when not recorded, '' when there are no funnels."""
        if not self.recorded:
            return None
        marked = [f.code for f in self.funnels if f.default]
        return (marked or [f.code for f in self.funnels] or [""])[0]

    def money_fields(self) -> list[str]:
        """Amount columns with a `<code>_currency` sibling, in table order."""
        return [c for c in self.columns if f"{c}_currency" in self.columns]


@dataclass(frozen=True)
class Labels:
    """One label per (kind, scope, code) of a process, in the language asked for (else `*`, `en`, first)."""

    by_key: Mapping[LabelKey, str] = field(default_factory=dict)

    def get(self, kind: str, code: str, scope: str = "") -> str | None:
        return self.by_key.get((kind, scope, code))

    def of_kind(self, kind: str) -> dict[tuple[str, str], str]:
        """(scope, code) -> label for one kind."""
        return {(scope, code): text for (k, scope, code), text in self.by_key.items() if k == kind}


@dataclass(frozen=True)
class LiveItem:
    """An item that is not deleted: its place and when it entered its stage per its own columns."""

    key: str
    id: int | None
    title: str | None
    funnel: str | None
    stage: str | None
    entered: str | None  # moved_time, else created_time


@dataclass(frozen=True)
class StageVisit:
    """One stage a live item entered (stage history), in (key, at) order."""

    key: str
    funnel: str | None
    stage: str
    at: str


@dataclass(frozen=True)
class Cursor:
    """Where the next incremental pull of one process from one portal starts."""

    portal: str
    tbl: str
    value: str | None
    updated_at: str


@dataclass(frozen=True)
class FailedChange:
    """One change-log row whose push failed."""

    seq: int
    tbl: str
    key: str | None
    op: str
    columns: list[str]
    at: str
    error: str | None
    attempts: int


@dataclass(frozen=True)
class DealCost:
    """A deal that sync copied, with the count and summed cost of a process's items under it."""

    id: int
    title: str | None
    funnel: str | None
    stage: str | None
    stage_label: str | None
    amount: float
    currency: str | None
    items: int
    cost: float


@dataclass(frozen=True)
class ClientItem:
    """A live item with its client company (name when sync copied it) and its close date if known."""

    company_id: int | None
    company: str | None
    id: int | None
    number: str | None
    title: str | None
    funnel: str | None
    stage: str | None
    stage_name: str | None
    close_date: str | None


class StoreReader:
    """A store file opened for reading only."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self._objects: dict[str, str] | None = None
        self._templates: dict[str, Template | None] = {}

    @classmethod
    def open(cls, path: str | Path) -> StoreReader:
        """Open an existing store file so that no statement run on it can change it."""
        conn = open_readonly(path)  # also a read-only file in a read-only folder
        conn.execute("PRAGMA query_only = 1")
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.set_authorizer(_authorize)
        return cls(conn, str(path))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- catalog ------------------------------------------------------------------------------

    def objects(self) -> dict[str, str]:
        """Every table and view in the file: name -> 'table' | 'view'."""
        if self._objects is None:
            rows = self.conn.execute("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')")
            self._objects = {name: kind for name, kind in rows}
        return self._objects

    def columns(self, name: str) -> list[str]:
        """Column names of a table or view, in their declared order."""
        return [row[0] for row in self.conn.execute("SELECT name FROM pragma_table_info(?)", (name,))]

    def processes(self) -> list[str]:
        """Codes of the process tables, sorted (tables with a process code and the process columns)."""
        found = []
        for name, kind in self.objects().items():
            if kind == "table" and PROCESS_CODE.match(name) and _PROCESS_MARKERS <= set(self.columns(name)):
                found.append(name)
        return sorted(found)

    def public_tables(self) -> set[str]:
        """What caller-built SQL may read: process tables, their `<code>_labels` views, the `_labels`
        table those views look names up in, and JSON arrays in a row (`json_each`, `json_tree`)."""
        processes = self.processes()
        return {*processes, *(f"{p}_labels" for p in processes), "_labels", "json_each", "json_tree"}

    def view_language(self, tbl: str) -> str | None:
        """The language the store built `<tbl>_labels` in, if recorded."""
        if "_processes" not in self.objects():
            return None
        row = self.conn.execute("SELECT lang FROM _processes WHERE tbl = ?", (tbl,)).fetchone()
        return str(row[0]) if row and row[0] else None

    def catalog(self, tbl: str) -> ProcessCatalog:
        """Columns, labels view, language, and funnels with stages in order and their meaning.

        Funnels come from what `ensure_process` recorded; for a store made before that, from the template
        sync remembered (the same rows `ensure_process` would record); else none (`recorded` False).
        """
        view = f"{tbl}_labels" if self.objects().get(f"{tbl}_labels") == "view" else None
        funnels = self._recorded_funnels(tbl)
        recorded = bool(funnels)
        if not recorded:
            template = self.template(tbl)
            if template is not None:
                funnels, recorded = list(funnels_from_template(template)), True
        return ProcessCatalog(
            code=tbl, columns=tuple(self.columns(tbl)), view=view,
            view_columns=tuple(self.columns(view)) if view else (), language=self.view_language(tbl),
            funnels=tuple(funnels), recorded=recorded,
        )

    def _recorded_funnels(self, tbl: str) -> list[FunnelEntry]:
        if "_stages" not in self.objects() or "_funnels" not in self.objects():
            return []
        funnels = self.conn.execute(
            "SELECT tbl, code, position, sort, is_default FROM _funnels WHERE tbl = ?", (tbl,)).fetchall()
        stages = self.conn.execute(
            "SELECT tbl, funnel, code, position, sort, semantics FROM _stages WHERE tbl = ?", (tbl,)
        ).fetchall()
        return _funnels_of(funnels, stages)

    def labels(self, tbl: str, lang: str) -> Labels:
        """One label per (kind, scope, code), preferring `lang`, then `*`, then `en`, then the first by
        language code (the order the labels view uses)."""
        if "_labels" not in self.objects():
            return Labels()
        ranked: dict[LabelKey, tuple[tuple[bool, bool, bool, str], str]] = {}
        for kind, scope, code, lg, label in self.conn.execute(
            "SELECT kind, scope, code, lang, label FROM _labels WHERE tbl = ?", (tbl,)
        ):
            rank = (lg != lang, lg != "*", lg != "en", lg)
            key = (kind, scope, code)
            if key not in ranked or rank < ranked[key][0]:
                ranked[key] = (rank, label)
        return Labels({key: label for key, (_rank, label) in ranked.items()})

    def template(self, tbl: str) -> Template | None:
        """The process template sync remembered (`_sync_templates`); None when absent or unreadable."""
        if tbl not in self._templates:
            self._templates[tbl] = self._read_template(tbl)
        return self._templates[tbl]

    def _read_template(self, tbl: str) -> Template | None:
        if "_sync_templates" not in self.objects():
            return None
        row = self.conn.execute("SELECT data FROM _sync_templates WHERE code = ?", (tbl,)).fetchone()
        if not row:
            return None
        try:
            return Template.model_validate(json.loads(row[0]))
        except ValueError:
            return None

    # --- rows of a process --------------------------------------------------------------------

    def _live(self, tbl: str) -> str:
        return "COALESCE(deleted, 0) = 0" if "deleted" in self.columns(tbl) else "1"

    def live_count(self, tbl: str) -> int:
        """Items not deleted on the portal."""
        sql = f"SELECT COUNT(*) FROM {ident(tbl)} WHERE {self._live(tbl)}"
        return int(self.conn.execute(sql).fetchone()[0])

    def stage_counts(self, tbl: str) -> list[tuple[str | None, str | None, int]]:
        """(funnel, stage, live items) per place."""
        sql = f"SELECT funnel, stage, COUNT(*) FROM {ident(tbl)} WHERE {self._live(tbl)} GROUP BY 1, 2"
        return [(f, s, int(n)) for f, s, n in self.conn.execute(sql)]

    def money_sums(self, tbl: str, amount: str) -> list[tuple[str | None, str | None, str | None, float]]:
        """(funnel, stage, currency, sum of `amount`) over live items with an amount."""
        a, c = ident(amount), ident(f"{amount}_currency")
        sql = (f"SELECT funnel, stage, {c}, SUM({a}) FROM {ident(tbl)} "
               f"WHERE {self._live(tbl)} AND {a} IS NOT NULL GROUP BY 1, 2, 3")
        return [(f, s, cur, float(total or 0.0)) for f, s, cur, total in self.conn.execute(sql)]

    def live_items(self, tbl: str) -> list[LiveItem]:
        """Live items in table order, with when they entered their stage per their own columns."""
        cols = set(self.columns(tbl))
        entered = [ident(c) for c in ("moved_time", "created_time") if c in cols]
        entered_sql = f"COALESCE({', '.join(entered)})" if entered else "NULL"
        title = "title" if "title" in cols else "NULL"
        sql = (f"SELECT key, id, {title}, funnel, stage, {entered_sql} FROM {ident(tbl)} "
               f"WHERE {self._live(tbl)}")
        return [LiveItem(*row) for row in self.conn.execute(sql)]

    def stage_visits(self, tbl: str) -> Iterator[StageVisit]:
        """Stage moves of live items (history of deleted rows and tombstones left out), by key and time."""
        if "_stage_history" not in self.objects():
            return
        sql = (f"SELECT key, funnel, to_stage, at FROM _stage_history WHERE tbl = ? AND key IN "
               f"(SELECT key FROM {ident(tbl)} WHERE {self._live(tbl)}) ORDER BY key, at, id")
        for key, funnel, stage, at in self.conn.execute(sql, (tbl,)):
            yield StageVisit(key, funnel, stage, at)

    def places_reached(self, tbl: str) -> list[tuple[str, str | None, str | None]]:
        """(key, funnel, stage) of live items: where they are now and every stage they entered."""
        history = ""
        params: tuple[str, ...] = ()
        if "_stage_history" in self.objects():
            history = (f"UNION SELECT key, funnel, to_stage FROM _stage_history WHERE tbl = ? "
                       f"AND key IN (SELECT key FROM {ident(tbl)} WHERE {self._live(tbl)})")
            params = (tbl,)
        sql = f"SELECT key, funnel, stage FROM {ident(tbl)} WHERE {self._live(tbl)} {history}"
        return list(self.conn.execute(sql, params))

    def distinct_values(self, tbl: str, column: str) -> list[Any]:
        """The distinct non-NULL values of one column (deleted items included)."""
        sql = f"SELECT DISTINCT {ident(column)} FROM {ident(tbl)} WHERE {ident(column)} IS NOT NULL"
        return [value for (value,) in self.conn.execute(sql)]

    # --- linked CRM entities sync copied --------------------------------------------------------

    def deal_costs(self, tbl: str, cost_field: str) -> list[DealCost] | None:
        """Deals with live items of `tbl` under them (`parent_deal`), the items' count and summed
        `cost_field`; in funnel, stage and id order. None when sync copied no deals yet."""
        self._require_columns(tbl, "parent_deal", cost_field)
        if "_deals" not in self.objects():
            return None
        sql = (
            "SELECT d.id, d.title, d.funnel, d.stage, d.stage_label, COALESCE(d.amount, 0), d.currency, "
            f"COUNT(o.key), COALESCE(SUM(o.{ident(cost_field)}), 0) FROM _deals d JOIN {ident(tbl)} o "
            "ON o.parent_deal = d.id AND o.deleted = 0 GROUP BY d.portal, d.id "
            "ORDER BY d.funnel_id, d.stage_sort, d.id"
        )
        return [DealCost(r[0], r[1], r[2], r[3], r[4], float(r[5]), r[6], int(r[7]), float(r[8]))
                for r in self.conn.execute(sql)]

    def client_items(self, tbl: str, number_column: str | None = None) -> list[ClientItem]:
        """Live items of a process with a client company: company name and close date when sync copied
        them (`_companies`, `_item_dates`), and `number_column` (e.g. a contract number) if given."""
        self._require_columns(tbl, "company_id", *([number_column] if number_column else []))
        have = self.objects()
        end = ("(SELECT MAX(closedate) FROM _item_dates x WHERE x.tbl = ? AND x.id = t.id)"
               if "_item_dates" in have else "NULL")
        company = ("(SELECT MAX(title) FROM _companies c WHERE c.id = t.company_id)"
                   if "_companies" in have else "NULL")
        number = f"t.{ident(number_column)}" if number_column else "NULL"
        params = (tbl,) if "_item_dates" in have else ()
        sql = (f"SELECT t.company_id, {company}, t.id, {number}, t.title, t.funnel, t.stage, t.stage_name, "
               f"{end} FROM {ident(tbl + '_labels')} t WHERE t.deleted = 0")
        return [ClientItem(*row) for row in self.conn.execute(sql, params)]

    def _require_columns(self, tbl: str, *names: str) -> None:
        missing = [n for n in names if n not in self.columns(tbl)]
        if missing:
            raise StoreError(f"process table {tbl!r} has no column(s) {', '.join(missing)}; "
                             f"columns: {', '.join(self.columns(tbl)) or 'none (no such table)'}")

    # --- status -------------------------------------------------------------------------------

    def runs(self, limit: int) -> list[Run]:
        """The most recent runs first."""
        if "_runs" not in self.objects():
            return []
        sql = ("SELECT id, kind, portal, job, started_at, finished_at, status, figures, error FROM _runs "
               "ORDER BY id DESC LIMIT ?")
        return [Run(id=r[0], kind=r[1], portal=r[2], job=r[3], started_at=r[4], finished_at=r[5], status=r[6],
                    figures=_json_object(r[7]) or {}, error=r[8]) for r in self.conn.execute(sql, (limit,))]

    def cursors(self) -> list[Cursor]:
        """Every pull cursor, by portal and process."""
        if "_cursors" not in self.objects():
            return []
        sql = "SELECT portal, tbl, value, updated_at FROM _cursors ORDER BY 1, 2"
        return [Cursor(*row) for row in self.conn.execute(sql)]

    def pending_counts(self) -> dict[str, int]:
        """Local changes waiting for push, per process table."""
        if "_changes" not in self.objects():
            return {}
        sql = "SELECT tbl, COUNT(*) FROM _changes WHERE status = 'pending' GROUP BY tbl ORDER BY tbl"
        return {tbl: int(n) for tbl, n in self.conn.execute(sql)}

    def failed_changes(self, limit: int) -> list[FailedChange]:
        """Change-log rows whose push failed, oldest first."""
        if "_changes" not in self.objects():
            return []
        sql = ("SELECT seq, tbl, key, op, columns, at, error, attempts FROM _changes "
               "WHERE status = 'failed' ORDER BY seq LIMIT ?")
        return [FailedChange(seq, tbl, key, op, _json_list(cols), at, error, attempts)
                for seq, tbl, key, op, cols, at, error, attempts in self.conn.execute(sql, (limit,))]

    def open_conflicts(self, limit: int) -> list[Conflict]:
        """Open conflicts, oldest first."""
        if "_conflicts" not in self.objects():
            return []
        sql = ("SELECT id, tbl, key, portal_id, fields, local, remote, base, policy, status, resolution, "
               "created_at, resolved_at FROM _conflicts WHERE status = 'open' ORDER BY id LIMIT ?")
        return [Conflict(id=r[0], tbl=r[1], key=r[2], portal_id=r[3], fields=_json_list(r[4]),
                         local=_json_object(r[5]) or {}, remote=_json_object(r[6]) or {},
                         base=_json_object(r[7]), policy=r[8], status=r[9], resolution=r[10],
                         created_at=r[11], resolved_at=r[12])
                for r in self.conn.execute(sql, (limit,))]

    # --- caller-built SELECTs over the public objects -------------------------------------------

    @contextmanager
    def _scope_reads(self, tables: set[str]) -> Iterator[None]:
        """While statements are prepared inside, they may read only `tables` (and nothing else the
        read-only authorizer forbids); outside, the plain read-only authorizer applies again."""

        def authorize(
            action: int, arg1: str | None, arg2: str | None, db: str | None, src: str | None
        ) -> int:
            if action == sqlite3.SQLITE_READ and arg1 not in tables:
                # SQLite itself reads `sqlite_master.ROWID` when it sets up json_each (no schema text)
                internal = arg1 in ("sqlite_master", "sqlite_schema") and (arg2 or "").upper() == "ROWID"
                return sqlite3.SQLITE_OK if internal else sqlite3.SQLITE_DENY
            if action == sqlite3.SQLITE_PRAGMA:
                return sqlite3.SQLITE_DENY
            return _authorize(action, arg1, arg2, db, src)

        self.conn.set_authorizer(authorize)
        try:
            yield
        finally:
            self.conn.set_authorizer(_authorize)

    def select_public(
        self, sql: str, functions: Mapping[str, SqlFunction] | None = None, chunk_rows: int = 2000
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Run one SELECT that may read only the public objects (`public_tables`), as chunks of rows.

        `functions` are registered first (deterministic), so the SQL may call them. The statement is
        prepared before the first chunk is asked for; sqlite3.Error propagates to the caller.
        """
        for name, (arity, function) in (functions or {}).items():
            self.conn.create_function(name, arity, function, deterministic=True)
        with self._scope_reads(self.public_tables()):
            cursor = self.conn.execute(sql)
        return _chunks(cursor, chunk_rows)


def _chunks(cursor: sqlite3.Cursor, size: int) -> Iterator[list[tuple[Any, ...]]]:
    while chunk := cursor.fetchmany(size):
        yield chunk


def _json_object(text: Any) -> dict[str, Any] | None:
    """A JSON object column as a dict (None when NULL or not an object)."""
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _json_list(text: Any) -> list[str]:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def funnels_from_template(template: Template) -> tuple[FunnelEntry, ...]:
    """The funnels `ensure_process` records for a template, as entries (the same order and meaning)."""
    return tuple(_funnels_of(funnel_rows(template), stage_rows(template)))


_MEANINGS: dict[str, Semantics] = {"process": "process", "success": "success", "failure": "failure"}


def _funnels_of(funnels: list[FunnelRow], stages: list[StageRow]) -> list[FunnelEntry]:
    """Funnel entries from `_funnels`/`_stages` rows, each ordered by sort, then template position."""
    by_funnel: dict[str, list[tuple[int, int, StageEntry]]] = {}
    for _tbl, funnel, code, position, sort, semantics in stages:
        entry = StageEntry(code, sort, _MEANINGS.get(semantics, "process"))
        by_funnel.setdefault(funnel, []).append((sort, position, entry))
    out = []
    for _tbl, code, _position, sort, is_default in sorted(funnels, key=lambda f: (f[3], f[2])):
        ordered = sorted(by_funnel.get(code, []), key=lambda s: (s[0], s[1]))
        out.append(FunnelEntry(code, sort, bool(is_default), tuple(entry for _s, _p, entry in ordered)))
    return out
